//! `bench-grade --grader hybrid`: the deterministic grader first; then an agent session
//! re-judges only what it could not settle — steps whose actions could not be carried out
//! (a control worded differently) and behaviours no script checks. Time limits stay with
//! the deterministic measurements: steps the scripts carried out keep their verdicts and
//! latencies, and the rubric's rule scores the merged steps.

use std::fmt::Write as _;

use anyhow::Result;
use bench_formats::grading::{FeatureGrade, GradingFile, StepOutcome};

use super::{AgentGraded, AgentOptions};
use crate::grade::{Graded, Request, grade};

/// The prefix of a reason line by which the agent reports a failed unscripted behaviour.
pub const UNSCRIPTED_PREFIX: &str = "unscripted:";

/// What a hybrid grading gave: the merged grading, and the agent session when one ran.
pub struct HybridGraded {
    pub graded: Graded,
    pub agent: Option<AgentGraded>,
}

/// What the deterministic grading left for the agent, in words; `None` when nothing.
pub fn open_questions(det: &GradingFile) -> Option<String> {
    let mut out = String::new();
    for f in &det.features {
        for s in f
            .steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::NotCarriedOut)
        {
            let why = s
                .actions
                .iter()
                .find(|a| !a.ok)
                .and_then(|a| a.error.clone())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- Feature {} step {}: the scripts could not carry it out ({why}). Judge it.",
                f.id, s.index
            );
        }
    }
    for n in &det.not_checked {
        let _ = writeln!(
            out,
            "- Feature {}: {} — no script checks it ({}). Judge it if the browsers can; report a failure as a reason line starting with `{UNSCRIPTED_PREFIX}`, or list it in `not_checked`.",
            n.feature, n.behaviour, n.reason
        );
    }
    if out.is_empty() {
        return None;
    }
    Some(format!(
        "A deterministic grading has already judged every other step, with measured time limits. Carry out the plans in order (later steps need what earlier ones create), but only these judgments will be used:\n\n{out}"
    ))
}

/// Merges the agent's verdicts into the deterministic grading: steps that could not be
/// carried out take the agent's outcome; the rubric rescores; a failed unscripted behaviour
/// caps its feature at the agent's score for it.
pub fn merge(det: &GradingFile, agent: &GradingFile) -> GradingFile {
    let mut merged = det.clone();
    for f in &mut merged.features {
        let Some(judged) = agent.features.iter().find(|a| a.id == f.id) else {
            continue;
        };
        for step in &mut f.steps {
            if step.outcome != StepOutcome::NotCarriedOut {
                continue;
            }
            if let Some(theirs) = judged.steps.iter().find(|s| s.index == step.index) {
                *step = theirs.clone();
            }
        }
    }
    crate::score::score_all(&mut merged.features);
    for f in &mut merged.features {
        if let Some(judged) = agent.features.iter().find(|a| a.id == f.id) {
            cap_by_unscripted(f, judged);
        }
    }
    merged.not_checked = agent.not_checked.clone();
    merged.score = merged.features.iter().map(|f| f.score).sum();
    merged.max = merged.features.iter().map(|f| f.max).sum();
    merged.generator = format!("{} + agent (hybrid)", det.generator);
    merged
}

fn cap_by_unscripted(f: &mut FeatureGrade, judged: &FeatureGrade) {
    let failed: Vec<&String> = judged
        .reasons
        .iter()
        .filter(|r| r.trim_start().starts_with(UNSCRIPTED_PREFIX))
        .collect();
    if failed.is_empty() {
        return;
    }
    f.score = f.score.min(judged.score);
    f.reasons.extend(failed.into_iter().cloned());
}

/// Runs the hybrid grading: deterministic into the grading's own folder, then the agent
/// when something is left to judge, and the merged files into the output folder.
pub fn grade_hybrid(
    req: &Request,
    opts: &AgentOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<HybridGraded> {
    let out = crate::grade::plan(req)?.out;
    // Outside `.bench/grading/`, where bench-report would count it as a grading of its own.
    let scratch = bench_formats::paths::state_dir(&out)
        .join("grading-hybrid")
        .join(chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string());
    let mut det_req = req.clone();
    det_req.out = Some(scratch);
    progress("hybrid grading: the deterministic grader first …");
    let det = grade(&det_req, progress)?;
    let Some(questions) = open_questions(&det.file) else {
        progress("hybrid grading: nothing left for the agent to judge");
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
        let written = crate::output::write_outputs(&out, &det.run_dir, &stamp, &det.file)?;
        return Ok(HybridGraded {
            graded: Graded { written, ..det },
            agent: None,
        });
    };
    let agent = super::grade_agent_with(req, opts, Some(questions), progress, |agent_file| {
        merge(&det.file, agent_file)
    })?;
    Ok(HybridGraded {
        graded: agent.graded.clone(),
        agent: Some(agent),
    })
}
