//! One benchmark session from start to finish: where it goes, what the agent is told, the
//! agent run itself, and the records it leaves (metadata, state, snapshots, cost).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_content::{Content, PromptRequest, Rules};
use bench_formats::state::SessionRecord;
use bench_formats::{AppState, CostSummary, Phase, SessionMetadata};
use opentelemetry::KeyValue;

use crate::layout::{self, ExistingApp};
use crate::session::{self, AgentInvocation, Cancel, Ending};
use crate::snapshot;
use crate::trace::HarnessTrace;

/// Placeholders a rehearsal script may use besides the backend's own values.
pub const SESSION_VARS: [&str; 6] = [
    "app_dir",
    "run_id",
    "session_id",
    "level",
    "phase",
    "completion_marker",
];

/// The model used when neither `--model` nor `ANTHROPIC_MODEL` says otherwise.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-6";

/// What kind of session to run.
#[derive(Debug, Clone)]
pub enum Task {
    /// Build a new app at `level`.
    Generate { backend: String, level: u32 },
    /// Take an app to `level`.
    Upgrade {
        app_dir: PathBuf,
        level: u32,
        /// Give the whole spec up to `level` rather than only what it adds.
        composed: bool,
        /// Fork the app's latest agent session instead of starting a fresh one.
        resume: bool,
        /// Allow skipping or repeating a level.
        force: bool,
    },
    /// Fix the bugs in the app's `BUG_REPORT.md`, at the app's current level.
    Fix {
        app_dir: PathBuf,
        composed: bool,
        resume: bool,
    },
}

/// Where the agent's telemetry goes: an OTLP receiver and the folder it writes, with one
/// `sessions/<session id>/{logs,metrics}.jsonl` pair per session.
#[derive(Debug, Clone)]
pub struct TelemetrySink {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:4318`.
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/json`, `http/protobuf` or `grpc`.
    pub protocol: String,
    /// The receiver's telemetry folder.
    pub dir: PathBuf,
}

impl TelemetrySink {
    /// The per-session files the receiver writes for `session_id`.
    pub fn session_files(&self, session_id: &str) -> (PathBuf, PathBuf) {
        let folder = self.dir.join("sessions").join(session_id);
        (folder.join("logs.jsonl"), folder.join("metrics.jsonl"))
    }
}

/// Where the model answers come from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// The real Anthropic API (`ANTHROPIC_API_KEY` must be set).
    Anthropic,
    /// A rehearsal script served by an in-process scripted API: no network, no cost.
    Rehearsal(PathBuf),
}

/// Everything one session needs.
#[derive(Clone)]
pub struct RunOptions {
    pub task: Task,
    /// The repository (content files are read from it).
    pub root: PathBuf,
    /// Where runs are written (`<root>/runs` by default).
    pub runs_dir: PathBuf,
    /// `None`: the app's own (upgrade/fix) or `sequential-upgrade` (generate).
    pub variant: Option<String>,
    /// `None`: the app's own (upgrade/fix) or guided (generate).
    pub rules: Option<Rules>,
    /// `None`: the app's own (upgrade/fix) or 0 (generate).
    pub run_index: Option<u32>,
    pub model: String,
    pub max_budget_usd: Option<f64>,
    pub timeout: Option<Duration>,
    pub agent_bin: PathBuf,
    pub models: ModelSource,
    pub telemetry: TelemetrySink,
    /// Include the UI contract sections in the prompt.
    pub ui_contracts: bool,
    /// Show a spinner while the agent works.
    pub show_progress: bool,
    /// Stops the session early, as Ctrl-C does.
    pub cancel: Cancel,
    /// How long to wait after the agent exits for its last telemetry export.
    pub flush_wait: Duration,
    /// Extra environment for the agent, applied last (e.g. `CLAUDE_CONFIG_DIR`: the command
    /// line gives the agent the harness's own configuration folder).
    pub extra_env: Vec<(String, String)>,
}

/// What a finished session left.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub run_id: String,
    pub session_id: String,
    pub phase: Phase,
    pub level: u32,
    pub app_dir: PathBuf,
    pub session_dir: PathBuf,
    /// `completed`, `failed`, `timeout`, `interrupted`, `killed`.
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub marker: String,
    pub marker_seen: bool,
    /// The cost summary written to `cost-summary.json` (absent only if costing failed).
    pub cost: Option<CostSummary>,
    /// Why costing failed, if it did.
    pub cost_error: Option<String>,
    /// The agent CLI's own total, from its result line.
    pub cli_total_cost_usd: Option<f64>,
    /// The result line's `subtype` (`success`, `error_max_budget_usd`, …), if it printed one.
    pub agent_result: Option<String>,
}

impl SessionReport {
    pub fn succeeded(&self) -> bool {
        self.outcome == "completed"
    }
}

/// What the session is about, worked out before anything is written.
struct Plan {
    phase: Phase,
    backend: String,
    level: u32,
    variant: String,
    rules: Rules,
    run_index: u32,
    app: AppPlace,
    resume_from: Option<String>,
    composed: bool,
}

enum AppPlace {
    /// A new app: its run folder is claimed only when files start being written.
    New {
        date: String,
    },
    Existing(ExistingApp),
}

fn plan(opts: &RunOptions, content: &Content) -> Result<Plan> {
    let max = content.levels().max_level();
    match &opts.task {
        Task::Generate { backend, level } => {
            content.backend(backend)?;
            if *level < 1 || *level > max {
                bail!("--level {level} is out of range: levels go from 1 to {max}");
            }
            let variant = opts
                .variant
                .clone()
                .unwrap_or_else(|| "sequential-upgrade".to_owned());
            let run_index = opts.run_index.unwrap_or(0);
            let date = chrono::Local::now().format("%Y%m%d").to_string();
            Ok(Plan {
                phase: Phase::Generate,
                backend: backend.clone(),
                level: *level,
                variant,
                rules: opts.rules.unwrap_or(Rules::Guided),
                run_index,
                app: AppPlace::New { date },
                resume_from: None,
                composed: true,
            })
        }
        Task::Upgrade {
            app_dir,
            level,
            composed,
            resume,
            force,
        } => {
            let app = layout::open_app(app_dir)?;
            content.backend(&app.state.backend)?;
            if *level < 2 || *level > max {
                bail!("--level {level} is out of range for an upgrade: 2 to {max}");
            }
            let current = app.state.level;
            if !force && *level != current + 1 {
                if *level <= current {
                    bail!(
                        "{} is already at level {current}: upgrading to level {level} would repeat a level (pass --force to do it anyway)",
                        app.app_dir.display()
                    );
                }
                bail!(
                    "{} is at level {current}: upgrading to level {level} would skip level {} (upgrade one level at a time, or pass --force)",
                    app.app_dir.display(),
                    current + 1
                );
            }
            let plan = existing_plan(opts, app, Phase::Upgrade, *level, *composed, *resume)?;
            Ok(plan)
        }
        Task::Fix {
            app_dir,
            composed,
            resume,
        } => {
            let app = layout::open_app(app_dir)?;
            content.backend(&app.state.backend)?;
            let report = app.app_dir.join("BUG_REPORT.md");
            if !report.is_file() {
                bail!(
                    "{} has no BUG_REPORT.md: write the bugs to fix into {} first (grading/templates/BUG_REPORT.md shows the format)",
                    app.app_dir.display(),
                    report.display()
                );
            }
            if app.state.level == 0 {
                bail!(
                    "{} has no completed level yet (its generate session did not finish): generate or upgrade it before fixing",
                    app.app_dir.display()
                );
            }
            let level = app.state.level;
            existing_plan(opts, app, Phase::Fix, level, *composed, *resume)
        }
    }
}

fn existing_plan(
    opts: &RunOptions,
    app: ExistingApp,
    phase: Phase,
    level: u32,
    composed: bool,
    resume: bool,
) -> Result<Plan> {
    if let Some(i) = opts.run_index
        && i != app.state.run_index
    {
        bail!(
            "--run-index {i} does not match the app's run index {} (leave --run-index out for upgrades and fixes)",
            app.state.run_index
        );
    }
    let rules = match opts.rules {
        Some(r) => r,
        None => Rules::parse(&app.state.rules).with_context(|| {
            format!(
                "the app's state has rules {:?}, which is not guided, standard or minimal: pass --rules",
                app.state.rules
            )
        })?,
    };
    let resume_from = if resume {
        Some(
            app.state
                .latest_session_id()
                .with_context(|| {
                    format!(
                        "--resume-session: {} has no earlier agent session to fork",
                        app.app_dir.display()
                    )
                })?
                .to_owned(),
        )
    } else {
        None
    };
    Ok(Plan {
        phase,
        backend: app.state.backend.clone(),
        level,
        variant: opts
            .variant
            .clone()
            .unwrap_or_else(|| app.state.variant.clone()),
        rules,
        run_index: app.state.run_index,
        resume_from,
        composed,
        app: AppPlace::Existing(app),
    })
}

/// The harness's version: crate version plus the repository's commit when known.
pub fn harness_version(root: &Path) -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty());
    match commit {
        Some(c) => format!("bench-runner {} ({c})", env!("CARGO_PKG_VERSION")),
        None => format!("bench-runner {}", env!("CARGO_PKG_VERSION")),
    }
}

/// A variable as the agent will see it: `extra_env` first, else the harness's environment.
fn agent_env(opts: &RunOptions, name: &str) -> Option<String> {
    match opts.extra_env.iter().rev().find(|(k, _)| k == name) {
        Some((_, v)) => Some(v.clone()),
        None => std::env::var(name).ok(),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Runs one session. Errors before the agent starts (bad options, unknown backend, missing
/// app or bug report) leave nothing behind. Once the session folder exists, the session is
/// always finalized — metadata, state and cost — whatever happens to the agent, and the
/// report says how it ended.
///
/// It runs its own async runtime: call it from plain (non-async) code.
pub fn run_session(opts: &RunOptions) -> Result<SessionReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_session_async(opts))
}

async fn run_session_async(opts: &RunOptions) -> Result<SessionReport> {
    let content = Content::load(&opts.root).with_context(|| {
        format!(
            "cannot load the benchmark content under {}",
            opts.root.display()
        )
    })?;
    let mut plan = plan(opts, &content)?;
    // An existing app is held for the whole session, and planned again under the lock so
    // the level checks see the state no other session is changing.
    let _app_lock = match &plan.app {
        AppPlace::Existing(app) => {
            let lock = layout::lock_app(&app.app_dir)?;
            plan = self::plan(opts, &content)?;
            Some(lock)
        }
        AppPlace::New { .. } => None,
    };
    let backend = content.backend(&plan.backend)?;
    let script = match &opts.models {
        ModelSource::Rehearsal(path) => {
            let script = scripted_api::Script::load(path)?;
            // Every placeholder must have a value before anything is written.
            let mut known: Vec<String> = backend.vars(plan.run_index).into_keys().collect();
            known.extend(SESSION_VARS.iter().map(|s| (*s).to_owned()));
            let unknown: Vec<String> = script
                .placeholders()
                .into_iter()
                .filter(|p| !known.contains(p))
                .collect();
            if !unknown.is_empty() {
                bail!(
                    "rehearsal script {} uses placeholders the {} backend has no value for: {} (known: {})",
                    path.display(),
                    plan.backend,
                    unknown.join(", "),
                    known.join(", ")
                );
            }
            Some(script)
        }
        ModelSource::Anthropic => {
            if agent_env(opts, "ANTHROPIC_API_KEY").is_none_or(|v| v.is_empty()) {
                bail!(
                    "ANTHROPIC_API_KEY is not set: export your Anthropic API key to run a real (paid) session, or add --rehearse rehearsal/generate-l1.toml for a zero-cost rehearsal"
                );
            }
            None
        }
    };

    // Preflight, before anything is written: the agent CLI runs, node/npm are there, the
    // backend's tools and database answer, the app's ports are free. A rehearsal only warns:
    // it runs no app.
    let ports = backend.ports(plan.run_index);
    let rehearsal = matches!(opts.models, ModelSource::Rehearsal(_));
    let preflight = preflight(opts, &plan.backend, &ports, rehearsal)?;
    if opts.show_progress {
        for w in &preflight.warnings {
            eprintln!("preflight (rehearsal, not required): {w}");
        }
    }

    // From here on, files are written.
    let now = chrono::Local::now();
    let ts = layout::stamp(&now);
    let (app_dir, backend_dir, mut state) = match &plan.app {
        AppPlace::New { date } => {
            let backend_dir = layout::backend_dir_for_new_app(
                &opts.runs_dir,
                &plan.variant,
                date,
                &plan.backend,
            )?;
            let app_dir = layout::create_app_dir(&backend_dir, &ts)?;
            let state = AppState {
                backend: plan.backend.clone(),
                level: 0,
                variant: plan.variant.clone(),
                rules: plan.rules.as_str().to_owned(),
                run_index: plan.run_index,
                ..AppState::default()
            };
            (app_dir, backend_dir, state)
        }
        AppPlace::Existing(app) => (
            app.app_dir.clone(),
            app.backend_dir.clone(),
            app.state.clone(),
        ),
    };
    let (session_dir, run_id) = layout::create_session_dir(
        &backend_dir,
        &layout::run_id(&plan.backend, plan.phase, plan.level, &ts),
    )?;
    let session_id = uuid::Uuid::new_v4().to_string();
    let marker = plan.phase.completion_marker().to_owned();
    if opts.show_progress {
        let source = match &opts.models {
            ModelSource::Rehearsal(path) => format!("rehearsal {}", path.display()),
            ModelSource::Anthropic => format!("model {}", opts.model),
        };
        eprintln!(
            "session {run_id}: {} level {} · {} · rules {} · run index {} · {source}",
            plan.phase, plan.level, plan.backend, plan.rules, plan.run_index
        );
        eprintln!("  app {}", app_dir.display());
        eprintln!("  records {}", session_dir.display());
    }

    let trace = HarnessTrace::start(
        &session_dir,
        &format!("bench-run {}", plan.phase),
        preflight.started,
        vec![
            KeyValue::new("run.id", run_id.clone()),
            KeyValue::new("session.id", session_id.clone()),
            KeyValue::new("backend", plan.backend.clone()),
            KeyValue::new("phase", plan.phase.as_str()),
            KeyValue::new("level", i64::from(plan.level)),
            KeyValue::new("run_index", i64::from(plan.run_index)),
        ],
    )?;

    trace.record_step(
        "preflight",
        preflight.started,
        preflight.ended,
        vec![KeyValue::new(
            "warnings",
            i64::try_from(preflight.warnings.len()).unwrap_or(i64::MAX),
        )],
    );
    let agent_version = preflight.agent_version.clone();
    let preflight_warnings = preflight.warnings.clone();

    let database = backend.database_name(plan.run_index);
    let mut meta = SessionMetadata {
        level: Some(plan.level),
        backend: Some(plan.backend.clone()),
        timestamp: Some(ts.clone()),
        started_at: Some(now.format("%Y-%m-%dT%H:%M:%S%z").to_string()),
        started_at_utc: Some(
            now.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        ),
        run_id: Some(run_id.clone()),
        app_dir: Some(app_dir.display().to_string()),
        prompt_file: Some("prompt.md".to_owned()),
        phase: Some(plan.phase),
        variant: Some(plan.variant.clone()),
        rules: Some(plan.rules.as_str().to_owned()),
        test_mode: Some("none".to_owned()),
        run_index: Some(plan.run_index),
        vite_port: Some(ports.vite),
        express_port: ports.express,
        pg_database: (plan.backend == "postgres").then(|| database.clone()),
        session_id: Some(session_id.clone()),
        mode: Some(plan.phase.as_str().to_owned()),
        model: Some(opts.model.clone()),
        agent_cli_version: Some(agent_version.clone()),
        harness_version: Some(harness_version(&opts.root)),
        content_version: Some(content.version().to_owned()),
        completion_marker: Some(marker.clone()),
        outcome: Some("running".to_owned()),
        ..SessionMetadata::default()
    };
    meta.extra
        .insert("database".to_owned(), serde_json::json!(database));
    if let Some(p) = ports.spacetime {
        meta.extra
            .insert("spacetimePort".to_owned(), serde_json::json!(p));
    }
    if let Some(previous) = &plan.resume_from {
        meta.extra
            .insert("resumedFrom".to_owned(), serde_json::json!(previous));
    }
    meta.extra
        .insert("rehearsal".to_owned(), serde_json::json!(rehearsal));
    if let Some(dir) = agent_env(opts, "CLAUDE_CONFIG_DIR") {
        meta.extra
            .insert("agentConfigDir".to_owned(), serde_json::json!(dir));
    }
    if !preflight_warnings.is_empty() {
        meta.extra.insert(
            "preflightWarnings".to_owned(),
            serde_json::json!(preflight_warnings),
        );
    }
    let meta_path = session_dir.join("metadata.json");
    bench_formats::write_json(&meta_path, &meta)?;

    // The app's state records the session before it runs, so a crash still shows it.
    let started_utc = meta.started_at_utc.clone().unwrap_or_default();
    state.sessions.push(SessionRecord {
        phase: plan.phase,
        level: plan.level,
        run_id: run_id.clone(),
        session_id: Some(session_id.clone()),
        outcome: "running".to_owned(),
        exit_code: None,
        cost_usd: None,
        started_at_utc: started_utc,
        ended_at_utc: None,
        telemetry_dir: Some(format!("telemetry/{run_id}")),
    });
    layout::save_state(&app_dir, &state)?;

    // Everything that can still fail before the agent starts is caught here, so the
    // session is finalized (as failed) rather than left half-written.
    let prepared = prepare(
        opts,
        &content,
        &plan,
        &trace,
        &app_dir,
        &backend_dir,
        &session_dir,
        &run_id,
        &session_id,
        script.as_ref(),
    )
    .await;
    let (prompt_text, api) = match prepared {
        Ok(p) => p,
        Err(e) => {
            record_failure(&mut meta, &meta_path, &mut state, &app_dir, trace, &e)?;
            return Err(e);
        }
    };

    // The agent's environment.
    let resource = format!("run.id={run_id},session.id={session_id}");
    let mut env: Vec<(String, String)> = vec![
        ("CLAUDE_CODE_ENABLE_TELEMETRY".into(), "1".into()),
        ("OTEL_LOGS_EXPORTER".into(), "otlp".into()),
        ("OTEL_METRICS_EXPORTER".into(), "otlp".into()),
        ("OTEL_TRACES_EXPORTER".into(), "none".into()),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".into(),
            opts.telemetry.protocol.clone(),
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            opts.telemetry.endpoint.clone(),
        ),
        ("OTEL_LOGS_EXPORT_INTERVAL".into(), "1000".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL".into(), "2000".into()),
        ("OTEL_METRICS_INCLUDE_SESSION_ID".into(), "true".into()),
        ("OTEL_RESOURCE_ATTRIBUTES".into(), resource),
        ("DISABLE_AUTOUPDATER".into(), "1".into()),
    ];
    if is_root() {
        env.push(("IS_SANDBOX".into(), "1".into()));
    }
    if let Some(api) = &api {
        env.push(("ANTHROPIC_BASE_URL".into(), api.url.clone()));
        env.push(("ANTHROPIC_API_KEY".into(), "rehearsal-no-cost".into()));
        env.push((
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
            "1".into(),
        ));
    }
    env.extend(opts.extra_env.iter().cloned());

    let invocation = AgentInvocation {
        agent_bin: opts.agent_bin.clone(),
        app_dir: app_dir.clone(),
        session_dir: session_dir.clone(),
        prompt: prompt_text,
        model: opts.model.clone(),
        session_id: session_id.clone(),
        resume_from: plan.resume_from.clone(),
        max_budget_usd: opts.max_budget_usd,
        timeout: opts.timeout,
        env,
        env_remove: if api.is_some() {
            // A rehearsal must never reach the real API with the user's credentials.
            vec![
                "ANTHROPIC_AUTH_TOKEN".into(),
                "CLAUDE_CODE_USE_BEDROCK".into(),
                "CLAUDE_CODE_USE_VERTEX".into(),
            ]
        } else {
            vec![]
        },
        marker: marker.clone(),
    };
    let (logs_file, metrics_file) = opts.telemetry.session_files(&session_id);
    // One tally follows the session's log file from the first byte to the final flush.
    let tally = Arc::new(std::sync::Mutex::new(bench_telemetry::LiveTally::new(
        Some(&session_id),
        Some(&run_id),
    )));
    let probe: session::CostProbe = {
        let tally = Arc::clone(&tally);
        let logs_file = logs_file.clone();
        Arc::new(move || {
            let mut t = tally.lock().ok()?;
            t.poll_file(&logs_file).ok()?;
            let snap = t.snapshot();
            (snap.api_calls > 0).then_some(snap.cost_usd)
        })
    };

    let mut agent_step = trace.step("agent session");
    agent_step.set("agent.cli", opts.agent_bin.display().to_string());
    agent_step.set("model", opts.model.clone());
    let exit = session::run_agent(&invocation, &opts.cancel, Some(probe), opts.show_progress).await;
    if let Some(api) = api {
        api.shutdown().await;
    }
    let exit = match exit {
        Ok(exit) => exit,
        Err(e) => {
            agent_step.end_err(&format!("{e:#}"));
            record_failure(&mut meta, &meta_path, &mut state, &app_dir, trace, &e)?;
            return Err(e);
        }
    };
    let outcome = match exit.ending {
        Ending::Timeout => "timeout",
        Ending::Interrupted => "interrupted",
        Ending::Exited if exit.signal.is_some() => "killed",
        Ending::Exited if exit.exit_code == Some(0) && exit.live.marker_seen => "completed",
        Ending::Exited => "failed",
    };
    agent_step.set("outcome", outcome);
    agent_step.set("turns", exit.live.assistant_messages as i64);
    if let Some(code) = exit.exit_code {
        agent_step.set("exit_code", i64::from(code));
    }
    if outcome == "completed" {
        agent_step.end_ok();
    } else {
        agent_step.end_err(&format!("agent session ended: {outcome}"));
    }

    meta.ended_at = Some(exit.ended.format("%Y-%m-%dT%H:%M:%S%z").to_string());
    meta.ended_at_utc = Some(
        exit.ended
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    meta.exit_code = exit.exit_code.or(exit.signal.map(|s| 128 + s));
    meta.completion_marker_seen = Some(exit.live.marker_seen);
    meta.outcome = Some(outcome.to_owned());
    meta.wall_clock_sec = Some((exit.wall_clock.as_secs_f64() * 1000.0).round() / 1000.0);
    if let Some(sig) = exit.signal {
        meta.extra
            .insert("signal".to_owned(), serde_json::json!(sig));
    }
    if let Some(v) = &exit.live.cli_version {
        meta.extra
            .insert("agentCliReportedVersion".to_owned(), serde_json::json!(v));
    }
    // The CLI's own timings, from its result line.
    if let Some(result) = &exit.live.result {
        for (from, to) in [
            ("duration_ms", "agentDurationMs"),
            ("duration_api_ms", "agentApiDurationMs"),
            ("num_turns", "agentNumTurns"),
            ("subtype", "agentResultSubtype"),
        ] {
            if let Some(v) = result.get(from) {
                meta.extra.insert(to.to_owned(), v.clone());
            }
        }
    }
    meta.extra.insert(
        "assistantMessages".to_owned(),
        serde_json::json!(exit.live.assistant_messages),
    );
    meta.extra.insert(
        "toolCalls".to_owned(),
        serde_json::json!(exit.live.tool_calls),
    );
    if exit.leftovers_stopped > 0 {
        meta.extra.insert(
            "leftoverProcessesStopped".to_owned(),
            serde_json::json!(exit.leftovers_stopped),
        );
    }
    bench_formats::write_json(&meta_path, &meta)?;

    // Cost: wait for the agent's last export, then account for the session.
    let mut cost_step = trace.step("telemetry");
    wait_for_flush(
        [&logs_file, &metrics_file],
        &tally,
        exit.live.result_cost(),
        opts.flush_wait,
    )
    .await;
    let costed = summarize(&session_dir, &opts.telemetry, &logs_file, &metrics_file);
    let (cost, cost_error) = match costed {
        Ok(summary) => {
            cost_step.set("cost_usd", summary.total_cost_usd);
            cost_step.set("api_calls", summary.api_calls as i64);
            if let Some(r) = &summary.reconciliation {
                cost_step.set("reconciliation", r.status.clone());
            }
            cost_step.end_ok();
            (Some(summary), None)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            cost_step.end_err(&msg);
            (None, Some(msg))
        }
    };

    // The app's state: the session's outcome, and the level it reached.
    if let Some(rec) = state.sessions.last_mut() {
        rec.outcome = outcome.to_owned();
        rec.exit_code = meta.exit_code;
        rec.cost_usd = cost.as_ref().map(|c| c.total_cost_usd);
        rec.ended_at_utc = meta.ended_at_utc.clone();
    }
    if outcome == "completed" && plan.phase != Phase::Fix {
        state.level = plan.level;
    }
    layout::save_state(&app_dir, &state)?;

    let mut final_attrs = vec![KeyValue::new("outcome", outcome)];
    if let Some(c) = &cost {
        final_attrs.push(KeyValue::new("cost_usd", c.total_cost_usd));
    }
    trace.finish(
        final_attrs,
        (outcome != "completed").then_some(&*format!("agent session ended: {outcome}")),
    );

    Ok(SessionReport {
        run_id,
        session_id,
        phase: plan.phase,
        level: plan.level,
        app_dir,
        session_dir,
        outcome: outcome.to_owned(),
        exit_code: meta.exit_code,
        marker,
        marker_seen: exit.live.marker_seen,
        cost,
        cost_error,
        cli_total_cost_usd: exit.live.result_cost(),
        agent_result: exit
            .live
            .result
            .as_ref()
            .and_then(|r| r.get("subtype"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
    })
}

/// Records a session that failed before its agent ran to an end: metadata and the app's
/// state say "failed", with the error and the time it ended; the trace is closed.
fn record_failure(
    meta: &mut SessionMetadata,
    meta_path: &Path,
    state: &mut AppState,
    app_dir: &Path,
    trace: HarnessTrace,
    error: &anyhow::Error,
) -> Result<()> {
    let message = format!("{error:#}");
    meta.outcome = Some("failed".to_owned());
    meta.extra
        .insert("error".to_owned(), serde_json::json!(message));
    let end = chrono::Local::now();
    meta.ended_at = Some(end.format("%Y-%m-%dT%H:%M:%S%z").to_string());
    meta.ended_at_utc = Some(
        end.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    bench_formats::write_json(meta_path, meta)?;
    if let Some(rec) = state.sessions.last_mut() {
        rec.outcome = "failed".to_owned();
        rec.ended_at_utc = meta.ended_at_utc.clone();
    }
    layout::save_state(app_dir, state)?;
    trace.finish(vec![], Some(&message));
    Ok(())
}

/// What the preflight found, and when it ran (for the harness trace).
struct PreflightResult {
    agent_version: String,
    warnings: Vec<String>,
    started: std::time::SystemTime,
    ended: std::time::SystemTime,
}

fn preflight(
    opts: &RunOptions,
    backend: &str,
    ports: &bench_content::Ports,
    rehearsal: bool,
) -> Result<PreflightResult> {
    let started = std::time::SystemTime::now();
    let app_ports: Vec<u16> = [Some(ports.vite), ports.express, ports.spacetime]
        .into_iter()
        .flatten()
        .collect();
    let agent_version = crate::agent::agent_version(&opts.agent_bin).with_context(|| {
        format!(
            "the agent CLI {} does not run (pass --agent-bin, or remove .bench/agent-cli to reinstall)",
            opts.agent_bin.display()
        )
    })?;
    let checks = bench_infra::preflight(backend, &opts.agent_bin, &app_ports)?;
    let warnings = if rehearsal {
        checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect()
    } else {
        bench_infra::require(&checks)?;
        Vec::new()
    };
    Ok(PreflightResult {
        agent_version,
        warnings,
        started,
        ended: std::time::SystemTime::now(),
    })
}

/// Prompt assembly, snapshots and (for rehearsals) the scripted API.
#[allow(clippy::too_many_arguments)]
async fn prepare(
    opts: &RunOptions,
    content: &Content,
    plan: &Plan,
    trace: &HarnessTrace,
    app_dir: &Path,
    backend_dir: &Path,
    session_dir: &Path,
    run_id: &str,
    session_id: &str,
    script: Option<&scripted_api::Script>,
) -> Result<(String, Option<scripted_api::ScriptedApiHandle>)> {
    let backend = content.backend(&plan.backend)?;
    let app_text = app_dir.display().to_string();

    // The level snapshot comes first: it must hold the app as the previous level left it.
    if plan.phase == Phase::Upgrade
        && let AppPlace::Existing(app) = &plan.app
    {
        let name = format!("level-{}", app.state.level);
        trace.in_step("snapshot", || {
            let dst = app_dir.join(&name);
            if dst.exists() {
                // A repeated upgrade keeps the first snapshot of that level.
                return Ok(());
            }
            snapshot::copy_tree(app_dir, &dst, &snapshot::excluded_from_app_snapshot)
                .map(|_| ())
                .with_context(|| format!("cannot snapshot {} into {name}", app_dir.display()))
        })?;
    }

    let prompt = trace.in_step("prompt assembly", || {
        let mut vars = BTreeMap::new();
        vars.insert("run_index".to_owned(), plan.run_index.to_string());
        vars.insert("app_dir".to_owned(), app_text.clone());
        let prompt = content.session_prompt(&PromptRequest {
            backend: &plan.backend,
            phase: plan.phase,
            level: plan.level,
            rules: plan.rules,
            composed: plan.composed,
            ui_contracts: opts.ui_contracts,
            vars,
        })?;
        bench_formats::io::write_atomic(&session_dir.join("prompt.md"), prompt.text.as_bytes())?;
        for (rel, text) in &prompt.files {
            let path = app_dir.join(rel);
            bench_formats::io::write_atomic(&path, text.as_bytes())?;
        }
        // The inputs snapshot: what the session was given, with checksums.
        let inputs = backend_dir.join("inputs").join(run_id);
        std::fs::create_dir_all(&inputs)
            .with_context(|| format!("cannot create {}", inputs.display()))?;
        bench_formats::io::write_atomic(&inputs.join("prompt.md"), prompt.text.as_bytes())?;
        for (rel, text) in &prompt.files {
            bench_formats::io::write_atomic(&inputs.join("app-files").join(rel), text.as_bytes())?;
        }
        for rel in &prompt.sources {
            let src = opts.root.join(rel);
            let dst = inputs.join("content").join(rel);
            if let Some(dir) = dst.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} into the inputs", src.display()))?;
        }
        if plan.phase == Phase::Fix {
            // The bug report this fix session was given: the app's copy is rewritten by
            // later gradings, so the report counts bugs per level from this one.
            let report = app_dir.join("BUG_REPORT.md");
            std::fs::copy(&report, inputs.join("BUG_REPORT.md"))
                .with_context(|| format!("cannot copy {} into the inputs", report.display()))?;
        }
        if let ModelSource::Rehearsal(path) = &opts.models {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "script.toml".to_owned());
            std::fs::copy(path, inputs.join(format!("rehearsal-{name}")))
                .with_context(|| format!("cannot copy {} into the inputs", path.display()))?;
        }
        snapshot::write_manifest(&inputs)?;
        Ok(prompt.text)
    })?;

    let api = match script {
        None => None,
        Some(script) => {
            let mut vars = backend.vars(plan.run_index);
            vars.insert("app_dir".to_owned(), app_text.clone());
            vars.insert("run_id".to_owned(), run_id.to_owned());
            vars.insert("session_id".to_owned(), session_id.to_owned());
            vars.insert("level".to_owned(), plan.level.to_string());
            vars.insert("phase".to_owned(), plan.phase.as_str().to_owned());
            vars.insert(
                "completion_marker".to_owned(),
                plan.phase.completion_marker().to_owned(),
            );
            let rendered = script.render(&vars)?;
            let mut step = trace.step("scripted api");
            let started = scripted_api::ScriptedApi::start(
                Some(rendered),
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            )
            .await;
            match started {
                Ok(handle) => {
                    handle.log_requests_to(&session_dir.join("scripted-api-requests.jsonl"))?;
                    step.set("url", handle.url.clone());
                    step.end_ok();
                    Some(handle)
                }
                Err(e) => {
                    step.end_err(&format!("{e:#}"));
                    return Err(e);
                }
            }
        }
    };
    Ok((prompt, api))
}

/// Waits until the agent's final export has reached the session's files: its events cost
/// what the CLI says the session cost, or (the CLI printed no total, or some records never
/// came — a CLI stopping at once may not flush its last events) the files have stopped
/// growing. The agent has exited by now, so nothing arrives late for long. `tally` is the
/// one that followed the logs file during the session: only what came since is read.
async fn wait_for_flush(
    files: [&Path; 2],
    tally: &std::sync::Mutex<bench_telemetry::LiveTally>,
    cli_total: Option<f64>,
    max_wait: Duration,
) {
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut last_lens = None;
    let mut stable_since = tokio::time::Instant::now();
    loop {
        let snap = match tally.lock() {
            Ok(mut t) => {
                let _ = t.poll_file(files[0]);
                Some(t.snapshot())
            }
            Err(_) => None,
        };
        if let Some(total) = cli_total
            && let Some(snap) = snap
            && snap.api_calls > 0
            && (snap.cost_usd - total).abs() <= total.abs() * 1e-9 + 1e-12
        {
            // The metrics export follows its own interval; give it one more beat.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
        let lens = files.map(|f| std::fs::metadata(f).map(|m| m.len()).ok());
        if Some(lens) != last_lens {
            last_lens = Some(lens);
            stable_since = tokio::time::Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(2) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs bench-telemetry on the session's own telemetry files, or, when the receiver does
/// not split by session (an OpenTelemetry Collector in Docker), on its combined files:
/// bench-telemetry picks the session's records out by id either way.
fn summarize(
    session_dir: &Path,
    sink: &TelemetrySink,
    logs_file: &Path,
    metrics_file: &Path,
) -> Result<CostSummary> {
    let mut inputs = bench_telemetry::Inputs::default();
    if logs_file.is_file() || metrics_file.is_file() {
        if logs_file.is_file() {
            inputs.logs.push(logs_file.to_path_buf());
        }
        if metrics_file.is_file() {
            inputs.metrics.push(metrics_file.to_path_buf());
        }
    } else {
        for (name, list) in [
            ("logs.jsonl", &mut inputs.logs),
            ("metrics.jsonl", &mut inputs.metrics),
        ] {
            let combined = sink.dir.join(name);
            if combined.is_file() {
                list.push(combined);
            }
        }
    }
    let empty = inputs.logs.is_empty() && inputs.metrics.is_empty();
    if empty {
        // No export arrived at all: cost the session from an empty telemetry file, so the
        // summary still says so (and carries the CLI's own total, if it printed one).
        bench_formats::io::write_atomic(&session_dir.join(bench_telemetry::RAW_FILE), b"")?;
    }
    let options = bench_telemetry::Options {
        extract_raw: !empty,
        ..bench_telemetry::Options::default()
    };
    let cost = bench_telemetry::summarize(session_dir, &inputs, &options)?;
    Ok(cost.summary)
}
