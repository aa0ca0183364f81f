//! Helpers shared by bench-loop's end-to-end tests: the real agent CLI, an embedded OTLP
//! receiver and a throwaway PostgreSQL per test, `bench-loop` run as a process, and what
//! the runs folder holds afterwards.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use bench_formats::{AppState, CostSummary, Outcome, Phase, read_json};
use bench_pg::PgCluster;
use otlp_receiver::{Receiver, ReceiverConfig, ReceiverHandle};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// The real CLI, installed once into target/claude-code (shared with bench-run's tests).
pub fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        bench_runner::agent::install_agent_cli(&target_dir().join("claude-code"))
            .expect("install the agent CLI")
    })
    .clone()
}

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub runs: PathBuf,
    pub receiver: ReceiverHandle,
    pub pg: PgCluster,
}

pub fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let receiver =
        Receiver::start(ReceiverConfig::ephemeral(tmp.path().join("telemetry"))).unwrap();
    let pg = PgCluster::start_temp().expect("a throwaway PostgreSQL cluster");
    Env {
        runs: tmp.path().join("runs"),
        receiver,
        pg,
        tmp,
    }
}

/// `bench-loop` with the test's receiver, database, runs folder and agent CLI, on run
/// indexes no other test uses.
pub fn bench_loop(env: &Env, first_run_index: u32) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench-loop"));
    cmd.current_dir(repo_root())
        .env("CLAUDE_CONFIG_DIR", env.tmp.path().join("claude-config"))
        .env_remove("ANTHROPIC_API_KEY")
        .arg("--otlp-endpoint")
        .arg(env.receiver.http_endpoint())
        .arg("--telemetry-dir")
        .arg(env.receiver.dir())
        .arg("--pg-port")
        .arg(env.pg.port().to_string())
        .arg("--runs-dir")
        .arg(&env.runs)
        .arg("--agent-bin")
        .arg(agent_bin())
        .arg("--first-run-index")
        .arg(first_run_index.to_string())
        .arg("--session-timeout")
        .arg("300");
    cmd
}

/// `bench-loop ARGS --rehearse rehearsal/loop` run to its end: its exit status and its
/// output as text.
pub fn rehearse(env: &Env, first_run_index: u32, args: &[&str]) -> (bool, String) {
    let out = bench_loop(env, first_run_index)
        .args(args)
        .arg("--rehearse")
        .arg(repo_root().join("rehearsal/loop"))
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// [`rehearse`] with one app that must succeed: the log, the app's folder and its state.
pub fn rehearse_one_app(
    env: &Env,
    first_run_index: u32,
    args: &[&str],
) -> (String, PathBuf, AppState) {
    let (ok, log) = rehearse(env, first_run_index, args);
    assert!(ok, "{log}");
    let app = apps(&env.runs).pop().expect("an app folder");
    let state = state_of(&app).unwrap();
    (log, app, state)
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every app folder under the runs folder.
pub fn apps(runs: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(run_dirs) = std::fs::read_dir(runs) else {
        return found;
    };
    for run in run_dirs.flatten() {
        let Ok(backends) = std::fs::read_dir(run.path()) else {
            continue;
        };
        for backend in backends.flatten() {
            if let Ok(results) = std::fs::read_dir(backend.path().join("results")) {
                found.extend(results.flatten().map(|e| e.path()));
            }
        }
    }
    found.sort();
    found
}

pub fn state_of(app: &Path) -> Option<AppState> {
    read_json(&app.join(".bench/state.json")).ok()
}

pub fn session_cost(app: &Path, telemetry_dir: &str) -> CostSummary {
    let backend_dir = app.parent().unwrap().parent().unwrap();
    read_json(&backend_dir.join(telemetry_dir).join("cost-summary.json")).unwrap()
}

/// Each session's cost is what bench-telemetry summarised; a completed one's equals the
/// CLI's own total; a killed one kept what it spent.
pub fn assert_costs(app: &Path, state: &AppState) {
    for s in &state.sessions {
        let cost = session_cost(app, s.telemetry_dir.as_deref().unwrap());
        assert_eq!(s.cost_usd, Some(cost.total_cost_usd), "{}", s.run_id);
        if s.outcome == Outcome::Completed {
            let cli = cost
                .reconciliation
                .as_ref()
                .and_then(|r| r.result.as_ref())
                .map(|r| r.cost_usd)
                .expect("the CLI's own total");
            assert!(
                (cli - cost.total_cost_usd).abs() < 1e-9,
                "{}: {cli} vs {}",
                s.run_id,
                cost.total_cost_usd
            );
        } else {
            assert!(s.cost_usd.is_some_and(|c| c > 0.0), "{s:?}");
        }
    }
}

pub fn phases(state: &AppState) -> Vec<(Phase, u32, Outcome)> {
    state
        .sessions
        .iter()
        .map(|s| (s.phase, s.level, s.outcome))
        .collect()
}

/// An app the loop generated at level 1 and finished after gradings `grades` (level,
/// score, max), without any other session.
pub fn assert_generated_and_finished(state: &AppState, grades: &[(u32, u32, u32)], context: &str) {
    assert_eq!(
        phases(state),
        vec![(Phase::Generate, 1, Outcome::Completed)],
        "{context}"
    );
    let rec = state.loop_record.as_ref().unwrap();
    assert_eq!(
        rec.status,
        bench_formats::loop_record::LoopStatus::Finished,
        "{context}"
    );
    let got: Vec<(u32, u32, u32)> = rec
        .grades
        .iter()
        .map(|g| (g.level, g.score, g.max))
        .collect();
    assert_eq!(got, grades, "{context}");
}

pub fn app_options(env: &Env) -> bench_app::AppOptions {
    let mut options = bench_app::AppOptions::new(&repo_root());
    options
        .overrides
        .insert("pg_port".into(), env.pg.port().to_string());
    options
}
