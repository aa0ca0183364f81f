//! One benchmark session from start to finish, as a [`Session`] whose steps are methods:
//! [`Session::plan`] (nothing written yet), [`Session::preflight`],
//! [`Session::claim_folders`], [`Session::record_start`], [`Session::prepare_inputs`],
//! [`Session::run_agent`], [`Session::finalize`], [`Session::cost`] and
//! [`Session::update_state`]. [`run_session`] runs them in order; a driver may run them one
//! by one. Once the session is recorded as started, it always ends recorded — as failed if a
//! step fails — through [`Records`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_content::Content;
use bench_formats::files::PROMPT_FILE;
use bench_formats::{AppState, CostSummary, Outcome, Phase, Rules, SessionMetadata, Variant};
use opentelemetry::KeyValue;

use crate::layout::{self, AppLock};
use crate::plan::{AppPlace, Plan};
use crate::records::{Folders, Moment, Records};
use crate::session::{self, AgentExit, AgentInvocation, Cancel};
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
    /// Generate again, in the same folder, an app whose generate session ended without
    /// completing (killed, interrupted, failed, timed out): what that session left is set
    /// aside under `.bench/cut-off/<run id>/`, and its record and cost stay in the app's state.
    Regenerate { app_dir: PathBuf },
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

    /// The environment that makes a Claude Code session export its telemetry here, tagged
    /// with `resource` (`OTEL_RESOURCE_ATTRIBUTES`, e.g. `run.id=…,session.id=…`); with `api`,
    /// the session talks to that scripted Messages API at no cost instead of the real one.
    pub fn agent_env(&self, resource: &str, api: Option<&str>) -> Vec<(String, String)> {
        let pairs = [
            ("CLAUDE_CODE_ENABLE_TELEMETRY", "1"),
            ("OTEL_LOGS_EXPORTER", "otlp"),
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", &self.protocol),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &self.endpoint),
            ("OTEL_LOGS_EXPORT_INTERVAL", "1000"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "2000"),
            ("OTEL_METRICS_INCLUDE_SESSION_ID", "true"),
            ("OTEL_RESOURCE_ATTRIBUTES", resource),
            ("DISABLE_AUTOUPDATER", "1"),
        ];
        let mut env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if bench_proc::effective_uid_is_root() {
            env.push(("IS_SANDBOX".into(), "1".into()));
        }
        if let Some(url) = api {
            env.push(("ANTHROPIC_BASE_URL".into(), url.to_owned()));
            env.push(("ANTHROPIC_API_KEY".into(), "rehearsal-no-cost".into()));
            env.push((
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
                "1".into(),
            ));
        }
        env
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
    pub variant: Option<Variant>,
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
    pub outcome: Outcome,
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
        self.outcome.succeeded()
    }
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
fn agent_env(extra_env: &[(String, String)], name: &str) -> Option<String> {
    match extra_env.iter().rev().find(|(k, _)| k == name) {
        Some((_, v)) => Some(v.clone()),
        None => std::env::var(name).ok(),
    }
}

/// A real (paid) session needs the user's API key in the agent's environment.
pub fn require_api_key(extra_env: &[(String, String)]) -> Result<()> {
    if agent_env(extra_env, "ANTHROPIC_API_KEY").is_none_or(|v| v.is_empty()) {
        bail!(
            "ANTHROPIC_API_KEY is not set: export your Anthropic API key to run a real (paid) session, or add --rehearse rehearsal/generate-l1.toml for a zero-cost rehearsal"
        );
    }
    Ok(())
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
    runtime.block_on(async { Session::plan(opts)?.run().await })
}

/// One session, planned and checked; nothing is written until [`Session::claim_folders`].
/// An existing app is locked for the session's whole life (a second session on it is
/// refused).
pub struct Session {
    opts: RunOptions,
    content: Content,
    plan: Plan,
    script: Option<scripted_api::Script>,
    _lock: Option<AppLock>,
}

/// What the preflight found, and when it ran (for the harness trace).
pub struct PreflightResult {
    pub agent_version: String,
    pub warnings: Vec<String>,
    started: std::time::SystemTime,
    ended: std::time::SystemTime,
}

/// The agent's inputs, ready: its prompt and (for a rehearsal) the scripted API it talks to.
pub struct Prepared {
    prompt: String,
    api: Option<scripted_api::ScriptedApiHandle>,
}

/// How the agent ran, and the tally that followed its telemetry.
pub struct AgentRun {
    pub exit: AgentExit,
    pub outcome: Outcome,
    tally: Arc<Mutex<bench_telemetry::LiveTally>>,
    logs_file: PathBuf,
    metrics_file: PathBuf,
}

/// What costing gave: the summary written to `cost-summary.json`, or why there is none.
pub struct Costed {
    pub cost: Option<CostSummary>,
    pub error: Option<String>,
}

impl Session {
    /// Plans the session, before anything is written: the content loads, the backend and
    /// levels are valid, the app (locked) allows it, the rehearsal script has a value for
    /// every placeholder or the API key is set.
    pub fn plan(opts: &RunOptions) -> Result<Session> {
        let content = Content::load(&opts.root).with_context(|| {
            format!(
                "cannot load the benchmark content under {}",
                opts.root.display()
            )
        })?;
        let mut plan = Plan::make(opts, &content)?;
        // Planned again under the lock, so the level checks see a state no other session
        // is changing.
        let lock = match &plan.app {
            AppPlace::Existing(app) => {
                let lock = layout::lock_app(&app.app_dir)?;
                plan = Plan::make(opts, &content)?;
                Some(lock)
            }
            AppPlace::New { .. } => None,
        };
        let script = match &opts.models {
            ModelSource::Rehearsal(path) => Some(load_script(path, &content, &plan)?),
            ModelSource::Anthropic => {
                require_api_key(&opts.extra_env)?;
                None
            }
        };
        Ok(Session {
            opts: opts.clone(),
            content,
            plan,
            script,
            _lock: lock,
        })
    }

    pub fn plan_of(&self) -> &Plan {
        &self.plan
    }

    fn rehearsal(&self) -> bool {
        self.script.is_some()
    }

    /// Runs every step in order.
    pub async fn run(self) -> Result<SessionReport> {
        self.run_with(|_, _| Ok(())).await
    }

    /// Runs every step in order, calling `claimed` once the session's folders exist and
    /// before it is recorded as started (a driver adds its own record to the app's state
    /// there, or takes a lock of its own on the app).
    pub async fn run_with(
        self,
        claimed: impl FnOnce(&Folders, &mut AppState) -> Result<()>,
    ) -> Result<SessionReport> {
        let preflight = self.preflight()?;
        let (folders, mut state) = self.claim_folders()?;
        claimed(&folders, &mut state)?;
        let mut rec = self.record_start(folders, state, &preflight)?;
        let prepared = match self.prepare_inputs(&rec).await {
            Ok(p) => p,
            Err(e) => {
                rec.fail(&e)?;
                return Err(e);
            }
        };
        let run = match self.run_agent(&rec, prepared).await {
            Ok(run) => run,
            Err(e) => {
                rec.fail(&e)?;
                return Err(e);
            }
        };
        self.finalize(&mut rec, &run)?;
        let costed = self.cost(&rec, &run).await;
        self.update_state(&mut rec, &costed)?;
        Ok(self.close(rec, run, costed))
    }

    /// Before anything is written: the agent CLI runs, node/npm are there, the backend's
    /// tools and database answer, the app's ports are free. A rehearsal only warns: it
    /// runs no app.
    pub fn preflight(&self) -> Result<PreflightResult> {
        let started = std::time::SystemTime::now();
        let ports = self.backend()?.ports(self.plan.run_index);
        let app_ports: Vec<u16> = [Some(ports.vite), ports.express, ports.spacetime]
            .into_iter()
            .flatten()
            .collect();
        let agent_bin = &self.opts.agent_bin;
        let agent_version = crate::agent::agent_version(agent_bin).with_context(|| {
            format!(
                "the agent CLI {} does not run (pass --agent-bin, or remove .bench/agent-cli to reinstall)",
                agent_bin.display()
            )
        })?;
        let checks =
            bench_infra::preflight(self.backend()?, self.plan.run_index, agent_bin, &app_ports)?;
        let warnings = if self.rehearsal() {
            checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect()
        } else {
            bench_infra::require(&checks)?;
            Vec::new()
        };
        if self.opts.show_progress {
            for w in &warnings {
                eprintln!("preflight (rehearsal, not required): {w}");
            }
        }
        Ok(PreflightResult {
            agent_version,
            warnings,
            started,
            ended: std::time::SystemTime::now(),
        })
    }

    fn backend(&self) -> Result<&bench_content::Backend> {
        self.content.backend(&self.plan.backend)
    }

    /// Claims the session's folders — a new app's run folder and app folder, and the
    /// session's `telemetry/<run-id>` — and picks its ids. From here on, files are written.
    pub fn claim_folders(&self) -> Result<(Folders, AppState)> {
        let plan = &self.plan;
        let now = chrono::Local::now();
        let ts = layout::stamp(&now);
        let (app_dir, backend_dir, state) = match &plan.app {
            AppPlace::New { date } => {
                let backend_dir = layout::backend_dir_for_new_app(
                    &self.opts.runs_dir,
                    plan.variant.as_str(),
                    date,
                    &plan.backend,
                )?;
                let app_dir = layout::create_app_dir(&backend_dir, &ts)?;
                let state = AppState {
                    backend: plan.backend.clone(),
                    level: 0,
                    variant: plan.variant,
                    rules: plan.rules,
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
        let wanted = layout::run_id(&plan.backend, plan.phase, plan.level, &ts);
        let (session_dir, run_id) = layout::create_session_dir(&backend_dir, &wanted)?;
        let folders = Folders {
            app_dir,
            backend_dir,
            session_dir,
            run_id,
            session_id: uuid::Uuid::new_v4().to_string(),
            started: now,
        };
        Ok((folders, state))
    }

    /// Starts the harness trace, writes the session's metadata and records it in the app's
    /// state as running (so a crash still shows it).
    pub fn record_start(
        &self,
        folders: Folders,
        state: AppState,
        preflight: &PreflightResult,
    ) -> Result<Records> {
        self.announce(&folders);
        let plan = &self.plan;
        let trace = HarnessTrace::start(
            &folders.session_dir,
            &format!("bench-run {}", plan.phase),
            preflight.started,
            vec![
                KeyValue::new("run.id", folders.run_id.clone()),
                KeyValue::new("session.id", folders.session_id.clone()),
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
        let meta = self.start_metadata(&folders, preflight)?;
        Records::begin(folders, meta, state, trace, plan.phase, plan.level)
    }

    fn announce(&self, folders: &Folders) {
        if !self.opts.show_progress {
            return;
        }
        let plan = &self.plan;
        let source = match &self.opts.models {
            ModelSource::Rehearsal(path) => format!("rehearsal {}", path.display()),
            ModelSource::Anthropic => format!("model {}", self.opts.model),
        };
        eprintln!(
            "session {}: {} level {} · {} · rules {} · run index {} · {source}",
            folders.run_id, plan.phase, plan.level, plan.backend, plan.rules, plan.run_index
        );
        eprintln!("  app {}", folders.app_dir.display());
        eprintln!("  records {}", folders.session_dir.display());
    }

    /// The metadata a session starts with: what it was asked to do, with what.
    fn start_metadata(
        &self,
        folders: &Folders,
        preflight: &PreflightResult,
    ) -> Result<SessionMetadata> {
        let (plan, opts) = (&self.plan, &self.opts);
        let backend = self.backend()?;
        let ports = backend.ports(plan.run_index);
        let database = backend.database_name(plan.run_index);
        let start = Moment::of(&folders.started);
        let mut meta = SessionMetadata {
            level: Some(plan.level),
            backend: Some(plan.backend.clone()),
            timestamp: Some(layout::stamp(&folders.started)),
            started_at: Some(start.local),
            started_at_utc: Some(start.utc),
            run_id: Some(folders.run_id.clone()),
            app_dir: Some(folders.app_dir.display().to_string()),
            prompt_file: Some(PROMPT_FILE.to_owned()),
            phase: Some(plan.phase),
            variant: Some(plan.variant),
            rules: Some(plan.rules),
            test_mode: Some("none".to_owned()),
            run_index: Some(plan.run_index),
            vite_port: Some(ports.vite),
            express_port: ports.express,
            // The original harness's field: the database of a backend on PostgreSQL.
            pg_database: backend
                .file
                .services
                .iter()
                .any(|s| s == bench_formats::infra::POSTGRES.name)
                .then(|| database.clone()),
            session_id: Some(folders.session_id.clone()),
            mode: Some(plan.phase),
            model: Some(opts.model.clone()),
            agent_cli_version: Some(preflight.agent_version.clone()),
            harness_version: Some(harness_version(&opts.root)),
            content_version: Some(self.content.version().to_owned()),
            completion_marker: Some(plan.phase.completion_marker().to_owned()),
            outcome: Some(Outcome::Running),
            ..SessionMetadata::default()
        };
        let mut extra = |key: &str, value: serde_json::Value| {
            meta.extra.insert(key.to_owned(), value);
        };
        extra("database", serde_json::json!(database));
        if let Some(p) = ports.spacetime {
            extra("spacetimePort", serde_json::json!(p));
        }
        if let Some(previous) = &plan.resume_from {
            extra("resumedFrom", serde_json::json!(previous));
        }
        extra("rehearsal", serde_json::json!(self.rehearsal()));
        if let Some(dir) = agent_env(&opts.extra_env, "CLAUDE_CONFIG_DIR") {
            extra("agentConfigDir", serde_json::json!(dir));
        }
        if !preflight.warnings.is_empty() {
            extra("preflightWarnings", serde_json::json!(preflight.warnings));
        }
        Ok(meta)
    }

    /// The level snapshot (upgrades), the prompt and its inputs folder, and for a rehearsal
    /// the scripted API.
    pub async fn prepare_inputs(&self, rec: &Records) -> Result<Prepared> {
        let folders = &rec.folders;
        crate::prepare::set_aside_cut_off(&self.plan, &folders.app_dir, &rec.trace)?;
        // The level snapshot comes first: it must hold the app as the previous level left it.
        crate::prepare::level_snapshot(&self.plan, &folders.app_dir, &rec.trace)?;
        let prompt =
            crate::prepare::prompt(&self.opts, &self.content, &self.plan, folders, &rec.trace)?;
        let api = match &self.script {
            None => None,
            Some(script) => {
                let vars = crate::prepare::script_vars(&self.content, &self.plan, folders)?;
                let api =
                    crate::prepare::scripted_api(script, &vars, &folders.session_dir, &rec.trace)
                        .await?;
                Some(api)
            }
        };
        Ok(Prepared { prompt, api })
    }

    /// Runs the agent to its end, following its telemetry for the progress line.
    pub async fn run_agent(&self, rec: &Records, prepared: Prepared) -> Result<AgentRun> {
        let Prepared { prompt, api } = prepared;
        let folders = &rec.folders;
        let invocation = self.invocation(folders, prompt, api.as_ref().map(|a| a.url.as_str()));
        let (logs_file, metrics_file) = self.opts.telemetry.session_files(&folders.session_id);
        // One tally follows the session's log file from the first byte to the final flush.
        let tally = Arc::new(Mutex::new(bench_telemetry::LiveTally::new(
            Some(&folders.session_id),
            Some(&folders.run_id),
        )));
        let probe = cost_probe(&tally, &logs_file);

        let mut step = rec.trace.step("agent session");
        step.set("agent.cli", self.opts.agent_bin.display().to_string());
        step.set("model", self.opts.model.clone());
        let (cancel, progress) = (&self.opts.cancel, self.opts.show_progress);
        let exit = session::run_agent(&invocation, cancel, Some(probe), progress).await;
        if let Some(api) = api {
            api.shutdown().await;
        }
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) => {
                step.end_err(&format!("{e:#}"));
                return Err(e);
            }
        };
        let outcome = exit.outcome();
        step.set("outcome", outcome.as_str());
        step.set("turns", exit.live.assistant_messages as i64);
        if let Some(code) = exit.exit_code {
            step.set("exit_code", i64::from(code));
        }
        if outcome.succeeded() {
            step.end_ok();
        } else {
            step.end_err(&format!("agent session ended: {outcome}"));
        }
        Ok(AgentRun {
            exit,
            outcome,
            tally,
            logs_file,
            metrics_file,
        })
    }

    /// The agent's command line and environment.
    fn invocation(&self, folders: &Folders, prompt: String, api: Option<&str>) -> AgentInvocation {
        let opts = &self.opts;
        AgentInvocation {
            agent_bin: opts.agent_bin.clone(),
            app_dir: folders.app_dir.clone(),
            session_dir: folders.session_dir.clone(),
            prompt,
            model: opts.model.clone(),
            session_id: folders.session_id.clone(),
            resume_from: self.plan.resume_from.clone(),
            max_budget_usd: opts.max_budget_usd,
            timeout: opts.timeout,
            env: agent_environment(opts, folders, api),
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
            marker: self.plan.phase.completion_marker().to_owned(),
            extra_args: Vec::new(),
        }
    }

    /// Ends the session's records: how the agent ended, when, and what it showed.
    pub fn finalize(&self, rec: &mut Records, run: &AgentRun) -> Result<()> {
        let exit = &run.exit;
        rec.end(
            run.outcome,
            &exit.ended,
            exit.exit_code.or(exit.signal.map(|s| 128 + s)),
        );
        let meta = &mut rec.meta;
        meta.completion_marker_seen = Some(exit.live.marker_seen);
        meta.wall_clock_sec = Some((exit.wall_clock.as_secs_f64() * 1000.0).round() / 1000.0);
        let mut extra = |key: &str, value: serde_json::Value| {
            meta.extra.insert(key.to_owned(), value);
        };
        if let Some(sig) = exit.signal {
            extra("signal", serde_json::json!(sig));
        }
        if let Some(v) = &exit.live.cli_version {
            extra("agentCliReportedVersion", serde_json::json!(v));
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
                    extra(to, v.clone());
                }
            }
        }
        extra(
            "assistantMessages",
            serde_json::json!(exit.live.assistant_messages),
        );
        extra("toolCalls", serde_json::json!(exit.live.tool_calls));
        if exit.leftovers_stopped > 0 {
            extra(
                "leftoverProcessesStopped",
                serde_json::json!(exit.leftovers_stopped),
            );
        }
        rec.write_metadata()
    }

    /// Waits for the agent's last telemetry export, then accounts for the session.
    pub async fn cost(&self, rec: &Records, run: &AgentRun) -> Costed {
        let mut step = rec.trace.step("telemetry");
        crate::costing::wait_for_flush(
            [&run.logs_file, &run.metrics_file],
            &run.tally,
            run.exit.live.result_cost(),
            self.opts.flush_wait,
        )
        .await;
        let costed = crate::costing::summarize(
            &rec.folders.session_dir,
            &self.opts.telemetry,
            &run.logs_file,
            &run.metrics_file,
        );
        match costed {
            Ok(summary) => {
                step.set("cost_usd", summary.total_cost_usd);
                step.set("api_calls", summary.api_calls as i64);
                if let Some(r) = &summary.reconciliation {
                    step.set("reconciliation", r.status.as_str());
                }
                step.end_ok();
                Costed {
                    cost: Some(summary),
                    error: None,
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                step.end_err(&msg);
                Costed {
                    cost: None,
                    error: Some(msg),
                }
            }
        }
    }

    /// Saves the app's state with the session's outcome, cost and the level it reached.
    pub fn update_state(&self, rec: &mut Records, costed: &Costed) -> Result<()> {
        rec.set_cost(costed.cost.as_ref().map(|c| c.total_cost_usd));
        rec.save_state()
    }

    /// Closes the trace and says what the session left.
    pub fn close(&self, rec: Records, run: AgentRun, costed: Costed) -> SessionReport {
        let outcome = run.outcome;
        let mut attrs = vec![KeyValue::new("outcome", outcome.as_str())];
        if let Some(c) = &costed.cost {
            attrs.push(KeyValue::new("cost_usd", c.total_cost_usd));
        }
        let error = (!outcome.succeeded()).then(|| format!("agent session ended: {outcome}"));
        rec.trace.finish(attrs, error.as_deref());
        let live = run.exit.live;
        SessionReport {
            run_id: rec.folders.run_id,
            session_id: rec.folders.session_id,
            phase: self.plan.phase,
            level: self.plan.level,
            app_dir: rec.folders.app_dir,
            session_dir: rec.folders.session_dir,
            outcome,
            exit_code: rec.meta.exit_code,
            marker: self.plan.phase.completion_marker().to_owned(),
            marker_seen: live.marker_seen,
            cost: costed.cost,
            cost_error: costed.error,
            cli_total_cost_usd: live.result_cost(),
            agent_result: live
                .result
                .as_ref()
                .and_then(|r| r.get("subtype"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Loads a rehearsal script and checks that every placeholder it uses has a value.
fn load_script(path: &Path, content: &Content, plan: &Plan) -> Result<scripted_api::Script> {
    let script = scripted_api::Script::load(path)?;
    let backend = content.backend(&plan.backend)?;
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
    Ok(script)
}

/// The agent's environment for one session: telemetry tagged with the run and session ids;
/// for a rehearsal, the scripted API at `api`; the options' extra variables last.
fn agent_environment(
    opts: &RunOptions,
    folders: &Folders,
    api: Option<&str>,
) -> Vec<(String, String)> {
    let resource = format!(
        "run.id={},session.id={}",
        folders.run_id, folders.session_id
    );
    let mut env = opts.telemetry.agent_env(&resource, api);
    env.extend(opts.extra_env.iter().cloned());
    env
}

/// What the progress line shows as the cost so far: the tally of the session's log file.
fn cost_probe(
    tally: &Arc<Mutex<bench_telemetry::LiveTally>>,
    logs_file: &Path,
) -> session::CostProbe {
    let tally = Arc::clone(tally);
    let logs_file = logs_file.to_path_buf();
    Arc::new(move || {
        let mut t = tally.lock().ok()?;
        t.poll_file(&logs_file).ok()?;
        let snap = t.snapshot();
        (snap.api_calls > 0).then_some(snap.cost_usd)
    })
}
