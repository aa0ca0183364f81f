//! `bench-loop --repeat 2 --parallel 2`, as a process: two rehearsed postgres apps driven
//! side by side (the real Claude Code CLI, the reference app started by bench-app on one
//! throwaway PostgreSQL, both graded at once in the real Chromium) never share a run
//! folder, run index, port or database, grade as a single app does, and bench-report counts
//! them as two repetitions of the backend.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bench_formats::loop_record::LoopStep;
use bench_formats::{AppState, read_json};
use common::*;

/// Run indexes of this file's tests (loop_rehearsal.rs uses 41–49).
const FIRST_RUN_INDEX: u32 = 51;

/// The grade step's start and end (RFC 3339) of an app's loop record.
fn grade_window(state: &AppState) -> (String, String) {
    let rec = state.loop_record.as_ref().unwrap();
    let step = rec
        .steps
        .iter()
        .find(|s| matches!(s.step, LoopStep::Grade { .. }))
        .expect("a grade step");
    (
        step.started_at_utc.clone(),
        step.ended_at_utc.clone().expect("a finished grade step"),
    )
}

/// What the app's own logs say it was started with: the server's and the client's command
/// lines as bench-app wrote them.
fn started_with(app: &Path) -> String {
    let logs = app.join(".bench/logs");
    ["server.log", "client.log"]
        .iter()
        .map(|f| std::fs::read_to_string(logs.join(f)).unwrap_or_default())
        .collect()
}

/// Each app used ports and a database of its own (its logs name them); returns the
/// databases.
fn assert_own_ports_and_databases(
    apps: &[PathBuf],
    options: &bench_app::AppOptions,
) -> BTreeSet<String> {
    let mut ports = BTreeSet::new();
    let mut databases = BTreeSet::new();
    for app in apps {
        let opened = bench_app::App::open(app, options).unwrap();
        let own = opened.ports();
        assert_eq!(own.len(), 2, "express and vite: {own:?}");
        let database = opened.vars()["database_name"].clone();
        let used = started_with(app);
        for port in own.values() {
            assert!(used.contains(&port.to_string()), "{port} not in:\n{used}");
            assert!(ports.insert(*port), "port {port} used twice");
        }
        assert!(
            used.contains(&format!("/{database}")),
            "{database}:\n{used}"
        );
        assert!(databases.insert(database.clone()), "{database} used twice");
    }
    databases
}

/// METRICS_DATA.json of the loop's report (several runs: `<runs>/reports/<loop id>/`).
fn metrics_data(runs: &Path, loop_id: &str) -> serde_json::Value {
    read_json(&runs.join("reports").join(loop_id).join("METRICS_DATA.json")).unwrap()
}

/// Two repetitions at once: distinct folders, run indexes, ports and databases; both
/// graded 12/12 while the other was being graded; each session's cost the CLI's own total;
/// the report's postgres figures over two runs; nothing of either app left afterwards.
#[test]
fn two_repetitions_run_side_by_side_without_colliding() {
    let env = env();
    let args = ["--backend", "postgres", "--to-level", "1", "--repeat", "2"];
    let (ok, log) = rehearse(
        &env,
        FIRST_RUN_INDEX,
        &[&args[..], &["--parallel", "2", "--max-fixes", "0"]].concat(),
    );
    assert!(ok, "{log}");
    assert!(log.contains("2 app(s), 2 at a time"), "{log}");
    let apps = apps(&env.runs);
    assert_eq!(apps.len(), 2, "{apps:?}\n{log}");
    let states: Vec<AppState> = apps.iter().map(|a| state_of(a).unwrap()).collect();

    let run_dirs: BTreeSet<_> = apps.iter().map(|a| a.ancestors().nth(3).unwrap()).collect();
    assert_eq!(run_dirs.len(), 2, "one run folder each: {apps:?}");
    let indexes: BTreeSet<u32> = states.iter().map(|s| s.run_index).collect();
    assert_eq!(
        indexes,
        BTreeSet::from([FIRST_RUN_INDEX, FIRST_RUN_INDEX + 1]),
        "{log}"
    );
    let repetitions: BTreeSet<u32> = states
        .iter()
        .map(|s| s.loop_record.as_ref().unwrap().repetition)
        .collect();
    assert_eq!(repetitions, BTreeSet::from([1, 2]), "{log}");

    let options = app_options(&env);
    let databases = assert_own_ports_and_databases(&apps, &options);

    for (app, state) in apps.iter().zip(&states) {
        let context = format!("{}\n{log}", app.display());
        assert_generated_and_finished(state, &[(1, 12, 12)], &context);
        assert_costs(app, state);
        let status = bench_app::status(app, &options).unwrap();
        assert!(!status.partly_running(), "{status:?}");
    }
    for database in &databases {
        assert!(
            !env.pg.database_exists(database).unwrap(),
            "{database} left behind"
        );
    }

    // Side by side: each grading started before the other ended.
    let (a, b) = (grade_window(&states[0]), grade_window(&states[1]));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "gradings one after the other: {a:?} {b:?}"
    );

    let loop_id = &states[0].loop_record.as_ref().unwrap().loop_id;
    let data = metrics_data(&env.runs, loop_id);
    let runs = data["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{data:#}");
    assert!(
        runs.iter().all(|r| r["backends"]["postgres"].is_object()),
        "{data:#}"
    );
    assert_eq!(
        data["statistics"]["postgres"]["cost.total"]["n"], 2,
        "{data:#}"
    );
    let level1 = &data["grades_by_level"][0]["postgres"];
    assert_eq!(level1["runs"], 2, "{data:#}");
    assert_eq!(level1["final_score"], 12.0, "{data:#}");
}
