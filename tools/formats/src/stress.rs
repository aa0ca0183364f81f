//! `stress/<label>.json`: one run of `bench-stress` against one app (or the ceiling).
//!
//! Written by `bench-stress` under `runs/<run>/<backend>/stress/`, read back by its own
//! `--compare` and by `bench-report` for charts. The schema is versioned: readers check
//! [`StressResult::schema_version`] with [`StressResult::check_version`] and refuse a newer
//! major version instead of misreading it. Additions within a version are optional fields.
//!
//! Two windows are reported. `totals` counts everything the client did, warm-up and drain
//! included, because the database holds every message of the run: it is what verification
//! compares with the committed count. `measured` counts only the measurement window (after
//! warm-up, before the drain), and every rate and latency figure is computed from it.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Version of the stress result schema this crate writes and reads.
pub const STRESS_SCHEMA_VERSION: u32 = 1;

/// One run's result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StressResult {
    /// [`STRESS_SCHEMA_VERSION`] at writing time.
    pub schema_version: u32,
    /// Version of the `bench-stress` tool that wrote the file.
    pub tool_version: String,
    /// Start and end of the run, RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
    /// Free label given with `--label` (e.g. `as-shipped`, `rate-limit-removed`, `optimized`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `postgres`, `mongodb`, `spacetimedb`, or `ceiling` (direct INSERTs into PostgreSQL).
    pub backend: String,
    /// The client that produced the load: `socketio`, `spacetimedb`, or `postgres-insert`.
    pub client: String,
    /// `stress`, `realistic` or `rate`.
    pub scenario: String,
    /// What was measured.
    pub target: Target,
    /// Every option of the run, as given or defaulted.
    pub config: RunConfig,
    /// The command line, verbatim (passwords in URLs redacted).
    pub command_line: Vec<String>,
    /// How the client talked to the app: the adapter (from a file or found by probing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<Value>,
    /// What probing found, in words (empty when an adapter file was given).
    #[serde(default)]
    pub probe_notes: Vec<String>,
    /// Whole run: warm-up, measurement and drain.
    pub totals: Counts,
    /// Measurement window only.
    pub measured: Counts,
    /// Length of the measurement window in seconds (what the rates divide by).
    pub measured_seconds: f64,
    /// Warm-up length in seconds, excluded from every figure but the totals.
    pub warmup_seconds: f64,
    pub throughput: Throughput,
    /// Time from send (or intended send, in the `rate` scenario) to acknowledgement.
    pub ack_latency: LatencySummary,
    /// Time from send to the listener receiving the broadcast; absent without listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout_latency: Option<LatencySummary>,
    /// Errors by kind (`timeout`, `rejected`, `disconnected`, `http_429`, ...), whole run.
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    pub verification: Verification,
    pub client_cpu: ClientCpu,
    pub host: Host,
    /// Fields a newer writer added; kept so that rewriting a file loses nothing.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl StressResult {
    /// Fails with advice when the file was written by a newer, incompatible tool.
    pub fn check_version(&self) -> Result<()> {
        if self.schema_version > STRESS_SCHEMA_VERSION {
            bail!(
                "stress result schema version {} is newer than this tool reads ({}): update the tools",
                self.schema_version,
                STRESS_SCHEMA_VERSION
            );
        }
        Ok(())
    }

    /// A short name for tables: the label, else `backend/scenario`.
    pub fn display_name(&self) -> String {
        match &self.label {
            Some(label) => label.clone(),
            None => format!("{}/{}", self.backend, self.scenario),
        }
    }
}

/// The app or database under load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Base URL of the app (HTTP) or the database URL for the ceiling, password redacted.
    pub url: String,
    /// Database URL used for verification, password redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_url: Option<String>,
    /// SpacetimeDB database name, when relevant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Name of the room the run wrote to (verification counts its messages).
    pub room: String,
    /// Id of that room as the app returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<Value>,
}

/// Options of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub duration_seconds: f64,
    pub warmup_seconds: f64,
    /// Connections that send (`stress`, `rate`) or users at human cadence (`realistic`).
    pub writers: u32,
    /// Connections that only listen to the room's broadcasts.
    pub listeners: u32,
    /// Requests one writer may have awaiting acknowledgement at once.
    pub in_flight: u32,
    /// Target messages per second over all writers (`rate` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Human cadence bounds in seconds (`realistic` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence_seconds: Option<(f64, f64)>,
    pub seed: u64,
    /// Bytes of text in each message.
    pub message_bytes: u32,
    /// A request unanswered after this long counts as a `timeout` error.
    pub request_timeout_seconds: f64,
    /// Time allowed after the window for answers still in flight.
    pub drain_seconds: f64,
}

/// Message counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Requests written to the connection.
    pub sent: u64,
    /// Requests the app acknowledged as successful.
    pub acknowledged: u64,
    /// Requests that failed (error answer, timeout, lost connection).
    pub failed: u64,
    /// Broadcasts of this run's messages seen by the first listener.
    pub delivered_to_listener: u64,
}

/// Rates over the measurement window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Acknowledged messages per second.
    pub acked_per_second: f64,
    /// Sent messages per second.
    pub sent_per_second: f64,
    /// One sample per whole second of the run, warm-up included (see `in_window`).
    pub per_second: Vec<SecondSample>,
}

/// Counts of one second of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondSample {
    /// Seconds since the run started (the sample covers `[t, t+1)`).
    pub t: u32,
    /// Whether this second lies in the measurement window.
    pub in_window: bool,
    pub sent: u64,
    pub acknowledged: u64,
    pub delivered: u64,
    pub errors: u64,
}

/// Latency distribution, microseconds (from an HDR histogram, 3 significant digits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// What the database says after the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// `postgres-sql`, `spacetimedb-sql`, `mongodb`, or `none` (no database access given).
    pub method: String,
    /// Messages of the bench room found in the database after the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<u64>,
    /// `committed == totals.acknowledged` (a committed message the client never saw
    /// acknowledged, or an acknowledged one that is missing, both fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_matches_acknowledged: Option<bool>,
    /// The listener saw every acknowledged message (`None` without listeners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_saw_all: Option<bool>,
    /// Both checks hold (a check that could not run does not count as passed).
    pub passed: bool,
    /// Explanation in words, for the summary table and the report.
    pub detail: String,
}

/// CPU the load generator itself used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCpu {
    /// User + system CPU seconds of the client's threads during the measurement window.
    pub cpu_seconds: f64,
    /// `cpu_seconds` per acknowledged message, microseconds.
    pub per_message_us: f64,
    /// Client CPU as a share of one core over the window (1.0 = one core busy).
    pub cores_busy: f64,
}

/// The machine the run was on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub cores: u32,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StressResult {
        StressResult {
            schema_version: STRESS_SCHEMA_VERSION,
            tool_version: "0.1.0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: "2026-01-01T00:00:40Z".into(),
            label: None,
            backend: "postgres".into(),
            client: "socketio".into(),
            scenario: "stress".into(),
            target: Target {
                url: "http://127.0.0.1:3000".into(),
                room: "bench".into(),
                ..Target::default()
            },
            config: RunConfig::default(),
            command_line: vec!["bench-stress".into()],
            adapter: None,
            probe_notes: vec![],
            totals: Counts::default(),
            measured: Counts::default(),
            measured_seconds: 30.0,
            warmup_seconds: 5.0,
            throughput: Throughput::default(),
            ack_latency: LatencySummary::default(),
            fanout_latency: None,
            errors: BTreeMap::new(),
            verification: Verification::default(),
            client_cpu: ClientCpu::default(),
            host: Host::default(),
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn round_trips_and_keeps_unknown_fields() {
        let mut value = serde_json::to_value(sample()).unwrap();
        value["added_later"] = serde_json::json!({"x": 1});
        let back: StressResult = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(back.extra["added_later"]["x"], 1);
        assert_eq!(serde_json::to_value(&back).unwrap(), value);
        assert_eq!(back.display_name(), "postgres/stress");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut result = sample();
        assert!(result.check_version().is_ok());
        result.schema_version = STRESS_SCHEMA_VERSION + 1;
        let err = result.check_version().unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
