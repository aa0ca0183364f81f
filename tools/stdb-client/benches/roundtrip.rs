//! Client cost and throughput of reducer calls against the in-process test server.
//!
//! The server runs on its own runtime thread; the client (its writer and reader tasks included)
//! runs on a current-thread runtime on the main thread, so that thread's CPU time is the client's
//! cost. Prints figures; run with `cargo bench -p stdb-client`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::json;
use stdb_client::test_server::TestServer;
use stdb_client::{ConnectOptions, StdbClient, fetch_schema};

/// CPU time of the calling thread in nanoseconds, from `/proc/thread-self/schedstat`
/// (its first field is the time spent running on a CPU).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::var("STDB_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let server = TestServer::start().await.expect("test server");
            addr_tx.send(server.base_url()).expect("send address");
            std::future::pending::<()>().await;
        });
    });
    let url = addr_rx.recv()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let schema = Arc::new(fetch_schema(&url, "chat").await?);
        let opts = || ConnectOptions { schema: Some(schema.clone()), ..ConnectOptions::default() };
        let client = StdbClient::connect_with(&url, "chat", opts()).await?;
        let name = schema.reducer_args("set_name", &[("name", json!("bench"))])?;
        client.call_reducer("set_name", &name).await?.into_committed()?;
        let room = schema.reducer_args("create_room", &[("name", json!("bench"))])?;
        client.call_reducer("create_room", &room).await?.into_committed()?;
        let room_id = stdb_client::sql(&url, "chat", None, "SELECT * FROM room").await?.statements[0].rows[0][0]
            .as_u64()
            .unwrap_or(1);

        for (label, in_flight, listen) in [("calls only", 64usize, false), ("calls + listener", 64, true)] {
            let listener = if listen {
                let l = StdbClient::connect_with(&url, "chat", opts()).await?;
                let events = l.row_events();
                l.subscribe(&[&format!("SELECT * FROM message WHERE room_id = {room_id}")]).await?;
                Some((l, events))
            } else {
                None
            };
            let (_listener, mut counter) = match listener {
                Some((l, events)) => (Some(l), Some(events)),
                None => (None, None),
            };
            let received = tokio::spawn(async move {
                let mut rows = 0usize;
                if let Some(events) = counter.as_mut() {
                    while rows < calls {
                        match events.recv().await {
                            Some(e) => rows += e.inserts.len(),
                            None => break,
                        }
                    }
                }
                rows
            });
            let cpu0 = thread_cpu();
            let t0 = Instant::now();
            let mut pending = FuturesUnordered::new();
            let mut latencies = Vec::with_capacity(calls);
            let mut sent = 0;
            let mut failed = 0;
            while sent < calls || !pending.is_empty() {
                while sent < calls && pending.len() < in_flight {
                    let args = schema.reducer_args(
                        "send_message",
                        &[("room_id", json!(room_id)), ("text", json!(format!("bench message {sent}")))],
                    )?;
                    pending.push(client.send_reducer("send_message", &args)?);
                    sent += 1;
                }
                if let Some(outcome) = pending.next().await {
                    let outcome = outcome?;
                    if !outcome.is_committed() {
                        failed += 1;
                    }
                    latencies.push(outcome.latency());
                }
            }
            let rows = if listen { tokio::time::timeout(Duration::from_secs(30), received).await??.to_string() } else { "-".into() };
            let wall = t0.elapsed();
            let cpu = thread_cpu() - cpu0;
            latencies.sort();
            println!(
                "{label:>17}: {calls} calls, {in_flight} in flight: {:>8.0} calls/s, client CPU {:>5.1} µs/call \
                 (main thread, includes listener when present), ack p50 {:?} p99 {:?}, failed {failed}, listener rows {rows}",
                calls as f64 / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / calls as f64,
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
            );
        }
        anyhow::Ok(())
    })
}
