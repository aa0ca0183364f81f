//! bench-clean on a run folder: what it lists, and that acting drops the app's database on a
//! real PostgreSQL and removes only generated folders (unless --purge).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bench_formats::AppState;
use bench_loop::clean::{Action, plan};
use bench_pg::PgCluster;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `runs/<run>/postgres/results/chat-app-x` with sources, generated folders and records.
fn fake_run(runs: &Path, run_index: u32) -> (PathBuf, PathBuf) {
    let run = runs.join("sequential-upgrade-20261201");
    let app = run.join("postgres/results/chat-app-x");
    for dir in [
        "server/node_modules/pg",
        "client/node_modules/vite",
        "client/dist",
        "server/src",
    ] {
        std::fs::create_dir_all(app.join(dir)).unwrap();
    }
    std::fs::write(app.join("server/src/index.ts"), "// the app\n").unwrap();
    std::fs::create_dir_all(run.join("postgres/telemetry/postgres-level1-x")).unwrap();
    let state = AppState {
        backend: "postgres".into(),
        level: 1,
        run_index,
        ..AppState::default()
    };
    std::fs::create_dir_all(app.join(".bench")).unwrap();
    bench_formats::write_json(&app.join(".bench/state.json"), &state).unwrap();
    (run, app.canonicalize().unwrap())
}

#[test]
fn cleaning_drops_the_database_and_removes_only_generated_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let (run, app) = fake_run(&runs, 47);
    let pg = PgCluster::start_temp().unwrap();
    pg.create_database("chat_run47").unwrap();
    let overrides = BTreeMap::from([("pg_port".to_owned(), pg.port().to_string())]);

    let actions = plan(&repo_root(), std::slice::from_ref(&runs), false, &overrides).unwrap();
    let expected = vec![
        Action::DropDatabase {
            app: app.clone(),
            database: "chat_run47".into(),
        },
        Action::Remove(app.join("client/dist")),
        Action::Remove(app.join("client/node_modules")),
        Action::Remove(app.join("server/node_modules")),
    ];
    let mut sorted = actions.clone();
    sorted[1..].sort_by_key(|a| a.to_string());
    assert_eq!(sorted, expected);

    bench_loop::clean::drop_database(&repo_root(), &app, &overrides).unwrap();
    assert!(!pg.database_exists("chat_run47").unwrap());

    let purge = plan(&repo_root(), std::slice::from_ref(&runs), true, &overrides).unwrap();
    assert_eq!(
        purge.last(),
        Some(&Action::Purge(run.canonicalize().unwrap()))
    );
    // Planning touched nothing.
    assert!(app.join("client/node_modules/vite").is_dir());
    assert!(run.join("postgres/telemetry/postgres-level1-x").is_dir());
}
