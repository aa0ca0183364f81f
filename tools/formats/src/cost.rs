//! `cost-summary.json`: what one agent session cost.
//!
//! The first group of fields is the original harness's (all published files carry them).
//! Everything after is this project's and optional, so the original files read as they are.
//! `bench-telemetry` owns the meaning of the detail types below.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::experiment::{Rules, Variant};
use crate::metadata::Phase;
use crate::named::{empty_as_none, named_enum};

/// One session's `cost-summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostSummary {
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub level: u32,
    /// Absent when the session's metadata did not say (older files hold `""` for that).
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub variant: Option<Variant>,
    /// Absent when the session's metadata did not say (older files hold `""` for that).
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub rules: Option<Rules>,
    #[serde(default)]
    pub run_index: u32,
    #[serde(default)]
    pub session_id: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub ended_at: String,
    /// Fresh (uncached) input tokens.
    #[serde(default)]
    pub total_input_tokens: u64,
    #[serde(default)]
    pub total_output_tokens: u64,
    /// Input plus output tokens (cache tokens are not included, as in the original).
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_creation_tokens: u64,
    #[serde(default)]
    pub total_cost_usd: f64,
    #[serde(default)]
    pub api_calls: u64,
    /// Sum of the API calls' durations, in seconds (the original harness's meaning).
    #[serde(default)]
    pub total_duration_sec: f64,

    // ---- this project's additions ----
    /// Version of this file's additions; absent in the original harness's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    /// How complete the totals are; see [`SummaryStatus`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SummaryStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Per model: tokens, calls and cost.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelUsage>,
    /// Tool use as the agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ToolStats>,
    /// API errors the agent hit (retries, rate limits, overloads).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_errors: Vec<ApiError>,
    /// The three sources of the session's cost, side by side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Reconciliation>,
    /// Input lines that could not be parsed and were skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed_lines: Option<u64>,
    /// What was read and how the session's records were picked out of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<InputStats>,

    /// Fields not known to this version, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Token and cost totals for one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub api_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub cost_usd: f64,
    pub duration_sec: f64,
}

/// Tool decisions and results, overall and per tool name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolStats {
    pub decisions: u64,
    pub results: u64,
    pub failures: u64,
    /// Decisions other than `accept` (the tool was not allowed to run).
    #[serde(default)]
    pub rejections: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_tool: BTreeMap<String, ToolCounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCounts {
    pub decisions: u64,
    pub results: u64,
    pub failures: u64,
    /// Decisions other than `accept` (the tool was not allowed to run).
    #[serde(default)]
    pub rejections: u64,
}

/// One `api_error` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
}

/// The session's cost from each independent source, and whether they agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// Whether the sources agree; see [`Status`].
    ///
    /// API calls are compared between the events and the result source, whose count comes
    /// from the transcript (distinct assistant message ids); the CLI's `num_turns` is not a
    /// call count and is never compared.
    pub status: Status,
    /// Relative tolerance used, e.g. 0.005 for 0.5 %.
    pub tolerance: f64,
    /// Which source the summary's totals come from (`events`, `metrics`, `result`).
    pub trusted_source: String,
    /// Why that source was trusted.
    pub reason: String,
    /// Sum of `claude_code.api_request` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<SourceFigures>,
    /// Sum of `claude_code.cost.usage` / `claude_code.token.usage` metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SourceFigures>,
    /// The agent CLI's own final result object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SourceFigures>,
    /// Human-readable warnings (differences above tolerance, missing sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

named_enum! {
    /// How the three cost sources of a session compare ([`Reconciliation::status`]).
    pub enum Status ("reconciliation status") {
        /// All three sources present and within tolerance of each other.
        Ok => "ok",
        /// A source is missing, the others agree.
        Incomplete => "incomplete",
        /// A telemetry source (events or metrics) falls short of the trusted one, and only
        /// short: exports were lost (the CLI stopped before sending its last events, or the
        /// collector was down). The totals come from a complete source (`trustedSource`), so
        /// they are sound.
        TelemetryIncomplete => "telemetry-incomplete",
        /// Sources disagree in a way lost records do not explain (a source reports more than
        /// the trusted one, or the result object differs from complete events): the totals
        /// need a human look.
        Mismatch => "mismatch",
        /// No telemetry matched the session.
        NoTelemetry => "no-telemetry",
    }
}

named_enum! {
    /// How complete a cost summary's totals are ([`CostSummary::status`]).
    pub enum SummaryStatus ("summary status") {
        /// The totals come from complete api_request events and nothing disagrees.
        Ok => "ok",
        /// The totals come from another source, or a source is short or mismatches (see
        /// the reconciliation).
        Partial => "partial",
        /// No telemetry matched the session.
        NoTelemetry => "no-telemetry",
    }
}

named_enum! {
    /// How one cost source stands against the trusted one ([`SourceFigures::status`]).
    pub enum SourceStatus ("source status") {
        /// It is the trusted source.
        Trusted => "trusted",
        /// It agrees with the trusted source.
        Ok => "ok",
        /// A telemetry source below the trusted one on every figure that differs: records
        /// were lost.
        Short => "short",
        /// Any other difference.
        Mismatch => "mismatch",
    }
}

/// One source's view of the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFigures {
    pub cost_usd: f64,
    /// API calls: one per event for the events; distinct assistant message ids of the
    /// transcript for the result source (absent without a transcript); absent for metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_calls: Option<u64>,
    /// The result object's `num_turns`, for information: the CLI raises it for each tool
    /// use, so it is not a number of API calls and is not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
    /// Relative difference of `cost_usd` from the trusted source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_from_trusted: Option<f64>,
    /// How this source stands against the trusted one; see [`SourceStatus`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SourceStatus>,
    /// Where the figures came from (file, number of records or points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What `bench-telemetry` read for one session, and how it attributed records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputStats {
    /// The telemetry files, in the order they were read as one stream.
    #[serde(default)]
    pub files: Vec<String>,
    /// The file the CLI's result object came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_file: Option<String>,
    pub bytes: u64,
    pub lines: u64,
    /// Lines parsed because they might concern the session (the rest were skipped unparsed).
    pub candidate_lines: u64,
    /// Log records and metric data points attributed to the session.
    pub log_records: u64,
    pub metric_points: u64,
    /// How the attributed records were recognised.
    pub by_record_tag: u64,
    pub by_resource_tag: u64,
    pub by_time_window: u64,
    /// Records in parsed lines that belong to other sessions (left out).
    pub other_sessions: u64,
    /// Untagged records outside the session's time window (left out).
    pub untagged_outside_window: u64,
    /// Untagged records inside the window, left out because the session's own records
    /// carry tags (so untagged ones come from another source).
    #[serde(default)]
    pub untagged_in_window_unused: u64,
    /// Records seen twice (overlapping rotated files, retried exports), counted once.
    pub duplicates: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_harness_summary_reads_and_writes_back_the_same() {
        let text = r#"{
          "backend": "postgres", "level": 12, "variant": "sequential-upgrade",
          "rules": "guided", "runIndex": 0,
          "sessionId": "3b2d6140-6701-4242-9de9-8c8ecc2f8d71",
          "startedAt": "2026-04-10T20:09:37Z", "endedAt": "2026-04-10T20:13:29Z",
          "totalInputTokens": 26, "totalOutputTokens": 5419, "totalTokens": 5445,
          "cacheReadTokens": 1137446, "cacheCreationTokens": 19028,
          "totalCostUsd": 0.49395179999999994, "apiCalls": 26, "totalDurationSec": 102.364
        }"#;
        let summary: CostSummary = serde_json::from_str(text).unwrap();
        assert_eq!(summary.api_calls, 26);
        assert_eq!(summary.total_cost_usd, 0.49395179999999994);
        let again = serde_json::to_value(&summary).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn an_empty_variant_or_rules_reads_as_absent_and_the_status_has_its_words() {
        let text = r#"{"variant": "", "rules": "", "phase": "fix",
          "reconciliation": {"status": "telemetry-incomplete", "tolerance": 0.005,
            "trustedSource": "result", "reason": "r"}}"#;
        let summary: CostSummary = serde_json::from_str(text).unwrap();
        assert_eq!((summary.variant, summary.rules), (None, None));
        assert_eq!(summary.phase, Some(Phase::Fix));
        let rec = summary.reconciliation.as_ref().unwrap();
        assert_eq!(rec.status, Status::TelemetryIncomplete);
        let again = serde_json::to_value(&summary).unwrap();
        assert_eq!(again["reconciliation"]["status"], "telemetry-incomplete");
        assert!(again.get("variant").is_none());
        let bad = text.replace("\"rules\": \"\"", "\"rules\": \"lenient\"");
        assert!(serde_json::from_str::<CostSummary>(&bad).is_err());
    }
}
