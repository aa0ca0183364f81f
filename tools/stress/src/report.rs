//! Writing a run up: the result file, the terminal summary, and `--compare`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bench_formats::stress::{
    ClientCpu, Host, LatencySummary, RunConfig, STRESS_SCHEMA_VERSION, StressResult, Target,
    Throughput, Verification,
};
use serde_json::Value;

use crate::metrics::summarize;
use crate::scenario::RunOutput;

/// What the result needs besides the measurements.
pub struct RunInfo {
    pub backend: String,
    pub client: String,
    pub label: Option<String>,
    pub scenario: String,
    pub target: Target,
    pub config: RunConfig,
    pub command_line: Vec<String>,
    pub adapter: Option<Value>,
    pub probe_notes: Vec<String>,
    pub started_at: String,
}

/// Turns raw figures into the result file's content.
pub fn build(info: RunInfo, out: &RunOutput) -> StressResult {
    let window = out.timeline.window_seconds();
    let stats = &out.stats;
    let acked_window = stats.measured.acknowledged;
    let committed = out.committed.as_ref().map(|c| c.count);
    let matches = committed.map(|c| c == stats.totals.acknowledged);
    let saw_all = out.listener_missed.map(|missed| missed == 0);
    let passed = matches == Some(true) && saw_all != Some(false) && stats.totals.acknowledged > 0;
    let mut detail = Vec::new();
    if stats.totals.acknowledged == 0 {
        detail.push("nothing was acknowledged".to_string());
    }
    match (&out.committed, matches) {
        (Some(c), Some(true)) => detail.push(format!(
            "committed {} == acknowledged {} ({})",
            c.count, stats.totals.acknowledged, c.detail
        )),
        (Some(c), _) => detail.push(format!(
            "committed {} != acknowledged {} ({})",
            c.count, stats.totals.acknowledged, c.detail
        )),
        (None, _) if info.backend == "mongodb" => {
            detail.push("not verified: counting MongoDB documents is not supported yet".to_string())
        }
        (None, _) => detail.push("not verified: no database access given (--db-url)".to_string()),
    }
    match saw_all {
        Some(true) => detail.push(format!(
            "the listener saw every one of the {} acknowledged messages ({} delivered in all)",
            stats.totals.acknowledged, stats.totals.delivered_to_listener
        )),
        Some(false) => detail.push(format!(
            "the listener missed {} of {} acknowledged messages",
            out.listener_missed.unwrap_or(0),
            stats.totals.acknowledged
        )),
        None => detail.push("no listener".to_string()),
    }
    let cpu_seconds = out.cpu_ns as f64 / 1e9;
    StressResult {
        schema_version: STRESS_SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: info.started_at,
        finished_at: now_rfc3339(),
        label: info.label,
        backend: info.backend,
        client: info.client,
        scenario: info.scenario,
        target: info.target,
        config: info.config,
        command_line: info.command_line,
        adapter: info.adapter,
        probe_notes: info.probe_notes,
        totals: stats.totals,
        measured: stats.measured,
        measured_seconds: window,
        warmup_seconds: out.timeline.warmup.as_secs_f64(),
        throughput: Throughput {
            acked_per_second: round1(acked_window as f64 / window),
            sent_per_second: round1(stats.measured.sent as f64 / window),
            per_second: out.series.samples(&out.timeline),
        },
        ack_latency: summarize(&stats.ack_latency),
        fanout_latency: out.had_listener.then(|| summarize(&stats.fanout_latency)),
        errors: stats.errors.clone(),
        verification: Verification {
            method: out
                .committed
                .as_ref()
                .map_or("none".to_string(), |c| c.method.clone()),
            committed,
            committed_matches_acknowledged: matches,
            listener_saw_all: saw_all,
            passed,
            detail: detail.join("; "),
        },
        client_cpu: ClientCpu {
            cpu_seconds: round3(cpu_seconds),
            per_message_us: if acked_window > 0 {
                round1(cpu_seconds * 1e6 / acked_window as f64)
            } else {
                0.0
            },
            cores_busy: round3(cpu_seconds / window),
        },
        host: Host {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            os: std::env::consts::OS.to_string(),
            hostname: std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string()),
        },
        extra: Default::default(),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Saves the result under `dir` with a name that never replaces an existing file.
pub fn save(dir: &Path, result: &StressResult) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let stem = match &result.label {
        Some(l) => format!("{}-{}", sanitize(l), result.scenario),
        None => result.scenario.clone(),
    };
    let path = claim_new_file(dir, &format!("{stem}-{stamp}"))?;
    bench_formats::write_json(&path, result)?;
    Ok(path)
}

/// Creates `<name>.json` in `dir`, or `<name>-2.json`, `-3`, ... when taken, with
/// create_new: two runs finishing in the same second, or a file someone put there, are
/// never replaced. The caller then writes over its own empty file.
fn claim_new_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let mut n = 1;
    loop {
        let path = match n {
            1 => dir.join(format!("{name}.json")),
            _ => dir.join(format!("{name}-{n}.json")),
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot create the result file {}", path.display()));
            }
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A latency in the unit that reads best.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

fn fmt_latency(l: &LatencySummary) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
        fmt_us(l.p50_us),
        fmt_us(l.p90_us),
        fmt_us(l.p99_us),
        fmt_us(l.p999_us),
        fmt_us(l.max_us),
        l.count
    )
}

/// The terminal summary of one run.
pub fn summary(r: &StressResult) -> String {
    let c = &r.config;
    let mut out = String::new();
    let shape = match r.scenario.as_str() {
        "rate" => format!(
            "{} writers at {} msg/s total",
            c.writers,
            c.rate.unwrap_or(0.0)
        ),
        "realistic" => {
            let (lo, hi) = c.cadence_seconds.unwrap_or((0.0, 0.0));
            format!("{} users every {lo}-{hi} s", c.writers)
        }
        _ => format!("{} writers x {} in flight", c.writers, c.in_flight),
    };
    out.push_str(&format!(
        "bench-stress  {} / {}{}  ({shape}, {} listener(s), {:.0} s measured after {:.0} s warm-up)\n",
        r.backend,
        r.scenario,
        r.label.as_ref().map(|l| format!(" [{l}]")).unwrap_or_default(),
        c.listeners,
        r.measured_seconds,
        r.warmup_seconds
    ));
    let row = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<14}{v}\n"));
    row(&mut out, "target", r.target.url.clone());
    row(
        &mut out,
        "throughput",
        format!(
            "{:.1} msg/s acknowledged ({:.1} sent/s)",
            r.throughput.acked_per_second, r.throughput.sent_per_second
        ),
    );
    row(&mut out, "ack latency", fmt_latency(&r.ack_latency));
    if let Some(f) = &r.fanout_latency {
        row(&mut out, "fan-out", fmt_latency(f));
    }
    let t = &r.totals;
    row(
        &mut out,
        "counts",
        format!(
            "sent {}  acknowledged {}  failed {}  delivered to listener {}  committed {}",
            t.sent,
            t.acknowledged,
            t.failed,
            if r.fanout_latency.is_some() {
                t.delivered_to_listener.to_string()
            } else {
                "-".to_string()
            },
            r.verification
                .committed
                .map_or("-".to_string(), |n| n.to_string())
        ),
    );
    if !r.errors.is_empty() {
        let errs: Vec<String> = r.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        row(&mut out, "errors", errs.join(", "));
    }
    if let Some(limit) = app_limit(r) {
        row(&mut out, "rate limit", limit);
    }
    row(
        &mut out,
        "verification",
        format!(
            "{}: {}",
            match (r.verification.passed, r.verification.method.as_str()) {
                (true, _) => "PASSED",
                (false, "none") => "NOT VERIFIED",
                (false, _) => "FAILED",
            },
            r.verification.detail
        ),
    );
    row(
        &mut out,
        "client CPU",
        format!(
            "{:.1} µs per message ({:.2} cores busy)",
            r.client_cpu.per_message_us, r.client_cpu.cores_busy
        ),
    );
    out
}

/// When the app refused messages as rate-limited (or dropped them where its source shows a
/// per-user limit): the limit it enforces, which bounds the run, not the client.
pub fn app_limit(r: &StressResult) -> Option<String> {
    let refused = r.errors.get("rate_limited").copied().unwrap_or(0);
    let source = r
        .probe_notes
        .iter()
        .find(|n| n.starts_with("source: rate limit"));
    let timeouts = r.errors.get("timeout").copied().unwrap_or(0);
    if refused == 0 && !(timeouts > 0 && source.is_some()) {
        return None;
    }
    let users = r.config.writers.max(1);
    let per_user = r.throughput.acked_per_second / f64::from(users);
    let how = if refused > 0 {
        format!("it refused {refused} messages as rate-limited")
    } else {
        format!("{timeouts} messages were dropped without an answer")
    };
    // The source states the limit as messages/s per user: suggest a run within it.
    let stated: Option<f64> = source.and_then(|s| {
        let rest = s.split("about ").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    });
    let within = stated.map(|per_user| {
        format!(
            "; to measure the app within its limit: --scenario rate --rate {:.0}",
            (per_user * f64::from(users) * 0.9).floor().max(1.0)
        )
    });
    Some(format!(
        "the app's rate limit bounds this run, not the client: {how}; it accepted about \
         {per_user:.1} msg/s per user ({users} users){}{}",
        source.map(|s| format!(" [{s}]")).unwrap_or_default(),
        within.unwrap_or_default()
    ))
}

/// An app's throughput as a share of the ceiling (direct INSERTs) measured closest in time
/// to it among `all` (the same session), or `-` when no ceiling was measured.
fn share_of_ceiling(r: &StressResult, all: &[StressResult]) -> String {
    if r.backend == "ceiling" {
        return "ceiling".into();
    }
    let at = |x: &StressResult| chrono::DateTime::parse_from_rfc3339(&x.started_at).ok();
    let Some(mine) = at(r) else {
        return "-".into();
    };
    let ceiling = all
        .iter()
        .filter(|c| c.backend == "ceiling" && c.throughput.acked_per_second > 0.0)
        .filter_map(|c| at(c).map(|t| ((t - mine).num_seconds().abs(), c)))
        .min_by_key(|(gap, _)| *gap);
    match ceiling {
        Some((_, c)) => format!(
            "{:.1} %",
            100.0 * r.throughput.acked_per_second / c.throughput.acked_per_second
        ),
        None => "-".into(),
    }
}

/// `--compare`: one line per result file, with throughput relative to the first and as a
/// share of the ceiling measured in the same session (when one of the files is a ceiling).
/// Files that cannot be read are listed at the end (and skipped); it fails only when none
/// can be read.
pub fn compare(files: &[PathBuf]) -> Result<String> {
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for f in files {
        let read = bench_formats::read_json::<StressResult>(f).and_then(|r| {
            r.check_version()
                .with_context(|| f.display().to_string())
                .map(|()| r)
        });
        match read {
            Ok(r) => results.push(r),
            Err(err) => skipped.push(format!("skipped {}: {err:#}", f.display())),
        }
    }
    if results.is_empty() {
        anyhow::bail!(
            "no readable stress result among the files:\n{}",
            skipped.join("\n")
        );
    }
    let base = results
        .first()
        .map_or(0.0, |r| r.throughput.acked_per_second);
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header([
            "run",
            "backend",
            "scenario",
            "msg/s",
            "vs first",
            "of ceiling",
            "p50",
            "p99",
            "p99.9",
            "fan-out p99",
            "errors",
            "verified",
            "CPU/msg",
        ]);
    for r in &results {
        let errors: u64 = r.errors.values().sum();
        let msgs = r.throughput.acked_per_second;
        table.add_row([
            r.display_name(),
            r.backend.clone(),
            r.scenario.clone(),
            format!("{msgs:.1}"),
            if base > 0.0 {
                format!("{:.2}x", msgs / base)
            } else {
                "-".into()
            },
            share_of_ceiling(r, &results),
            fmt_us(r.ack_latency.p50_us),
            fmt_us(r.ack_latency.p99_us),
            fmt_us(r.ack_latency.p999_us),
            r.fanout_latency
                .as_ref()
                .map_or("-".into(), |f| fmt_us(f.p99_us)),
            errors.to_string(),
            match (r.verification.passed, r.verification.method.as_str()) {
                (true, _) => "yes".into(),
                (false, "none") => "-".into(),
                (false, _) => "NO".into(),
            },
            format!("{:.1} µs", r.client_cpu.per_message_us),
        ]);
    }
    for i in 3..13 {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for line in skipped {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_latencies_readably() {
        assert_eq!(fmt_us(850), "850 µs");
        assert_eq!(fmt_us(4_150), "4.2 ms");
        assert_eq!(fmt_us(1_200_000), "1.20 s");
        assert_eq!(sanitize("as shipped/1"), "as_shipped_1");
    }

    #[test]
    fn result_names_never_replace_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stress-x.json"), "mine").unwrap();
        let second = claim_new_file(dir.path(), "stress-x").unwrap();
        let third = claim_new_file(dir.path(), "stress-x").unwrap();
        assert_eq!(second, dir.path().join("stress-x-2.json"));
        assert_eq!(third, dir.path().join("stress-x-3.json"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stress-x.json")).unwrap(),
            "mine"
        );
        let missing = dir.path().join("no-such-folder");
        let err = claim_new_file(&missing, "stress-x").unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot create the result file"),
            "{err:#}"
        );
    }
}
