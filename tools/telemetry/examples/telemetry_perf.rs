//! The perf benchmark without the xtask dispatcher:
//! `cargo run --release -p bench-telemetry --example telemetry_perf -- --size-mb 512`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: bench_telemetry::cli::PerfArgs,
}

fn main() -> anyhow::Result<()> {
    bench_telemetry::cli::run_perf(Cli::parse().args)
}
