//! `bench-infra`: the same command as `cargo xtask bench-infra`, as its own executable
//! (it also hosts the detached OTLP receiver).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "bench-infra",
    version,
    about = "Start, stop or inspect the benchmark's telemetry receiver and databases."
)]
struct Cli {
    #[command(flatten)]
    args: bench_infra::cli::Args,
}

fn main() -> std::process::ExitCode {
    // Accept `bench-infra bench-infra <command>` too: the form the detached receiver is
    // started with, shared with `xtask bench-infra <command>`.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "bench-infra") {
        argv.remove(1);
    }
    let cli = Cli::parse_from(argv);
    match bench_infra::cli::run(cli.args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
