//! `bench-stress --headroom`: shows that the client is never the bottleneck.
//!
//! The same stress scenario runs against (1) the reference app (`reference-app/`) on a
//! throwaway PostgreSQL cluster, (2) the Rust no-op Socket.IO server and (3) the reference
//! app's `noop` stress shape, which answers without touching the database (Node alone). The client must sustain at least 10x the reference app's
//! throughput against the no-op server, at no more than 35 µs of its own CPU per message.

use std::sync::Arc;

use anyhow::{Context, Result};
use bench_formats::stress::{StressResult, Target};

use crate::adapter::Adapter;
use crate::backend::Marker;
use crate::cli::{Args, execute, run_tag};
use crate::http::BaseUrl;
use crate::metrics::CpuMeter;
use crate::noop_server::NoopServer;
use crate::reference::{Options, ReferenceApp};
use crate::report::{self, RunInfo};
use crate::socketio;

/// Required throughput ratio no-op / reference.
pub const MIN_RATIO: f64 = 10.0;
/// Client CPU budget per message, microseconds.
pub const MAX_CPU_US: f64 = 35.0;

pub fn run(args: &Args) -> Result<()> {
    let out_dir = match &args.out {
        Some(dir) => dir.clone(),
        None => bench_formats::paths::repo_root()?.join("runs/adhoc/headroom"),
    };
    eprintln!("starting a throwaway PostgreSQL cluster and the reference app...");
    let cluster =
        bench_pg::PgCluster::start_temp().context("cannot start a throwaway PostgreSQL")?;
    cluster.create_database("chat")?;
    let db_url = cluster.url("chat");
    let reference = ReferenceApp::start(&Options {
        db_url: db_url.clone(),
        ..Options::default()
    })?;
    let mut rows = Vec::new();
    rows.push(measure(
        args,
        "reference app (Node + PostgreSQL)",
        &reference.url(),
        Some(&db_url),
        Adapter::reference_app(),
    )?);
    drop(reference);

    let noop = NoopServer::start(1)?;
    rows.push(measure(
        args,
        "no-op server (Rust)",
        &noop.url(),
        None,
        Adapter::reference(),
    )?);
    drop(noop);

    let node_noop = ReferenceApp::start(&Options {
        db_url: db_url.clone(),
        shape: Some("noop".into()),
        ..Options::default()
    })?;
    rows.push(measure(
        args,
        "no-op server (Node, no DB)",
        &node_noop.url(),
        None,
        Adapter::reference(),
    )?);
    drop(node_noop);
    drop(cluster);

    println!(
        "client headroom ({} writers x {} in flight, {} s, {} client thread(s))",
        args.writers, args.in_flight, args.duration, args.threads
    );
    println!(
        "  {:<36}{:>12}{:>16}{:>14}{:>10}",
        "target", "msg/s", "client µs/msg", "cores busy", "p50"
    );
    for r in &rows {
        println!(
            "  {:<36}{:>12.0}{:>16.1}{:>14.2}{:>10}",
            r.label.as_deref().unwrap_or(""),
            r.throughput.acked_per_second,
            r.client_cpu.per_message_us,
            r.client_cpu.cores_busy,
            report::fmt_us(r.ack_latency.p50_us)
        );
    }
    let reference = rows[0].throughput.acked_per_second;
    let noop = &rows[1];
    let ratio = if reference > 0.0 {
        noop.throughput.acked_per_second / reference
    } else {
        0.0
    };
    let ratio_ok = ratio >= MIN_RATIO;
    let cpu_ok = noop.client_cpu.per_message_us <= MAX_CPU_US;
    println!(
        "  no-op / reference throughput: {ratio:.1}x (need >= {MIN_RATIO}x): {}",
        if ratio_ok { "OK" } else { "NOT MET" }
    );
    println!(
        "  client CPU per message on the no-op server: {:.1} µs (need <= {MAX_CPU_US} µs): {}; on the reference app: {:.1} µs",
        noop.client_cpu.per_message_us,
        if cpu_ok { "OK" } else { "NOT MET" },
        rows[0].client_cpu.per_message_us
    );
    for r in &rows {
        let path = report::save(&out_dir, r)?;
        println!("  saved {}", path.display());
    }
    if !(ratio_ok && cpu_ok) {
        anyhow::bail!("the client's headroom is below target (see the figures above)");
    }
    Ok(())
}

/// One stress run of the reference adapter against `url`.
pub fn measure(
    args: &Args,
    label: &str,
    url: &str,
    db_url: Option<&str>,
    adapter: Adapter,
) -> Result<StressResult> {
    let mut plan = args.plan()?;
    plan.progress = false;
    let marker = Arc::new(Marker::new(&run_tag()));
    let cpu = CpuMeter::default();
    let rt = cpu.runtime(args.threads)?;
    let info = RunInfo {
        backend: if db_url.is_some() {
            "postgres".into()
        } else {
            "noop".into()
        },
        client: String::new(),
        label: Some(label.to_string()),
        scenario: plan.scenario.as_str().to_string(),
        target: Target {
            url: url.to_string(),
            room: String::new(),
            ..Target::default()
        },
        config: Default::default(),
        command_line: std::env::args().collect(),
        adapter: Some(serde_json::to_value(&adapter)?),
        probe_notes: vec![],
        started_at: report::now_rfc3339(),
    };
    let mut info = info;
    info.config = bench_formats::stress::RunConfig {
        duration_seconds: plan.duration.as_secs_f64(),
        warmup_seconds: plan.warmup.as_secs_f64(),
        writers: args.writers,
        listeners: args.listeners,
        in_flight: args.in_flight,
        rate: None,
        cadence_seconds: None,
        seed: args.seed,
        message_bytes: args.message_bytes,
        request_timeout_seconds: plan.timeout.as_secs_f64(),
        drain_seconds: plan.drain.as_secs_f64(),
    };
    let url = url.to_string();
    let db_url = db_url.map(str::to_string);
    eprintln!("measuring {label}...");
    let result = rt.block_on(async move {
        tokio::spawn(async move {
            let prepared = socketio::prepare(socketio::Setup {
                base: BaseUrl::parse(&url)?,
                adapter: Some(adapter),
                candidates: crate::candidates::Candidates::generic(),
                writers: plan.writers,
                listeners: plan.listeners,
                marker: marker.clone(),
                message_bytes: plan.message_bytes,
                db_url: db_url.as_deref(),
            })
            .await?;
            let (room, _) = prepared.backend.room();
            info.target.room = room.to_string();
            execute(prepared.backend, &plan, marker, cpu, info).await
        })
        .await
        .context("the run panicked")?
    })?;
    Ok(result)
}
