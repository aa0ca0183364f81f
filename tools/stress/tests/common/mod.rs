//! Helpers shared by the test binaries: the command line as parsed by `cargo xtask
//! bench-stress`, and the checks every verified run on the reference app must pass.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bench_formats::stress::StressResult;
use bench_stress::cli::Args;
use clap::Parser;

/// The repository's root (it holds `backends/` and `reference-app/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// The arguments of `bench-stress EXTRA...`, without a progress bar and with a short
/// warm-up and drain.
pub fn parse(extra: &[&str]) -> Args {
    let mut argv = vec![
        "bench-stress",
        "--no-progress",
        "--warmup",
        "1",
        "--drain",
        "5",
    ];
    argv.extend_from_slice(extra);
    parse_all(&argv)
}

/// The arguments of the command line `argv` (`bench-stress` first) as they are.
pub fn parse_all(argv: &[&str]) -> Args {
    Cli::parse_from(argv).args
}

/// [`parse`], with the result file written to `out`.
pub fn args(out: &Path, extra: &[&str]) -> Args {
    let mut argv = vec!["--out", out.to_str().unwrap()];
    argv.extend_from_slice(extra);
    parse(&argv)
}

/// The checks every verified run must pass: committed == acknowledged, the listener saw
/// every message, every send has an outcome, and latencies that hold together.
pub fn assert_verified(r: &StressResult) {
    let t = &r.totals;
    assert!(t.acknowledged > 0, "nothing was acknowledged: {r:#?}");
    assert_eq!(
        r.verification.committed,
        Some(t.acknowledged),
        "{}",
        r.verification.detail
    );
    assert!(r.verification.passed, "{}", r.verification.detail);
    assert_eq!(
        t.delivered_to_listener, t.acknowledged,
        "the listener missed messages"
    );
    assert_eq!(
        t.sent,
        t.acknowledged + t.failed,
        "every request got an outcome"
    );
    let l = &r.ack_latency;
    assert!(
        l.count > 0 && l.min_us > 0 && l.p50_us <= l.p99_us && l.p99_us <= l.max_us,
        "{l:?}"
    );
    assert!(r.fanout_latency.is_some_and(|f| f.count > 0));
}

/// [`assert_verified`], counted in the reference app's own message table.
pub fn assert_consistent(r: &StressResult) {
    assert_verified(r);
    assert!(
        r.verification.detail.contains("messages.content"),
        "counted in the app's message table: {}",
        r.verification.detail
    );
}
