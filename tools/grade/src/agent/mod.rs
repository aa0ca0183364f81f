//! Agent grading (`bench-grade --grader agent`): a headless Claude Code session, run through
//! the runner's agent machinery, with two Playwright MCP servers (`alice`, `bob`) as its only
//! tools besides writing one results file. It is given the same test plans and rubric as the
//! deterministic grader and writes `grading.json` in the same schema, which is checked
//! ([`validate`]) and rendered by the same code ([`crate::output`]). Its cost is accounted
//! like any session's, in the grading's own folder (`.bench/grading/<ts>-level-N/session/`),
//! never with the sessions that built the app.
//!
//! With `--rehearse SCRIPT`, the real CLI talks to the scripted API instead (zero cost): the
//! script's tool calls drive the real browsers (`rehearsal/grade/`).

pub mod cli;
pub mod hybrid;
pub mod mcp;
pub mod prompt;
pub mod session;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench_content::{Feature, Levels};
use bench_formats::grading::{BrowserInfo, GradingFile};
use bench_runner::{ModelSource, TelemetrySink};

use crate::grade::{Graded, Request, Target};
use crate::program::select_features;
use crate::{browser, output};

/// The default rehearsal of `--self-test --grader agent`, relative to the repository root.
pub const SELF_TEST_SCRIPT: &str = "rehearsal/grade/level-1.toml";

/// How the grading session runs.
#[derive(Clone)]
pub struct AgentOptions {
    /// The agent CLI (default: `claude` on PATH, else the harness's own copy).
    pub agent_bin: Option<PathBuf>,
    /// A rehearsal script instead of the real API.
    pub rehearse: Option<PathBuf>,
    pub model: String,
    pub max_budget_usd: Option<f64>,
    pub timeout: Option<Duration>,
    /// Where telemetry goes (default: the embedded infrastructure's receiver).
    pub telemetry: Option<TelemetrySink>,
    /// Where `@playwright/mcp` is installed.
    pub mcp_dir: PathBuf,
    /// Replaces a user's MCP server command (tests: a server that cannot start).
    pub server_overrides: BTreeMap<String, mcp::ServerCommand>,
    pub show_progress: bool,
    /// Environment for the agent, applied last (e.g. `CLAUDE_CONFIG_DIR`; by default the
    /// harness's own `.bench/agent-config`, as for every session, unless the user set one).
    pub extra_env: Vec<(String, String)>,
}

impl AgentOptions {
    /// Defaults for the repository at `root`.
    pub fn new(root: &Path) -> AgentOptions {
        AgentOptions {
            agent_bin: None,
            rehearse: None,
            model: bench_runner::run::DEFAULT_MODEL.into(),
            max_budget_usd: None,
            timeout: Some(Duration::from_secs(45 * 60)),
            telemetry: None,
            mcp_dir: mcp::default_install_dir(root),
            server_overrides: BTreeMap::new(),
            show_progress: true,
            extra_env: Vec::new(),
        }
    }
}

/// A finished agent grading: the files written, and the session that judged.
pub struct AgentGraded {
    pub graded: Graded,
    pub session: session::SessionResult,
    /// MCP tool calls per user, from the transcript.
    pub calls: BTreeMap<String, u32>,
}

/// What the session is given, before it runs.
struct Setup {
    levels: Levels,
    features: Vec<Feature>,
    level: u32,
    out: PathBuf,
    backend: Option<String>,
    browser: PathBuf,
    mcp_main: PathBuf,
}

fn setup(req: &Request, opts: &AgentOptions) -> Result<Setup> {
    let levels = Levels::load(&req.root)?;
    let plan = crate::grade::plan(req)?;
    let features = select_features(&levels, plan.level, &req.features)?;
    let browser = browser::find_browser(req.browser.as_deref())?;
    let mcp_main = mcp::install(&req.root, &opts.mcp_dir)?;
    Ok(Setup {
        levels,
        features,
        level: plan.level,
        out: plan.out,
        backend: plan.backend,
        browser,
        mcp_main,
    })
}

/// Grades with an agent session. An `Err` is a grading failure (exit 2: bad arguments, app
/// down, browsers not attached, results missing, malformed or incomplete): the output
/// folder's files are then left as they were; the session's records stay in its folder.
pub fn grade_agent(
    req: &Request,
    opts: &AgentOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<AgentGraded> {
    grade_agent_with(req, opts, None, progress, GradingFile::clone)
}

/// [`grade_agent`], with what is left to judge (`hybrid`, for the prompt) and what becomes
/// of the agent's checked results before they are written (`finish`).
pub fn grade_agent_with(
    req: &Request,
    opts: &AgentOptions,
    hybrid: Option<String>,
    progress: &mut dyn FnMut(&str),
    finish: impl FnOnce(&GradingFile) -> GradingFile,
) -> Result<AgentGraded> {
    let s = setup(req, opts)?;
    let (url, _running) = crate::grade::reach_app(req, progress)?;
    let started = chrono::Utc::now();
    let stamp = started.format("%Y%m%d-%H%M%S").to_string();
    let run_dir = output::run_dir(&s.out, &stamp, s.level);
    let spec = session_spec(req, opts, &s, &url, &run_dir, hybrid)?;
    let results_file = spec.work_dir.join(bench_formats::grading::GRADING_FILE);
    let skeleton = prompt::skeleton(&s.levels, &s.features, s.level, &url);
    progress(&format!(
        "grading session ({}): {} feature(s) at level {}, records in {}",
        match &opts.rehearse {
            Some(p) => format!("rehearsal {}", p.display()),
            None => format!("model {}", opts.model),
        },
        s.features.len(),
        s.level,
        spec.session_dir.display()
    ));
    let clock = Instant::now();
    let result = session::run(&spec)?;
    session::require_finished(&result)?;
    let calls = session::tool_calls_per_user(&result.transcript)?;
    let strays = session::other_writes(&result.transcript, &results_file)?;
    if !strays.is_empty() {
        bail!(
            "the grading agent used tools beyond its two browsers and its results file ({}): its grading is not used (transcript: {})",
            strays.join(", "),
            result.transcript.display()
        );
    }
    let mut file = validate::read_and_check(&results_file, &skeleton)?;
    stamp_harness_fields(&mut file, req, &s, &url, started, clock.elapsed());
    let file = finish(&file);
    let written = output::write_outputs(&s.out, &run_dir, &stamp, &file)?;
    Ok(AgentGraded {
        graded: Graded {
            file,
            written,
            run_dir,
        },
        session: result,
        calls,
    })
}

fn session_spec(
    req: &Request,
    opts: &AgentOptions,
    s: &Setup,
    url: &str,
    run_dir: &Path,
    hybrid: Option<String>,
) -> Result<session::SessionSpec> {
    let session_dir = run_dir.join("session");
    let work_dir = run_dir.join("agent");
    std::fs::create_dir_all(&session_dir)
        .with_context(|| format!("cannot create {}", session_dir.display()))?;
    let results_file = work_dir.join(bench_formats::grading::GRADING_FILE);
    let servers: Vec<(&str, mcp::ServerCommand)> = mcp::USERS
        .iter()
        .map(|user| {
            let cmd = opts
                .server_overrides
                .get(*user)
                .cloned()
                .unwrap_or_else(|| {
                    mcp::ServerCommand::playwright(
                        &s.mcp_main,
                        &s.browser,
                        &run_dir.join("mcp"),
                        user,
                    )
                });
            (*user, cmd)
        })
        .collect();
    let config_file = session_dir.join("mcp-config.json");
    bench_formats::io::write_json(&config_file, &mcp::config(&servers))?;
    let prompt = prompt::build(&prompt::PromptInput {
        root: &req.root,
        levels: &s.levels,
        features: &s.features,
        level: s.level,
        url,
        results_file: &results_file,
        hybrid,
    })?;
    let agent_bin = bench_runner::agent::resolve_agent_bin(opts.agent_bin.as_deref(), &req.root)?;
    let telemetry = match &opts.telemetry {
        Some(sink) => sink.clone(),
        None => telemetry_sink(&req.root)?,
    };
    let vars = BTreeMap::from([
        ("app_url".to_owned(), url.to_owned()),
        (
            "results_file".to_owned(),
            results_file.display().to_string(),
        ),
        ("work_dir".to_owned(), work_dir.display().to_string()),
        ("level".to_owned(), s.level.to_string()),
    ]);
    Ok(session::SessionSpec {
        agent_bin,
        models: match &opts.rehearse {
            Some(path) => ModelSource::Rehearsal(path.clone()),
            None => ModelSource::Anthropic,
        },
        model: opts.model.clone(),
        max_budget_usd: opts.max_budget_usd,
        timeout: opts.timeout,
        telemetry,
        session_dir,
        work_dir,
        prompt,
        extra_args: mcp::cli_args(&config_file),
        vars,
        level: s.level,
        show_progress: opts.show_progress,
        extra_env: agent_env(&req.root, &opts.extra_env)?,
    })
}

/// `extra_env`, with the harness's own agent configuration folder unless a
/// `CLAUDE_CONFIG_DIR` is set there or by the user.
fn agent_env(root: &Path, extra_env: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let mut env = extra_env.to_vec();
    let given = env.iter().any(|(k, _)| k == "CLAUDE_CONFIG_DIR");
    if !given && std::env::var_os("CLAUDE_CONFIG_DIR").is_none() {
        let dir = bench_formats::paths::state_dir(root).join("agent-config");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        env.insert(0, ("CLAUDE_CONFIG_DIR".into(), dir.display().to_string()));
    }
    Ok(env)
}

/// The embedded infrastructure's OTLP receiver (started if it is not running).
fn telemetry_sink(root: &Path) -> Result<TelemetrySink> {
    let needs = bench_infra::Needs {
        otlp: true,
        ..bench_infra::Needs::default()
    };
    let infra = bench_infra::ensure_up(root, &needs).context(
        "cannot bring up the telemetry receiver (`cargo xtask bench-infra status` shows what runs)",
    )?;
    Ok(TelemetrySink {
        endpoint: infra.otlp_http_endpoint,
        protocol: "http/json".to_owned(),
        dir: infra.telemetry_dir,
    })
}

/// The fields the harness knows better than the agent.
fn stamp_harness_fields(
    file: &mut GradingFile,
    req: &Request,
    s: &Setup,
    url: &str,
    started: chrono::DateTime<chrono::Utc>,
    took: Duration,
) {
    file.generator = format!("bench-grade {} (agent)", env!("CARGO_PKG_VERSION"));
    file.graded_at = started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    file.duration_ms = took.as_millis() as u64;
    file.url = url.to_owned();
    file.app_dir = match &req.target {
        Target::App(dir) => Some(dir.display().to_string()),
        Target::Url(_) => None,
    };
    file.backend = s.backend.clone();
    file.selection = req.features.clone();
    file.browser = BrowserInfo {
        path: s.browser.display().to_string(),
        version: "via @playwright/mcp".into(),
    };
}
