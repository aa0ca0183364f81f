//! Command-line front ends: `cargo xtask bench-telemetry` and
//! `cargo xtask bench-telemetry-perf`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use bench_formats::{SourceStatus, SummaryStatus};

use crate::{Inputs, Options, SessionCost, summarize};

/// Options of `cargo xtask bench-telemetry`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes cost-summary.json and COST_REPORT.md into the session folder. With no --logs/--metrics,
the folder's raw-telemetry.jsonl is read. The CLI's result object is taken from --result, else
from the folder's transcript.jsonl (stream-json) or result.json. A cost-summary.json this tool
did not write (the original harness's, without schemaVersion) is never replaced.")]
pub struct Args {
    /// Session folder holding metadata.json (as written by bench-run).
    pub session_dir: PathBuf,
    /// Collector file-exporter JSONL files with logs, read in order as one stream
    /// (rotated files: oldest first). Any file may also hold metrics.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub logs: Vec<PathBuf>,
    /// Collector JSONL files with metrics (read after the --logs files).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub metrics: Vec<PathBuf>,
    /// The agent CLI's result object: `--output-format json` output, or a stream-json
    /// transcript whose `result` line is used.
    #[arg(long, value_name = "FILE")]
    pub result: Option<PathBuf>,
    /// Also write this session's own lines (other sessions' records removed) to
    /// <session-dir>/raw-telemetry.jsonl.
    #[arg(long)]
    pub extract_raw: bool,
    /// Difference between sources, in percent, above which a warning is recorded.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.5)]
    pub tolerance_percent: f64,
}

fn print_outcome(cost: &SessionCost) {
    let s = &cost.summary;
    println!(
        "session {}{}",
        if s.session_id.is_empty() {
            "(unknown id)"
        } else {
            &s.session_id
        },
        s.run_id
            .as_deref()
            .map(|r| format!(" (run {r})"))
            .unwrap_or_default()
    );
    println!(
        "  cost        ${:.6}  (exactly {})",
        s.total_cost_usd, s.total_cost_usd
    );
    println!("  api calls   {}", s.api_calls);
    println!(
        "  tokens      {} in, {} out, {} cache read, {} cache write",
        s.total_input_tokens, s.total_output_tokens, s.cache_read_tokens, s.cache_creation_tokens
    );
    if let Some(r) = &s.reconciliation {
        println!(
            "  sources     {} (totals from {}; tolerance {:.2} %)",
            r.status,
            r.trusted_source,
            r.tolerance * 100.0
        );
        for (name, f) in [
            ("events", &r.events),
            ("metrics", &r.metrics),
            ("result", &r.result),
        ] {
            match f {
                Some(f) => println!(
                    "    {name:<8} ${:<12} calls {:<6} {}{}",
                    format!("{:.6}", f.cost_usd),
                    f.api_calls
                        .map_or_else(|| "-".to_string(), |c| c.to_string()),
                    f.status.map_or("", SourceStatus::as_str),
                    // num_turns is shown apart: it is not a call count.
                    f.turns
                        .map(|t| format!(" (num_turns {t}, not compared)"))
                        .unwrap_or_default()
                ),
                None => println!("    {name:<8} missing"),
            }
        }
        if r.trusted_source != "events" {
            println!("  why         {}", r.reason);
        }
    }
    println!("  status      {}", cost.status());
    println!("  wrote       {}", cost.summary_path.display());
    println!("              {}", cost.report_path.display());
    if let Some(p) = &cost.raw_path {
        println!("              {}", p.display());
    }
    for w in cost.warnings() {
        eprintln!("warning: {w}");
    }
    for m in cost.malformed.iter().take(20) {
        eprintln!("warning: skipped {m}");
    }
}

/// Runs `cargo xtask bench-telemetry`.
pub fn run(args: Args) -> Result<()> {
    if !(args.tolerance_percent.is_finite() && args.tolerance_percent >= 0.0) {
        bail!("--tolerance-percent must be a non-negative number");
    }
    let inputs = Inputs {
        logs: args.logs,
        metrics: args.metrics,
        result: args.result,
    };
    let opts = Options {
        extract_raw: args.extract_raw,
        tolerance: args.tolerance_percent / 100.0,
        ..Options::default()
    };
    let cost = summarize(&args.session_dir, &inputs, &opts)?;
    print_outcome(&cost);
    if cost.status() == SummaryStatus::NoTelemetry {
        let files = cost
            .summary
            .inputs
            .as_ref()
            .map(|i| i.files.join(", "))
            .unwrap_or_default();
        bail!(
            "no telemetry in {files} belongs to session {} (run {}): was the collector running and the agent started with telemetry on? \
             Check the --logs/--metrics files; {} was still written, with status no-telemetry",
            cost.summary.session_id,
            cost.summary.run_id.as_deref().unwrap_or("unknown"),
            cost.summary_path.display()
        );
    }
    Ok(())
}

/// Options of `cargo xtask bench-telemetry-perf`.
#[derive(Debug, clap::Args)]
pub struct PerfArgs {
    /// Size of the generated collector file, in MiB.
    #[arg(long, default_value_t = 512)]
    pub size_mb: u64,
    /// Number of interleaved sessions in it.
    #[arg(long, default_value_t = 4000)]
    pub sessions: u32,
    /// Extraction runs to time (the file is generated once and reused).
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Drop the file from the page cache before each run (Linux), to time reading from disk.
    #[arg(long)]
    pub cold: bool,
    /// Folder for the generated file (default: <target>/bench-telemetry-perf).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Internal: only generate the file (run in a child process, so that the parent's
    /// peak memory reflects extraction alone).
    #[arg(long, hide = true)]
    pub generate_only: bool,
}

/// Runs `cargo xtask bench-telemetry-perf`.
pub fn run_perf(args: PerfArgs) -> Result<()> {
    crate::perf::run(args)
}
