//! `results/chat-app-<ts>/.bench/state.json`: where an app stands and how it got there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::experiment::{Rules, Variant};
use crate::metadata::{Outcome, Phase};

/// The state of one generated app across its sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppState {
    pub backend: String,
    /// The level the app has been built or upgraded to.
    pub level: u32,
    pub variant: Variant,
    pub rules: Rules,
    pub run_index: u32,
    /// Every session run on this app, oldest first.
    #[serde(default)]
    pub sessions: Vec<SessionRecord>,
    /// What `bench-loop` recorded about the app (absent for apps run by hand).
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_record: Option<crate::loop_record::LoopRecord>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One session in an app's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    pub phase: Phase,
    /// The app's level this session targeted (fix sessions: the level being fixed).
    pub level: u32,
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// How the session ended (`running` until it has).
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    pub started_at_utc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_utc: Option<String>,
    /// The session's telemetry directory, relative to the backend directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_dir: Option<String>,
}

impl AppState {
    /// The newest session that has an agent session id (what `--resume-session` forks).
    pub fn latest_session_id(&self) -> Option<&str> {
        self.sessions
            .iter()
            .rev()
            .find_map(|s| s.session_id.as_deref())
    }
}
