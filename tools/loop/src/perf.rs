//! `cargo xtask bench-loop-perf`: the harness's own speed.
//!
//! - `RUN_DIR…`: the harness's own time in each session step of finished loops — the step's
//!   wall time less the agent's (preflight, folders, prompt, the scripted API, the wait for
//!   the last telemetry export, costing, the records).
//! - `--scaling N`: a rehearsed loop with one app, then the same loop with N apps at
//!   `--parallel N`; both wall times, their ratio against the 1.3× target, and the overhead
//!   per session step of every app measured.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench_formats::loop_record::{LoopStep, StepRecord};
use bench_formats::{AppState, Outcome, SessionMetadata};
use clap::Parser;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

/// Most a loop of N apps at once may take, as a multiple of one app's loop.
pub const SCALING_TARGET: f64 = 1.3;
/// Most the harness may add to a session step, in seconds.
pub const OVERHEAD_TARGET_S: f64 = 5.0;
/// The rehearsal folder the scaling figure plays unless told otherwise.
pub const PERF_REHEARSAL: &str = "rehearsal/loop-perf";
/// The first run index of the scaling loops (bench-loop's tests use 41–60).
pub const PERF_FIRST_RUN_INDEX: u32 = 71;

/// The harness's own speed: its overhead per session step in the loops that made the apps
/// under RUN_DIR…, or, with --scaling N, a rehearsed loop of one app against the same loop
/// of N apps at once.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
RUN_DIR…: figures from the apps' records (step times in .bench/state.json, the agent's wall time in each session's metadata.json); a session step's harness overhead is its wall time less the agent's (target: at most 5 s).

--scaling N: bench-loop (postgres, --max-fixes 0, --no-report) to --to-level with one app, then with N apps at --parallel N, both on a throwaway PostgreSQL and telemetry receiver (or --machine-infra); prints each app's session and grading time, both wall times with the load average before and after, their ratio against the target (N apps within 1.3x the wall time of one) and the overhead per session step. The default rehearsal, rehearsal/loop-perf, answers each turn after the time a real model would take to write it.

Examples:
  cargo xtask bench-loop-perf runs/sequential-upgrade-20261201
  cargo xtask bench-loop-perf --scaling 4
  cargo xtask bench-loop-perf --scaling 2 --rehearse rehearsal/loop --keep /tmp/scaling")]
pub struct Args {
    /// Run folders (or app folders) made by bench-loop.
    #[arg(
        value_name = "RUN_DIR",
        required_unless_present = "scaling",
        conflicts_with = "scaling"
    )]
    pub runs: Vec<PathBuf>,
    /// Rehearse the loop (postgres, the reference app) with one app, then with N apps at
    /// --parallel N, and print both wall times and their ratio (target: at most 1.3×).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=9))]
    pub scaling: Option<u32>,
    /// The rehearsal folder both loops play (default rehearsal/loop-perf: generate-l1.toml
    /// with model time as a real model would take).
    #[arg(long, value_name = "DIR", requires = "scaling")]
    pub rehearse: Option<PathBuf>,
    /// The level both loops take their apps to (the rehearsal folder needs its scripts).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "scaling")]
    pub to_level: u32,
    /// Keep both loops' runs in this folder (default: a temporary folder, removed).
    #[arg(long, value_name = "DIR", requires = "scaling")]
    pub keep: Option<PathBuf>,
    /// Use this machine's infrastructure (bench-infra: its PostgreSQL and telemetry
    /// receiver) instead of a throwaway PostgreSQL and receiver.
    #[arg(long, requires = "scaling")]
    pub machine_infra: bool,
    /// The run index of the single app (the N apps follow it).
    #[arg(long, value_name = "K", default_value_t = PERF_FIRST_RUN_INDEX, requires = "scaling")]
    pub first_run_index: u32,
    /// The agent CLI (default: `claude` on PATH, else the harness's own copy).
    #[arg(long, value_name = "PATH", requires = "scaling")]
    pub agent_bin: Option<PathBuf>,
    /// The Chromium bench-grade drives.
    #[arg(long, value_name = "PATH", requires = "scaling")]
    pub browser: Option<PathBuf>,
}

/// One session step's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTime {
    pub app: String,
    pub step: String,
    pub step_s: f64,
    pub agent_s: f64,
}

impl StepTime {
    pub fn overhead_s(&self) -> f64 {
        self.step_s - self.agent_s
    }
}

pub fn run(args: Args) -> Result<()> {
    if let Some(apps) = args.scaling {
        return scaling(&args, apps);
    }
    let apps = crate::record::loop_apps(&args.runs)?;
    if apps.is_empty() {
        bail!("no app made by bench-loop under the folders given");
    }
    let times = times_of(&apps)?;
    println!("{}", step_table(&times));
    println!("{}", overhead_line(&times));
    Ok(())
}

/// Every session step of these apps.
fn times_of(apps: &[PathBuf]) -> Result<Vec<StepTime>> {
    let mut times = Vec::new();
    for app in apps {
        let state = crate::record::read_state(app)?;
        times.extend(step_times(app, &state)?);
    }
    Ok(times)
}

fn step_table(times: &[StepTime]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["App", "Step", "Step (s)", "Agent (s)", "Harness (s)"]);
    for t in times {
        table.add_row([
            t.app.clone(),
            t.step.clone(),
            format!("{:.1}", t.step_s),
            format!("{:.1}", t.agent_s),
            format!("{:.1}", t.overhead_s()),
        ]);
    }
    table
}

/// `harness overhead per session step: mean …, max … over N steps (target ≤ 5 s: met)`.
fn overhead_line(times: &[StepTime]) -> String {
    let worst = times.iter().map(StepTime::overhead_s).fold(0.0, f64::max);
    let mean = times.iter().map(StepTime::overhead_s).sum::<f64>() / times.len().max(1) as f64;
    let verdict = if times.is_empty() {
        "no session step"
    } else if worst <= OVERHEAD_TARGET_S {
        "met"
    } else {
        "MISSED"
    };
    format!(
        "harness overhead per session step: mean {mean:.1} s, max {worst:.1} s over {} steps (target ≤ {OVERHEAD_TARGET_S:.0} s: {verdict})",
        times.len()
    )
}

fn seconds_between(step: &StepRecord) -> Option<f64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let start = parse(&step.started_at_utc)?;
    let end = parse(step.ended_at_utc.as_deref()?)?;
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

/// The session steps of an app that ran to their end, paired in order with the sessions
/// that completed or failed (a step cut off by a killed loop, and its session, are left
/// out: their times are not the harness's).
pub fn step_times(app: &Path, state: &AppState) -> Result<Vec<StepTime>> {
    let Some(rec) = &state.loop_record else {
        return Ok(vec![]);
    };
    let backend_dir = app
        .parent()
        .and_then(Path::parent)
        .context("an app outside a run's results/")?;
    let steps = rec.steps.iter().filter(|s| {
        !matches!(s.step, LoopStep::Grade { .. } | LoopStep::Finish)
            && !s
                .result
                .as_deref()
                .is_some_and(|r| r.starts_with("cut off"))
    });
    let sessions = state.sessions.iter().filter(|s| {
        !matches!(
            s.outcome,
            Outcome::Killed | Outcome::Running | Outcome::Interrupted
        )
    });
    let name = format!("{} #{}", state.backend, rec.repetition);
    let mut out = Vec::new();
    for (step, session) in steps.zip(sessions) {
        let Some(step_s) = seconds_between(step) else {
            continue;
        };
        let meta_path = backend_dir
            .join(session.telemetry_dir.as_deref().unwrap_or_default())
            .join(bench_formats::files::METADATA_FILE);
        let meta: SessionMetadata = bench_formats::read_json(&meta_path)?;
        out.push(StepTime {
            app: name.clone(),
            step: step.step.to_string(),
            step_s,
            agent_s: meta.wall_clock_sec.unwrap_or(0.0),
        });
    }
    Ok(out)
}

// ---- the scaling figure ------------------------------------------------------------------

/// Where the scaling loops run: the folder, and the throwaway PostgreSQL and telemetry
/// receiver (kept alive while the loops run) or the machine's own.
struct Bench {
    dir: PathBuf,
    /// The runs stay after the benchmark (--keep).
    kept: bool,
    _tmp: Option<tempfile::TempDir>,
    _pg: Option<bench_pg::PgCluster>,
    _receiver: Option<otlp_receiver::ReceiverHandle>,
    /// bench-loop options every loop gets.
    common: Vec<String>,
}

impl Bench {
    fn new(args: &Args, root: &Path) -> Result<Bench> {
        let (dir, tmp) = match &args.keep {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                (
                    std::path::absolute(dir).context("cannot resolve --keep")?,
                    None,
                )
            }
            None => {
                let tmp = tempfile::tempdir().context(
                    "cannot create a temporary folder for the loops' runs (set TMPDIR to a writable folder, or give --keep DIR)",
                )?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let rehearse = args
            .rehearse
            .clone()
            .unwrap_or_else(|| root.join(PERF_REHEARSAL));
        let mut common: Vec<String> = vec![
            "--backend".into(),
            "postgres".into(),
            "--to-level".into(),
            args.to_level.to_string(),
            "--max-fixes".into(),
            "0".into(),
            "--rehearse".into(),
            rehearse.display().to_string(),
            "--fresh".into(),
            "--no-report".into(),
        ];
        for (flag, value) in [
            ("--agent-bin", &args.agent_bin),
            ("--browser", &args.browser),
        ] {
            if let Some(v) = value {
                // The loop runs the agent in the app's folder: a relative path would miss.
                let v = std::path::absolute(v)
                    .with_context(|| format!("cannot resolve {flag} {}", v.display()))?;
                common.extend([flag.to_owned(), v.display().to_string()]);
            }
        }
        let mut bench = Bench {
            kept: args.keep.is_some(),
            dir,
            _tmp: tmp,
            _pg: None,
            _receiver: None,
            common,
        };
        if !args.machine_infra {
            bench.throwaway_infra()?;
        }
        Ok(bench)
    }

    /// A throwaway PostgreSQL and telemetry receiver, as bench-loop's tests use.
    fn throwaway_infra(&mut self) -> Result<()> {
        let telemetry = self.dir.join("telemetry");
        let receiver =
            otlp_receiver::Receiver::start(otlp_receiver::ReceiverConfig::ephemeral(&telemetry))
                .context(
                    "cannot start a telemetry receiver for the benchmark (or pass --machine-infra)",
                )?;
        let pg = bench_pg::PgCluster::start_temp().context(
            "cannot start a throwaway PostgreSQL for the benchmark (install PostgreSQL's server binaries, or pass --machine-infra)",
        )?;
        self.common.extend([
            "--otlp-endpoint".into(),
            receiver.http_endpoint(),
            "--telemetry-dir".into(),
            receiver.dir().display().to_string(),
            "--pg-port".into(),
            pg.port().to_string(),
        ]);
        self._receiver = Some(receiver);
        self._pg = Some(pg);
        Ok(())
    }
}

#[derive(Parser)]
struct LoopCommand {
    #[command(flatten)]
    args: crate::cli::Args,
}

/// One timed loop.
struct Timed {
    apps: u32,
    wall: Duration,
    load_before: String,
    load_after: String,
    app_dirs: Vec<PathBuf>,
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg has them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs the loop with `apps` apps at once into `<dir>/<label>`, and times it.
fn timed_loop(bench: &Bench, label: &str, apps: u32, first_run_index: u32) -> Result<Timed> {
    let runs = bench.dir.join(label);
    let mut argv: Vec<String> = vec!["bench-loop".into()];
    argv.extend(bench.common.iter().cloned());
    argv.extend([
        "--repeat".into(),
        apps.to_string(),
        "--parallel".into(),
        apps.to_string(),
        "--first-run-index".into(),
        first_run_index.to_string(),
        "--runs-dir".into(),
        runs.display().to_string(),
    ]);
    let cmd = LoopCommand::try_parse_from(&argv).context("cannot build the bench-loop command")?;
    eprintln!("bench-loop-perf: {label}: {}", argv[1..].join(" "));
    let load_before = load_average();
    let started = Instant::now();
    crate::cli::run(cmd.args).with_context(|| {
        if bench.kept {
            format!(
                "the rehearsed loop with {apps} app(s) did not finish (its runs are in {})",
                runs.display()
            )
        } else {
            format!(
                "the rehearsed loop with {apps} app(s) did not finish (pass --keep DIR to keep its runs for a look)"
            )
        }
    })?;
    let wall = started.elapsed();
    Ok(Timed {
        apps,
        wall,
        load_before,
        load_after: load_average(),
        app_dirs: crate::record::loop_apps(&[runs])?,
    })
}

/// The scaling figure: one app, then `n` apps at once, with the same options.
fn scaling(args: &Args, n: u32) -> Result<()> {
    let root = bench_formats::paths::repo_root()?;
    let bench = Bench::new(args, &root)?;
    // One-off installs are not the loops' time: the grading driver's packages first.
    bench_grade::driver::install(&root, &bench_grade::driver::default_install_dir(&root))
        .context("cannot install the grading driver before timing the loops")?;
    let one = timed_loop(&bench, "one-app", 1, args.first_run_index)?;
    let many = timed_loop(&bench, &format!("{n}-apps"), n, args.first_run_index + 1)?;
    println!();
    println!("{}", apps_table(&[&one, &many])?);
    let mut times = Vec::new();
    for t in [&one, &many] {
        for mut step in times_of(&t.app_dirs)? {
            step.app = format!("{} app(s): {}", t.apps, step.app);
            times.push(step);
        }
    }
    println!("{}", step_table(&times));
    for t in [&one, &many] {
        println!(
            "{} app(s) at once: {:.1} s wall time (load average {} before, {} after)",
            t.apps,
            t.wall.as_secs_f64(),
            t.load_before,
            t.load_after
        );
    }
    let ratio = many.wall.as_secs_f64() / one.wall.as_secs_f64().max(f64::EPSILON);
    let verdict = if ratio <= SCALING_TARGET {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "scaling: {n} apps took {ratio:.2}× the wall time of one (target ≤ {SCALING_TARGET}×: {verdict}; {} cores)",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!("{}", overhead_line(&times));
    if let Some(dir) = &args.keep {
        println!("runs kept in {}", dir.display());
    }
    Ok(())
}

/// One row per app of both loops: its generate and grade steps, and its score.
fn apps_table(loops: &[&Timed]) -> Result<Table> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "Loop",
        "App",
        "Session steps (s)",
        "App start + grading (s)",
        "Grades",
    ]);
    for t in loops {
        for app in &t.app_dirs {
            let state = crate::record::read_state(app)?;
            let Some(rec) = &state.loop_record else {
                continue;
            };
            let (mut sessions, mut gradings) = (0.0, 0.0);
            for step in &rec.steps {
                let s = seconds_between(step).unwrap_or(0.0);
                match step.step {
                    LoopStep::Grade { .. } => gradings += s,
                    LoopStep::Finish => {}
                    _ => sessions += s,
                }
            }
            let grades: Vec<String> = rec
                .grades
                .iter()
                .map(|g| format!("L{} {}/{}", g.level, g.score, g.max))
                .collect();
            table.add_row([
                format!("{} app(s)", t.apps),
                format!("{} #{}", state.backend, rec.repetition),
                format!("{sessions:.1}"),
                format!("{gradings:.1}"),
                grades.join(", "),
            ]);
        }
    }
    Ok(table)
}
