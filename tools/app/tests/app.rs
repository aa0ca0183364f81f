//! bench-app on the repository's reference app (real Node, npm packages, Vite) with a real
//! throwaway PostgreSQL, through the postgres backend's own `[commands]`.

mod common;

use std::fs;
use std::net::TcpListener;

use bench_app::{App, Started};
use bench_formats::app_run::{APP_LOGS_DIR, APP_RUN_FILE};
use bench_pg::PgCluster;

fn health_url(app: &App) -> String {
    format!("http://127.0.0.1:{}/health", app.ports()["express"])
}

#[test]
fn start_status_a_second_start_and_stop_leave_no_process_behind() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    // No .bench/state.json: the backend is detected, run index 0, ports overridden.
    let app = App::open(dir.path(), &common::options(&pg)).unwrap();
    assert_eq!(app.backend().name, "postgres");

    let started = app.start().unwrap();
    assert!(matches!(started, Started::Started(_)));
    let run = started.run().clone();
    assert_eq!(run.processes.len(), 2, "server and client: {run:?}");
    assert!(dir.path().join(APP_RUN_FILE).is_file());
    assert!(bench_proc::http_ready(&health_url(&app)).is_ok());
    assert!(bench_proc::http_ready(&app.client_url()).is_ok());
    // The schema was applied to the run's database, which start created.
    let tables = pg.query("chat_run0", "SELECT count(*) FROM users").unwrap();
    assert_eq!(tables.trim(), "0");

    let status = app.status().unwrap();
    assert!(status.running(), "{status:?}");
    assert_eq!(
        status.run.as_ref().unwrap().started_at_utc,
        run.started_at_utc
    );
    for port in &status.ports {
        assert!(port.accepting, "{port:?}");
        // Whoever listens belongs to a group the app started.
        let groups: Vec<u32> = run.processes.iter().map(|p| p.pgid).collect();
        assert!(
            port.holders
                .iter()
                .all(|h| bench_proc::stat(h.pid).is_some_and(|s| groups.contains(&s.pgid))),
            "{port:?}"
        );
    }
    let text = bench_app::cli::describe(&status);
    assert!(
        text.contains("postgres app, run index 0: running"),
        "{text}"
    );

    // A second start changes nothing.
    let again = app.start().unwrap();
    assert!(matches!(again, Started::AlreadyRunning(_)));
    assert_eq!(again.run(), &run);

    let logs = app.logs(5).unwrap();
    let steps: Vec<&str> = logs.iter().map(|(s, _, _)| s.as_str()).collect();
    assert!(
        steps.contains(&"apply schema") && steps.contains(&"server"),
        "{steps:?}"
    );

    let mut members: Vec<u32> = Vec::new();
    for p in &run.processes {
        members.extend(bench_proc::group_members(p.pgid));
        members.extend(bench_proc::descendants(p.pid));
    }
    assert!(members.len() >= 2);
    assert!(app.stop().unwrap() >= 2);
    for pid in &members {
        assert!(!bench_proc::alive(*pid), "process {pid} survived stop");
    }
    for port in app.ports().values() {
        assert!(bench_proc::port_free(*port), "port {port} still taken");
    }
    assert!(!dir.path().join(APP_RUN_FILE).exists());
    assert!(!app.status().unwrap().partly_running());
    assert_eq!(app.stop().unwrap(), 0, "a second stop finds nothing");
    assert!(dir.path().join(APP_LOGS_DIR).join("server.log").is_file());
}

#[test]
fn reset_gives_a_running_app_an_empty_database_with_its_schema() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    let state = bench_formats::AppState {
        backend: "postgres".into(),
        level: 1,
        run_index: 7,
        ..Default::default()
    };
    let state_file = dir.path().join(bench_formats::files::STATE_FILE);
    bench_formats::write_json(&state_file, &state).unwrap();
    let app = App::open(dir.path(), &common::options(&pg)).unwrap();
    assert_eq!(app.run_index(), 7);
    app.start().unwrap();
    pg.query(
        "chat_run7",
        "INSERT INTO users (display_name) VALUES ('Alice'); CREATE TABLE leftover (x int);",
    )
    .unwrap();
    let before = app.run_record().unwrap().unwrap();

    assert!(app.reset().unwrap(), "a running app is restarted");
    assert_eq!(
        pg.query("chat_run7", "SELECT count(*) FROM users")
            .unwrap()
            .trim(),
        "0"
    );
    let leftover = pg
        .query(
            "chat_run7",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'",
        )
        .unwrap();
    assert_eq!(leftover.trim(), "0");
    let after = app.run_record().unwrap().unwrap();
    assert_ne!(before.processes[0].pid, after.processes[0].pid);
    assert!(bench_proc::http_ready(&health_url(&app)).is_ok());
    for p in &before.processes {
        assert!(
            !bench_proc::group_alive(p.pgid),
            "old {} still runs",
            p.step
        );
    }

    // A stopped app is reset without being started.
    app.stop().unwrap();
    pg.query(
        "chat_run7",
        "INSERT INTO users (display_name) VALUES ('Bob')",
    )
    .unwrap();
    assert!(!app.reset().unwrap());
    assert!(
        pg.query("chat_run7", "SELECT count(*) FROM users").is_err(),
        "no schema yet"
    );
    assert!(app.run_record().unwrap().is_none());
}

#[test]
fn a_port_held_by_another_process_is_named_and_nothing_starts() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    let app = App::open(dir.path(), &common::options(&pg)).unwrap();
    let port = app.ports()["express"];
    let _squatter = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let err = format!("{:#}", app.start().unwrap_err());
    let me = std::process::id();
    assert!(
        err.contains(&format!("port {port} (express) is held by pid {me} (")),
        "{err}"
    );
    assert!(!dir.path().join(APP_RUN_FILE).exists());
    assert!(!dir.path().join(APP_LOGS_DIR).exists(), "no step ran");
}

#[test]
fn a_failing_schema_step_stops_the_start_and_shows_its_log() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    let mut options = common::options(&pg);
    // The schema step (and only it) gets a database URL nothing answers on.
    let closed = bench_proc::free_port().unwrap();
    let url = format!("postgresql://spacetime:spacetime@127.0.0.1:{closed}/chat_run0");
    options.overrides.insert("database_url".into(), url);
    let app = App::open(dir.path(), &options).unwrap();
    let err = format!("{:#}", app.start().unwrap_err());
    assert!(
        err.contains("step \"apply schema\" exited with exit status: 1"),
        "{err}"
    );
    assert!(err.contains("apply-schema.log"), "{err}");
    assert!(err.contains("drizzle-kit push"), "the log tail: {err}");
    assert!(!dir.path().join(APP_RUN_FILE).exists());
    assert!(bench_proc::port_free(app.ports()["express"]));
}

#[test]
fn a_schema_that_does_not_compile_fails_the_schema_step() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    // drizzle-kit push itself exits 0 here; the backend's step reads its output.
    let schema = dir.path().join("server/src/schema.ts");
    let mut text = fs::read_to_string(&schema).unwrap();
    text.push_str("\nexport const broken = ;\n");
    fs::write(&schema, text).unwrap();
    let app = App::open(dir.path(), &common::options(&pg)).unwrap();
    let err = format!("{:#}", app.start().unwrap_err());
    assert!(
        err.contains("step \"apply schema\" exited with exit status: 1"),
        "{err}"
    );
    assert!(
        err.contains("schema.ts"),
        "the log tail names the broken file: {err}"
    );
    assert!(!dir.path().join(APP_RUN_FILE).exists());
}

#[test]
fn a_server_that_crashes_at_start_is_reported_with_its_log_and_nothing_is_left() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    let index = dir.path().join("server/src/index.ts");
    let mut text = fs::read_to_string(&index).unwrap();
    text.push_str("\nthrow new Error('crashed on purpose at start');\n");
    fs::write(&index, text).unwrap();
    let app = App::open(dir.path(), &common::options(&pg)).unwrap();
    let err = format!("{:#}", app.start().unwrap_err());
    assert!(
        err.contains("step \"server\" exited with exit status: 1 before it was ready"),
        "{err}"
    );
    assert!(
        err.contains("crashed on purpose at start"),
        "the log tail: {err}"
    );
    assert!(!dir.path().join(APP_RUN_FILE).exists());
    assert!(bench_proc::port_free(app.ports()["express"]));
    assert!(bench_proc::port_free(app.ports()["vite"]));
}

#[test]
fn a_database_server_that_is_not_there_fails_the_preflight_with_its_hint() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    let mut options = common::options(&pg);
    let closed = bench_proc::free_port().unwrap();
    options
        .overrides
        .insert("pg_port".into(), closed.to_string());
    let app = App::open(dir.path(), &options).unwrap();
    let err = format!("{:#}", app.start().unwrap_err());
    assert!(
        err.contains("this machine cannot run a postgres app yet"),
        "{err}"
    );
    assert!(err.contains("preflight postgresql-server"), "{err}");
    assert!(err.contains("bench-infra up"), "the hint: {err}");
    assert!(!dir.path().join(APP_LOGS_DIR).exists(), "no step ran");
}

#[test]
fn unknown_values_and_undetectable_apps_are_refused_clearly() {
    let pg = PgCluster::start_temp().unwrap();
    let dir = common::reference_app().unwrap();
    let mut options = common::options(&pg);
    options.overrides.insert("pg_prot".into(), "5".into());
    let err = format!("{:#}", App::open(dir.path(), &options).unwrap_err());
    assert!(err.contains("no value named pg_prot"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        App::open(empty.path(), &common::options(&pg)).unwrap_err()
    );
    assert!(err.contains("give --backend"), "{err}");
}
