//! `cargo xtask bench-loop`: options, the loop's environment, and the end (summary table and
//! report).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_content::Content;
use bench_formats::loop_record::{Grader, LoopSettings};
use bench_formats::{Rules, Variant};
use bench_runner::{Cancel, TelemetrySink};

use crate::env::LoopEnv;
use crate::fleet::{self, Manifest};

/// The whole benchmark in one resumable command: for each backend and repetition, generate
/// an app, start it on a fresh database, grade it, fix it while points are lost (up to
/// --max-fixes), upgrade it a level, and so on up to --to-level; then stop it. When every
/// app is done, bench-report runs over their run folders.
///
/// Every step is recorded in the app's .bench/state.json before and after it runs: the same
/// command again (or --resume RUN_DIR…) continues each unfinished app at the exact step; a
/// completed session is never run twice, a session cut off keeps its cost and runs again,
/// a finished app is left alone.
///
/// Examples:
///   cargo xtask bench-loop --backend postgres --to-level 2 --rehearse rehearsal/loop
///   ANTHROPIC_API_KEY=… cargo xtask bench-loop --backend spacetime,postgres --to-level 12 --repeat 3 --parallel 2
///   cargo xtask bench-loop --resume runs/sequential-upgrade-20261201
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backends to build the app on, comma-separated (spacetime, postgres, mongodb).
    #[arg(long, value_delimiter = ',', required_unless_present = "resume")]
    pub backend: Vec<String>,
    /// The level to take each app to (default 12).
    #[arg(long, value_name = "N")]
    pub to_level: Option<u32>,
    /// sequential-upgrade: generate level 1, then upgrade a level at a time; one-shot:
    /// generate --to-level at once.
    #[arg(long, value_enum, default_value_t = Variant::SequentialUpgrade)]
    pub variant: Variant,
    /// How much the backend guide tells the agent.
    #[arg(long, value_enum, default_value_t = Rules::Guided)]
    pub rules: Rules,
    /// Fix sessions allowed per level while points are lost.
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub max_fixes: u32,
    /// Apps per backend (repetitions); each is a run of its own for bench-report.
    #[arg(long, value_name = "R", default_value_t = 1)]
    pub repeat: u32,
    /// Apps driven at once (each has its own run index: ports and databases never collide).
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub parallel: usize,
    /// auto: bench-grade in a real browser; manual: a person grades, the loop waits;
    /// agent: a Claude Code session with two browsers judges the plans; hybrid: auto, then
    /// an agent for what the scripts could not carry out or do not check. With --rehearse,
    /// agent and hybrid gradings play `grade-l<N>.toml` from the rehearsal folder, else
    /// `rehearsal/grade/level-<N>.toml`.
    #[arg(long, value_enum, default_value_t = Grader::Auto)]
    pub grader: Grader,
    /// Manual grading: how long to wait for GRADING_RESULTS.md before leaving the app for
    /// --resume (`0` does not wait).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_wait)]
    pub manual_wait: Duration,
    /// Cap of each agent session, in USD.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_budget_usd: Option<f64>,
    /// Cap of each app's sessions together, in USD: the app stops cleanly when reached.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_total_usd: Option<f64>,
    /// The model the agent uses.
    #[arg(long, env = "ANTHROPIC_MODEL", default_value = bench_runner::run::DEFAULT_MODEL)]
    pub model: String,
    /// Zero-cost rehearsal: a folder of scripts (generate-l1.toml, upgrade-l2.toml,
    /// fix-l2.toml or fix.toml…) played to the real agent CLI by a scripted API.
    #[arg(long, value_name = "DIR")]
    pub rehearse: Option<PathBuf>,
    /// Continue the unfinished apps of these run folders (their own settings apply).
    #[arg(long, value_name = "RUN_DIR", num_args = 1.., conflicts_with = "backend")]
    pub resume: Vec<PathBuf>,
    /// The run index of the first app (the others follow): another loop on this machine
    /// can use other ports and databases.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub first_run_index: u32,
    /// Start a new loop even if one with the same options exists.
    #[arg(long)]
    pub fresh: bool,
    /// Time limit of each agent session: `90m`, `2h`, or seconds.
    #[arg(long, default_value = "4h", value_parser = bench_runner::cli::parse_duration)]
    pub session_timeout: Duration,
    /// Where runs are written. Default: runs/ in the repository.
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// The agent CLI (default: `claude` on PATH, else the harness's own copy).
    #[arg(long, value_name = "PATH")]
    pub agent_bin: Option<PathBuf>,
    /// The Chromium bench-grade drives.
    #[arg(long, value_name = "PATH")]
    pub browser: Option<PathBuf>,
    /// Use this running OTLP/HTTP receiver instead of the embedded infrastructure (needs
    /// --telemetry-dir and --pg-port).
    #[arg(long, value_name = "URL", requires_all = ["telemetry_dir", "pg_port"])]
    pub otlp_endpoint: Option<String>,
    /// The folder that receiver writes.
    #[arg(long, value_name = "DIR", requires = "otlp_endpoint")]
    pub telemetry_dir: Option<PathBuf>,
    /// The PostgreSQL the apps use, when it is not the infrastructure's.
    #[arg(long, value_name = "PORT", requires = "otlp_endpoint")]
    pub pg_port: Option<u16>,
    /// Where bench-grade's driver is installed (default: .bench/grade-driver).
    #[arg(long, value_name = "DIR", env = "BENCH_GRADE_DRIVER_DIR", hide = true)]
    pub driver_dir: Option<PathBuf>,
    /// Do not run bench-report at the end.
    #[arg(long)]
    pub no_report: bool,
}

fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd > 0.0 => Ok(usd),
        _ => Err(format!(
            "{text}: give an amount in USD above zero, e.g. 5 or 2.50"
        )),
    }
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    bench_runner::cli::parse_duration(text)
}

/// Runs the command: drives the apps, prints the summary, writes the report. Fails when an
/// app could not be driven to its end (it is then resumable).
pub fn run(args: Args) -> Result<()> {
    let root = bench_formats::paths::repo_root()?;
    let content = Content::load(&root)?;
    let runs_dir = match &args.runs_dir {
        Some(d) => {
            std::path::absolute(d).with_context(|| format!("cannot resolve {}", d.display()))?
        }
        None if !args.resume.is_empty() => crate::resume::runs_dir_of(&args.resume)?,
        None => root.join("runs"),
    };
    let manifests = if args.resume.is_empty() {
        vec![new_or_same(&args, &content, &runs_dir)?]
    } else {
        crate::resume::manifests(&args.resume)?
    };
    let backends: Vec<String> = manifests
        .iter()
        .flat_map(|m| m.slots.iter().map(|s| s.backend.clone()))
        .collect();
    let env = loop_env(&args, &root, &runs_dir, &content, &backends)?;
    watch_signals(&env.cancel)?;
    let mut results = Vec::new();
    for manifest in manifests {
        eprintln!(
            "loop {}: {} app(s), {} at a time; manifest {}",
            manifest.loop_id,
            manifest.slots.len(),
            args.parallel.max(1),
            Manifest::path(&runs_dir, &manifest.loop_id).display()
        );
        manifest.save(&runs_dir)?;
        results.extend(fleet::drive(&env, manifest, args.parallel));
    }
    crate::summary::print(&results);
    if !args.no_report {
        crate::summary::report(&results, &runs_dir)?;
    }
    let unfinished: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("{} #{}: {e}", r.slot.backend, r.slot.repetition))
        })
        .collect();
    if !unfinished.is_empty() {
        bail!(
            "{} app(s) could not be driven to their end (run the same command again, or --resume, to continue):\n{}",
            unfinished.len(),
            unfinished.join("\n")
        );
    }
    Ok(())
}

/// Ctrl-C, SIGTERM and SIGHUP cancel the loop: the sessions under way end recorded as
/// interrupted, no new step starts, and the apps are left for `--resume`. A second signal
/// exits at once.
fn watch_signals(cancel: &Cancel) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    let cancel = cancel.clone();
    std::thread::spawn(move || {
        runtime.block_on(async {
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            for _ in 0..2 {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                if cancel.is_cancelled() {
                    eprintln!("stopping now (a second signal); the apps' records say where to resume");
                    std::process::exit(130);
                }
                eprintln!("stopping: the sessions under way end, then the loop (continue it with the same command or --resume; a second Ctrl-C stops at once)");
                cancel.cancel();
            }
        });
    });
    Ok(())
}

/// The loop these options started before (unless --fresh), or a new one.
fn new_or_same(args: &Args, content: &Content, runs_dir: &Path) -> Result<Manifest> {
    let max = content.levels().max_level();
    let to_level = args.to_level.unwrap_or(12.min(max));
    if to_level < 1 || to_level > max {
        bail!("--to-level {to_level} is out of range: levels go from 1 to {max}");
    }
    for b in &args.backend {
        content.backend(b)?;
    }
    if args.repeat == 0 {
        bail!("--repeat must be 1 or more");
    }
    let rehearse = match &args.rehearse {
        Some(dir) if !dir.is_dir() => bail!(
            "rehearsal folder {} does not exist (the loop's scripts are in rehearsal/loop)",
            dir.display()
        ),
        Some(dir) => Some(
            dir.canonicalize()
                .with_context(|| format!("cannot resolve {}", dir.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let settings = LoopSettings {
        to_level,
        max_fixes: args.max_fixes,
        max_budget_usd: args.max_budget_usd,
        max_total_usd: args.max_total_usd,
        grader: args.grader,
        model: args.model.clone(),
        rehearse,
    };
    let key = fleet::loop_key(
        &args.backend,
        args.repeat,
        args.variant,
        args.rules,
        &settings,
    );
    if !args.fresh
        && let Some(previous) = Manifest::find(runs_dir, &key)?
    {
        eprintln!(
            "continuing loop {} (same options; --fresh starts a new one)",
            previous.loop_id
        );
        return Ok(previous);
    }
    Ok(Manifest {
        loop_id: format!("loop-{}", chrono::Local::now().format("%Y%m%d-%H%M%S")),
        key,
        variant: args.variant,
        rules: args.rules,
        settings,
        slots: fleet::slots(&args.backend, args.repeat, args.first_run_index),
    })
}

/// The shared environment: agent CLI, telemetry and database (started if needed), grader.
fn loop_env(
    args: &Args,
    root: &Path,
    runs_dir: &Path,
    content: &Content,
    backends: &[String],
) -> Result<LoopEnv> {
    let agent_bin = bench_runner::agent::resolve_agent_bin(args.agent_bin.as_deref(), root)?;
    let mut app_overrides = BTreeMap::new();
    let telemetry = match (&args.otlp_endpoint, &args.telemetry_dir) {
        (Some(endpoint), Some(dir)) => {
            if let Some(port) = args.pg_port {
                app_overrides.insert("pg_port".to_owned(), port.to_string());
            }
            TelemetrySink {
                endpoint: endpoint.clone(),
                protocol: "http/json".to_owned(),
                dir: std::path::absolute(dir)
                    .with_context(|| format!("cannot resolve {}", dir.display()))?,
            }
        }
        _ => infrastructure(root, content, backends)?,
    };
    let config = bench_formats::paths::state_dir(root).join("agent-config");
    let extra_env = if std::env::var_os("CLAUDE_CONFIG_DIR").is_some() {
        Vec::new()
    } else {
        std::fs::create_dir_all(&config)
            .with_context(|| format!("cannot create {}", config.display()))?;
        vec![("CLAUDE_CONFIG_DIR".to_owned(), config.display().to_string())]
    };
    Ok(LoopEnv {
        root: root.to_path_buf(),
        runs_dir: runs_dir.to_path_buf(),
        agent_bin,
        telemetry,
        extra_env,
        session_timeout: args.session_timeout,
        app_overrides,
        browser: args.browser.clone(),
        driver_dir: args
            .driver_dir
            .clone()
            .unwrap_or_else(|| bench_grade::driver::default_install_dir(root)),
        manual_wait: (!args.manual_wait.is_zero()).then_some(args.manual_wait),
        cancel: Cancel::new(),
        verbose: false,
    })
}

/// The embedded infrastructure (or docker's) with what every backend of the loop needs.
fn infrastructure(root: &Path, content: &Content, backends: &[String]) -> Result<TelemetrySink> {
    let mut needs = bench_infra::Needs::default();
    for b in backends {
        let n = bench_infra::Needs::for_backend(content.backend(b)?);
        needs.otlp |= n.otlp;
        needs.postgres |= n.postgres;
        needs.mongodb |= n.mongodb;
    }
    needs.otlp = true;
    let infra = bench_infra::ensure_up(root, &needs).context(
        "cannot bring up the telemetry receiver and databases the loop's backends need (`cargo xtask bench-infra status` shows what runs)",
    )?;
    Ok(TelemetrySink {
        endpoint: infra.otlp_http_endpoint,
        protocol: "http/json".to_owned(),
        dir: infra.telemetry_dir,
    })
}
