//! The names of the files the tools share, so that no tool spells one itself.
//!
//! A session's folder (`telemetry/<run-id>/`) holds [`METADATA_FILE`], [`COST_SUMMARY_FILE`],
//! [`COST_REPORT_FILE`], [`TRANSCRIPT_FILE`] and [`PROMPT_FILE`]; an app's folder
//! (`results/chat-app-<ts>/`) holds [`STATE_FILE`] and the documents of its grading
//! ([`BUG_REPORT_FILE`], [`ITERATION_LOG_FILE`], [`GRADING_RESULTS_FILE`]).

/// A session's `metadata.json` ([`crate::SessionMetadata`]).
pub const METADATA_FILE: &str = "metadata.json";
/// A session's `cost-summary.json` ([`crate::CostSummary`]).
pub const COST_SUMMARY_FILE: &str = "cost-summary.json";
/// A session's cost, for people.
pub const COST_REPORT_FILE: &str = "COST_REPORT.md";
/// The agent's stream-json transcript of a session.
pub const TRANSCRIPT_FILE: &str = "transcript.jsonl";
/// The prompt a session was given (in its session folder and its inputs folder).
pub const PROMPT_FILE: &str = "prompt.md";
/// An app's state ([`crate::AppState`]), relative to the app folder.
pub const STATE_FILE: &str = ".bench/state.json";
/// The bugs grading found, which a fix session repairs; in the app folder.
pub const BUG_REPORT_FILE: &str = "BUG_REPORT.md";
/// The grader's log of iterations; in the app folder.
pub const ITERATION_LOG_FILE: &str = "ITERATION_LOG.md";
/// The grader's scores per feature; in the app folder.
pub const GRADING_RESULTS_FILE: &str = "GRADING_RESULTS.md";
