//! Command-line options of `cargo xtask bench-run`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_content::Content;
use bench_formats::{Outcome, Phase, Rules, Variant};
use clap::ArgGroup;

use crate::run::{self, ModelSource, RunOptions, SessionReport, Task, TelemetrySink};
use crate::session::Cancel;

/// Run one agent session: generate a new app, upgrade an app one level, or fix its bugs.
///
/// Examples:
///   cargo xtask bench-run --backend postgres --rehearse rehearsal/generate-l1.toml
///   cargo xtask bench-run --backend spacetime --level 1
///   cargo xtask bench-run --upgrade runs/sequential-upgrade-20260406/postgres/results/chat-app-20260406-153732 --level 2
///   cargo xtask bench-run --fix runs/sequential-upgrade-20260406/postgres/results/chat-app-20260406-153732
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("task").required(true).args(["backend", "upgrade", "fix", "regenerate"])))]
pub struct Args {
    /// Generate a new app for this backend (spacetime, postgres, mongodb).
    #[arg(long)]
    pub backend: Option<String>,
    /// Upgrade this app (a results/chat-app-TIMESTAMP folder) to --level.
    #[arg(long, value_name = "APP_DIR")]
    pub upgrade: Option<PathBuf>,
    /// Fix the bugs listed in this app's BUG_REPORT.md, at the app's current level.
    #[arg(long, value_name = "APP_DIR")]
    pub fix: Option<PathBuf>,
    /// Generate again, in the same folder, an app whose generate session ended without
    /// completing (killed, interrupted, failed, timed out): what it left is moved to
    /// .bench/cut-off/<run id>/, and its cost stays in the app's records.
    #[arg(long, value_name = "APP_DIR")]
    pub regenerate: Option<PathBuf>,
    /// Level to generate (default 1) or to upgrade to (required with --upgrade).
    #[arg(long)]
    pub level: Option<u32>,
    /// Upgrade/fix: give the whole spec up to the level, not only what the level adds.
    #[arg(long)]
    pub composed_prompt: bool,
    /// Upgrade/fix: fork the app's latest agent session (keeps its context).
    #[arg(long)]
    pub resume_session: bool,
    /// Upgrade: allow skipping or repeating a level.
    #[arg(long)]
    pub force: bool,
    /// Default: sequential-upgrade (generate) or the app's own (upgrade/fix).
    #[arg(long, value_enum)]
    pub variant: Option<Variant>,
    /// How much help the backend guide gives. Default: guided (generate) or the app's own.
    #[arg(long, value_enum)]
    pub rules: Option<Rules>,
    /// Offsets ports and database names so parallel runs never collide (generate only;
    /// upgrades and fixes keep the app's).
    #[arg(long, value_name = "K")]
    pub run_index: Option<u32>,
    /// The model the agent uses.
    #[arg(long, env = "ANTHROPIC_MODEL", default_value = run::DEFAULT_MODEL)]
    pub model: String,
    /// Stop the session once it has spent this much (passed to the agent CLI).
    #[arg(long, value_name = "USD", value_parser = parse_budget)]
    pub max_budget_usd: Option<f64>,
    /// Stop the agent after this long: `90m`, `2h`, `1h30m`, `45s` or seconds.
    #[arg(long, default_value = "4h", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The agent CLI. Default: `claude` on PATH, else the harness's copy under
    /// .bench/agent-cli (installed from npm on first use).
    #[arg(long, value_name = "PATH")]
    pub agent_bin: Option<PathBuf>,
    /// Zero-cost rehearsal: the real agent CLI talks to a local scripted API playing this
    /// script (a path, or the name of one in rehearsal/, e.g. `generate-l1`).
    #[arg(long, value_name = "SCRIPT")]
    pub rehearse: Option<PathBuf>,
    /// Where runs are written. Default: runs/ in the repository.
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Leave the UI contract sections out of the prompt.
    #[arg(long)]
    pub no_ui_contracts: bool,
    /// Send telemetry to this already running OTLP/HTTP receiver instead of the embedded
    /// infrastructure (needs --telemetry-dir).
    #[arg(long, value_name = "URL", requires = "telemetry_dir")]
    pub otlp_endpoint: Option<String>,
    /// The folder that receiver writes (with sessions/SESSION_ID/logs.jsonl per session).
    #[arg(long, value_name = "DIR", requires = "otlp_endpoint")]
    pub telemetry_dir: Option<PathBuf>,
}

/// A spending cap in USD: a number above zero.
fn parse_budget(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd > 0.0 => Ok(usd),
        _ => Err(format!(
            "{text}: give an amount in USD above zero, e.g. 5 or 2.50"
        )),
    }
}

/// Parses a plain number of seconds, or a duration as humantime reads it (`90m`, `2h`,
/// `1h30m`, `45s`, `1500ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let duration = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{text}: must be more than zero")),
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| format!("{text}: {e} (write e.g. 90m, 2h, 1h30m, 45s or seconds)"))?,
    };
    if duration.is_zero() {
        return Err(format!("{text}: must be more than zero"));
    }
    Ok(duration)
}

impl Args {
    fn task(&self) -> Result<Task> {
        if let Some(backend) = &self.backend {
            if self.resume_session || self.composed_prompt || self.force {
                bail!(
                    "--resume-session, --composed-prompt and --force apply to --upgrade/--fix, not to generating a new app"
                );
            }
            return Ok(Task::Generate {
                backend: backend.clone(),
                level: self.level.unwrap_or(1),
            });
        }
        if let Some(app_dir) = &self.upgrade {
            let level = self.level.context(
                "--upgrade needs --level N (the level to upgrade to, usually the app's level + 1)",
            )?;
            return Ok(Task::Upgrade {
                app_dir: app_dir.clone(),
                level,
                composed: self.composed_prompt,
                resume: self.resume_session,
                force: self.force,
            });
        }
        if let Some(app_dir) = &self.fix {
            if self.level.is_some() {
                bail!("--fix takes the level from the app's state: leave --level out");
            }
            if self.force {
                bail!("--force applies to --upgrade only");
            }
            return Ok(Task::Fix {
                app_dir: app_dir.clone(),
                composed: self.composed_prompt,
                resume: self.resume_session,
            });
        }
        if let Some(app_dir) = &self.regenerate {
            if self.level.is_some() || self.resume_session || self.composed_prompt || self.force {
                bail!(
                    "--regenerate runs the cut-off generate session again as it was: leave --level, --resume-session, --composed-prompt and --force out"
                );
            }
            return Ok(Task::Regenerate {
                app_dir: app_dir.clone(),
            });
        }
        bail!(
            "say what to run: --backend NAME (generate), --upgrade APP_DIR --level N, --fix APP_DIR, or --regenerate APP_DIR"
        )
    }
}

/// Prints what a finished session left, for the terminal.
pub fn print_report(report: &SessionReport) {
    println!();
    println!(
        "session {} ({} level {}): {}",
        report.run_id, report.phase, report.level, report.outcome
    );
    println!(
        "  completion marker {}: {}",
        report.marker,
        if report.marker_seen {
            "seen"
        } else {
            "NOT seen"
        }
    );
    if let Some(code) = report.exit_code {
        println!("  agent exit code: {code}");
    }
    match &report.agent_result {
        Some(subtype) if subtype != "success" => println!("  agent result: {subtype}"),
        None => println!("  agent result: none (the CLI printed no result line)"),
        _ => {}
    }
    match (&report.cost, &report.cost_error) {
        (Some(c), _) => {
            let status = c
                .reconciliation
                .as_ref()
                .map_or("unknown", |r| r.status.as_str());
            println!(
                "  cost: ${:.6} over {} API calls (reconciliation {status})",
                c.total_cost_usd, c.api_calls
            );
            if let Some(cli) = report.cli_total_cost_usd {
                println!("  agent CLI's own total: ${cli:.6}");
            }
            if let Some(r) = &c.reconciliation {
                for w in &r.warnings {
                    println!("  warning: {w}");
                }
            }
        }
        (None, Some(e)) => println!("  cost: NOT computed: {e}"),
        (None, None) => {}
    }
    println!("  app: {}", report.app_dir.display());
    println!("  session records: {}", report.session_dir.display());
}

pub fn run(args: Args) -> Result<()> {
    let root = bench_formats::paths::repo_root()?;
    let task = absolute_task(args.task()?)?;
    let runs_dir = match &args.runs_dir {
        Some(dir) => absolute(dir)?,
        None => root.join("runs"),
    };
    let models = model_source(args.rehearse.as_deref(), &root)?;
    // Check what can be checked before installing or starting anything.
    let backend = match &task {
        Task::Generate { backend, .. } => backend.clone(),
        Task::Upgrade { app_dir, .. }
        | Task::Fix { app_dir, .. }
        | Task::Regenerate { app_dir } => crate::layout::open_app(app_dir)?.state.backend,
    };
    let content = Content::load(&root)?;
    content.backend(&backend)?;
    match &models {
        ModelSource::Rehearsal(path) => {
            scripted_api::Script::load(path)?;
        }
        ModelSource::Anthropic => run::require_api_key(&[])?,
    }
    let agent_bin = crate::agent::resolve_agent_bin(args.agent_bin.as_deref(), &root)?;
    let telemetry = telemetry_sink(&args, &root, &backend, &models)?;
    let extra_env = agent_config_env(&root)?;
    let opts = RunOptions {
        task,
        root,
        runs_dir,
        variant: args.variant,
        rules: args.rules,
        run_index: args.run_index,
        model: args.model.clone(),
        max_budget_usd: args.max_budget_usd,
        timeout: Some(args.timeout),
        agent_bin,
        models,
        telemetry,
        ui_contracts: !args.no_ui_contracts,
        show_progress: true,
        cancel: Cancel::new(),
        flush_wait: Duration::from_secs(10),
        extra_env,
    };
    let report = run::run_session(&opts)?;
    print_report(&report);
    print_next_steps(&report, content.levels().max_level());
    if !report.succeeded() {
        bail!(
            "the agent session ended {} (exit code {}, {} {}); its cost and transcript are kept in {}",
            report.outcome,
            report
                .exit_code
                .map_or("none".to_owned(), |c| c.to_string()),
            report.marker,
            if report.marker_seen {
                "seen"
            } else {
                "not seen"
            },
            report.session_dir.display()
        );
    }
    Ok(())
}

/// The task with its app folder made absolute (the session runs the agent elsewhere).
fn absolute_task(task: Task) -> Result<Task> {
    Ok(match task {
        Task::Upgrade {
            app_dir,
            level,
            composed,
            resume,
            force,
        } => Task::Upgrade {
            app_dir: absolute(&app_dir)?,
            level,
            composed,
            resume,
            force,
        },
        Task::Fix {
            app_dir,
            composed,
            resume,
        } => Task::Fix {
            app_dir: absolute(&app_dir)?,
            composed,
            resume,
        },
        Task::Regenerate { app_dir } => Task::Regenerate {
            app_dir: absolute(&app_dir)?,
        },
        t => t,
    })
}

/// The Anthropic API, or the rehearsal script `--rehearse` names (a path, or the name of a
/// script shipped in rehearsal/).
fn model_source(rehearse: Option<&std::path::Path>, root: &std::path::Path) -> Result<ModelSource> {
    let Some(script) = rehearse else {
        return Ok(ModelSource::Anthropic);
    };
    let mut path = absolute(script)?;
    if !path.exists() && script.components().count() == 1 {
        let name = script.to_string_lossy();
        let shipped = root.join("rehearsal").join(if name.ends_with(".toml") {
            name.into_owned()
        } else {
            format!("{name}.toml")
        });
        if shipped.is_file() {
            path = shipped;
        }
    }
    if !path.is_file() {
        bail!(
            "rehearsal script {} does not exist (the scripts shipped are in rehearsal/)",
            path.display()
        );
    }
    Ok(ModelSource::Rehearsal(path))
}

/// Where the agent's telemetry goes: the receiver the options name, or the embedded
/// infrastructure (started if it is not running).
fn telemetry_sink(
    args: &Args,
    root: &std::path::Path,
    backend: &str,
    models: &ModelSource,
) -> Result<TelemetrySink> {
    if let (Some(endpoint), Some(dir)) = (&args.otlp_endpoint, &args.telemetry_dir) {
        return Ok(TelemetrySink {
            endpoint: endpoint.clone(),
            protocol: "http/json".to_owned(),
            dir: absolute(dir)?,
        });
    }
    let needs = bench_infra::Needs::for_backend(Content::load(root)?.backend(backend)?);
    let infra = match bench_infra::ensure_up(root, &needs) {
        Ok(infra) => infra,
        // A rehearsal runs no app: telemetry alone will do if the database cannot start.
        Err(e) if matches!(models, ModelSource::Rehearsal(_)) => {
            eprintln!(
                "warning: {e:#}\n(continuing the rehearsal with telemetry only: it runs no app)"
            );
            let telemetry_only = bench_infra::Needs {
                otlp: true,
                ..bench_infra::Needs::default()
            };
            bench_infra::ensure_up(root, &telemetry_only)
                .context("cannot bring up the telemetry receiver (`cargo xtask bench-infra status` shows what runs)")?
        }
        Err(e) => {
            return Err(e).context(
                "cannot bring up the telemetry receiver and database (`cargo xtask bench-infra status` shows what runs)",
            );
        }
    };
    eprintln!(
        "infrastructure ({:?}): telemetry → {} ({}){}",
        infra.mode,
        infra.otlp_http_endpoint,
        infra.telemetry_dir.display(),
        infra
            .pg_url
            .as_deref()
            .map(|u| format!(", PostgreSQL {u}"))
            .unwrap_or_default()
    );
    Ok(TelemetrySink {
        endpoint: infra.otlp_http_endpoint,
        protocol: "http/json".to_owned(),
        dir: infra.telemetry_dir,
    })
}

/// Prints what to run next for the app, as the original harness did.
fn print_next_steps(report: &SessionReport, max_level: u32) {
    let cwd = std::env::current_dir().ok();
    let app = cwd
        .as_deref()
        .and_then(|d| report.app_dir.strip_prefix(d).ok())
        .unwrap_or(&report.app_dir);
    println!();
    println!("next:");
    for line in next_steps(report, &app.display().to_string(), max_level) {
        println!("  {line}");
    }
}

/// The commands that take the app on from where this session left it: grade, then fix or
/// upgrade; or run the session again if it did not complete.
pub fn next_steps(report: &SessionReport, app: &str, max_level: u32) -> Vec<String> {
    let level = report.level;
    let grade = format!("cargo xtask bench-grade {app}");
    let fix = format!("cargo xtask bench-run --fix {app}");
    let upgrade = format!(
        "cargo xtask bench-run --upgrade {app} --level {}",
        level + 1
    );
    if report.outcome != Outcome::Completed {
        let again = match report.phase {
            Phase::Generate => format!("cargo xtask bench-run --regenerate {app}"),
            Phase::Upgrade => format!("cargo xtask bench-run --upgrade {app} --level {level}"),
            Phase::Fix => fix,
        };
        return vec![format!(
            "see why it ended {} in {}, then run it again: {again}",
            report.outcome,
            report.session_dir.display()
        )];
    }
    let mut steps = vec![format!("grade level {level}: {grade}")];
    steps.push(format!(
        "if grading wrote bugs into {}: {fix}",
        bench_formats::files::BUG_REPORT_FILE
    ));
    if level < max_level {
        steps.push(format!("when it passes, upgrade: {upgrade}"));
    } else {
        steps.push(format!(
            "level {level} is the last one: when it passes, report: cargo xtask bench-report {}",
            run_dir_of(&report.app_dir).display()
        ));
    }
    steps
}

/// `runs/<variant>-<date>` of an app in `runs/<variant>-<date>/<backend>/results/<app>`.
fn run_dir_of(app_dir: &std::path::Path) -> PathBuf {
    app_dir
        .ancestors()
        .nth(3)
        .map_or_else(|| app_dir.to_path_buf(), std::path::Path::to_path_buf)
}

/// The agent's own configuration folder: the harness's `.bench/agent-config`, so that the
/// user's personal settings, memory files, hooks and MCP servers (`~/.claude`) do not take
/// part in a benchmark session. A `CLAUDE_CONFIG_DIR` the user set is respected.
fn agent_config_env(root: &std::path::Path) -> Result<Vec<(String, String)>> {
    if std::env::var_os("CLAUDE_CONFIG_DIR").is_some() {
        return Ok(Vec::new());
    }
    let dir = bench_formats::paths::state_dir(root).join("agent-config");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(vec![(
        "CLAUDE_CONFIG_DIR".to_owned(),
        dir.display().to_string(),
    )])
}

fn absolute(path: &std::path::Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: Args,
    }

    fn parse(line: &str) -> Result<Args, String> {
        Cmd::try_parse_from(std::iter::once("bench-run").chain(line.split_whitespace()))
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn exactly_one_kind_of_session_is_asked_for() {
        assert!(parse("--model m").unwrap_err().contains("required"));
        assert!(
            parse("--backend postgres --fix app")
                .unwrap_err()
                .contains("cannot be used with")
        );
        let generate = parse("--backend postgres --run-index 2 --rules minimal --model m").unwrap();
        match generate.task().unwrap() {
            Task::Generate { backend, level } => {
                assert_eq!((backend.as_str(), level), ("postgres", 1))
            }
            t => panic!("{t:?}"),
        }
        assert_eq!(generate.run_index, Some(2));
        assert_eq!(generate.rules, Some(Rules::Minimal));
    }

    #[test]
    fn upgrade_needs_a_level_and_fix_refuses_one() {
        let err = parse("--upgrade app --model m")
            .unwrap()
            .task()
            .unwrap_err();
        assert!(err.to_string().contains("--level"), "{err}");
        let up = parse("--upgrade app --level 3 --resume-session --force --model m").unwrap();
        match up.task().unwrap() {
            Task::Upgrade {
                level,
                resume,
                force,
                ..
            } => assert_eq!((level, resume, force), (3, true, true)),
            t => panic!("{t:?}"),
        }
        let err = parse("--fix app --level 2 --model m")
            .unwrap()
            .task()
            .unwrap_err();
        assert!(err.to_string().contains("leave --level out"), "{err}");
        let err = parse("--backend postgres --resume-session --model m")
            .unwrap()
            .task()
            .unwrap_err();
        assert!(err.to_string().contains("--upgrade/--fix"), "{err}");
    }

    #[test]
    fn a_custom_receiver_needs_both_its_endpoint_and_its_folder() {
        assert!(parse("--backend postgres --otlp-endpoint http://127.0.0.1:1 --model m").is_err());
        assert!(
            parse("--backend postgres --otlp-endpoint http://127.0.0.1:1 --telemetry-dir /tmp/t --model m")
                .is_ok()
        );
    }

    #[test]
    fn durations_in_the_usual_units() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("m").is_err());
    }

    fn finished(phase: Phase, level: u32, outcome: Outcome) -> SessionReport {
        let app_dir =
            PathBuf::from("/r/runs/sequential-upgrade-20260406/postgres/results/chat-app-x");
        SessionReport {
            run_id: "postgres-level1-x".into(),
            session_id: "s".into(),
            phase,
            level,
            app_dir,
            session_dir: PathBuf::from("/r/runs/t"),
            outcome,
            exit_code: Some(0),
            marker: "DEPLOY_COMPLETE".into(),
            marker_seen: true,
            cost: None,
            cost_error: None,
            cli_total_cost_usd: None,
            agent_result: None,
        }
    }

    #[test]
    fn the_next_step_is_grading_then_a_fix_or_the_next_level() {
        let done = next_steps(&finished(Phase::Generate, 1, Outcome::Completed), "app", 12);
        assert_eq!(done[0], "grade level 1: cargo xtask bench-grade app");
        assert!(
            done[1].ends_with("cargo xtask bench-run --fix app"),
            "{done:?}"
        );
        assert!(
            done[2].ends_with("cargo xtask bench-run --upgrade app --level 2"),
            "{done:?}"
        );

        let last = next_steps(&finished(Phase::Fix, 12, Outcome::Completed), "app", 12);
        assert!(
            last[2].ends_with("cargo xtask bench-report /r/runs/sequential-upgrade-20260406"),
            "{last:?}"
        );

        let failed = next_steps(&finished(Phase::Upgrade, 3, Outcome::Timeout), "app", 12);
        assert_eq!(failed.len(), 1);
        assert!(
            failed[0].contains("ended timeout in /r/runs/t"),
            "{failed:?}"
        );
        assert!(
            failed[0].ends_with("cargo xtask bench-run --upgrade app --level 3"),
            "{failed:?}"
        );
    }

    #[test]
    fn the_budget_is_an_amount_above_zero() {
        let ok = parse("--backend postgres --max-budget-usd 2.5").unwrap();
        assert_eq!(ok.max_budget_usd, Some(2.5));
        for bad in ["0", "-1", "NaN", "five"] {
            let err = parse(&format!("--backend postgres --max-budget-usd={bad}")).unwrap_err();
            assert!(err.contains("above zero"), "{bad}: {err}");
        }
    }
}
