//! One grading, start to end: choose the features, check the app answers, run the driver,
//! score, write the files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bench_content::{Feature, Levels};
use bench_formats::grading::{
    BrowserInfo, GRADING_SCHEMA, GRADING_SCHEMA_VERSION, GradingFile, NotChecked,
};

use crate::program::{
    Program, ProgramSettings, contract_headings, manual_steps, select_features, unscripted,
};
use crate::record::{Progress, Recorder};
use crate::{browser, driver, output, score};

/// What is graded.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// An app folder the harness knows (its backend, level and address come from it).
    App(PathBuf),
    /// An app running anywhere.
    Url(String),
}

/// Everything one grading needs.
#[derive(Debug, Clone)]
pub struct Request {
    /// The benchmark repository (content, driver sources).
    pub root: PathBuf,
    pub target: Target,
    /// The level to grade; with an app folder, defaults to the app's level.
    pub level: Option<u32>,
    /// Grade only these features of the level (empty: all).
    pub features: Vec<u32>,
    pub browser: Option<PathBuf>,
    /// Where the files go; defaults to the app folder.
    pub out: Option<PathBuf>,
    /// Where the driver's npm packages are installed.
    pub driver_dir: PathBuf,
    /// Record a Playwright trace of failed steps.
    pub trace: bool,
    /// How bench-app finds an app folder's backend and ports (default: from the app's
    /// state, for the repository at `root`).
    pub app_options: Option<bench_app::AppOptions>,
}

/// A finished grading.
#[derive(Debug, Clone)]
pub struct Graded {
    pub file: GradingFile,
    /// The files written in the output folder.
    pub written: Vec<PathBuf>,
    /// `.bench/grading/<stamp>-level-<N>/`.
    pub run_dir: PathBuf,
}

impl Graded {
    /// Every graded feature got its maximum.
    pub fn all_points(&self) -> bool {
        self.file.score == self.file.max
    }
}

/// What the grading needs to know about its target before it starts.
pub(crate) struct Plan {
    pub(crate) level: u32,
    pub(crate) out: PathBuf,
    pub(crate) backend: Option<String>,
}

pub(crate) fn plan(req: &Request) -> Result<Plan> {
    match &req.target {
        Target::Url(_) => {
            let Some(level) = req.level else {
                bail!("--url needs --level N (the level whose features to grade)");
            };
            let Some(out) = req.out.clone() else {
                bail!("--url needs --out DIR (where GRADING_RESULTS.md and grading.json go)");
            };
            Ok(Plan {
                level,
                out,
                backend: None,
            })
        }
        Target::App(dir) => {
            if !dir.is_dir() {
                bail!(
                    "{} is not a folder: give an app folder (results/chat-app-<ts>), or --url URL --level N --out DIR",
                    dir.display()
                );
            }
            let state = crate::app::app_state(dir)?;
            let level = match (req.level, &state) {
                (Some(level), _) => level,
                (None, Some(state)) => state.level,
                (None, None) => bail!(
                    "{} has no {} to say its level: pass --level N",
                    dir.display(),
                    crate::app::STATE_FILE
                ),
            };
            Ok(Plan {
                level,
                out: req.out.clone().unwrap_or_else(|| dir.clone()),
                backend: state.map(|s| s.backend),
            })
        }
    }
}

/// Makes sure the app answers; with an app folder, resets its database and starts it.
pub(crate) fn reach_app(
    req: &Request,
    progress: &mut dyn FnMut(&str),
) -> Result<(String, Option<crate::app::PreparedApp>)> {
    match &req.target {
        Target::Url(url) => {
            if let Err(why) = bench_proc::http_ready(url) {
                bail!("the app does not answer at {url} ({why}): start it first");
            }
            Ok((url.clone(), None))
        }
        Target::App(dir) => {
            let options = req
                .app_options
                .clone()
                .unwrap_or_else(|| bench_app::AppOptions::new(&req.root));
            let prepared = crate::app::prepare(dir, &options, progress)?;
            if let Err(why) = bench_proc::http_ready(&prepared.url) {
                bail!(
                    "the app was started but does not answer at {} ({why})",
                    prepared.url
                );
            }
            Ok((prepared.url.clone(), Some(prepared)))
        }
    }
}

/// Grades: `progress` gets one line per feature as the driver finishes it. An `Err` is a
/// harness failure (bad arguments, app down, browser or driver missing): nothing is written
/// in the output folder then.
pub fn grade(req: &Request, progress: &mut dyn FnMut(&str)) -> Result<Graded> {
    let levels = Levels::load(&req.root)?;
    let plan = plan(req)?;
    let features = select_features(&levels, plan.level, &req.features)?;
    let browser = browser::find_browser(req.browser.as_deref())?;
    let main = driver::install(&req.root, &req.driver_dir)?;
    let (url, running) = reach_app(req, progress)?;
    // A folder without a state file still has a backend: the one bench-app ran it with.
    let backend = plan
        .backend
        .clone()
        .or_else(|| running.as_ref().map(|r| r.app.backend().name.clone()));
    let started = chrono::Utc::now();
    let stamp = started.format("%Y%m%d-%H%M%S").to_string();
    let run_dir = output::run_dir(&plan.out, &stamp, plan.level);
    let settings = ProgramSettings {
        url: url.clone(),
        browser: browser.clone(),
        artifacts_dir: run_dir.join("artifacts"),
        trace: req.trace,
        headings: contract_headings(&levels),
    };
    // Plans build on what earlier features left (users, rooms, messages): a selection
    // still runs every feature before its last one, and only the selection is scored.
    let last = req.features.iter().max().copied();
    let to_run: Vec<Feature> = levels
        .features_up_to(plan.level)?
        .into_iter()
        .filter(|f| last.is_none_or(|last| f.id <= last))
        .cloned()
        .collect();
    let program = Program::build(&settings, &to_run)?;
    let clock = Instant::now();
    let recorder = run_driver(&main, &program, &run_dir, &levels, progress)?;
    let browser_version = recorder.browser_version.clone();
    let mut graded = recorder.finish()?;
    score::score_all(&mut graded);
    graded.retain(|f| features.iter().any(|selected| selected.id == f.id));
    let file = GradingFile {
        schema: GRADING_SCHEMA.into(),
        schema_version: GRADING_SCHEMA_VERSION,
        generator: format!("bench-grade {}", env!("CARGO_PKG_VERSION")),
        graded_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_ms: clock.elapsed().as_millis() as u64,
        url,
        app_dir: match &req.target {
            Target::App(dir) => Some(dir.display().to_string()),
            Target::Url(_) => None,
        },
        backend,
        level: plan.level,
        selection: req.features.clone(),
        browser: BrowserInfo {
            path: browser.display().to_string(),
            version: browser_version,
        },
        score: graded.iter().map(|f| f.score).sum(),
        max: graded.iter().map(|f| f.max).sum(),
        features: graded,
        not_checked: not_checked(&features),
    };
    let written = output::write_outputs(&plan.out, &run_dir, &stamp, &file)?;
    Ok(Graded {
        file,
        written,
        run_dir,
    })
}

pub(crate) fn not_checked(features: &[Feature]) -> Vec<NotChecked> {
    features
        .iter()
        .flat_map(|f| {
            let behaviours = unscripted(f).into_iter();
            let steps = manual_steps(f)
                .into_iter()
                .map(|(step, why)| (format!("test step {step}"), why));
            behaviours
                .chain(steps)
                .map(|(behaviour, reason)| NotChecked {
                    feature: f.id,
                    behaviour,
                    reason,
                })
        })
        .collect()
}

/// Runs the driver on `program` (written into `run_dir`), recording its events.
fn run_driver(
    main: &Path,
    program: &Program,
    run_dir: &Path,
    levels: &Levels,
    progress: &mut dyn FnMut(&str),
) -> Result<Recorder> {
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let program_path = run_dir.join("program.json");
    bench_formats::io::write_json(&program_path, program)?;
    let level_of = |id: u32| levels.level_of(id).map_or(0, |l| l.number);
    let mut recorder = Recorder::new(program, level_of);
    let deadline = program.time_budget();
    let total = program.features.len();
    let mut done = 0;
    let mut feature_clock = Instant::now();
    let log = run_dir.join("driver.log");
    let exit = driver::run(main, &program_path, &log, deadline, &mut |event| {
        match recorder.apply(event)? {
            Progress::Ready => progress(&format!(
                "browser ready ({}, warm-up {:.1} s)",
                recorder.browser_version,
                recorder.warmup_ms / 1000.0
            )),
            Progress::Started(_) => feature_clock = Instant::now(),
            Progress::Ended {
                feature,
                passed,
                checks,
                failed_actions,
            } => {
                done += 1;
                let name = program
                    .features
                    .iter()
                    .find(|f| f.id == feature)
                    .map_or("", |f| f.name.as_str());
                let blocked = if failed_actions > 0 {
                    format!(", {failed_actions} action(s) could not be carried out")
                } else {
                    String::new()
                };
                progress(&format!(
                    "[{done}/{total}] Feature {feature}: {name} — {passed}/{checks} checks passed{blocked} ({:.1} s)",
                    feature_clock.elapsed().as_secs_f64()
                ));
            }
            Progress::Nothing => {}
        }
        Ok(())
    })
    .with_context(|| format!("the grading driver failed (its log: {})", log.display()))?;
    if let Some(error) = recorder.fatal() {
        bail!(
            "the grading driver could not go on: {error} (its log: {})",
            log.display()
        );
    }
    if !exit.success {
        bail!(
            "the grading driver exited with {} (its log: {}):\n{}",
            exit.status,
            log.display(),
            exit.log_tail
        );
    }
    Ok(recorder)
}
