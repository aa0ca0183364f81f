//! A session's cost: wait for the agent's last telemetry export, then account for the
//! session with bench-telemetry.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use bench_formats::CostSummary;

use crate::run::TelemetrySink;

/// Waits until the agent's final export has reached the session's files: its events cost
/// what the CLI says the session cost, or (the CLI printed no total, or some records never
/// came — a CLI stopping at once may not flush its last events) the files have stopped
/// growing. The agent has exited by now, so nothing arrives late for long. `tally` is the
/// one that followed the logs file during the session: only what came since is read.
pub async fn wait_for_flush(
    files: [&Path; 2],
    tally: &std::sync::Mutex<bench_telemetry::LiveTally>,
    cli_total: Option<f64>,
    max_wait: Duration,
) {
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut last_lens = None;
    let mut stable_since = tokio::time::Instant::now();
    loop {
        let snap = match tally.lock() {
            Ok(mut t) => {
                let _ = t.poll_file(files[0]);
                Some(t.snapshot())
            }
            Err(_) => None,
        };
        if let Some(total) = cli_total
            && let Some(snap) = snap
            && snap.api_calls > 0
            && (snap.cost_usd - total).abs() <= total.abs() * 1e-9 + 1e-12
        {
            // The metrics export follows its own interval; give it one more beat.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
        let lens = files.map(|f| std::fs::metadata(f).map(|m| m.len()).ok());
        if Some(lens) != last_lens {
            last_lens = Some(lens);
            stable_since = tokio::time::Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(2) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs bench-telemetry on the session's own telemetry files, or, when the receiver does
/// not split by session (an OpenTelemetry Collector in Docker), on its combined files:
/// bench-telemetry picks the session's records out by id either way.
pub fn summarize(
    session_dir: &Path,
    sink: &TelemetrySink,
    logs_file: &Path,
    metrics_file: &Path,
) -> Result<CostSummary> {
    let mut inputs = bench_telemetry::Inputs::default();
    if logs_file.is_file() || metrics_file.is_file() {
        if logs_file.is_file() {
            inputs.logs.push(logs_file.to_path_buf());
        }
        if metrics_file.is_file() {
            inputs.metrics.push(metrics_file.to_path_buf());
        }
    } else {
        for (name, list) in [
            ("logs.jsonl", &mut inputs.logs),
            ("metrics.jsonl", &mut inputs.metrics),
        ] {
            let combined = sink.dir.join(name);
            if combined.is_file() {
                list.push(combined);
            }
        }
    }
    let empty = inputs.logs.is_empty() && inputs.metrics.is_empty();
    if empty {
        // No export arrived at all: cost the session from an empty telemetry file, so the
        // summary still says so (and carries the CLI's own total, if it printed one).
        bench_formats::io::write_atomic(&session_dir.join(bench_telemetry::RAW_FILE), b"")?;
    }
    let options = bench_telemetry::Options {
        extract_raw: !empty,
        ..bench_telemetry::Options::default()
    };
    let cost = bench_telemetry::summarize(session_dir, &inputs, &options)?;
    Ok(cost.summary)
}
