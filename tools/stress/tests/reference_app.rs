//! The load generator against the project's reference chat app (`reference-app/`: Express +
//! Socket.IO + Drizzle on a throwaway PostgreSQL cluster), with its own socket handlers and
//! in the shapes of `reference-app/server/src/stress-shapes.js` that real generated apps show.
//! Every shape is driven without an adapter file: discovery (the app's source when given,
//! probing always) finds it.

mod common;

use std::path::{Path, PathBuf};

use bench_formats::stress::StressResult;
use bench_stress::adapter::{AckMode, Adapter};
use bench_stress::cli::run_once;
use bench_stress::reference::{self, Options, ReferenceApp};
use common::{args, assert_consistent};

/// A throwaway cluster and the reference app on it, in `shape` (`None`: its own handlers).
fn app(
    shape: Option<&str>,
    rate_limit: Option<u32>,
) -> (bench_pg::PgCluster, String, ReferenceApp) {
    let cluster = bench_pg::PgCluster::start_temp().unwrap();
    cluster.create_database("chat").unwrap();
    let db_url = cluster.url("chat");
    let app = ReferenceApp::start(&Options {
        db_url: db_url.clone(),
        shape: shape.map(str::to_string),
        rate_limit,
    })
    .unwrap();
    (cluster, db_url, app)
}

/// Runs a short stress run against `url` without an adapter file.
fn run(url: &str, db_url: &str, out: &Path, extra: &[&str]) -> (StressResult, std::path::PathBuf) {
    let mut argv = vec!["--backend", "postgres", "--url", url, "--db-url", db_url];
    // Defaults that `extra` may override.
    for (flag, value) in [
        ("--writers", "3"),
        ("--in-flight", "4"),
        ("--duration", "2"),
    ] {
        if !extra.contains(&flag) {
            argv.extend([flag, value]);
        }
    }
    argv.extend_from_slice(extra);
    run_once(&args(out, &argv)).unwrap()
}

fn adapter_of(r: &StressResult) -> Adapter {
    serde_json::from_value(r.adapter.clone().expect("the adapter is recorded")).unwrap()
}

#[test]
fn the_apps_own_shape_found_from_its_source_and_saved_adapters_run_identically() {
    let (_cluster, db_url, app) = app(None, None);
    let out = tempfile::tempdir().unwrap();
    let saved = out.path().join("found.toml");
    let source = reference::app_dir();
    let (r, path) = run(
        &app.url(),
        &db_url,
        out.path(),
        &[
            "--source",
            source.to_str().unwrap(),
            "--save-adapter",
            saved.to_str().unwrap(),
            "--label",
            "as-shipped",
        ],
    );
    assert_consistent(&r);
    let notes = r.probe_notes.join("\n");
    assert!(notes.contains("source: read"), "{notes}");
    assert!(
        notes.contains("handshake's auth is read for token"),
        "{notes}"
    );
    assert!(
        r.verification.detail.contains("where room_id = "),
        "the source names the message table: only the bench room is counted: {}",
        r.verification.detail
    );
    let found = adapter_of(&r);
    assert_eq!(found.socket.send_event, "send_message");
    assert_eq!(found.socket.ack, AckMode::Callback);
    assert!(
        found.socket.setup.is_empty(),
        "the app joins rooms itself: {notes}"
    );
    assert_eq!(
        found.socket.auth,
        Some(serde_json::json!({"token": "{{token}}"}))
    );

    // What was saved runs as is: no probing, the same adapter recorded.
    let (again, path2) = run(
        &app.url(),
        &db_url,
        out.path(),
        &["--adapter", saved.to_str().unwrap()],
    );
    assert_consistent(&again);
    assert_eq!(adapter_of(&again), found);
    assert!(
        again.probe_notes.iter().all(|n| !n.starts_with("send:")),
        "the adapter was given: no probing"
    );

    // A second run never overwrites the saved (maybe since hand-edited) adapter.
    let before = std::fs::read(&saved).unwrap();
    let err = run_once(&args(
        out.path(),
        &[
            "--backend",
            "postgres",
            "--url",
            &app.url(),
            "--adapter",
            saved.to_str().unwrap(),
            "--save-adapter",
            saved.to_str().unwrap(),
        ],
    ))
    .unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    assert_eq!(std::fs::read(&saved).unwrap(), before);
    rate_and_ceiling(
        &app,
        &db_url,
        out.path(),
        &saved,
        [(r, path), (again, path2)],
    );
}

/// The open loop follows its target rate; the ceiling is measured on the same PostgreSQL
/// and `--compare` shows each run's share of it.
fn rate_and_ceiling(
    app: &ReferenceApp,
    db_url: &str,
    out: &Path,
    saved: &Path,
    [(r, path), (_, path2)]: [(StressResult, PathBuf); 2],
) {
    // The open loop: the achieved rate follows the target.
    let (r3, path3) = run(
        &app.url(),
        db_url,
        out,
        &[
            "--adapter",
            saved.to_str().unwrap(),
            "--writers",
            "2",
            "--scenario",
            "rate",
            "--rate",
            "100",
            "--duration",
            "3",
        ],
    );
    assert_consistent(&r3);
    let rate = r3.throughput.acked_per_second;
    assert!(
        (80.0..=120.0).contains(&rate),
        "asked for 100 msg/s, got {rate}"
    );

    // The ceiling on the same PostgreSQL, and each run's share of it.
    let (c, ceiling) = run_once(&args(
        out,
        &[
            "--backend",
            "ceiling",
            "--db-url",
            db_url,
            "--writers",
            "3",
            "--duration",
            "2",
        ],
    ))
    .unwrap();
    assert!(c.verification.passed, "{}", c.verification.detail);
    let broken = out.join("broken.json");
    std::fs::write(&broken, "{not json").unwrap();
    let table =
        bench_stress::report::compare(&[path, path2, broken.clone(), path3, ceiling]).unwrap();
    assert!(
        table.contains("as-shipped")
            && table.contains("postgres/rate")
            && table.contains("of ceiling"),
        "{table}"
    );
    let share = r.throughput.acked_per_second / c.throughput.acked_per_second * 100.0;
    assert!(table.contains(&format!("{share:.1} %")), "{table}");
    assert!(
        table.contains("skipped") && table.contains("broken.json"),
        "{table}"
    );
    assert!(bench_stress::report::compare(&[broken]).is_err());
}

#[test]
fn the_published_apps_shape_identity_event_unacknowledged_joins_and_echo() {
    let (_cluster, db_url, app) = app(Some("published"), None);
    let out = tempfile::tempdir().unwrap();
    let (r, _) = run(&app.url(), &db_url, out.path(), &[]);
    assert_consistent(&r);
    let a = adapter_of(&r);
    assert_eq!(a.socket.ack, AckMode::Echo, "{:?}", r.probe_notes);
    assert_eq!(a.socket.send_event, "send_message");
    let setup: Vec<(&str, bool)> = a
        .socket
        .setup
        .iter()
        .map(|e| (e.event.as_str(), e.ack))
        .collect();
    assert!(setup.contains(&("register", false)), "{setup:?}");
    assert!(setup.contains(&("join_room", false)), "{setup:?}");
}

#[test]
fn rest_sends_camel_case_acks_and_handshake_auth() {
    for (shape, check) in [
        (
            "rest",
            (|a: &Adapter| assert!(a.rest_send.is_some(), "{a:?}")) as fn(&Adapter),
        ),
        ("camel", |a: &Adapter| {
            assert_eq!(
                (a.socket.send_event.as_str(), a.socket.ack),
                ("sendMessage", AckMode::Callback)
            );
            assert!(
                a.socket
                    .setup
                    .iter()
                    .any(|e| e.event == "joinRoom" && e.ack),
                "{a:?}"
            );
        }),
        ("auth", |a: &Adapter| {
            assert_eq!(a.socket.send_event, "message");
            assert!(
                a.socket
                    .auth
                    .as_ref()
                    .is_some_and(|x| x["token"] == "{{token}}")
            );
        }),
    ] {
        let (_cluster, db_url, app) = app(Some(shape), None);
        let out = tempfile::tempdir().unwrap();
        let (r, _) = run(&app.url(), &db_url, out.path(), &[]);
        assert_consistent(&r);
        check(&adapter_of(&r));
    }
}

#[test]
fn a_rate_limited_app_shows_its_limit() {
    let (_cluster, db_url, app) = app(Some("limited"), Some(5));
    let out = tempfile::tempdir().unwrap();
    let (r, _) = run(
        &app.url(),
        &db_url,
        out.path(),
        &[
            "--reference-adapter",
            "--writers",
            "2",
            "--in-flight",
            "2",
            "--duration",
            "3",
        ],
    );
    let limited = r.errors.get("rate_limited").copied().unwrap_or(0);
    assert!(
        limited > 100,
        "a flat-out client must hit a 5 msg/s/user limit: {:?}",
        r.errors
    );
    // 2 users x 5 msg/s, plus the initial burst: far below what the app does unlimited.
    assert!(
        r.throughput.acked_per_second <= 15.0,
        "{}",
        r.throughput.acked_per_second
    );
    let summary = bench_stress::report::summary(&r);
    assert!(summary.contains("the app's rate limit"), "{summary}");
    // Refused messages are not committed, so verification still holds.
    assert_eq!(r.verification.committed, Some(r.totals.acknowledged));
    assert!(r.verification.passed, "{}", r.verification.detail);
}
