//! `metadata.json`: what one agent session was asked to do, and how it ended.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::experiment::{Rules, Variant};
use crate::named::named_enum;

named_enum! {
    /// The three kinds of agent session.
    pub enum Phase ("phase") {
        /// Build the app from nothing at a level (usually level 1).
        Generate => "generate",
        /// Add the next level's feature to an existing app.
        Upgrade => "upgrade",
        /// Repair the bugs listed in the app's `BUG_REPORT.md`.
        Fix => "fix",
    }
}

impl Phase {
    /// The text the agent prints when it has finished this kind of session.
    pub fn completion_marker(self) -> &'static str {
        match self {
            Phase::Generate => "DEPLOY_COMPLETE",
            Phase::Upgrade => "UPGRADE_COMPLETE",
            Phase::Fix => "FIX_COMPLETE",
        }
    }
}

named_enum! {
    /// How an agent session ended (or that it has not ended yet).
    pub enum Outcome ("session outcome") {
        /// The session is under way, or its harness died before recording an end.
        Running => "running",
        /// The agent exited with status 0 and printed its completion marker.
        Completed => "completed",
        /// The agent exited otherwise, or the session could not start it.
        Failed => "failed",
        /// The harness stopped the agent at its time limit.
        Timeout => "timeout",
        /// Ctrl-C, SIGTERM or a cancel stopped the agent.
        Interrupted => "interrupted",
        /// A signal nobody in the harness sent ended the agent.
        Killed => "killed",
    }
}

impl Outcome {
    /// Whether the session did what it was asked.
    pub fn succeeded(self) -> bool {
        self == Outcome::Completed
    }
}

/// One session's `metadata.json`.
///
/// The first group of fields is the original harness's; all are optional because published
/// runs do not always carry every one. The second group is this project's additions.
/// Fields neither group knows are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Local timestamp `YYYYMMDD-HHMMSS` used in directory names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Local start time with offset, e.g. `2026-04-06T15:37:27-0400`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// UTC start time, RFC 3339 (`2026-04-06T19:37:27Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Rules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vite_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub express_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_database: Option<String>,
    /// The agent CLI's session id (the `session.id` its telemetry carries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The original harness's duplicate of `phase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Phase>,

    // ---- this project's additions ----
    /// The model the agent was told to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `claude --version` of the agent CLI that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_cli_version: Option<String>,
    /// This harness's version (crate version plus git commit when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_version: Option<String>,
    /// Hash of the benchmark content (levels, prompts, guides) the prompt came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_version: Option<String>,
    /// The marker the agent was expected to print (`DEPLOY_COMPLETE`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_marker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_marker_seen: Option<bool>,
    /// How the session ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Wall-clock seconds from agent start to agent exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock_sec: Option<f64>,

    /// Fields not known to this version, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl SessionMetadata {
    /// The phase, from `phase` or else the original harness's `mode`.
    pub fn effective_phase(&self) -> Option<Phase> {
        self.phase.or(self.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_harness_metadata_round_trips_without_loss() {
        let text = r#"{
          "level": 12, "backend": "postgres", "timestamp": "20260410-160937",
          "startedAt": "2026-04-10T16:09:37-0400", "startedAtUtc": "2026-04-10T20:09:37Z",
          "runId": "postgres-fix-level12-20260410-160937", "appDir": "x\\y",
          "promptFile": "p.md", "phase": "fix", "variant": "sequential-upgrade",
          "rules": "guided", "testMode": "none", "runIndex": 0, "vitePort": 6173,
          "expressPort": 6001, "pgDatabase": "spacetime",
          "sessionId": "3b2d6140-6701-4242-9de9-8c8ecc2f8d71",
          "endedAt": "2026-04-10T16:13:29-0400", "endedAtUtc": "2026-04-10T20:13:29Z",
          "exitCode": 0, "mode": "fix", "somethingNew": [1, 2]
        }"#;
        let meta: SessionMetadata = serde_json::from_str(text).unwrap();
        assert_eq!(meta.level, Some(12));
        assert_eq!(meta.effective_phase(), Some(Phase::Fix));
        assert_eq!(meta.extra["somethingNew"], serde_json::json!([1, 2]));
        let again: serde_json::Value = serde_json::to_value(&meta).unwrap();
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn outcomes_are_written_with_the_harness_words_and_unknown_ones_are_refused() {
        let meta: SessionMetadata = serde_json::from_str(
            r#"{"outcome": "timeout", "variant": "one-shot", "rules": "minimal"}"#,
        )
        .unwrap();
        assert_eq!(meta.outcome, Some(Outcome::Timeout));
        assert_eq!(meta.variant, Some(Variant::OneShot));
        assert_eq!(meta.rules, Some(Rules::Minimal));
        let names: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| {
                serde_json::to_value(o)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "running",
                "completed",
                "failed",
                "timeout",
                "interrupted",
                "killed"
            ]
        );
        let err = serde_json::from_str::<SessionMetadata>(r#"{"outcome": "done"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a known session outcome"), "{err}");
    }

    #[test]
    fn mode_stands_in_for_a_missing_phase() {
        let meta: SessionMetadata = serde_json::from_str(r#"{"mode": "upgrade"}"#).unwrap();
        assert_eq!(meta.effective_phase(), Some(Phase::Upgrade));
    }
}
