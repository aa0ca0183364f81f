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

#[cfg(test)]
mod tests {
    use super::*;
    use bench_content::Levels;
    use bench_formats::grading::{ActionResult, CheckResult, Severity};

    fn check(passed: bool) -> CheckResult {
        CheckResult {
            item: 1,
            user: "bob".into(),
            what: "General appears".into(),
            expect: "appears".into(),
            passed,
            latency_ms: None,
            within_s: None,
            observed: String::new(),
            severity: Severity::Major,
            after_refresh: false,
            counts_for: None,
        }
    }

    fn action(ok: bool) -> ActionResult {
        ActionResult {
            item: 0,
            user: "alice".into(),
            what: "click Create room".into(),
            ok,
            error: (!ok).then(|| "no button named Create room".into()),
            ms: 0.0,
        }
    }

    /// Level 1's plan with every step carried out and passed.
    fn all_passed() -> GradingFile {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let levels = Levels::load(&root).unwrap();
        let features = crate::program::select_features(&levels, 1, &[]).unwrap();
        let mut file = super::super::prompt::skeleton(&levels, &features, 1, "http://x/");
        for s in file.features.iter_mut().flat_map(|f| f.steps.iter_mut()) {
            s.outcome = StepOutcome::Passed;
            s.actions = vec![action(true)];
            s.checks = vec![check(true)];
        }
        crate::score::score_all(&mut file.features);
        file
    }

    #[test]
    fn only_what_the_scripts_could_not_settle_takes_the_agents_verdict() {
        let mut det = all_passed();
        let step = &mut det.features[0].steps[2];
        step.outcome = StepOutcome::NotCarriedOut;
        step.actions = vec![action(false)];
        step.checks.clear();
        det.not_checked.push(bench_formats::grading::NotChecked {
            feature: 2,
            behaviour: "the typing rate limit".into(),
            reason: "on the wire".into(),
        });
        crate::score::score_all(&mut det.features);
        assert_eq!(det.features[0].score, 0);
        let questions = open_questions(&det).unwrap();
        assert!(questions.contains("Feature 1 step 3") && questions.contains("rate limit"));
        assert!(open_questions(&all_passed()).is_none());

        let mut agent = all_passed();
        // The agent also fails a step the scripts passed: that verdict is not used.
        agent.features[0].steps[0].checks = vec![check(false)];
        agent.features[1].score = 2;
        agent.features[1].reasons.push(format!(
            "{UNSCRIPTED_PREFIX} typing is signalled on every key"
        ));
        let merged = merge(&det, &agent);
        assert_eq!(
            merged.features[0].score, 3,
            "{:?}",
            merged.features[0].reasons
        );
        assert!(merged.features[0].steps[0].checks[0].passed);
        assert_eq!(merged.features[1].score, 2);
        assert!(merged.features[1].reasons[0].starts_with(UNSCRIPTED_PREFIX));
        assert_eq!((merged.score, merged.max), (11, 12));
        assert!(merged.not_checked.is_empty());
    }
}
