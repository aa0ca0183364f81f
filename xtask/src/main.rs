//! `cargo xtask`: the benchmark's command line.
//!
//! This crate only parses arguments and hands them to the crate under `tools/` that owns
//! the capability; it holds no logic of its own.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "Measure how hard it is for an AI coding agent to build the same real-time chat app on different backends.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[expect(
    clippy::enum_variant_names,
    reason = "the variants are the `bench-*` command names users type"
)]
enum Command {
    /// Cost of one agent session from its OpenTelemetry export, reconciled three ways.
    BenchTelemetry(bench_telemetry::cli::Args),
    /// Speed and peak memory of bench-telemetry on a generated collector file of many sessions.
    BenchTelemetryPerf(bench_telemetry::cli::PerfArgs),
    /// Run an agent session: generate an app, upgrade it a level, or fix its bugs.
    BenchRun(bench_runner::cli::Args),
    /// Start, stop or inspect the telemetry collector and databases the sessions use.
    BenchInfra(bench_infra::cli::Args),
    /// Render the composed level prompts from the feature specs (or check they are current).
    BenchPrompts(bench_content::cli::Args),
    /// Reports across backends and runs: cost, calls, tokens, bugs, lines of code, time.
    BenchReport(bench_report::cli::Args),
    /// Throughput and latency of the generated apps under load.
    BenchStress(bench_stress::cli::Args),
    /// Grade an app in a real browser with two users by the scripted test plans (exit 0 all points, 1 bugs, 2 could not grade).
    BenchGrade(bench_grade::cli::Args),
    /// The whole benchmark, resumable: generate, grade, fix, upgrade to level N, for several backends and repetitions.
    BenchLoop(bench_loop::cli::Args),
    /// Harness overhead per session step of finished bench-loop runs, or --scaling N: one rehearsed app against N at once.
    BenchLoopPerf(bench_loop::perf::Args),
    /// Stop the apps of runs, drop their databases, remove generated node_modules/dist (dry run unless --yes).
    BenchClean(bench_loop::clean::Args),
    /// Start, stop, reset or inspect an app with its backend's own commands.
    BenchApp(bench_app::cli::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BenchGrade(args) => return bench_grade::cli::run(args),
        Command::BenchTelemetry(args) => bench_telemetry::cli::run(args),
        Command::BenchTelemetryPerf(args) => bench_telemetry::cli::run_perf(args),
        Command::BenchRun(args) => bench_runner::cli::run(args),
        Command::BenchInfra(args) => bench_infra::cli::run(args),
        Command::BenchPrompts(args) => bench_content::cli::run(args),
        Command::BenchReport(args) => bench_report::cli::run(args),
        Command::BenchStress(args) => bench_stress::cli::run(args),
        Command::BenchLoop(args) => bench_loop::cli::run(args),
        Command::BenchLoopPerf(args) => bench_loop::perf::run(args),
        Command::BenchClean(args) => bench_loop::clean::run(args),
        Command::BenchApp(args) => bench_app::cli::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
