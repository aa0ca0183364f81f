//! `cargo xtask bench-loop-perf RUN_DIR…`: the harness's own time in each session step of
//! finished loops — the step's wall time less the agent's (preflight, folders, prompt, the
//! scripted API, the wait for the last telemetry export, costing, the records).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bench_formats::loop_record::{LoopStep, StepRecord};
use bench_formats::{AppState, Outcome, SessionMetadata};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

/// Harness overhead per session step of the loops that made the apps under these run
/// folders (figures from their records: step times in the app's state, agent wall time in
/// each session's metadata.json).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folders (or app folders) made by bench-loop.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
}

/// One session step's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    pub app: String,
    pub step: String,
    pub step_s: f64,
    pub agent_s: f64,
}

impl StepTime {
    pub fn overhead_s(&self) -> f64 {
        self.step_s - self.agent_s
    }
}

pub fn run(args: Args) -> Result<()> {
    let apps = crate::record::loop_apps(&args.runs)?;
    if apps.is_empty() {
        bail!("no app made by bench-loop under the folders given");
    }
    let mut times = Vec::new();
    for app in &apps {
        let state = crate::record::read_state(app)?;
        times.extend(step_times(app, &state)?);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["App", "Step", "Step (s)", "Agent (s)", "Harness (s)"]);
    for t in &times {
        table.add_row([
            t.app.clone(),
            t.step.clone(),
            format!("{:.1}", t.step_s),
            format!("{:.1}", t.agent_s),
            format!("{:.1}", t.overhead_s()),
        ]);
    }
    println!("{table}");
    let worst = times.iter().map(StepTime::overhead_s).fold(0.0, f64::max);
    let mean = times.iter().map(StepTime::overhead_s).sum::<f64>() / times.len().max(1) as f64;
    println!(
        "harness overhead per session step: mean {mean:.1} s, max {worst:.1} s over {} steps",
        times.len()
    );
    Ok(())
}

fn seconds_between(step: &StepRecord) -> Option<f64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let start = parse(&step.started_at_utc)?;
    let end = parse(step.ended_at_utc.as_deref()?)?;
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

/// The session steps of an app that ran to their end, paired in order with the sessions
/// that completed or failed (a step cut off by a killed loop, and its session, are left
/// out: their times are not the harness's).
pub fn step_times(app: &std::path::Path, state: &AppState) -> Result<Vec<StepTime>> {
    let Some(rec) = &state.loop_record else {
        return Ok(vec![]);
    };
    let backend_dir = app
        .parent()
        .and_then(std::path::Path::parent)
        .context("an app outside a run's results/")?;
    let steps = rec.steps.iter().filter(|s| {
        !matches!(s.step, LoopStep::Grade { .. } | LoopStep::Finish)
            && !s
                .result
                .as_deref()
                .is_some_and(|r| r.starts_with("cut off"))
    });
    let sessions = state.sessions.iter().filter(|s| {
        !matches!(
            s.outcome,
            Outcome::Killed | Outcome::Running | Outcome::Interrupted
        )
    });
    let name = format!("{} #{}", state.backend, rec.repetition);
    let mut out = Vec::new();
    for (step, session) in steps.zip(sessions) {
        let Some(step_s) = seconds_between(step) else {
            continue;
        };
        let meta_path = backend_dir
            .join(session.telemetry_dir.as_deref().unwrap_or_default())
            .join(bench_formats::files::METADATA_FILE);
        let meta: SessionMetadata = bench_formats::read_json(&meta_path)?;
        out.push(StepTime {
            app: name.clone(),
            step: step.step.to_string(),
            step_s,
            agent_s: meta.wall_clock_sec.unwrap_or(0.0),
        });
    }
    Ok(out)
}
