//! `bench-loop` on its own (the same command as `cargo xtask bench-loop`), so that tests can
//! run it as a process and kill it.

use clap::Parser;

#[derive(Parser)]
#[command(name = "bench-loop", version)]
struct Cmd {
    #[command(flatten)]
    args: bench_loop::cli::Args,
}

fn main() -> std::process::ExitCode {
    match bench_loop::cli::run(Cmd::parse().args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
