//! `bench-app`: start, stop, reset and inspect the app an agent built, with its backend's
//! own `[commands]` from `backends/<name>/backend.toml` and the app's own run index (its
//! ports and database).
//!
//! - [`App::open`] resolves an app folder: backend and run index from its
//!   `.bench/state.json` (or `--backend`/detection and `--run-index`), values from the
//!   backend with overrides (`pg_port=…` for a PostgreSQL on another port).
//! - [`App::start`] runs the backend's preflight checks, refuses ports held by another
//!   process (naming it), then the start steps: foreground ones to their end within
//!   `timeout_s`, servers in process groups of their own until `ready_url` answers. Output
//!   goes to `.bench/logs/<step>.log`; what runs is recorded in
//!   [`bench_formats::app_run::APP_RUN_FILE`]. A running app is left alone.
//! - [`App::stop`] stops exactly the process groups `start` recorded (never by port).
//! - [`App::reset`] gives the app a fresh database (stop, reset steps, start again if it
//!   was running, which applies the schema).
//! - [`App::status`] and [`App::logs`] report.
//!
//! The free functions [`start`], [`stop`], [`reset`] and [`status`] do the same from an
//! app folder and [`AppOptions`], for other tools (bench-grade, bench-stress).

pub mod cli;
mod ops;
pub mod reference;
mod steps;
mod target;

use std::path::Path;

use anyhow::Result;

pub use ops::{PortStatus, Started, Status, StepStatus};
pub use steps::log_name;
pub use target::{App, AppOptions, DEFAULT_GRACE};

/// Starts the app in `app_dir` (a no-op when it runs); see [`App::start`].
pub fn start(app_dir: &Path, options: &AppOptions) -> Result<Started> {
    App::open(app_dir, options)?.start()
}

/// Stops what `start` started for the app in `app_dir`; returns how many processes ran.
pub fn stop(app_dir: &Path, options: &AppOptions) -> Result<usize> {
    App::open(app_dir, options)?.stop()
}

/// Gives the app in `app_dir` a fresh database; returns whether it was restarted.
pub fn reset(app_dir: &Path, options: &AppOptions) -> Result<bool> {
    App::open(app_dir, options)?.reset()
}

/// What runs for the app in `app_dir`.
pub fn status(app_dir: &Path, options: &AppOptions) -> Result<Status> {
    App::open(app_dir, options)?.status()
}
