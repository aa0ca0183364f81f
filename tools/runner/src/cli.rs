//! Command-line options of `cargo xtask bench-run`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_content::Rules;
use clap::{ArgGroup, ValueEnum};

use crate::run::{self, ModelSource, RunOptions, SessionReport, Task, TelemetrySink};
use crate::session::Cancel;

/// How the levels are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Variant {
    /// Generate level 1, then upgrade one level per session.
    SequentialUpgrade,
    /// Generate the target level in one session.
    OneShot,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::SequentialUpgrade => "sequential-upgrade",
            Variant::OneShot => "one-shot",
        }
    }
}

/// Run one agent session: generate a new app, upgrade an app one level, or fix its bugs.
///
/// Examples:
///   cargo xtask bench-run --backend postgres --rehearse rehearsal/generate-l1.toml
///   cargo xtask bench-run --backend spacetime --level 1
///   cargo xtask bench-run --upgrade runs/sequential-upgrade-20260406/postgres/results/chat-app-20260406-153732 --level 2
///   cargo xtask bench-run --fix runs/sequential-upgrade-20260406/postgres/results/chat-app-20260406-153732
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("task").required(true).args(["backend", "upgrade", "fix"])))]
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

/// Parses `90m`, `2h`, `1h30m`, `45s`, `1500ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("{text}: must be more than zero"));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text}: a number needs a unit (h, m, s, ms)"))?;
        let (num, tail) = rest.split_at(digits);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{text}: `{num}` is not a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let secs = match unit {
            "h" => n * 3600.0,
            "m" | "min" => n * 60.0,
            "s" => n,
            "ms" => n / 1000.0,
            _ => return Err(format!("{text}: unknown unit `{unit}` (use h, m, s or ms)")),
        };
        total += Duration::from_secs_f64(secs);
        rest = next;
    }
    if total.is_zero() {
        return Err(format!("{text}: must be more than zero"));
    }
    Ok(total)
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
        bail!(
            "say what to run: --backend NAME (generate), --upgrade APP_DIR --level N, or --fix APP_DIR"
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
    let task = args.task()?;
    let runs_dir = match &args.runs_dir {
        Some(dir) => absolute(dir)?,
        None => root.join("runs"),
    };
    let models = match &args.rehearse {
        Some(script) => {
            let mut path = absolute(script)?;
            // `--rehearse generate-l1` names a script shipped in rehearsal/.
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
            ModelSource::Rehearsal(path)
        }
        None => ModelSource::Anthropic,
    };
    let task = match task {
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
        t => t,
    };
    // Check what can be checked before installing or starting anything.
    let backend = match &task {
        Task::Generate { backend, .. } => backend.clone(),
        Task::Upgrade { app_dir, .. } | Task::Fix { app_dir, .. } => {
            crate::layout::open_app(app_dir)?.state.backend
        }
    };
    bench_content::Content::load(&root)?.backend(&backend)?;
    if let ModelSource::Rehearsal(path) = &models {
        scripted_api::Script::load(path)?;
    } else if std::env::var_os("ANTHROPIC_API_KEY").is_none_or(|v| v.is_empty()) {
        bail!(
            "ANTHROPIC_API_KEY is not set: export your Anthropic API key to run a real (paid) session, or add --rehearse rehearsal/generate-l1.toml for a zero-cost rehearsal"
        );
    }
    let agent_bin = crate::agent::resolve_agent_bin(args.agent_bin.as_deref(), &root)?;
    let telemetry = match (&args.otlp_endpoint, &args.telemetry_dir) {
        (Some(endpoint), Some(dir)) => TelemetrySink {
            endpoint: endpoint.clone(),
            protocol: "http/json".to_owned(),
            dir: absolute(dir)?,
        },
        _ => {
            let needs = bench_infra::Needs::for_backend(&backend);
            let infra = match bench_infra::ensure_up(&root, &needs) {
                Ok(infra) => infra,
                // A rehearsal runs no app: telemetry alone will do if the database cannot start.
                Err(e) if matches!(models, ModelSource::Rehearsal(_)) => {
                    eprintln!(
                        "warning: {e:#}\n(continuing the rehearsal with telemetry only: it runs no app)"
                    );
                    bench_infra::ensure_up(
                        &root,
                        &bench_infra::Needs {
                            otlp: true,
                            ..bench_infra::Needs::default()
                        },
                    )
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
            TelemetrySink {
                endpoint: infra.otlp_http_endpoint,
                protocol: "http/json".to_owned(),
                dir: infra.telemetry_dir,
            }
        }
    };
    let extra_env = agent_config_env(&root)?;
    let opts = RunOptions {
        task,
        root,
        runs_dir,
        variant: args.variant.map(|v| v.as_str().to_owned()),
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
