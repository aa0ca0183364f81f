//! One app through the loop: each step the [machine](crate::machine) decides is recorded in
//! the app's state before it starts and after it ends, then carried out — an agent session
//! through bench-run's [`Session`], a grading through bench-app and bench-grade — until the
//! loop is over for the app.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::loop_record::{
    GradeRecord, Grader, LoopRecord, LoopSettings, LoopStatus, LoopStep, StepRecord,
};
use bench_formats::{AppState, Outcome, Rules, Variant};
use bench_runner::{RunOptions, Session, SessionReport, Task};

use crate::env::LoopEnv;
use crate::machine::{self, Next};
use crate::record;

/// What the loop knows about an app before it exists, and how to report on it.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Where the app stands in the loop's list (its progress line).
    pub position: usize,
    pub backend: String,
    /// 1-based repetition of the backend.
    pub repetition: u32,
    pub run_index: u32,
    pub variant: Variant,
    pub rules: Rules,
}

/// Tells the loop's owner what an app is doing.
pub trait Observer: Send + Sync {
    /// The app's folder is known (right after its generate session claimed it).
    fn app_created(&self, slot: &Slot, app_dir: &Path);
    /// A one-line status: the step, level, fixes so far, cost so far.
    fn status(&self, slot: &Slot, line: &str);
    /// Something worth a line of its own.
    fn note(&self, slot: &Slot, line: &str);
}

/// Drives one app.
pub struct AppDriver<'a> {
    pub env: &'a LoopEnv,
    pub slot: Slot,
    pub loop_id: String,
    pub settings: LoopSettings,
    pub observer: &'a dyn Observer,
    /// The app, once it exists.
    pub app_dir: Option<PathBuf>,
    lock: Option<record::LoopLock>,
}

impl<'a> AppDriver<'a> {
    pub fn new(
        env: &'a LoopEnv,
        slot: Slot,
        loop_id: String,
        settings: LoopSettings,
        observer: &'a dyn Observer,
        app_dir: Option<PathBuf>,
    ) -> AppDriver<'a> {
        AppDriver {
            env,
            slot,
            loop_id,
            settings,
            observer,
            app_dir,
            lock: None,
        }
    }

    /// Runs steps until the loop is over for the app (finished or stopped). An `Err` leaves
    /// the state as it was at the failing step, for `--resume`.
    pub fn run(&mut self) -> Result<AppState> {
        match self.app_dir.clone() {
            Some(dir) => self.adopt(&dir)?,
            None => self.check_machine()?,
        }
        loop {
            if self.env.cancel.is_cancelled() {
                bail!("interrupted: run the same command again, or --resume, to continue");
            }
            let Some(state) = self.step_once()? else {
                break;
            };
            if state.loop_record.as_ref().is_some_and(LoopRecord::is_over) {
                return Ok(state);
            }
        }
        let dir = self
            .app_dir
            .as_deref()
            .context("the app was never generated")?;
        record::read_state(dir)
    }

    /// Takes over an app an earlier loop left: lock, repair of sessions it left running,
    /// and the step it was in when it ended.
    fn adopt(&mut self, dir: &Path) -> Result<()> {
        self.lock = Some(record::lock(dir)?);
        let repaired = record::repair_killed_sessions(dir, &self.env.telemetry.dir)?;
        for run_id in repaired {
            self.note(&format!(
                "session {run_id} was cut off by the end of the previous loop: recorded as killed, its cost kept; its step runs again"
            ));
        }
        let state = record::read_state(dir)?;
        if let Some(current) = state.loop_record.as_ref().and_then(|r| r.current.clone()) {
            self.note(&format!("resuming at {}", current.step));
            record::end_step(dir, "cut off by the end of the previous loop; run again")?;
        }
        Ok(())
    }

    /// Before anything is paid for: this machine can run the backend's apps (its tools
    /// and services answer), which a rehearsal's session does not require by itself.
    fn check_machine(&self) -> Result<()> {
        let content = bench_content::Content::load(&self.env.root)?;
        let backend = content.backend(&self.slot.backend)?;
        let mut infra = bench_infra::Ports::from_env();
        if let Some(port) = self
            .env
            .app_overrides
            .get("pg_port")
            .and_then(|p| p.parse().ok())
        {
            infra.postgres = port;
        }
        let checks = bench_infra::preflight::preflight_with(&bench_infra::preflight::Preflight {
            backend,
            run_index: self.slot.run_index,
            agent_bin: &self.env.agent_bin,
            ports: &[],
            infra: &infra,
        })?;
        bench_infra::require(&checks).with_context(|| {
            format!(
                "this machine cannot run the {} backend's apps, so the loop did not start its app (nothing was spent)",
                self.slot.backend
            )
        })
    }

    fn note(&self, line: &str) {
        self.observer.note(&self.slot, line);
    }

    fn status(&self, state: Option<&AppState>, doing: &str) {
        let (level, fixes, cost) = match state {
            Some(s) => (
                s.level,
                s.sessions
                    .iter()
                    .filter(|x| x.phase == bench_formats::Phase::Fix)
                    .count(),
                machine::total_cost(s),
            ),
            None => (0, 0, 0.0),
        };
        self.observer.status(
            &self.slot,
            &format!("level {level} · fixes {fixes} · ${cost:.4} · {doing}"),
        );
    }

    /// Decides and runs one step; `None` when there is nothing left to do.
    fn step_once(&mut self) -> Result<Option<AppState>> {
        let Some(dir) = self.app_dir.clone() else {
            let level = machine::generate_level(self.slot.variant, self.settings.to_level);
            return self.generate(level).map(Some);
        };
        let state = record::read_state(&dir)?;
        let rec = state
            .loop_record
            .clone()
            .context("the app's state lost its loop record")?;
        match machine::next(&state, &rec) {
            Next::Over => Ok(None),
            Next::Stop(reason) => self.stop(&dir, reason).map(Some),
            Next::Step(step @ LoopStep::Grade { .. }) => self.grade_step(&dir, &step).map(Some),
            Next::Step(LoopStep::Finish) => self.finish(&dir, &state, &rec).map(Some),
            Next::Step(step) => self.session_step(&dir, &state, step).map(Some),
        }
    }

    /// Stops the app's loop early, with the app stopped and the reason recorded.
    fn stop(&mut self, dir: &Path, reason: String) -> Result<AppState> {
        self.release_app(dir);
        self.note(&format!("stopped: {reason}"));
        let state = record::close(dir, LoopStatus::Stopped, Some(reason))?;
        self.status(Some(&state), "stopped");
        Ok(state)
    }

    /// The loop record a new app starts with.
    fn new_record(&self, step: &LoopStep) -> LoopRecord {
        LoopRecord {
            loop_id: self.loop_id.clone(),
            repetition: self.slot.repetition,
            settings: self.settings.clone(),
            status: LoopStatus::Running,
            current: Some(StepRecord {
                step: step.clone(),
                started_at_utc: record::now_utc(),
                ended_at_utc: None,
                result: None,
            }),
            steps: vec![],
            grades: vec![],
            stop_reason: None,
        }
    }

    fn generate(&mut self, level: u32) -> Result<AppState> {
        let step = LoopStep::Generate { level };
        self.status(None, &step.to_string());
        let task = Task::Generate {
            backend: self.slot.backend.clone(),
            level,
        };
        let opts = self.run_options(task, &step, self.settings.max_total_usd)?;
        let loop_rec = self.new_record(&step);
        let report = self.run_session(&opts, Some(loop_rec))?;
        let dir = report.app_dir.clone();
        let result = session_result(&report);
        let state = record::end_step(&dir, &result)?;
        self.status(Some(&state), &format!("{step}: {result}"));
        self.after_session(&dir, &step, &report, state)
    }

    /// A fix or upgrade session, or a generate session run again in its app after it was
    /// cut off.
    fn session_step(&mut self, dir: &Path, state: &AppState, step: LoopStep) -> Result<AppState> {
        let spent = machine::total_cost(state);
        if let Some(cap) = self.settings.max_total_usd
            && spent >= cap
        {
            let reason = format!(
                "the app has spent ${spent:.4} of its --max-total-usd ${cap:.2}; {step} not run"
            );
            return self.stop(dir, reason);
        }
        self.stop_app(dir);
        let task = match &step {
            LoopStep::Upgrade { level } => Task::Upgrade {
                app_dir: dir.to_path_buf(),
                level: *level,
                composed: false,
                resume: false,
                force: false,
            },
            LoopStep::Fix { .. } => Task::Fix {
                app_dir: dir.to_path_buf(),
                composed: false,
                // As the original harness did: the fix continues the session that built
                // the app, with its context.
                resume: state.latest_session_id().is_some(),
            },
            LoopStep::Generate { .. } => Task::Regenerate {
                app_dir: dir.to_path_buf(),
            },
            other => bail!("{other} is not an agent session"),
        };
        let remaining = self.settings.max_total_usd.map(|cap| cap - spent);
        let opts = self.run_options(task, &step, remaining)?;
        record::begin_step(dir, &step)?;
        self.status(Some(state), &step.to_string());
        let report = self.run_session(&opts, None)?;
        let result = session_result(&report);
        let state = record::end_step(dir, &result)?;
        self.status(Some(&state), &format!("{step}: {result}"));
        self.after_session(dir, &step, &report, state)
    }

    /// A session that did not complete stops the app, unless it was interrupted (Ctrl-C,
    /// or a signal from outside): its step then runs again when the loop resumes.
    fn after_session(
        &mut self,
        dir: &Path,
        step: &LoopStep,
        report: &SessionReport,
        state: AppState,
    ) -> Result<AppState> {
        if report.succeeded() {
            return Ok(state);
        }
        if self.env.cancel.is_cancelled()
            || matches!(report.outcome, Outcome::Interrupted | Outcome::Killed)
        {
            bail!(
                "the {step} session was {}: run the same command again, or --resume, to run it again",
                report.outcome
            );
        }
        self.stop(dir, session_failure(step, report))
    }

    /// The session's options: the app's settings, the loop's caps (the per-session cap,
    /// lowered to what remains of the app's total), its script when rehearsing.
    fn run_options(
        &self,
        task: Task,
        step: &LoopStep,
        remaining: Option<f64>,
    ) -> Result<RunOptions> {
        let models = self.env.models(self.settings.rehearse.as_deref(), step)?;
        let cap = match (self.settings.max_budget_usd, remaining) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(RunOptions {
            task,
            root: self.env.root.clone(),
            runs_dir: self.env.runs_dir.clone(),
            variant: Some(self.slot.variant),
            rules: Some(self.slot.rules),
            run_index: matches!(step, LoopStep::Generate { .. }).then_some(self.slot.run_index),
            model: self.settings.model.clone(),
            max_budget_usd: cap.map(|c| c.max(0.01)),
            timeout: Some(self.env.session_timeout),
            agent_bin: self.env.agent_bin.clone(),
            models,
            telemetry: self.env.telemetry.clone(),
            ui_contracts: true,
            show_progress: self.env.verbose,
            cancel: self.env.cancel.clone(),
            flush_wait: std::time::Duration::from_secs(10),
            extra_env: self.env.extra_env.clone(),
        })
    }

    /// Runs a session step by step: a new app gets its loop record (and this driver its
    /// lock) as soon as its folder exists, before the agent starts.
    fn run_session(&mut self, opts: &RunOptions, new: Option<LoopRecord>) -> Result<SessionReport> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async {
            let session = Session::plan(opts)?;
            let preflight = session.preflight()?;
            let (folders, mut state) = session.claim_folders()?;
            if let Some(rec) = new {
                state.loop_record = Some(rec);
                self.lock = Some(record::lock(&folders.app_dir)?);
                self.app_dir = Some(folders.app_dir.clone());
                self.observer.app_created(&self.slot, &folders.app_dir);
            }
            let mut rec = session.record_start(folders, state, &preflight)?;
            let prepared = match session.prepare_inputs(&rec).await {
                Ok(p) => p,
                Err(e) => {
                    rec.fail(&e)?;
                    return Err(e);
                }
            };
            let run = match session.run_agent(&rec, prepared).await {
                Ok(run) => run,
                Err(e) => {
                    rec.fail(&e)?;
                    return Err(e);
                }
            };
            session.finalize(&mut rec, &run)?;
            let costed = session.cost(&rec, &run).await;
            session.update_state(&mut rec, &costed)?;
            Ok(session.close(rec, run, costed))
        })
    }

    /// Starts the app on a fresh database and grades it.
    fn grade_step(&mut self, dir: &Path, step: &LoopStep) -> Result<AppState> {
        let LoopStep::Grade { level } = *step else {
            bail!("{step} is not a grading");
        };
        let state = record::begin_step(dir, step)?;
        self.status(Some(&state), &format!("starting the app for {step}"));
        // Stopped first, so that it starts with the code the last session left.
        self.stop_app(dir);
        let graded = match self.settings.grader {
            Grader::Auto => crate::grading::auto(self.env, dir, level, &mut |line| {
                self.status(Some(&state), &format!("{step}: {line}"))
            }),
            grader @ (Grader::Agent | Grader::Hybrid) => {
                crate::grading::agent(self.env, &self.settings, grader, dir, level, &mut |line| {
                    self.status(Some(&state), &format!("{step}: {line}"))
                })
            }
            Grader::Manual => self.fresh_start(dir).and_then(|()| {
                crate::grading::manual(
                    self.env,
                    dir,
                    level,
                    last_session_end(&state),
                    (self.observer, &self.slot),
                )
            }),
        };
        let graded = match graded {
            Ok(Some(g)) => g,
            Ok(None) => {
                bail!(
                    "waiting for the grading of level {level}: write {} (and BUG_REPORT.md if there are bugs), then run the same command again or --resume",
                    dir.join(bench_formats::files::GRADING_RESULTS_FILE)
                        .display()
                )
            }
            Err(e) if self.env.cancel.is_cancelled() => {
                return Err(e.context("interrupted while grading: run the same command again, or --resume, to grade again"));
            }
            Err(e) => {
                record::end_step(dir, "grading could not run")?;
                return self.stop(dir, format!("grading could not run: {e:#}"));
            }
        };
        let done = machine::completed_sessions(&state);
        let result = format!("{}/{}", graded.score, graded.max);
        record::update(dir, |rec| {
            rec.grades.push(GradeRecord {
                completed_sessions: done,
                graded_at_utc: record::now_utc(),
                ..graded
            });
        })?;
        let state = record::end_step(dir, &result)?;
        self.status(Some(&state), &format!("{step}: {result}"));
        Ok(state)
    }

    /// Stops the app, gives it a fresh database and starts it (manual grading).
    fn fresh_start(&self, dir: &Path) -> Result<()> {
        let options = self.app_options();
        bench_app::stop(dir, &options)?;
        bench_app::reset(dir, &options)?;
        bench_app::start(dir, &options)?;
        Ok(())
    }

    fn app_options(&self) -> bench_app::AppOptions {
        crate::grading::app_options(self.env)
    }

    /// Stops the app if it runs (a failure to stop is said, not fatal).
    fn stop_app(&self, dir: &Path) {
        if let Err(e) = bench_app::stop(dir, &self.app_options()) {
            self.note(&format!("warning: could not stop the app: {e:#}"));
        }
    }

    /// The loop is over for the app: it is stopped and its database dropped (gradings
    /// always start from a fresh one, so nothing in it is kept for later).
    fn release_app(&self, dir: &Path) {
        self.stop_app(dir);
        if let Err(e) = crate::clean::drop_database(&self.env.root, dir, &self.env.app_overrides) {
            self.note(&format!(
                "warning: could not drop the app's database: {e:#}"
            ));
        }
    }

    /// The last step: the app stopped, the loop recorded as finished.
    fn finish(&mut self, dir: &Path, state: &AppState, rec: &LoopRecord) -> Result<AppState> {
        record::begin_step(dir, &LoopStep::Finish)?;
        self.release_app(dir);
        let note = machine::fixes_exhausted_note(state, rec);
        if let Some(n) = &note {
            self.note(n);
        }
        record::end_step(dir, "app stopped, database dropped")?;
        let state = record::close(dir, LoopStatus::Finished, note)?;
        self.status(Some(&state), "finished");
        Ok(state)
    }
}

/// When the app's last session ended (a person's grading must be newer).
fn last_session_end(state: &AppState) -> std::time::SystemTime {
    state
        .sessions
        .iter()
        .rev()
        .find_map(|s| s.ended_at_utc.as_deref())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(std::time::UNIX_EPOCH, std::time::SystemTime::from)
}

/// A session's result as the step records it.
fn session_result(report: &SessionReport) -> String {
    let cost = report.cost.as_ref().map_or("cost unknown".to_owned(), |c| {
        format!("${:.4}", c.total_cost_usd)
    });
    format!("{} ({cost})", report.outcome)
}

/// Why a session that did not complete stops the app.
fn session_failure(step: &LoopStep, report: &SessionReport) -> String {
    let why = match report.agent_result.as_deref() {
        Some("error_max_budget_usd") => {
            "it reached its budget cap (--max-budget-usd, or what remained of --max-total-usd)"
                .to_owned()
        }
        Some(other) if other != "success" => format!("the agent ended with {other}"),
        _ => format!(
            "the agent ended {} without {}",
            report.outcome, report.marker
        ),
    };
    format!(
        "the {step} session did not complete: {why}; its cost and transcript are in {}",
        report.session_dir.display()
    )
}
