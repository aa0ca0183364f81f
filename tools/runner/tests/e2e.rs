//! End to end with the real Claude Code CLI, driven offline by rehearsal scripts: real tool
//! calls in a temporary run folder, real telemetry into an embedded OTLP receiver on free
//! ports, and the cost reconciled against the CLI's own total.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bench_formats::{AppState, CostSummary, Outcome, Phase, SessionMetadata, read_json};
use bench_runner::{Cancel, ModelSource, RunOptions, SessionReport, Task, TelemetrySink};
use otlp_receiver::{Receiver, ReceiverConfig, ReceiverHandle};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The real CLI, installed once into target/claude-code (shared by all test processes).
fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"));
        bench_runner::agent::install_agent_cli(&target.join("claude-code"))
            .expect("install the agent CLI")
    })
    .clone()
}

struct Env {
    _tmp: tempfile::TempDir,
    runs: PathBuf,
    config: PathBuf,
    receiver: ReceiverHandle,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let receiver =
        Receiver::start(ReceiverConfig::ephemeral(tmp.path().join("telemetry"))).unwrap();
    Env {
        runs: tmp.path().join("runs"),
        config: tmp.path().join("claude-config"),
        receiver,
        _tmp: tmp,
    }
}

fn rehearsal(name: &str) -> PathBuf {
    repo_root().join("rehearsal").join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn options(env: &Env, task: Task, script: PathBuf) -> RunOptions {
    RunOptions {
        task,
        root: repo_root(),
        runs_dir: env.runs.clone(),
        variant: None,
        rules: None,
        run_index: None,
        model: "claude-sonnet-4-6".into(),
        max_budget_usd: None,
        timeout: Some(Duration::from_secs(120)),
        agent_bin: agent_bin(),
        models: ModelSource::Rehearsal(script),
        telemetry: TelemetrySink {
            endpoint: env.receiver.http_endpoint(),
            protocol: "http/json".into(),
            dir: env.receiver.dir().to_path_buf(),
        },
        ui_contracts: true,
        show_progress: false,
        cancel: Cancel::new(),
        flush_wait: Duration::from_secs(15),
        extra_env: vec![("CLAUDE_CONFIG_DIR".into(), env.config.display().to_string())],
    }
}

fn generate(backend: &str) -> Task {
    Task::Generate {
        backend: backend.into(),
        level: 1,
    }
}

/// The session's cost summary equals the CLI's own total, and the three sources agree.
fn assert_reconciled(report: &SessionReport) -> CostSummary {
    let summary: CostSummary = read_json(&report.session_dir.join("cost-summary.json")).unwrap();
    let cli = report
        .cli_total_cost_usd
        .expect("the CLI printed its result");
    assert!(cli > 0.0);
    assert!(
        (summary.total_cost_usd - cli).abs() < 1e-9,
        "cost {} vs CLI total {cli}",
        summary.total_cost_usd
    );
    let rec = summary.reconciliation.as_ref().unwrap();
    assert_eq!(rec.status, "ok", "{rec:?}");
    assert_eq!(summary.session_id, report.session_id);
    summary
}

fn metadata(report: &SessionReport) -> SessionMetadata {
    read_json(&report.session_dir.join("metadata.json")).unwrap()
}

#[test]
fn generate_upgrade_and_fix_a_rehearsed_app() {
    let env = env();

    // Generate level 1.
    let gen_report = bench_runner::run_session(&options(
        &env,
        generate("postgres"),
        rehearsal("generate-l1.toml"),
    ))
    .unwrap();
    assert_eq!(gen_report.outcome, "completed", "{gen_report:?}");
    assert!(gen_report.marker_seen);
    let app = gen_report.app_dir.clone();
    assert!(app.join("package.json").is_file());
    assert!(app.join("server/index.ts").is_file());
    assert!(app.join("client/index.html").is_file());
    assert!(app.join("build-check.txt").is_file(), "the Bash tool ran");
    assert!(
        app.join("CLAUDE.md").is_file(),
        "the backend guide was placed"
    );
    assert!(gen_report.run_id.starts_with("postgres-level1-"));
    let backend_dir = app.parent().unwrap().parent().unwrap();
    assert!(backend_dir.ends_with("postgres"));
    assert!(
        backend_dir
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sequential-upgrade-")
    );
    let gen_cost = assert_reconciled(&gen_report);
    assert_eq!(gen_cost.api_calls, 5);
    let meta = metadata(&gen_report);
    assert_eq!(meta.phase, Some(Phase::Generate));
    assert_eq!(meta.level, Some(1));
    assert_eq!(meta.outcome, Some(Outcome::Completed));
    assert_eq!(meta.exit_code, Some(0));
    assert_eq!(meta.completion_marker_seen, Some(true));
    assert!(
        meta.agent_cli_version
            .as_deref()
            .unwrap()
            .contains("Claude Code")
    );
    assert!(meta.content_version.as_deref().unwrap().len() == 64);
    assert_eq!(
        meta.session_id.as_deref(),
        Some(gen_report.session_id.as_str())
    );
    let transcript =
        std::fs::read_to_string(gen_report.session_dir.join("transcript.jsonl")).unwrap();
    assert!(
        transcript
            .lines()
            .last()
            .unwrap()
            .contains("\"type\":\"result\"")
    );
    assert!(gen_report.session_dir.join("prompt.md").is_file());
    let trace =
        std::fs::read_to_string(gen_report.session_dir.join("harness-trace.jsonl")).unwrap();
    for step in ["preflight", "prompt assembly", "agent session", "telemetry"] {
        assert!(
            trace.contains(&format!("\"name\":\"{step}\"")),
            "{step} in {trace}"
        );
    }
    let inputs = backend_dir.join("inputs").join(&gen_report.run_id);
    let manifest = std::fs::read_to_string(inputs.join("SHA256SUMS")).unwrap();
    assert!(manifest.contains("  prompt.md\n"), "{manifest}");
    assert!(
        manifest.contains("content/levels/levels.toml"),
        "{manifest}"
    );

    // Skipping a level is refused, and leaves nothing behind.
    let skip = Task::Upgrade {
        app_dir: app.clone(),
        level: 3,
        composed: false,
        resume: false,
        force: false,
    };
    let err = format!(
        "{:#}",
        bench_runner::run_session(&options(&env, skip, rehearsal("upgrade-l2.toml"))).unwrap_err()
    );
    assert!(err.contains("skip level 2"), "{err}");

    // Fixing without a bug report is refused.
    let fix = Task::Fix {
        app_dir: app.clone(),
        composed: false,
        resume: false,
    };
    let err = format!(
        "{:#}",
        bench_runner::run_session(&options(&env, fix.clone(), rehearsal("fix.toml"))).unwrap_err()
    );
    assert!(err.contains("BUG_REPORT.md"), "{err}");

    // Upgrade to level 2, forking the generate session.
    let upgrade = Task::Upgrade {
        app_dir: app.clone(),
        level: 2,
        composed: false,
        resume: true,
        force: false,
    };
    let up_report =
        bench_runner::run_session(&options(&env, upgrade, rehearsal("upgrade-l2.toml"))).unwrap();
    assert_eq!(up_report.outcome, "completed", "{up_report:?}");
    assert!(up_report.run_id.starts_with("postgres-upgrade-to-level2-"));
    assert!(
        app.join("level-1/server/index.ts").is_file(),
        "level-1 snapshot"
    );
    assert!(!app.join("level-1/.bench").exists());
    let snap = std::fs::read_to_string(app.join("level-1/server/index.ts")).unwrap();
    assert!(
        snap.contains("Level 1"),
        "the snapshot holds the level-1 code"
    );
    let now = std::fs::read_to_string(app.join("server/index.ts")).unwrap();
    assert!(now.contains("Level 2"), "the Edit tool ran: {now}");
    assert!(app.join("server/typing.ts").is_file());
    assert_reconciled(&up_report);
    let up_meta = metadata(&up_report);
    assert_eq!(
        up_meta.extra.get("resumedFrom").and_then(|v| v.as_str()),
        Some(gen_report.session_id.as_str())
    );
    let state: AppState = read_json(&app.join(".bench/state.json")).unwrap();
    assert_eq!(state.level, 2);

    // Repeating level 2 is refused.
    let again = Task::Upgrade {
        app_dir: app.clone(),
        level: 2,
        composed: false,
        resume: false,
        force: false,
    };
    let err = format!(
        "{:#}",
        bench_runner::run_session(&options(&env, again, rehearsal("upgrade-l2.toml"))).unwrap_err()
    );
    assert!(err.contains("repeat"), "{err}");

    // Fix at level 2.
    std::fs::write(
        app.join("BUG_REPORT.md"),
        "# Bugs\n\n1. The typing indicator never goes away.\n",
    )
    .unwrap();
    let fix_report = bench_runner::run_session(&options(&env, fix, rehearsal("fix.toml"))).unwrap();
    assert_eq!(fix_report.outcome, "completed", "{fix_report:?}");
    assert!(
        fix_report.run_id.starts_with("postgres-fix-level2-"),
        "{}",
        fix_report.run_id
    );
    assert_eq!(metadata(&fix_report).level, Some(2));
    assert_eq!(metadata(&fix_report).phase, Some(Phase::Fix));
    // The bug report the fix was given is kept with the session's inputs.
    let kept = fix_report
        .session_dir
        .parent()
        .and_then(|telemetry| telemetry.parent())
        .unwrap()
        .join("inputs")
        .join(&fix_report.run_id)
        .join("BUG_REPORT.md");
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        "# Bugs\n\n1. The typing indicator never goes away.\n"
    );
    assert!(
        std::fs::read_to_string(app.join("ITERATION_LOG.md"))
            .unwrap()
            .contains("level 2")
    );
    assert_reconciled(&fix_report);

    let state: AppState = read_json(&app.join(".bench/state.json")).unwrap();
    assert_eq!(state.level, 2);
    let phases: Vec<(Phase, u32, &str)> = state
        .sessions
        .iter()
        .map(|s| (s.phase, s.level, s.outcome.as_str()))
        .collect();
    assert_eq!(
        phases,
        [
            (Phase::Generate, 1, "completed"),
            (Phase::Upgrade, 2, "completed"),
            (Phase::Fix, 2, "completed")
        ]
    );
    assert!(
        state
            .sessions
            .iter()
            .all(|s| s.cost_usd.unwrap_or(0.0) > 0.0)
    );
}

#[test]
fn parallel_runs_against_one_receiver_keep_their_costs_apart() {
    let env = env();
    let mut first = options(&env, generate("postgres"), rehearsal("generate-l1.toml"));
    first.run_index = Some(0);
    let mut second = options(&env, generate("postgres"), fixture("generate-small.toml"));
    second.run_index = Some(1);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| bench_runner::run_session(&first));
        let b = s.spawn(|| bench_runner::run_session(&second));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_eq!(a.outcome, "completed");
    assert_eq!(b.outcome, "completed");
    let ca = assert_reconciled(&a);
    let cb = assert_reconciled(&b);
    assert_eq!(ca.api_calls, 5);
    assert_eq!(cb.api_calls, 2);
    assert!((ca.total_cost_usd - cb.total_cost_usd).abs() > 1e-6);
    // Each app is a run of its own (one app per backend in a run folder, so reports never
    // add the two together), with its own ports and databases.
    let run_of = |app: &std::path::Path| app.ancestors().nth(3).unwrap().to_path_buf();
    assert_ne!(run_of(&a.app_dir), run_of(&b.app_dir));
    assert_eq!(run_of(&a.app_dir).parent(), run_of(&b.app_dir).parent());
    for app in [&a.app_dir, &b.app_dir] {
        assert_eq!(std::fs::read_dir(app.parent().unwrap()).unwrap().count(), 1);
    }
    let (ma, mb) = (metadata(&a), metadata(&b));
    assert_ne!(ma.vite_port, mb.vite_port);
    assert_ne!(ma.pg_database, mb.pg_database);
    let written = std::fs::read_to_string(b.app_dir.join("run-1.txt")).unwrap();
    assert!(
        written.contains(&mb.vite_port.unwrap().to_string()),
        "{written}"
    );
}

#[test]
fn a_session_stopped_midway_keeps_its_cost_and_says_how_it_ended() {
    let env = env();
    let mut opts = options(&env, generate("postgres"), fixture("slow.toml"));
    // Long enough for the first two calls even on a loaded machine; the third never comes.
    opts.timeout = Some(Duration::from_secs(20));
    let report = bench_runner::run_session(&opts).unwrap();
    assert_eq!(report.outcome, "timeout");
    assert!(
        !report.marker_seen,
        "{}",
        std::fs::read_to_string(report.session_dir.join("transcript.jsonl")).unwrap()
    );
    assert!(report.app_dir.join("started.txt").is_file());
    let meta = metadata(&report);
    assert_eq!(meta.outcome, Some(Outcome::Timeout));
    assert_eq!(meta.completion_marker_seen, Some(false));
    assert!(meta.ended_at_utc.is_some());
    // The two calls made before the stop are costed from the telemetry.
    let summary: CostSummary = read_json(&report.session_dir.join("cost-summary.json")).unwrap();
    assert_eq!(summary.api_calls, 2, "{summary:?}");
    assert!(summary.total_cost_usd > 0.0);
    let state: AppState = read_json(&report.app_dir.join(".bench/state.json")).unwrap();
    assert_eq!(state.level, 0, "an unfinished generate reaches no level");
    assert_eq!(state.sessions[0].outcome, "timeout");

    // Generated again in the same folder: the first session's files are set aside and its
    // record and cost stay; the app reaches its level.
    let task = Task::Regenerate {
        app_dir: report.app_dir.clone(),
    };
    let again =
        bench_runner::run_session(&options(&env, task, rehearsal("generate-l1.toml"))).unwrap();
    assert_eq!(again.outcome, "completed");
    assert_eq!(again.app_dir, report.app_dir);
    assert_reconciled(&again);
    let state: AppState = read_json(&report.app_dir.join(".bench/state.json")).unwrap();
    let sessions: Vec<(Phase, u32, Outcome)> = state
        .sessions
        .iter()
        .map(|s| (s.phase, s.level, s.outcome))
        .collect();
    assert_eq!(
        sessions,
        vec![
            (Phase::Generate, 1, Outcome::Timeout),
            (Phase::Generate, 1, Outcome::Completed),
        ]
    );
    assert_eq!(state.level, 1);
    assert_eq!(state.sessions[0].cost_usd, Some(summary.total_cost_usd));
    let set_aside = report
        .app_dir
        .join(".bench/cut-off")
        .join(&report.run_id)
        .join("started.txt");
    assert!(set_aside.is_file(), "{}", set_aside.display());
    assert!(!report.app_dir.join("started.txt").exists());
    // A completed generate is not generated again.
    let task = Task::Regenerate {
        app_dir: report.app_dir.clone(),
    };
    let err = format!(
        "{:#}",
        bench_runner::run_session(&options(&env, task, rehearsal("generate-l1.toml"))).unwrap_err()
    );
    assert!(err.contains("cannot be generated again"), "{err}");
}

#[test]
fn bad_requests_fail_clearly_and_write_nothing() {
    let env = env();
    let err = format!(
        "{:#}",
        bench_runner::run_session(&options(
            &env,
            generate("oracle"),
            rehearsal("generate-l1.toml")
        ))
        .unwrap_err()
    );
    assert!(err.contains("unknown backend"), "{err}");
    assert!(err.contains("postgres"), "lists the known ones: {err}");

    let missing = env.runs.join("nowhere/results/chat-app-1");
    let task = Task::Fix {
        app_dir: missing,
        composed: false,
        resume: false,
    };
    let err = format!(
        "{:#}",
        bench_runner::run_session(&options(&env, task, rehearsal("fix.toml"))).unwrap_err()
    );
    assert!(err.contains("does not exist"), "{err}");

    // A rehearsal script with a placeholder the backend has no value for.
    let script = env.config.with_file_name("express.toml");
    std::fs::write(
        &script,
        "[[turn]]\ntext = \"port {{express_port}} DEPLOY_COMPLETE\"\n",
    )
    .unwrap();
    let err = format!(
        "{:#}",
        bench_runner::run_session(&options(&env, generate("spacetime"), script)).unwrap_err()
    );
    assert!(err.contains("express_port"), "{err}");
    assert!(!env.runs.exists(), "nothing was written");
}

/// Waits for a file matching `dir/*/name` and returns it.
fn wait_for(dir: &Path, name: &str, limit: Duration) -> PathBuf {
    let start = std::time::Instant::now();
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path().join(name);
                if p.exists() {
                    return p;
                }
            }
        }
        assert!(start.elapsed() < limit, "no {name} under {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_agent_killed_from_outside_is_recorded_as_killed_with_its_cost_so_far() {
    let env = env();
    let opts = options(&env, generate("postgres"), fixture("slow.toml"));
    let telemetry = env.runs.clone();
    let report = std::thread::scope(|s| {
        let run = s.spawn(|| bench_runner::run_session(&opts));
        // The agent is busy in `sleep 120` once started.txt exists; give its telemetry
        // export (every second) time to carry the two calls made so far, then kill it.
        let day = wait_for(&telemetry, "postgres", Duration::from_secs(60));
        let started = wait_for(&day.join("results"), "started.txt", Duration::from_secs(60));
        assert!(started.is_file());
        let pid_file = wait_for(&day.join("telemetry"), "agent.pid", Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(4));
        let pid: i32 = std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Signals one process this test's session started.
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
        run.join().unwrap().unwrap()
    });
    assert_eq!(report.outcome, "killed");
    let meta = metadata(&report);
    assert_eq!(meta.outcome, Some(Outcome::Killed));
    assert_eq!(meta.exit_code, Some(128 + 9));
    assert_eq!(meta.extra["signal"], 9);
    assert_eq!(meta.completion_marker_seen, Some(false));
    let summary: CostSummary = read_json(&report.session_dir.join("cost-summary.json")).unwrap();
    assert_eq!(summary.api_calls, 2, "{summary:?}");
    assert!(summary.total_cost_usd > 0.0);
    assert!(!report.session_dir.join("agent.pid").exists());
    // The agent's `sleep 120` ran in a process group of its own: it was stopped too.
    assert_eq!(
        meta.extra["leftoverProcessesStopped"]
            .as_u64()
            .map(|n| n >= 1),
        Some(true)
    );
    assert!(
        no_process_works_in(&report.app_dir),
        "a process still works in the app folder"
    );
}

/// Whether no process has its working directory in `dir` (Linux /proc).
fn no_process_works_in(dir: &Path) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .all(|e| std::fs::read_link(e.path().join("cwd")).map_or(true, |cwd| !cwd.starts_with(dir)))
}

#[test]
fn an_interrupted_session_is_finalized_as_interrupted() {
    let env = env();
    let opts = options(&env, generate("postgres"), fixture("slow.toml"));
    let cancel = opts.cancel.clone();
    let runs = env.runs.clone();
    let report = std::thread::scope(|s| {
        let run = s.spawn(|| bench_runner::run_session(&opts));
        // Interrupt once the agent is inside its long Bash call, as a user would.
        let day = wait_for(&runs, "postgres", Duration::from_secs(60));
        let transcript = wait_for(
            &day.join("telemetry"),
            "transcript.jsonl",
            Duration::from_secs(60),
        );
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&transcript)
            .unwrap()
            .contains("\"subtype\":\"task_started\"")
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the Bash call never started"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cancel.cancel();
        run.join().unwrap().unwrap()
    });
    assert_eq!(report.outcome, "interrupted");
    assert!(!report.marker_seen);
    // Stopped like Ctrl-C: the CLI still printed its result, so the cost reconciles.
    let summary: CostSummary = read_json(&report.session_dir.join("cost-summary.json")).unwrap();
    let transcript = std::fs::read_to_string(report.session_dir.join("transcript.jsonl")).unwrap();
    let cli = report
        .cli_total_cost_usd
        .unwrap_or_else(|| panic!("no result line: {report:?}\n{summary:?}\n{transcript}"));
    assert!((summary.total_cost_usd - cli).abs() < 1e-9, "{summary:?}");
    let state: AppState = read_json(&report.app_dir.join(".bench/state.json")).unwrap();
    assert_eq!(state.sessions[0].outcome, "interrupted");
}

#[test]
fn a_real_session_without_an_api_key_is_refused_before_anything_is_written() {
    let env = env();
    let mut opts = options(&env, generate("postgres"), rehearsal("generate-l1.toml"));
    opts.models = ModelSource::Anthropic;
    // As if unset (an empty value counts as missing), whatever this machine's environment holds.
    opts.extra_env
        .push(("ANTHROPIC_API_KEY".into(), String::new()));
    let err = format!("{:#}", bench_runner::run_session(&opts).unwrap_err());
    assert!(err.contains("ANTHROPIC_API_KEY"), "{err}");
    assert!(err.contains("--rehearse"), "{err}");
    assert!(!env.runs.exists());
}

#[test]
fn a_real_session_stops_at_a_failed_preflight_before_anything_is_written() {
    let env = env();
    let content = bench_content::Content::load(&repo_root()).unwrap();
    // Take the app port of a run index whose port is free now: a real session must not start.
    let backend = content.backend("postgres").unwrap();
    let (run_index, vite, _taken) = (7..40)
        .find_map(|i| {
            let port = backend.ports(i).vite;
            std::net::TcpListener::bind(("127.0.0.1", port))
                .ok()
                .map(|l| (i, port, l))
        })
        .expect("a free app port");
    let mut opts = options(&env, generate("postgres"), rehearsal("generate-l1.toml"));
    opts.models = ModelSource::Anthropic;
    opts.run_index = Some(run_index);
    opts.extra_env
        .push(("ANTHROPIC_API_KEY".into(), "not-a-real-key".into()));
    let err = format!("{:#}", bench_runner::run_session(&opts).unwrap_err());
    assert!(err.contains("preflight"), "{err}");
    assert!(
        err.contains(&vite.to_string()),
        "names the busy port: {err}"
    );
    assert!(!env.runs.exists(), "nothing was written");
}

#[test]
fn the_budget_cap_reaches_the_agent_and_its_stop_is_recorded() {
    let env = env();
    let mut opts = options(&env, generate("postgres"), rehearsal("generate-l1.toml"));
    // The first scripted call alone costs more than this.
    opts.max_budget_usd = Some(0.03);
    let report = bench_runner::run_session(&opts).unwrap();
    assert_eq!(report.outcome, "failed");
    assert_eq!(report.agent_result.as_deref(), Some("error_max_budget_usd"));
    let meta = metadata(&report);
    assert_eq!(meta.extra["agentResultSubtype"], "error_max_budget_usd");
    assert!(meta.exit_code.is_some_and(|c| c != 0));
    // The CLI stops at once, sometimes before its last events are exported: whatever the
    // telemetry holds, the summary's cost is the session's true cost.
    let summary: CostSummary = read_json(&report.session_dir.join("cost-summary.json")).unwrap();
    let cli = report
        .cli_total_cost_usd
        .expect("the CLI printed its result");
    assert!((summary.total_cost_usd - cli).abs() < 1e-9, "{summary:?}");
    assert!(cli > 0.03);
    // Events the CLI never exported are told apart from sources that disagree.
    let rec = summary.reconciliation.as_ref().unwrap();
    assert!(
        matches!(rec.status.as_str(), "ok" | "telemetry-incomplete"),
        "{rec:?}"
    );
    let state: AppState = read_json(&report.app_dir.join(".bench/state.json")).unwrap();
    assert_eq!(state.level, 0);
    assert_eq!(state.sessions[0].outcome, "failed");
}

#[test]
fn an_install_whose_install_script_did_not_run_is_repaired() {
    // What npm 11 can leave: the package is there, but its install script never put the
    // native binary in place of the placeholder. Hard links keep the copy cheap.
    let installed = agent_bin();
    let cache = installed
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("agent-cli");
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(cache)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let placeholder = copy.join("node_modules/@anthropic-ai/claude-code/bin/claude.exe");
    std::fs::remove_file(&placeholder).unwrap();
    std::fs::write(
        &placeholder,
        "#!/bin/sh\necho 'run install.cjs first' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &placeholder,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let bin = bench_runner::agent::installed_bin(&copy);
    assert!(bench_runner::agent::agent_version(&bin).is_err());

    let repaired = bench_runner::agent::install_agent_cli(&copy).unwrap();
    assert_eq!(repaired, bin);
    let version = bench_runner::agent::agent_version(&bin).unwrap();
    assert!(version.contains("Claude Code"), "{version}");
}
