//! `cargo xtask bench-telemetry-perf`: extraction speed and memory on a large collector file.
//!
//! A collector file of the requested size is generated once (deterministically) with
//! thousands of sessions interleaved line by line, in the shape Claude Code exports:
//! log batches `[api_request, tool_decision, tool_result]` and metric exports (delta for
//! half the sessions, cumulative for the other half). The generator records the true
//! totals of one session; the benchmark then extracts that session with [`summarize`]
//! (the real code path), times it, reads the process's peak resident memory, and checks
//! the totals against the truth.
//!
//! Generation runs in a child process, so the peak memory reported is the extraction's.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use bench_formats::{SessionMetadata, read_json, write_json};
use serde::{Deserialize, Serialize};

use crate::cli::PerfArgs;
use crate::{Inputs, Options, summarize};

/// The true totals of the session the benchmark extracts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Truth {
    pub session_id: String,
    pub run_id: String,
    pub calls: u64,
    /// Costs added in event order (as the agent CLI adds them).
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub log_records: u64,
    pub metric_points: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub cumulative: bool,
    pub file_bytes: u64,
    pub file_lines: u64,
    pub sessions: u32,
}

/// A small deterministic generator (xorshift64*), so the file is the same every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

#[derive(Default)]
struct Session {
    sid: String,
    rid: String,
    prompt: String,
    seq: u64,
    cumulative: bool,
    start_ns: u64,
    last_export_ns: u64,
    // Running totals.
    calls: u64,
    cost: f64,
    tokens: [u64; 4],
    // Delta since the last metric export.
    pending_cost: f64,
    pending_tokens: [u64; 4],
    dirty: bool,
    first_ns: u64,
    last_ns: u64,
    log_records: u64,
    metric_points: u64,
}

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next();
    let b = rng.next();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

const USER: &str = "5f0c3c2e9b7a41d08a3e6b1f2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f";
const TOKEN_TYPES: [&str; 4] = ["input", "output", "cacheRead", "cacheCreation"];

fn kv_str(out: &mut String, key: &str, value: &str) {
    let _ = write!(
        out,
        r#"{{"key":"{key}","value":{{"stringValue":"{value}"}}}}"#
    );
}

fn kv_int(out: &mut String, key: &str, value: u64) {
    let _ = write!(out, r#"{{"key":"{key}","value":{{"intValue":"{value}"}}}}"#);
}

fn resource(out: &mut String, s: &Session) {
    out.push_str(r#"{"resource":{"attributes":["#);
    kv_str(out, "run.id", &s.rid);
    out.push(',');
    kv_str(out, "session.id", &s.sid);
    out.push(',');
    kv_str(out, "host.arch", "amd64");
    out.push(',');
    kv_str(out, "os.type", "linux");
    out.push(',');
    kv_str(out, "service.name", "claude-code");
    out.push(',');
    kv_str(out, "service.version", "2.1.197");
    out.push_str(r#"],"droppedAttributesCount":0},"#);
}

fn common_attrs(out: &mut String, s: &Session, name: &str, t: u64, seq: u64) {
    kv_str(out, "run.id", &s.rid);
    out.push(',');
    kv_str(out, "session.id", &s.sid);
    out.push(',');
    kv_str(out, "user.id", USER);
    out.push(',');
    kv_str(out, "terminal.type", "xterm");
    out.push(',');
    kv_str(out, "event.name", name);
    out.push(',');
    let ts =
        chrono::DateTime::from_timestamp((t / 1_000_000_000) as i64, (t % 1_000_000_000) as u32)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
    kv_str(out, "event.timestamp", &ts);
    out.push(',');
    kv_int(out, "event.sequence", seq);
    out.push(',');
    kv_str(out, "prompt.id", &s.prompt);
}

fn record_open(out: &mut String, name: &str, t: u64) {
    let _ = write!(
        out,
        r#"{{"timeUnixNano":"{t}","observedTimeUnixNano":"{t}","body":{{"stringValue":"claude_code.{name}"}},"attributes":["#
    );
}

const TOOLS: [&str; 5] = ["Write", "Edit", "Read", "Bash", "Grep"];

/// One log batch: an API call, the tool it chose, the tool's result.
fn logs_line(out: &mut String, s: &mut Session, rng: &mut Rng, t: u64) {
    let tokens = [
        rng.range(1, 3),
        rng.range(50, 2000),
        rng.range(20_000, 100_000),
        rng.range(0, 3000),
    ];
    let cost = tokens[0] as f64 * 3e-6
        + tokens[1] as f64 * 15e-6
        + tokens[2] as f64 * 0.3e-6
        + tokens[3] as f64 * 3.75e-6;
    let duration = rng.range(800, 20_000);
    let tool = TOOLS[rng.below(TOOLS.len() as u64) as usize];
    let tool_id = format!("toolu_{:016x}", rng.next());

    out.push_str(r#"{"resourceLogs":["#);
    resource(out, s);
    out.push_str(r#""scopeLogs":[{"scope":{"name":"com.anthropic.claude_code.events","version":"2.1.197"},"logRecords":["#);

    record_open(out, "api_request", t);
    common_attrs(out, s, "api_request", t, s.seq);
    out.push(',');
    kv_str(out, "model", "claude-sonnet-4-6");
    for (key, v) in [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
    ]
    .iter()
    .zip(tokens)
    {
        out.push(',');
        kv_int(out, key, v);
    }
    let _ = write!(
        out,
        r#",{{"key":"cost_usd","value":{{"doubleValue":{cost}}}}}"#
    );
    out.push(',');
    kv_int(out, "cost_usd_micros", (cost * 1e6).round() as u64);
    out.push(',');
    kv_int(out, "duration_ms", duration);
    out.push(',');
    kv_str(out, "speed", "normal");
    out.push(',');
    kv_str(out, "query_source", "sdk");
    out.push_str(r#"],"droppedAttributesCount":0},"#);

    let t2 = t + 1000;
    record_open(out, "tool_decision", t2);
    common_attrs(out, s, "tool_decision", t2, s.seq + 1);
    out.push(',');
    kv_str(out, "decision", "accept");
    out.push(',');
    kv_str(out, "source", "config");
    out.push(',');
    kv_str(out, "tool_name", tool);
    out.push(',');
    kv_str(out, "tool_use_id", &tool_id);
    out.push_str(r#"],"droppedAttributesCount":0},"#);

    let t3 = t + 2000;
    record_open(out, "tool_result", t3);
    common_attrs(out, s, "tool_result", t3, s.seq + 2);
    out.push(',');
    kv_str(out, "tool_name", tool);
    out.push(',');
    kv_str(out, "tool_use_id", &tool_id);
    out.push(',');
    kv_str(
        out,
        "success",
        if rng.below(10) == 0 { "false" } else { "true" },
    );
    out.push(',');
    kv_str(out, "duration_ms", &rng.range(2, 900).to_string());
    out.push_str(r#"],"droppedAttributesCount":0}]}]}]}"#);
    out.push('\n');

    s.seq += 3;
    s.calls += 1;
    s.cost += cost;
    s.pending_cost += cost;
    for (i, t) in tokens.into_iter().enumerate() {
        s.tokens[i] += t;
        s.pending_tokens[i] += t;
    }
    s.dirty = true;
    if s.first_ns == 0 {
        s.first_ns = t;
    }
    s.last_ns = t3;
    s.log_records += 3;
}

fn point(out: &mut String, s: &Session, start: u64, t: u64, extra: &[(&str, &str)], value: &str) {
    out.push_str(r#"{"attributes":["#);
    kv_str(out, "run.id", &s.rid);
    out.push(',');
    kv_str(out, "session.id", &s.sid);
    out.push(',');
    kv_str(out, "user.id", USER);
    out.push(',');
    kv_str(out, "model", "claude-sonnet-4-6");
    for (k, v) in extra {
        out.push(',');
        kv_str(out, k, v);
    }
    let _ = write!(
        out,
        r#"],"startTimeUnixNano":"{start}","timeUnixNano":"{t}","asDouble":{value}}}"#
    );
}

/// One metric export: the session's cost and token counters.
fn metrics_line(out: &mut String, s: &mut Session, t: u64) {
    let (temporality, start) = if s.cumulative {
        (2, s.start_ns)
    } else {
        (1, s.last_export_ns)
    };
    let (cost, tokens) = if s.cumulative {
        (s.cost, s.tokens)
    } else {
        (s.pending_cost, s.pending_tokens)
    };
    out.push_str(r#"{"resourceMetrics":["#);
    resource(out, s);
    out.push_str(r#""scopeMetrics":[{"scope":{"name":"com.anthropic.claude_code","version":"2.1.197"},"metrics":["#);
    let _ = write!(
        out,
        r#"{{"name":"claude_code.cost.usage","description":"Cost of the Claude Code session","unit":"USD","sum":{{"aggregationTemporality":{temporality},"isMonotonic":true,"dataPoints":["#
    );
    point(
        out,
        s,
        start,
        t,
        &[("query_source", "main")],
        &cost.to_string(),
    );
    let _ = write!(
        out,
        r#"]}}}},{{"name":"claude_code.token.usage","description":"Number of tokens used","unit":"tokens","sum":{{"aggregationTemporality":{temporality},"isMonotonic":true,"dataPoints":["#
    );
    for (i, ty) in TOKEN_TYPES.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        point(out, s, start, t, &[("type", ty)], &tokens[i].to_string());
    }
    out.push_str("]}}]}]}]}\n");
    s.pending_cost = 0.0;
    s.pending_tokens = [0; 4];
    s.last_export_ns = t;
    s.dirty = false;
    s.metric_points += 5;
    s.last_ns = s.last_ns.max(t);
}

/// Writes the collector file and returns the truth of the sessions the benchmark extracts:
/// one whose metrics are delta sums, one whose metrics are cumulative.
pub fn generate(path: &Path, size_bytes: u64, sessions: u32) -> Result<Vec<Truth>> {
    ensure!(sessions >= 2, "--sessions must be at least 2");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let base_ns: u64 = 1_795_000_000_000_000_000;
    let mut all: Vec<Session> = (0..sessions)
        .map(|i| Session {
            sid: uuid(&mut rng),
            rid: format!("perf-{i:05}-{:08x}", rng.next() as u32),
            prompt: uuid(&mut rng),
            cumulative: i % 2 == 1,
            start_ns: base_ns,
            last_export_ns: base_ns,
            ..Session::default()
        })
        .collect();
    let targets = [
        ((sessions / 2) & !1) as usize,
        ((sessions / 2) | 1) as usize,
    ];
    let tmp = path.with_extension("jsonl.partial");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = BufWriter::with_capacity(4 << 20, file);
    let mut line = String::with_capacity(16 << 10);
    let mut written = 0u64;
    let mut lines = 0u64;
    let mut t = base_ns;
    let emit = |w: &mut BufWriter<File>,
                line: &mut String,
                written: &mut u64,
                lines: &mut u64|
     -> Result<()> {
        w.write_all(line.as_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        *written += line.len() as u64;
        *lines += 1;
        line.clear();
        Ok(())
    };
    while written < size_bytes {
        t += 1_000_000 + rng.below(1000);
        let s = &mut all[rng.below(sessions as u64) as usize];
        if s.dirty && rng.below(4) == 0 {
            metrics_line(&mut line, s, t);
        } else {
            logs_line(&mut line, s, &mut rng, t);
        }
        emit(&mut w, &mut line, &mut written, &mut lines)?;
    }
    // Final metric export of every session, as the CLI does at exit.
    for s in all.iter_mut().filter(|s| s.dirty) {
        t += 1_000_000;
        metrics_line(&mut line, s, t);
        emit(&mut w, &mut line, &mut written, &mut lines)?;
    }
    w.flush()
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(w);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(targets
        .iter()
        .map(|&t| {
            let s = &all[t];
            Truth {
                session_id: s.sid.clone(),
                run_id: s.rid.clone(),
                calls: s.calls,
                cost_usd: s.cost,
                input_tokens: s.tokens[0],
                output_tokens: s.tokens[1],
                cache_read_tokens: s.tokens[2],
                cache_creation_tokens: s.tokens[3],
                log_records: s.log_records,
                metric_points: s.metric_points,
                first_ns: s.first_ns,
                last_ns: s.last_ns,
                cumulative: s.cumulative,
                file_bytes: written,
                file_lines: lines,
                sessions,
            }
        })
        .collect())
}

/// Asks the kernel to drop `path`'s pages from the page cache (only this file's).
#[cfg(target_os = "linux")]
fn evict_from_page_cache(path: &Path) -> Result<()> {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
        .with_context(|| format!("posix_fadvise on {} failed", path.display()))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn evict_from_page_cache(_path: &Path) -> Result<()> {
    bail!("--cold is only supported on Linux")
}

/// Peak resident memory of this process so far, in KiB (`VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn default_dir() -> Result<PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(t).join("bench-telemetry-perf"));
    }
    Ok(bench_formats::paths::repo_root()?
        .join("target")
        .join("bench-telemetry-perf"))
}

fn utc(ns: u64) -> String {
    chrono::DateTime::from_timestamp((ns / 1_000_000_000) as i64, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Runs the benchmark (see the module documentation).
pub fn run(args: PerfArgs) -> Result<()> {
    ensure!(args.size_mb >= 1, "--size-mb must be at least 1");
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => default_dir()?,
    };
    let stem = format!("collector-{}mb-{}s", args.size_mb, args.sessions);
    let data = dir.join(format!("{stem}.jsonl"));
    let truth_path = dir.join(format!("{stem}.truth.json"));
    if args.generate_only {
        let started = Instant::now();
        let truths = generate(&data, args.size_mb << 20, args.sessions)?;
        write_json(&truth_path, &truths)?;
        println!(
            "generated {} ({} MiB, {} lines) in {:.1} s",
            data.display(),
            truths[0].file_bytes >> 20,
            truths[0].file_lines,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let have = data.is_file() && read_json::<Vec<Truth>>(&truth_path).is_ok();
    if !have {
        println!(
            "generating a {} MiB collector file with {} sessions (once; reused afterwards)…",
            args.size_mb, args.sessions
        );
        let exe =
            std::env::current_exe().context("cannot find this program to run the generator")?;
        let status = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .arg("--generate-only")
            .status()
            .context("cannot start the generator process")?;
        if !status.success() {
            bail!("the generator failed ({status})");
        }
    }
    let truths: Vec<Truth> = read_json(&truth_path)?;
    let size = std::fs::metadata(&data)
        .with_context(|| format!("cannot stat {}", data.display()))?
        .len();
    let mib = size as f64 / (1 << 20) as f64;
    println!(
        "input: {} ({mib:.0} MiB, {} lines, {} interleaved sessions; {})",
        data.display(),
        truths.first().map_or(0, |t| t.file_lines),
        args.sessions,
        if args.cold {
            "dropped from the page cache before each run: read from disk"
        } else {
            "read from the page cache"
        }
    );
    let mut problems = Vec::new();
    let mut all_rates = Vec::new();
    for truth in &truths {
        let (rates, found) =
            extract_and_check(&dir, &data, truth, args.runs.max(1), mib, args.cold)?;
        all_rates.extend(rates);
        problems.extend(found);
    }
    all_rates.sort_by(f64::total_cmp);
    let median = all_rates[all_rates.len() / 2];
    let peak = peak_rss_kib();
    println!(
        "throughput: median {median:.0} MiB/s over {} runs (target: at least 500 MiB/s)",
        all_rates.len()
    );
    match peak {
        Some(kib) => println!(
            "peak RSS (VmHWM) of this process: {:.1} MiB (target: at most 64 MiB)",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
    if !problems.is_empty() {
        bail!(
            "extracted totals differ from the truth: {}",
            problems.join("; ")
        );
    }
    println!("every extracted session matches the generator's truth exactly");
    Ok(())
}

/// Extracts one session `runs` times; returns the rates (MiB/s) and any difference from
/// the truth.
fn extract_and_check(
    dir: &Path,
    data: &Path,
    truth: &Truth,
    runs: u32,
    mib: f64,
    cold: bool,
) -> Result<(Vec<f64>, Vec<String>)> {
    // A session folder for the session, with the CLI's own figures as its result object.
    let session_dir = dir.join(format!("session-{}", truth.run_id));
    std::fs::create_dir_all(&session_dir)
        .with_context(|| format!("cannot create {}", session_dir.display()))?;
    let meta = SessionMetadata {
        backend: Some("perf".into()),
        level: Some(1),
        run_id: Some(truth.run_id.clone()),
        session_id: Some(truth.session_id.clone()),
        started_at_utc: Some(utc(truth.first_ns)),
        ended_at_utc: Some(utc(truth.last_ns + 1_000_000_000)),
        ..SessionMetadata::default()
    };
    write_json(&session_dir.join(crate::METADATA_FILE), &meta)?;
    let result = serde_json::json!({
        "type": "result",
        "session_id": truth.session_id,
        "total_cost_usd": truth.cost_usd,
        "num_turns": truth.calls,
        "modelUsage": {"claude-sonnet-4-6": {
            "inputTokens": truth.input_tokens, "outputTokens": truth.output_tokens,
            "cacheReadInputTokens": truth.cache_read_tokens,
            "cacheCreationInputTokens": truth.cache_creation_tokens,
            "costUSD": truth.cost_usd}}
    });
    write_json(&session_dir.join(crate::RESULT_FILE), &result)?;
    let inputs = Inputs {
        logs: vec![data.to_path_buf()],
        ..Inputs::default()
    };
    println!(
        "session {} ({} calls, {} metrics):",
        truth.session_id,
        truth.calls,
        if truth.cumulative {
            "cumulative"
        } else {
            "delta"
        }
    );
    let mut rates = Vec::new();
    let mut last = None;
    for run in 1..=runs {
        if cold {
            evict_from_page_cache(data)?;
        }
        let started = Instant::now();
        let cost = summarize(&session_dir, &inputs, &Options::default())?;
        let secs = started.elapsed().as_secs_f64();
        let rate = mib / secs;
        println!("  run {run}: {secs:.3} s, {rate:.0} MiB/s");
        rates.push(rate);
        last = Some(cost);
    }
    let Some(cost) = last else {
        bail!("no extraction was run");
    };
    let s = &cost.summary;
    let i = s.inputs.clone().unwrap_or_default();
    println!(
        "  parsed {} of {} lines; took {} log records and {} metric points",
        i.candidate_lines, i.lines, i.log_records, i.metric_points
    );
    let mut problems = Vec::new();
    let who = &truth.session_id;
    if s.api_calls != truth.calls {
        problems.push(format!(
            "{who}: api calls {} != truth {}",
            s.api_calls, truth.calls
        ));
    }
    if s.total_cost_usd.to_bits() != truth.cost_usd.to_bits() {
        problems.push(format!(
            "{who}: cost {} != truth {}",
            s.total_cost_usd, truth.cost_usd
        ));
    }
    let tokens = (
        s.total_input_tokens,
        s.total_output_tokens,
        s.cache_read_tokens,
        s.cache_creation_tokens,
    );
    let truth_tokens = (
        truth.input_tokens,
        truth.output_tokens,
        truth.cache_read_tokens,
        truth.cache_creation_tokens,
    );
    if tokens != truth_tokens {
        problems.push(format!(
            "{who}: tokens {tokens:?} != truth {truth_tokens:?}"
        ));
    }
    if i.log_records != truth.log_records || i.metric_points != truth.metric_points {
        problems.push(format!(
            "{who}: records {}/{} != truth {}/{} (leak or loss)",
            i.log_records, i.metric_points, truth.log_records, truth.metric_points
        ));
    }
    let recon = s
        .reconciliation
        .as_ref()
        .map_or("missing", |r| r.status.as_str());
    if recon != "ok" {
        problems.push(format!("{who}: reconciliation {recon}, expected ok"));
    }
    if problems.is_empty() {
        println!(
            "  totals equal the truth: {} calls, ${} (exact), tokens exact, reconciliation ok",
            truth.calls, truth.cost_usd
        );
    }
    Ok((rates, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_formats::SourceStatus;

    #[test]
    fn a_small_generated_file_gives_back_its_truth() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("c.jsonl");
        let truths = generate(&data, 400_000, 20).unwrap();
        assert_eq!(truths.len(), 2);
        assert!(truths[1].cumulative && !truths[0].cumulative);
        for truth in truths {
            assert!(truth.calls > 0);
            let session = dir.path().join(&truth.run_id);
            std::fs::create_dir(&session).unwrap();
            let meta = SessionMetadata {
                run_id: Some(truth.run_id.clone()),
                session_id: Some(truth.session_id.clone()),
                ..SessionMetadata::default()
            };
            write_json(&session.join(crate::METADATA_FILE), &meta).unwrap();
            let inputs = Inputs {
                logs: vec![data.clone()],
                ..Inputs::default()
            };
            let cost = summarize(&session, &inputs, &Options::default()).unwrap();
            assert_eq!(cost.summary.api_calls, truth.calls);
            assert_eq!(
                cost.summary.total_cost_usd.to_bits(),
                truth.cost_usd.to_bits()
            );
            assert_eq!(cost.summary.cache_read_tokens, truth.cache_read_tokens);
            let rec = cost.summary.reconciliation.unwrap();
            assert_eq!(rec.metrics.unwrap().status, Some(SourceStatus::Ok));
        }
    }
}
