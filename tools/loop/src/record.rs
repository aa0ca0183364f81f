//! The loop's records of an app: its `loop` field in `.bench/state.json` (read fresh from
//! disk and written back around every step), the lock that keeps two loops off one app, and
//! the repair of a session a killed loop left recorded as running.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::files::{METADATA_FILE, STATE_FILE};
use bench_formats::loop_record::{LoopRecord, LoopStatus, LoopStep, StepRecord};
use bench_formats::{AppState, Outcome, SessionMetadata};

/// The loop's lock on an app, relative to the app folder.
pub const LOOP_LOCK_FILE: &str = ".bench/loop.lock";

/// Now, as the records write it.
pub fn now_utc() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Reads an app's state.
pub fn read_state(app_dir: &Path) -> Result<AppState> {
    bench_formats::read_json(&app_dir.join(STATE_FILE))
}

/// Writes an app's state.
pub fn write_state(app_dir: &Path, state: &AppState) -> Result<()> {
    bench_formats::write_json(&app_dir.join(STATE_FILE), state)
}

/// Changes the app's loop record on disk (the state is read fresh, so whatever a session
/// wrote is kept) and returns the new state.
pub fn update(app_dir: &Path, change: impl FnOnce(&mut LoopRecord)) -> Result<AppState> {
    let mut state = read_state(app_dir)?;
    let rec = state.loop_record.as_mut().with_context(|| {
        format!(
            "{} has no loop record: it was not made by bench-loop",
            app_dir.join(STATE_FILE).display()
        )
    })?;
    change(rec);
    write_state(app_dir, &state)?;
    Ok(state)
}

/// Records that `step` starts.
pub fn begin_step(app_dir: &Path, step: &LoopStep) -> Result<AppState> {
    update(app_dir, |rec| {
        rec.current = Some(StepRecord {
            step: step.clone(),
            started_at_utc: now_utc(),
            ended_at_utc: None,
            result: None,
        });
    })
}

/// Records that the step under way ended with `result`.
pub fn end_step(app_dir: &Path, result: &str) -> Result<AppState> {
    update(app_dir, |rec| {
        if let Some(mut step) = rec.current.take() {
            step.ended_at_utc = Some(now_utc());
            step.result = Some(result.to_owned());
            rec.steps.push(step);
        }
    })
}

/// Ends the app's loop: finished, or stopped with a reason.
pub fn close(app_dir: &Path, status: LoopStatus, reason: Option<String>) -> Result<AppState> {
    update(app_dir, |rec| {
        rec.status = status;
        if reason.is_some() {
            rec.stop_reason = reason;
        }
    })
}

/// Holds an app for one loop; released when dropped or when the process ends.
#[derive(Debug)]
pub struct LoopLock {
    _file: std::fs::File,
}

/// Takes the app's loop lock, or says which process holds it.
pub fn lock(app_dir: &Path) -> Result<LoopLock> {
    let file = bench_runner::layout::try_lock_file(&app_dir.join(LOOP_LOCK_FILE), |holder| {
        format!(
            "another bench-loop (process {holder}) is running {}: let it finish, or stop it and run --resume",
            app_dir.display()
        )
    })?;
    Ok(LoopLock { _file: file })
}

/// A session a killed loop left recorded as `running`, repaired: it is recorded as killed
/// (its agent died with the loop), and what it spent is accounted from the telemetry the
/// receiver kept, so the report counts it. Returns the sessions repaired.
pub fn repair_killed_sessions(app_dir: &Path, telemetry_dir: &Path) -> Result<Vec<String>> {
    let mut state = read_state(app_dir)?;
    let backend_dir = app_dir
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} is not inside a run's results/", app_dir.display()))?
        .to_path_buf();
    let mut repaired = Vec::new();
    for rec in state
        .sessions
        .iter_mut()
        .filter(|s| s.outcome == Outcome::Running)
    {
        let session_dir = match &rec.telemetry_dir {
            Some(rel) => backend_dir.join(rel),
            None => backend_dir.join("telemetry").join(&rec.run_id),
        };
        rec.outcome = Outcome::Killed;
        rec.ended_at_utc.get_or_insert_with(now_utc);
        mark_metadata_killed(&session_dir)?;
        rec.cost_usd = cost_of(&session_dir, rec.session_id.as_deref(), telemetry_dir)
            .map_err(|e| eprintln!("warning: cost of the killed session {}: {e:#}", rec.run_id))
            .ok();
        repaired.push(rec.run_id.clone());
    }
    if !repaired.is_empty() {
        write_state(app_dir, &state)?;
    }
    Ok(repaired)
}

fn mark_metadata_killed(session_dir: &Path) -> Result<()> {
    let path = session_dir.join(METADATA_FILE);
    if !path.is_file() {
        return Ok(());
    }
    let mut meta: SessionMetadata = bench_formats::read_json(&path)?;
    if meta.outcome.is_none_or(|o| o == Outcome::Running) {
        meta.outcome = Some(Outcome::Killed);
        meta.extra.insert(
            "endedWith".to_owned(),
            serde_json::json!("the loop running it was killed; bench-loop --resume recorded it"),
        );
        bench_formats::write_json(&path, &meta)?;
    }
    Ok(())
}

/// A session's cost from the receiver's per-session files (written to its folder as
/// `cost-summary.json`).
pub fn cost_of(session_dir: &Path, session_id: Option<&str>, telemetry_dir: &Path) -> Result<f64> {
    let mut inputs = bench_telemetry::Inputs::default();
    if let Some(id) = session_id {
        let folder = telemetry_dir.join("sessions").join(id);
        let (logs, metrics) = (folder.join("logs.jsonl"), folder.join("metrics.jsonl"));
        if logs.is_file() {
            inputs.logs.push(logs);
        }
        if metrics.is_file() {
            inputs.metrics.push(metrics);
        }
    }
    if inputs.logs.is_empty() && inputs.metrics.is_empty() {
        bail!(
            "no telemetry of session {} under {}",
            session_id.unwrap_or("?"),
            telemetry_dir.display()
        );
    }
    let options = bench_telemetry::Options {
        extract_raw: true,
        ..bench_telemetry::Options::default()
    };
    let cost = bench_telemetry::summarize(session_dir, &inputs, &options)?;
    Ok(cost.summary.total_cost_usd)
}

/// The apps under run folders (`RUN_DIR/<backend>/results/chat-app-*`, or app folders
/// themselves) that a loop made.
pub fn loop_apps(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut apps = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            bail!(
                "{} is not a folder: give run folders (runs/<variant>-<date>) made by bench-loop",
                dir.display()
            );
        }
        collect_apps(dir, 0, &mut apps)?;
    }
    apps.sort();
    apps.dedup();
    Ok(apps)
}

fn collect_apps(dir: &Path, depth: u32, apps: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join(STATE_FILE).is_file() {
        if read_state(dir)?.loop_record.is_some() {
            apps.push(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
        }
        return Ok(());
    }
    if depth >= 4 {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let skip = path
            .file_name()
            .is_some_and(|n| n == "node_modules" || n == "telemetry" || n == "inputs");
        if path.is_dir() && !skip {
            collect_apps(&path, depth + 1, apps)?;
        }
    }
    Ok(())
}
