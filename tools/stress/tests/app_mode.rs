//! `bench-stress --app APP_DIR` end to end, as `cargo xtask bench-stress` runs it: the
//! project's reference app in the harness's layout (`runs/<run>/postgres/results/chat-app-x`
//! with its `.bench/state.json`) on a throwaway PostgreSQL (`--var pg_port=…`), started with
//! bench-app on a fresh database and stopped after the run; then, already running, measured
//! and left running.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bench_app::{AppOptions, Started};
use bench_formats::app_run::{APP_LOGS_DIR, APP_RUN_FILE, AppRun};
use bench_formats::stress::StressResult;
use bench_pg::PgCluster;
use common::{assert_consistent, parse};

/// The app's run index (its ports and database, `chat_run61`); no other test uses it.
const RUN_INDEX: u32 = 61;

/// The reference app at `<tmp>/runs/sequential-upgrade-20260101/postgres/results/chat-app-x`
/// with a state naming backend postgres, level 12 and [`RUN_INDEX`]: (guard, the backend's
/// run folder, the app folder).
fn harness_app() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("app-mode-")
        .tempdir_in(bench_stress::reference::scratch_dir().unwrap())
        .unwrap();
    let backend_dir = tmp.path().join("runs/sequential-upgrade-20260101/postgres");
    let app = backend_dir.join("results/chat-app-x");
    fs::create_dir_all(app.parent().unwrap()).unwrap();
    bench_stress::reference::copy_into(&app).unwrap();
    let state = bench_formats::AppState {
        backend: "postgres".into(),
        level: 12,
        run_index: RUN_INDEX,
        ..Default::default()
    };
    bench_formats::write_json(&app.join(bench_formats::files::STATE_FILE), &state).unwrap();
    (tmp, backend_dir, app)
}

/// `bench-stress --app APP [EXTRA...]` with 4 writers for 5 s, as the CLI runs it.
fn stress_app(app: &Path, extra: &[&str]) {
    let mut argv = vec!["--app", app.to_str().unwrap()];
    argv.extend_from_slice(extra);
    argv.extend(["--writers", "4", "--duration", "5"]);
    bench_stress::cli::run(parse(&argv)).unwrap();
}

/// The result files in `dir`, oldest first (their names end in the UTC time).
fn results(dir: &Path) -> Vec<StressResult> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| bench_formats::read_json(p).unwrap())
        .collect()
}

/// Records what bench-app says runs for the app (`.bench/app-run.json`) while it runs.
struct RunWatcher {
    done: Arc<AtomicBool>,
    thread: JoinHandle<Option<AppRun>>,
}

impl RunWatcher {
    fn start(app: &Path) -> RunWatcher {
        let file = app.join(APP_RUN_FILE);
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let mut seen: Option<AppRun> = None;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(run) = bench_formats::read_json::<AppRun>(&file)
                    && seen
                        .as_ref()
                        .is_none_or(|s| run.processes.len() >= s.processes.len())
                {
                    seen = Some(run);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        });
        RunWatcher { done, thread }
    }

    /// The fullest record seen.
    fn finish(self) -> Option<AppRun> {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Processes working in `dir` (the app's servers run in its `server/` and `client/`).
fn processes_in(dir: &Path) -> Vec<(u32, String)> {
    let dir = dir.canonicalize().unwrap();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(&dir)))
        .map(|pid| (pid, bench_proc::cmdline(pid).unwrap_or_default()))
        .collect()
}

/// Nothing of `run` (nor anything else working in the app's folder) is left, and bench-app
/// sees nothing running.
fn assert_stopped(app: &Path, options: &AppOptions, run: &AppRun) {
    let status = bench_app::status(app, options).unwrap();
    assert!(!status.partly_running(), "{status:?}");
    assert!(
        status.run.is_none(),
        "the run record is removed: {status:?}"
    );
    for p in &run.processes {
        assert!(!bench_proc::group_alive(p.pgid), "{} survived", p.step);
    }
    for (name, port) in &run.ports {
        assert!(bench_proc::port_free(*port), "port {port} ({name}) taken");
    }
    assert_eq!(processes_in(app), [], "processes left in the app's folder");
}

/// Stops the app when the test ends, also when an assertion failed half-way.
struct StopOnDrop<'a>(&'a Path, &'a AppOptions);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = bench_app::stop(self.0, self.1);
    }
}

#[test]
fn an_app_by_its_folder_is_started_measured_and_stopped_and_a_running_one_left_running() {
    let pg = PgCluster::start_temp().unwrap();
    let (_tmp, backend_dir, app) = harness_app();
    let stress_dir = backend_dir.join("stress");
    let pg_var = format!("pg_port={}", pg.port());
    let mut options = AppOptions::new(&common::repo_root());
    options
        .overrides
        .insert("pg_port".into(), pg.port().to_string());
    let _stop = StopOnDrop(&app, &options);
    assert!(!bench_app::status(&app, &options).unwrap().partly_running());

    // Not running: started with bench-app on a fresh database, measured, stopped again.
    let watcher = RunWatcher::start(&app);
    stress_app(&app, &["--var", &pg_var]);
    let seen = watcher.finish().expect("the run started the app");
    assert_eq!(seen.run_index, RUN_INDEX);
    assert_eq!(seen.overrides.get("pg_port"), Some(&pg.port().to_string()));
    let steps: Vec<&str> = seen.processes.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(steps, ["server", "client"]);
    assert!(app.join(APP_LOGS_DIR).join("server.log").is_file());
    assert_stopped(&app, &options, &seen);
    let [first] = &results(&stress_dir)[..] else {
        panic!("one result in {}", stress_dir.display());
    };
    assert_consistent(first);
    let express = 6001 + 100 * RUN_INDEX;
    assert_eq!(first.target.url, format!("http://127.0.0.1:{express}"));
    let db = first.target.db_url.as_deref().unwrap_or_default();
    assert!(
        db.ends_with(&format!(":{}/chat_run{RUN_INDEX}", pg.port())),
        "{db}"
    );
    let notes = first.probe_notes.join("\n");
    assert!(notes.contains("source: read"), "the app's source: {notes}");

    // Running (started here): measured as it is, on the values it was started with, and
    // left running.
    let Started::Started(running) = bench_app::start(&app, &options).unwrap() else {
        panic!("the app was stopped");
    };
    stress_app(&app, &[]);
    let status = bench_app::status(&app, &options).unwrap();
    assert!(status.running(), "left running: {status:?}");
    assert_eq!(status.run.as_ref(), Some(&running), "the same processes");
    assert!(!processes_in(&app).is_empty());
    let all = results(&stress_dir);
    assert_eq!(all.len(), 2, "a second result beside the first");
    assert_consistent(&all[1]);
    assert_eq!(all[1].target.url, first.target.url);
    assert!(bench_app::stop(&app, &options).unwrap() >= 2);
    assert_stopped(&app, &options, &running);
}
