//! The `bench-stress` command without the rest of xtask, for measuring the client on its
//! own: `cargo run --release -p bench-stress --example bench_stress -- --headroom`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "bench-stress")]
struct Cli {
    #[command(flatten)]
    args: bench_stress::cli::Args,
}

fn main() -> std::process::ExitCode {
    match bench_stress::cli::run(Cli::parse().args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
