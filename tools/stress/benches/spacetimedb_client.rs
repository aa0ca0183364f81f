//! Client CPU per message through the SpacetimeDB protocol: the stress scenario against
//! `stdb-client`'s in-process protocol server (on its own runtime and threads, which the
//! client's CPU meter does not count). Run with
//! `cargo bench -p bench-stress --bench spacetimedb_client`.
//!
//! The in-process server runs reducers one at a time under one lock, so the throughput it
//! reaches says little about SpacetimeDB; the client CPU per message is the figure here.

use bench_stress::cli::{Args, run_once};
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = server_rt.block_on(stdb_client::test_server::TestServer::start())?;
    let url = server.base_url();
    let out = tempfile::tempdir()?;
    let out_dir = out.path().to_string_lossy().into_owned();
    println!("SpacetimeDB client against the in-process protocol server (1 client thread)");
    println!(
        "  {:<28}{:>12}{:>16}{:>14}{:>10}",
        "shape", "msg/s", "client µs/msg", "cores busy", "p50"
    );
    for (writers, in_flight, listeners) in [(20, 8, 1), (4, 32, 1), (20, 8, 0)] {
        let writers_s = writers.to_string();
        let in_flight_s = in_flight.to_string();
        let listeners_s = listeners.to_string();
        let argv = [
            "bench-stress",
            "--no-progress",
            "--out",
            &out_dir,
            "--backend",
            "spacetimedb",
            "--url",
            &url,
            "--writers",
            &writers_s,
            "--in-flight",
            &in_flight_s,
            "--listeners",
            &listeners_s,
            "--duration",
            "8",
            "--warmup",
            "2",
        ];
        let (r, _) = run_once(&Cli::parse_from(argv).args)?;
        println!(
            "  {:<28}{:>12.0}{:>16.1}{:>14.2}{:>10}",
            format!("{writers} x {in_flight}, {listeners} listener(s)"),
            r.throughput.acked_per_second,
            r.client_cpu.per_message_us,
            r.client_cpu.cores_busy,
            bench_stress::report::fmt_us(r.ack_latency.p50_us)
        );
        if !r.verification.passed {
            anyhow::bail!("verification failed: {}", r.verification.detail);
        }
    }
    Ok(())
}
