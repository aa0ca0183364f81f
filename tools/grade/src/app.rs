//! Grading an app folder: its level and backend from `.bench/state.json`, a fresh database
//! and a running app through `bench-app`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use bench_formats::AppState;

use crate::grade::Resolved;

/// The app's state file, relative to the app folder.
pub const STATE_FILE: &str = ".bench/state.json";

/// Reads the app's state; an error says how to grade a folder the harness did not make.
pub fn app_state(dir: &Path) -> Result<AppState> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder: give an app folder (results/chat-app-<ts>) or use --url URL --level N --out DIR",
            dir.display()
        );
    }
    let path = dir.join(STATE_FILE);
    if !path.is_file() {
        bail!(
            "{} has no {STATE_FILE}, so it is not an app made by bench-run: grade it while it runs with --url URL --level N --out DIR",
            dir.display()
        );
    }
    bench_formats::read_json(&path)
}

/// Resolves an app folder: level (given, else the app's), backend, address; resets its
/// database and makes sure it runs.
pub(crate) fn resolve_app(
    dir: &Path,
    level: Option<u32>,
    out: Option<PathBuf>,
) -> Result<Resolved> {
    let state = app_state(dir)?;
    let _ = (level, out);
    bail!(
        "grading an app folder needs bench-app to start it ({} app at level {}); until then start it yourself and use --url URL --level N --out DIR",
        state.backend,
        state.level
    )
}
