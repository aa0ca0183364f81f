//! The load generator against real targets other than the reference app (see
//! `reference_app.rs`): the Rust no-op server, the PostgreSQL ceiling and the in-process
//! SpacetimeDB protocol server.

mod common;

use bench_formats::stress::StressResult;
use bench_stress::cli::run_once;
use bench_stress::noop_server::NoopServer;
use common::{args, assert_verified};

fn pg() -> (bench_pg::PgCluster, String) {
    let cluster = bench_pg::PgCluster::start_temp().unwrap();
    cluster.create_database("chat").unwrap();
    let url = cluster.url("chat");
    (cluster, url)
}

/// [`assert_verified`], with every send in the time series and no latency over 10 s.
fn assert_consistent(r: &StressResult) {
    assert_verified(r);
    let window: u64 = r.throughput.per_second.iter().map(|s| s.sent).sum();
    assert_eq!(
        window, r.totals.sent,
        "the time series accounts for every send"
    );
    let l = &r.ack_latency;
    assert!(
        l.max_us < 10_000_000,
        "an acknowledged message took over 10 s: {l:?}"
    );
    let f = r.fanout_latency.expect("a listener was connected");
    assert!(f.count > 0 && f.p50_us < 10_000_000, "{f:?}");
}

#[test]
fn no_op_server_and_realistic_cadence() {
    let server = NoopServer::start(1).unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = server.url();
    let (r, _) = run_once(&args(
        out.path(),
        &[
            "--backend",
            "postgres",
            "--url",
            &url,
            "--reference-adapter",
            "--writers",
            "4",
            "--duration",
            "2",
        ],
    ))
    .unwrap();
    assert_eq!(r.verification.method, "none");
    assert!(
        !r.verification.passed,
        "an unverified run never counts as passed"
    );
    assert_eq!(r.totals.delivered_to_listener, r.totals.acknowledged);
    assert_progress_every_second(&r);

    // 10 users every 0.2-0.4 s for 3 s: about 10 / 0.3 = 33 msg/s.
    let (r, _) = run_once(&args(
        out.path(),
        &[
            "--backend",
            "postgres",
            "--url",
            &url,
            "--reference-adapter",
            "--scenario",
            "realistic",
            "--writers",
            "10",
            "--cadence",
            "0.2..0.4",
            "--duration",
            "3",
        ],
    ))
    .unwrap();
    let rate = r.throughput.acked_per_second;
    assert!(
        (20.0..=50.0).contains(&rate),
        "expected about 33 msg/s, got {rate}"
    );
    assert_eq!(r.config.cadence_seconds, Some((0.2, 0.4)));
}

#[test]
fn ceiling_inserts_straight_into_postgres() {
    let (cluster, db_url) = pg();
    let out = tempfile::tempdir().unwrap();
    let (r, _) = run_once(&args(
        out.path(),
        &[
            "--backend",
            "ceiling",
            "--db-url",
            &db_url,
            "--writers",
            "4",
            "--duration",
            "2",
        ],
    ))
    .unwrap();
    assert_eq!(r.client, "postgres-insert");
    assert!(r.fanout_latency.is_none());
    assert_eq!(r.verification.committed, Some(r.totals.acknowledged));
    assert!(r.verification.passed, "{}", r.verification.detail);
    assert_progress_every_second(&r);
    let rows = |c: &bench_pg::PgCluster| {
        let out = c
            .query("chat", "SELECT count(*) FROM bench_ceiling_messages")
            .unwrap();
        out.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("not a count: {out:?}"))
    };
    assert_eq!(rows(&cluster), 0, "the run's rows are deleted once counted");
    let (r, _) = run_once(&args(
        out.path(),
        &[
            "--backend",
            "ceiling",
            "--db-url",
            &db_url,
            "--writers",
            "2",
            "--duration",
            "1",
            "--keep-rows",
        ],
    ))
    .unwrap();
    assert!(r.verification.passed, "{}", r.verification.detail);
    assert_eq!(
        rows(&cluster),
        r.totals.acknowledged,
        "--keep-rows keeps them"
    );
    assert!(
        r.target.url.contains(":***@"),
        "the password is redacted: {}",
        r.target.url
    );
}

#[test]
fn spacetimedb_module_over_the_official_protocol() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(stdb_client::test_server::TestServer::start())
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = server.base_url();
    let (r, _) = run_once(&args(
        out.path(),
        &[
            "--backend",
            "spacetimedb",
            "--url",
            &url,
            "--database",
            "chat",
            "--writers",
            "4",
            "--duration",
            "2",
        ],
    ))
    .unwrap();
    assert_eq!(r.client, "spacetimedb");
    assert_eq!(r.verification.method, "spacetimedb-sql");
    assert_consistent(&r);
    assert!(
        r.probe_notes[0].contains("send_message(room_id, text)"),
        "{:?}",
        r.probe_notes
    );
    assert_eq!(server.row_count("message") as u64, r.totals.acknowledged);

    // Probing an HTTP server that is not a Socket.IO chat app says what it tried and what to do.
    let err = run_once(&args(
        out.path(),
        &[
            "--backend",
            "postgres",
            "--url",
            &url,
            "--writers",
            "1",
            "--duration",
            "1",
        ],
    ))
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("POST /api/users") && err.contains("--adapter"),
        "{err}"
    );

    // A reducer that refuses: every send fails, nothing is committed, and it shows.
    server.set_fault(
        "send_message",
        Some(stdb_client::test_server::Fault::Fail("slow down".into())),
    );
    let (r, _) = run_once(&args(
        out.path(),
        &[
            "--backend",
            "spacetimedb",
            "--url",
            &url,
            "--writers",
            "2",
            "--duration",
            "1",
        ],
    ))
    .unwrap();
    assert_eq!(r.totals.acknowledged, 0);
    assert!(
        r.errors.get("rate_limited").copied().unwrap_or(0) > 0,
        "{:?}",
        r.errors
    );
    assert_eq!(r.verification.committed, Some(0));
    assert!(
        !r.verification.passed,
        "a run with nothing acknowledged proves nothing"
    );
}

#[test]
fn open_loop_latency_counts_from_the_intended_send_time() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(stdb_client::test_server::TestServer::start())
        .unwrap();
    // Each call takes 100 ms and one writer may have one in flight: 10 msg/s at most,
    // while the schedule asks for 50 msg/s.
    server.set_fault(
        "send_message",
        Some(stdb_client::test_server::Fault::Delay(
            std::time::Duration::from_millis(100),
        )),
    );
    let out = tempfile::tempdir().unwrap();
    let url = server.base_url();
    let argv = [
        "bench-stress",
        "--no-progress",
        "--out",
        out.path().to_str().unwrap(),
        "--backend",
        "spacetimedb",
        "--url",
        &url,
        "--scenario",
        "rate",
        "--rate",
        "50",
        "--writers",
        "1",
        "--in-flight",
        "1",
        "--warmup",
        "0",
        "--duration",
        "3",
        "--drain",
        "2",
    ];
    let (r, _) = run_once(&common::parse_all(&argv)).unwrap();
    let l = r.ack_latency;
    // Measured from the actual send, every call would take ~100 ms. From the schedule, the
    // lag grows by 80 ms per message: the tail reaches seconds.
    assert!(l.p99_us > 1_500_000, "coordinated omission: {l:?}");
    assert!(l.min_us >= 90_000, "{l:?}");
    let backlog = r.errors.get("unsent_backlog").copied().unwrap_or(0);
    assert!(
        backlog > 80,
        "the 150 - ~30 sends that never left are reported: {:?}",
        r.errors
    );
    assert!(r.verification.passed, "{}", r.verification.detail);
}

/// The load flowed for the whole measurement window: every whole second of it saw
/// acknowledgements (a stalled pipeline, a lost connection or a deadlock shows as an empty
/// second). How fast it flowed is the benchmarks' business, not a test's.
fn assert_progress_every_second(r: &StressResult) {
    let window: Vec<_> = r
        .throughput
        .per_second
        .iter()
        .filter(|s| s.in_window)
        .collect();
    assert!(!window.is_empty(), "no second of the window was sampled");
    // The last sample may be a partial second cut by the end of the window.
    let whole = &window[..window.len().saturating_sub(1).max(1)];
    for s in whole {
        assert!(
            s.acknowledged > 0,
            "nothing acknowledged in second {}: {:?}",
            s.t,
            r.throughput.per_second
        );
    }
}
