//! Command-line options of `cargo xtask bench-app`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::{App, AppOptions, Started, Status};

/// Start, stop, reset or inspect the app an agent built, with its backend's own commands.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install, apply the schema, start the server and the client, wait until they answer.
    Start(Target),
    /// Stop what `start` started (its process groups; nothing else).
    Stop(Target),
    /// Give the app a fresh, empty database (restarting it if it runs).
    Reset(Target),
    /// Say what runs, on which ports, since when.
    Status(Target),
    /// Print the end of each step's log (.bench/logs/).
    Logs(LogsArgs),
}

/// Which app, and how to run it.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The app's folder (runs/<run>/<backend>/results/chat-app-<ts>).
    pub app_dir: PathBuf,
    /// The backend, for an app without .bench/state.json (default: detected from its files).
    #[arg(long)]
    pub backend: Option<String>,
    /// The run index (ports, database), for an app without .bench/state.json (default 0).
    #[arg(long)]
    pub run_index: Option<u32>,
    /// A backend value to replace, e.g. `--var pg_port=5433` for a PostgreSQL on another
    /// port (repeatable; `cargo xtask bench-prompts --show BACKEND` lists the values).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Lines per log.
    #[arg(long, default_value_t = 40)]
    pub lines: usize,
}

impl Target {
    fn open(&self) -> Result<App> {
        let root = bench_formats::paths::repo_root()?;
        let mut options = AppOptions::new(&root);
        options.backend = self.backend.clone();
        options.run_index = self.run_index;
        options.overrides = parse_vars(&self.vars)?;
        App::open(&self.app_dir, &options)
    }
}

fn parse_vars(vars: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in vars {
        let Some((name, value)) = v.split_once('=') else {
            bail!("--var {v:?} is not NAME=VALUE (e.g. --var pg_port=5433)");
        };
        out.insert(name.trim().to_string(), value.to_string());
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Start(target) => {
            let app = target.open()?;
            match app.start()? {
                Started::AlreadyRunning(run) => println!(
                    "already running since {}: nothing done ({})",
                    run.started_at_utc,
                    app.client_url()
                ),
                Started::Started(_) => {
                    println!("started; open {}", app.client_url());
                    print!("{}", describe(&app.status()?));
                }
            }
        }
        Command::Stop(target) => {
            let stopped = target.open()?.stop()?;
            if stopped == 0 {
                println!("nothing was running");
            } else {
                println!("stopped {stopped} process(es)");
            }
        }
        Command::Reset(target) => {
            let app = target.open()?;
            let restarted = app.reset()?;
            let db = app.vars().get("database_name").cloned().unwrap_or_default();
            if restarted {
                println!("database {db} is fresh; the app was restarted on it");
            } else {
                println!("database {db} is fresh; the schema is applied at the next start");
            }
        }
        Command::Status(target) => print!("{}", describe(&target.open()?.status()?)),
        Command::Logs(args) => {
            let app = args.target.open()?;
            let logs = app.logs(args.lines)?;
            if logs.is_empty() {
                println!(
                    "no logs yet under {}",
                    app.dir().join(".bench/logs").display()
                );
            }
            for (step, path, tail) in logs {
                println!("==> {step} ({})", path.display());
                println!("{tail}\n");
            }
        }
    }
    Ok(())
}

/// The status, for people.
pub fn describe(status: &Status) -> String {
    let mut out = format!("{} app, run index {}: ", status.backend, status.run_index);
    match &status.run {
        None => out.push_str("not started\n"),
        Some(run) => {
            let state = if status.running() {
                "running"
            } else if status.partly_running() {
                "partly running (run `stop`, then `start`)"
            } else {
                "stopped (its servers exited; see `logs`)"
            };
            out.push_str(&format!("{state}, started {}", run.started_at_utc));
            if !run.overrides.is_empty() {
                let vars: Vec<String> = run
                    .overrides
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                out.push_str(&format!(" with {}", vars.join(" ")));
            }
            out.push('\n');
        }
    }
    for s in &status.steps {
        let alive = if s.alive { "running" } else { "exited" };
        out.push_str(&format!(
            "  {:<8} pid {:<7} {alive:<8} log {}\n",
            s.step.step, s.step.pid, s.step.log
        ));
    }
    for p in &status.ports {
        let state = if p.accepting { "accepting" } else { "closed" };
        let who: Vec<String> = p.holders.iter().map(ToString::to_string).collect();
        let line = format!(
            "  port {:<5} {:<8} {state:<9} {}",
            p.port,
            p.name,
            who.join(", ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
