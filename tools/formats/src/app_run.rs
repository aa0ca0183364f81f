//! `results/chat-app-<ts>/.bench/app-run.json`: what `bench-app start` left running for an
//! app (its process groups, ports and start time), so that `status` can report it and
//! `stop` can stop exactly that and nothing else. Written by bench-app, read by bench-app
//! and by tools that call it (bench-grade, bench-stress).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The record, relative to the app folder.
pub const APP_RUN_FILE: &str = ".bench/app-run.json";
/// The folder of the app's step logs (`<step>.log`), relative to the app folder.
pub const APP_LOGS_DIR: &str = ".bench/logs";
/// Schema version of [`AppRun`].
pub const APP_RUN_SCHEMA: u32 = 1;

/// An app started by `bench-app`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRun {
    pub schema: u32,
    pub backend: String,
    pub run_index: u32,
    /// When `start` began, RFC 3339 UTC.
    pub started_at_utc: String,
    /// The app's ports by name (`vite`, `express`), as the start commands were given them.
    pub ports: BTreeMap<String, u16>,
    /// Values given on the command line in place of the backend's (`pg_port`, …), so that
    /// `reset` and a restart use the same infrastructure.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    /// The background steps started, in start order.
    pub processes: Vec<RunningStep>,
}

/// One background step (a server) and the process group it runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningStep {
    /// The step's name in `backend.toml` (`server`, `client`).
    pub step: String,
    /// The shell command it runs.
    pub command: String,
    /// Pid of the group leader (the shell that runs the command); also the group id.
    pub pid: u32,
    /// The process group holding it and everything it starts.
    pub pgid: u32,
    /// The leader's start time in clock ticks since boot: a recycled pid is not ours.
    pub start_ticks: u64,
    /// The URL that answers once it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_url: Option<String>,
    /// Its log, relative to the app folder.
    pub log: String,
}
