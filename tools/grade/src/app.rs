//! Grading an app folder: its level from `.bench/state.json`, a fresh database and a
//! running app through `bench-app` (the backend's own `[commands]`).

use std::path::Path;

use anyhow::{Context, Result};
use bench_app::{App, AppOptions};
use bench_formats::AppState;

/// The app's state file, relative to the app folder.
pub use bench_formats::files::STATE_FILE;

/// The app's state, when the harness made the app (`None` for a folder without one).
pub fn app_state(dir: &Path) -> Result<Option<AppState>> {
    let path = dir.join(STATE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    bench_formats::read_json(&path).map(Some)
}

/// An app started for grading; stopped again when dropped if it was not running before.
pub struct PreparedApp {
    pub app: App,
    pub url: String,
    stop_when_done: bool,
}

impl Drop for PreparedApp {
    fn drop(&mut self) {
        if self.stop_when_done
            && let Err(err) = self.app.stop()
        {
            eprintln!("warning: could not stop the app after grading: {err:#}");
        }
    }
}

/// Gives the app a fresh database (plans assume a fresh app) and makes sure it runs.
pub fn prepare(
    dir: &Path,
    options: &AppOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<PreparedApp> {
    let app = App::open(dir, options)?;
    progress(&format!(
        "resetting the {} app's database and starting it (bench-app) …",
        app.backend().name
    ));
    let restarted = app
        .reset()
        .with_context(|| format!("cannot reset the app's database in {}", dir.display()))?;
    let started = app.start().with_context(|| {
        format!(
            "cannot start the app in {} (see cargo xtask bench-app logs {})",
            dir.display(),
            dir.display()
        )
    })?;
    let stop_when_done = !restarted && matches!(started, bench_app::Started::Started(_));
    let url = app.client_url();
    Ok(PreparedApp {
        app,
        url,
        stop_when_done,
    })
}
