//! Command-line options of `cargo xtask bench-stress`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_formats::stress::{RunConfig, StressResult, Target};

use crate::adapter::Adapter;
use crate::backend::{Backend, Marker};
use crate::candidates::Candidates;
use crate::ceiling::CeilingBackend;
use crate::http::BaseUrl;
use crate::metrics::CpuMeter;
use crate::report::{self, RunInfo};
use crate::scenario::{self, Plan, Scenario};
use crate::socketio;
use crate::source::SourceFacts;
use crate::verify::redact;

/// The kind of app (or the ceiling) under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Express + Socket.IO app on PostgreSQL (verified with SQL through --db-url).
    Postgres,
    /// Express + Socket.IO app on MongoDB (not verified: no MongoDB client here).
    Mongodb,
    /// SpacetimeDB module at --url (database --database), verified with its SQL endpoint.
    Spacetimedb,
    /// Direct INSERTs into PostgreSQL at --db-url: the physical limit.
    Ceiling,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Postgres => "postgres",
            BackendKind::Mongodb => "mongodb",
            BackendKind::Spacetimedb => "spacetimedb",
            BackendKind::Ceiling => "ceiling",
        }
    }
}

/// Throughput and latency of a generated app under load, with verification in its database.
///
/// Examples:
///   cargo xtask bench-stress --app runs/<run>/postgres/results/chat-app-<ts> --var pg_port=5433
///   cargo xtask bench-stress --backend postgres --url http://127.0.0.1:3000 --db-url postgres://u:p@127.0.0.1:5432/chat
///   cargo xtask bench-stress --backend ceiling --db-url postgres://spacetime:spacetime@127.0.0.1:6432/spacetime
///   cargo xtask bench-stress --compare runs/a/postgres/stress/*.json
///   cargo xtask bench-stress --headroom
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Kind of target [default with --app: the app's backend].
    #[arg(long, value_enum, required_unless_present_any = ["compare", "headroom", "serve_noop", "app"])]
    pub backend: Option<BackendKind>,
    /// An app the harness built (`runs/.../results/chat-app-<ts>`): URL, database URL and
    /// ports from its state and backend, its source for discovery, results in its run's
    /// `stress/`; started on a fresh database (and stopped after) when it is not running.
    #[arg(long, value_name = "APP_DIR")]
    pub app: Option<PathBuf>,
    /// With --app: a value of the app's backend to replace, as `bench-app --var`, e.g.
    /// `--var pg_port=5433` for a PostgreSQL on another port (repeatable; `cargo xtask
    /// bench-prompts --show BACKEND` lists the values). Empty: those the running app was
    /// started with, if any.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = name_value)]
    pub vars: Vec<(String, String)>,
    /// Load shape.
    #[arg(long, value_enum, default_value = "stress")]
    pub scenario: Scenario,
    /// The app's base URL (http://127.0.0.1:PORT); not used by the ceiling.
    #[arg(long)]
    pub url: Option<String>,
    /// PostgreSQL URL for verification (and the target of the ceiling).
    #[arg(long, env = "BENCH_STRESS_DB_URL")]
    pub db_url: Option<String>,
    /// SpacetimeDB database name (or identity).
    #[arg(long, default_value = "chat")]
    pub database: String,
    /// Adapter file describing the app's endpoints and events (probed when absent).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Use the reference server's adapter (the shape of many generated apps) without probing.
    #[arg(long, conflicts_with = "adapter")]
    pub reference_adapter: bool,
    /// The app's folder (or its server folder): its routes, socket handlers and schema rank
    /// the shapes probing tries, and its message table is where verification counts.
    #[arg(long, value_name = "APP_DIR")]
    pub source: Option<PathBuf>,
    /// Write the adapter that was used (probed or given) to this file.
    #[arg(long)]
    pub save_adapter: Option<PathBuf>,
    /// Measurement window: seconds, or a duration such as 30s, 2m, 1m30s.
    #[arg(long, default_value = "30", value_parser = seconds)]
    pub duration: f64,
    /// Warm-up before the window (seconds or 5s, 1m; excluded from every figure but the totals).
    #[arg(long, default_value = "5", value_parser = seconds)]
    pub warmup: f64,
    /// Sending connections (users, in the realistic scenario).
    #[arg(long, default_value_t = 20)]
    pub writers: u32,
    /// Connections that only listen to the room.
    #[arg(long, default_value_t = 1)]
    pub listeners: u32,
    /// Requests each writer may have awaiting an answer.
    #[arg(long, default_value_t = 8)]
    pub in_flight: u32,
    /// Total messages per second (rate scenario).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds between one user's messages, MIN..MAX (realistic scenario).
    #[arg(long, default_value = "5..15")]
    pub cadence: String,
    /// Seed of the jitter and phases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 64)]
    pub message_bytes: u32,
    /// A request unanswered this long (seconds or 10s, 500ms) counts as a timeout.
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub timeout: f64,
    /// Time allowed after the window for answers still in flight (seconds or 10s, 1m).
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub drain: f64,
    /// Folder for the result file [default: runs/adhoc/<backend>/stress].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label of this run in comparisons (e.g. as-shipped, rate-limit-removed, optimized).
    #[arg(long)]
    pub label: Option<String>,
    /// Client runtime threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Keep the ceiling's rows in its table after the run (by default they are deleted once
    /// counted, so that runs do not pile up).
    #[arg(long)]
    pub keep_rows: bool,
    /// After an app run, measure the ceiling (direct INSERTs into the same PostgreSQL at
    /// --db-url, same writers and window) in the same session, save it beside the app's
    /// result, and print both side by side with the app's share of the ceiling.
    #[arg(long)]
    pub ceiling: bool,
    /// Run the Rust no-op Socket.IO server on 127.0.0.1:PORT until Ctrl-C (the headroom
    /// target, for measuring the client by hand).
    #[arg(long, value_name = "PORT")]
    pub serve_noop: Option<u16>,
    /// Compare result files instead of running.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub compare: Vec<PathBuf>,
    /// Measure the client's headroom: the reference app vs a no-op server.
    #[arg(long)]
    pub headroom: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(args: Args) -> Result<()> {
    if !args.vars.is_empty() && args.app.is_none() {
        bail!(
            "--var replaces a value of an app's backend and is used only with --app APP_DIR: \
             give --app, or give the app's --url and --db-url directly"
        );
    }
    if !args.compare.is_empty() {
        print!("{}", report::compare(&args.compare)?);
        return Ok(());
    }
    if args.headroom {
        return crate::headroom::run(&args);
    }
    if let Some(port) = args.serve_noop {
        let server = crate::noop_server::NoopServer::start_on(port, args.threads)?;
        println!(
            "no-op Socket.IO server on {} (reference adapter shape); Ctrl-C stops it",
            server.url()
        );
        return server.wait_for_signal();
    }
    let mut args = args;
    let _app = match args.app.clone() {
        Some(dir) => Some(crate::app::AppUnderTest::prepare(&dir, &mut args)?),
        None => None,
    };
    if args.ceiling && (args.backend != Some(BackendKind::Postgres) || args.db_url.is_none()) {
        bail!(
            "--ceiling measures direct INSERTs into the app's PostgreSQL: give --backend postgres and --db-url"
        );
    }
    let result = run_once(&args)?;
    println!("{}", report::summary(&result.0));
    println!("  saved         {}", result.1.display());
    if args.ceiling {
        let ceiling = ceiling_args(&args, &result.1);
        eprintln!("measuring the ceiling on the same PostgreSQL...");
        let (c, path) = run_once(&ceiling)?;
        println!("{}", report::summary(&c));
        println!("  saved         {}\n", path.display());
        print!("{}", report::compare(&[result.1.clone(), path])?);
    }
    if result.0.verification.committed.is_some() && !result.0.verification.passed {
        bail!("verification failed: {}", result.0.verification.detail);
    }
    Ok(())
}

/// The ceiling run that goes with an app run: same database, writers, in-flight and
/// window; saved in the same folder.
fn ceiling_args(args: &Args, app_result: &std::path::Path) -> Args {
    let mut c = args.clone();
    c.backend = Some(BackendKind::Ceiling);
    c.label = Some("ceiling".into());
    c.out = app_result.parent().map(std::path::Path::to_path_buf);
    c.adapter = None;
    c.save_adapter = None;
    c.source = None;
    c.ceiling = false;
    c
}

impl Args {
    pub fn plan(&self) -> Result<Plan> {
        let (lo, hi) = parse_cadence(&self.cadence)?;
        let secs = |x: f64, what: &str| -> Result<Duration> {
            Duration::try_from_secs_f64(x)
                .with_context(|| format!("--{what} must be a number of seconds >= 0"))
        };
        let plan = Plan {
            scenario: self.scenario,
            duration: secs(self.duration, "duration")?,
            warmup: secs(self.warmup, "warmup")?,
            writers: self.writers as usize,
            listeners: self.listeners as usize,
            in_flight: self.in_flight as usize,
            rate: self.rate.unwrap_or(0.0),
            cadence: (lo, hi),
            seed: self.seed,
            message_bytes: self.message_bytes as usize,
            timeout: secs(self.timeout, "timeout")?,
            drain: secs(self.drain, "drain")?,
            progress: !self.no_progress,
        };
        plan.check()?;
        Ok(plan)
    }

    fn config(&self, plan: &Plan) -> RunConfig {
        RunConfig {
            duration_seconds: plan.duration.as_secs_f64(),
            warmup_seconds: plan.warmup.as_secs_f64(),
            writers: self.writers,
            listeners: self.listeners,
            in_flight: self.in_flight,
            rate: (plan.scenario == Scenario::Rate).then_some(plan.rate),
            cadence_seconds: (plan.scenario == Scenario::Realistic).then_some(plan.cadence),
            seed: self.seed,
            message_bytes: self.message_bytes,
            request_timeout_seconds: plan.timeout.as_secs_f64(),
            drain_seconds: plan.drain.as_secs_f64(),
        }
    }
}

/// A time as seconds: a plain number (`30`, `0.5`) or a humantime duration (`30s`, `2m`,
/// `1m30s`, `500ms`).
fn seconds(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(secs),
        Ok(_) => Err(format!("{text}: give a time of zero or more")),
        Err(_) => humantime::parse_duration(t)
            .map(|d| d.as_secs_f64())
            .map_err(|e| format!("{text}: {e} (write seconds, or e.g. 30s, 2m, 1m30s, 500ms)")),
    }
}

/// `NAME=VALUE` of `--var`.
fn name_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!(
            "{text:?} is not NAME=VALUE (e.g. --var pg_port=5433)"
        )),
    }
}

fn parse_cadence(text: &str) -> Result<(f64, f64)> {
    let (a, b) = text
        .split_once("..")
        .with_context(|| format!("--cadence {text:?}: write MIN..MAX seconds, e.g. 5..15"))?;
    let a: f64 = a
        .trim()
        .parse()
        .with_context(|| format!("--cadence {text:?}: MIN is not a number"))?;
    let b: f64 = b
        .trim()
        .parse()
        .with_context(|| format!("--cadence {text:?}: MAX is not a number"))?;
    Ok((a, b))
}

/// A fresh run tag (8 hex digits) that marks this run's messages.
pub fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32);
    x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    format!("{:08x}", x as u32)
}

/// Runs what the arguments describe and saves the result: (result, file).
pub fn run_once(args: &Args) -> Result<(StressResult, PathBuf)> {
    let kind = args.backend.context("give --backend")?;
    let plan = args.plan()?;
    // Checked before the run, not after it: an adapter file may be hand-written and commented.
    if let Some(path) = &args.save_adapter
        && path.exists()
    {
        bail!(
            "--save-adapter {} already exists: give a new file name, or delete it first",
            path.display()
        );
    }
    let started_at = report::now_rfc3339();
    let marker = Arc::new(Marker::new(&run_tag()));
    let cpu = CpuMeter::default();
    let rt = cpu
        .runtime(args.threads)
        .context("cannot start the client runtime")?;
    let out_dir = match &args.out {
        Some(dir) => dir.clone(),
        None => bench_formats::paths::repo_root()?
            .join("runs/adhoc")
            .join(kind.as_str())
            .join("stress"),
    };
    let info = RunInfo {
        backend: kind.as_str().to_string(),
        client: String::new(),
        label: args.label.clone(),
        scenario: plan.scenario.as_str().to_string(),
        target: Target::default(),
        config: args.config(&plan),
        command_line: std::env::args().map(|a| redact(&a)).collect(),
        adapter: None,
        probe_notes: Vec::new(),
        started_at,
    };
    let run = Run {
        args: args.clone(),
        plan,
        marker,
        cpu,
        info,
    };
    let result = rt.block_on(async move {
        tokio::spawn(async move {
            match kind {
                BackendKind::Ceiling => run.ceiling().await,
                BackendKind::Spacetimedb => run.spacetimedb().await,
                BackendKind::Postgres | BackendKind::Mongodb => run.socketio(kind).await,
            }
        })
        .await
        .context("the run panicked")?
    })?;
    drop(rt);
    let path = report::save(&out_dir, &result)?;
    Ok((result, path))
}

/// One run being set up: what it needs on the client's runtime.
struct Run {
    args: Args,
    plan: Plan,
    marker: Arc<Marker>,
    cpu: CpuMeter,
    info: RunInfo,
}

impl Run {
    async fn ceiling(mut self) -> Result<StressResult> {
        let db_url = self
            .args
            .db_url
            .clone()
            .context("the ceiling needs --db-url postgres://...")?;
        let room_id = i32::from_str_radix(&self.marker.run()[..7], 16).unwrap_or(1);
        let backend = CeilingBackend::prepare(&db_url, room_id).await?;
        self.info.target = Target {
            url: redact(&db_url),
            db_url: Some(redact(&db_url)),
            database: None,
            room: format!("room_id {room_id}"),
            room_id: Some(room_id.into()),
        };
        self.plan.listeners = 0;
        self.info.config.listeners = 0;
        let result = execute(backend, &self.plan, self.marker, self.cpu, self.info).await?;
        if !self.args.keep_rows {
            crate::ceiling::delete_rows(&db_url, room_id).await?;
        }
        Ok(result)
    }

    async fn spacetimedb(mut self) -> Result<StressResult> {
        let args = &self.args;
        let url = args
            .url
            .as_deref()
            .context("give the SpacetimeDB server's --url http://127.0.0.1:PORT")?;
        let adapter = match &args.adapter {
            Some(path) => crate::stdb::load_adapter(path)?,
            None => crate::stdb_shape::ChatHints::default(),
        };
        let (backend, notes) = crate::stdb::prepare(crate::stdb::StdbSetup {
            url,
            database: &args.database,
            adapter,
            marker: &self.marker,
        })
        .await?;
        for note in &notes {
            eprintln!("{note}");
        }
        let (room, room_id) = backend.room();
        self.info.target = Target {
            url: url.to_string(),
            db_url: None,
            database: Some(args.database.clone()),
            room: room.to_string(),
            room_id: Some(room_id.clone()),
        };
        self.info.adapter = Some(serde_json::to_value(backend.shape())?);
        self.info.probe_notes = notes;
        execute(backend, &self.plan, self.marker, self.cpu, self.info).await
    }

    async fn socketio(mut self, kind: BackendKind) -> Result<StressResult> {
        let args = &self.args;
        let url = args
            .url
            .as_deref()
            .context("give the app's --url http://127.0.0.1:PORT")?;
        let adapter = match &args.adapter {
            Some(path) => Some(Adapter::load(path)?),
            None => args.reference_adapter.then(Adapter::reference),
        };
        let db_url = match kind {
            BackendKind::Postgres => args.db_url.as_deref(),
            _ => None,
        };
        if kind == BackendKind::Mongodb && args.db_url.is_some() {
            eprintln!(
                "note: MongoDB apps are not verified yet (no MongoDB client); --db-url is ignored"
            );
        }
        let (candidates, source_notes) = candidates_for(args.source.as_deref())?;
        for note in &source_notes {
            eprintln!("{note}");
        }
        let prepared = socketio::prepare(socketio::Setup {
            base: BaseUrl::parse(url)?,
            adapter,
            candidates,
            writers: self.plan.writers,
            listeners: self.plan.listeners,
            marker: self.marker.clone(),
            message_bytes: self.plan.message_bytes,
            db_url,
        })
        .await?;
        for note in &prepared.notes {
            eprintln!("{note}");
        }
        let backend = prepared.backend;
        if let Some(path) = &args.save_adapter {
            bench_formats::io::write_atomic(path, backend.adapter().to_toml()?.as_bytes())?;
            eprintln!("adapter saved to {}", path.display());
        }
        let (room, room_id) = backend.room();
        self.info.target = Target {
            url: url.to_string(),
            db_url: db_url.map(redact),
            database: None,
            room: room.to_string(),
            room_id: Some(room_id.clone()),
        };
        self.info.adapter = Some(serde_json::to_value(backend.adapter())?);
        self.info.probe_notes = source_notes;
        self.info.probe_notes.extend(prepared.notes);
        execute(backend, &self.plan, self.marker, self.cpu, self.info).await
    }
}

/// The shapes to probe: the source's first when `--source` is given; and what the source
/// says, for the notes.
pub fn candidates_for(source: Option<&std::path::Path>) -> Result<(Candidates, Vec<String>)> {
    let Some(dir) = source else {
        return Ok((Candidates::generic(), Vec::new()));
    };
    let facts = SourceFacts::scan(dir)?;
    let candidates = Candidates::from_source(&facts);
    let mut notes = facts.summary();
    notes.extend(candidates.notes.iter().cloned());
    Ok((candidates, notes))
}

/// Runs a prepared backend and writes the result up.
pub async fn execute<B: Backend>(
    backend: B,
    plan: &Plan,
    marker: Arc<Marker>,
    cpu: CpuMeter,
    mut info: RunInfo,
) -> Result<StressResult> {
    info.client = backend.client_name().to_string();
    let out = scenario::run(Arc::new(backend), plan, marker, cpu).await?;
    Ok(report::build(info, &out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn parses_flags_and_checks_them() {
        let cli = Cli::try_parse_from([
            "x",
            "--backend",
            "postgres",
            "--scenario",
            "rate",
            "--rate",
            "500",
        ])
        .unwrap();
        let plan = cli.args.plan().unwrap();
        assert_eq!(plan.rate, 500.0);
        assert_eq!(plan.writers, 20);
        let cli =
            Cli::try_parse_from(["x", "--backend", "postgres", "--scenario", "rate"]).unwrap();
        assert!(format!("{:#}", cli.args.plan().unwrap_err()).contains("--rate"));
        let cli = Cli::try_parse_from([
            "x",
            "--backend",
            "postgres",
            "--cadence",
            "15..5",
            "--scenario",
            "realistic",
        ])
        .unwrap();
        assert!(cli.args.plan().is_err());
        assert!(
            Cli::try_parse_from(["x"]).is_err(),
            "--backend is required for a run"
        );
        assert!(Cli::try_parse_from(["x", "--compare", "a.json"]).is_ok());
        assert_eq!(parse_cadence("5..15").unwrap(), (5.0, 15.0));
        assert_eq!(seconds("30").unwrap(), 30.0);
        assert_eq!(seconds("1m30s").unwrap(), 90.0);
        assert_eq!(seconds("500ms").unwrap(), 0.5);
        assert!(seconds("-1").is_err() && seconds("soon").is_err());
        let cli = Cli::try_parse_from(["x", "--backend", "ceiling", "--duration", "2m"]).unwrap();
        assert_eq!(cli.args.plan().unwrap().duration, Duration::from_secs(120));
        assert_ne!(run_tag(), "");
    }

    #[test]
    fn vars_are_name_value_pairs_for_app_only() {
        let cli = Cli::try_parse_from([
            "x",
            "--app",
            "a",
            "--var",
            "pg_port=5433",
            "--var",
            "express_port=7001",
        ])
        .unwrap();
        assert_eq!(
            cli.args.vars,
            [
                ("pg_port".to_string(), "5433".to_string()),
                ("express_port".to_string(), "7001".to_string())
            ]
        );
        let err = Cli::try_parse_from(["x", "--app", "a", "--var", "pg_port"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("NAME=VALUE"), "{err}");
        let cli =
            Cli::try_parse_from(["x", "--backend", "postgres", "--var", "pg_port=5433"]).unwrap();
        let err = format!("{:#}", run(cli.args).unwrap_err());
        assert!(err.contains("used only with --app"), "{err}");
    }
}
