//! What a session is about, worked out from the options and the app's state before anything
//! is written: its phase, backend, level, variant, rules, run index, and the app it works on.

use anyhow::{Context, Result, bail};
use bench_content::Content;
use bench_formats::files::BUG_REPORT_FILE;
use bench_formats::{Outcome, Phase, Rules, Variant};

use crate::layout::{self, ExistingApp};
use crate::run::{RunOptions, Task};

/// A session's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub phase: Phase,
    pub backend: String,
    /// The level the session builds (generate), upgrades to (upgrade) or fixes (fix).
    pub level: u32,
    pub variant: Variant,
    pub rules: Rules,
    pub run_index: u32,
    pub app: AppPlace,
    /// The agent session to fork (`--resume-session`).
    pub resume_from: Option<String>,
    /// Give the whole spec up to the level.
    pub composed: bool,
}

/// The app a session works on.
#[derive(Debug, Clone)]
pub enum AppPlace {
    /// A new app: its run folder is claimed only when files start being written.
    New { date: String },
    /// An app made by an earlier session.
    Existing(Box<ExistingApp>),
}

impl Plan {
    /// Plans the session `opts` asks for, checking it against the content and the app.
    pub fn make(opts: &RunOptions, content: &Content) -> Result<Plan> {
        let max = content.levels().max_level();
        match &opts.task {
            Task::Generate { backend, level } => {
                content.backend(backend)?;
                if *level < 1 || *level > max {
                    bail!("--level {level} is out of range: levels go from 1 to {max}");
                }
                Ok(Plan {
                    phase: Phase::Generate,
                    backend: backend.clone(),
                    level: *level,
                    variant: opts.variant.unwrap_or_default(),
                    rules: opts.rules.unwrap_or_default(),
                    run_index: opts.run_index.unwrap_or(0),
                    app: AppPlace::New {
                        date: layout::day(&chrono::Local::now()),
                    },
                    resume_from: None,
                    composed: true,
                })
            }
            Task::Upgrade {
                app_dir,
                level,
                composed,
                resume,
                force,
            } => {
                let app = layout::open_app(app_dir)?;
                content.backend(&app.state.backend)?;
                check_upgrade(&app, *level, max, *force)?;
                existing(opts, app, Phase::Upgrade, *level, *composed, *resume)
            }
            Task::Regenerate { app_dir } => {
                let app = layout::open_app(app_dir)?;
                content.backend(&app.state.backend)?;
                let level = check_regenerate(&app)?;
                existing(opts, app, Phase::Generate, level, true, false)
            }
            Task::Fix {
                app_dir,
                composed,
                resume,
            } => {
                let app = layout::open_app(app_dir)?;
                content.backend(&app.state.backend)?;
                check_fix(&app)?;
                let level = app.state.level;
                existing(opts, app, Phase::Fix, level, *composed, *resume)
            }
        }
    }
}

/// An upgrade goes one level up from where the app is, unless forced.
fn check_upgrade(app: &ExistingApp, level: u32, max: u32, force: bool) -> Result<()> {
    if level < 2 || level > max {
        bail!("--level {level} is out of range for an upgrade: 2 to {max}");
    }
    let current = app.state.level;
    if force || level == current + 1 {
        return Ok(());
    }
    if level <= current {
        bail!(
            "{} is already at level {current}: upgrading to level {level} would repeat a level (pass --force to do it anyway)",
            app.app_dir.display()
        );
    }
    bail!(
        "{} is at level {current}: upgrading to level {level} would skip level {} (upgrade one level at a time, or pass --force)",
        app.app_dir.display(),
        current + 1
    )
}

/// A generate session runs again in its app only when the app's sessions so far are
/// generate sessions that ended without completing (killed, interrupted, failed or timed
/// out; not one still running); returns their level.
fn check_regenerate(app: &ExistingApp) -> Result<u32> {
    let sessions = &app.state.sessions;
    let cut_off = |o: Outcome| {
        matches!(
            o,
            Outcome::Killed | Outcome::Interrupted | Outcome::Failed | Outcome::Timeout
        )
    };
    let ok = app.state.level == 0
        && !sessions.is_empty()
        && sessions
            .iter()
            .all(|s| s.phase == Phase::Generate && cut_off(s.outcome));
    match sessions.last() {
        Some(last) if ok => Ok(last.level),
        _ => bail!(
            "{} cannot be generated again: only an app whose generate session ended without completing (and is not running) can be; an app with a completed level is upgraded or fixed instead",
            app.app_dir.display()
        ),
    }
}

/// A fix needs a bug report and a level reached.
fn check_fix(app: &ExistingApp) -> Result<()> {
    let report = app.app_dir.join(BUG_REPORT_FILE);
    if !report.is_file() {
        bail!(
            "{} has no {BUG_REPORT_FILE}: write the bugs to fix into {} first (grading/templates/BUG_REPORT.md shows the format)",
            app.app_dir.display(),
            report.display()
        );
    }
    if app.state.level == 0 {
        bail!(
            "{} has no completed level yet (its generate session did not finish): generate or upgrade it before fixing",
            app.app_dir.display()
        );
    }
    Ok(())
}

/// The plan of a session on an existing app: its own settings unless the options say
/// otherwise (the run index never changes).
fn existing(
    opts: &RunOptions,
    app: ExistingApp,
    phase: Phase,
    level: u32,
    composed: bool,
    resume: bool,
) -> Result<Plan> {
    if let Some(i) = opts.run_index
        && i != app.state.run_index
    {
        bail!(
            "--run-index {i} does not match the app's run index {} (leave --run-index out for upgrades and fixes)",
            app.state.run_index
        );
    }
    let resume_from = if resume {
        let id = app.state.latest_session_id().with_context(|| {
            format!(
                "--resume-session: {} has no earlier agent session to fork",
                app.app_dir.display()
            )
        })?;
        Some(id.to_owned())
    } else {
        None
    };
    Ok(Plan {
        phase,
        backend: app.state.backend.clone(),
        level,
        variant: opts.variant.unwrap_or(app.state.variant),
        rules: opts.rules.unwrap_or(app.state.rules),
        run_index: app.state.run_index,
        resume_from,
        composed,
        app: AppPlace::Existing(Box::new(app)),
    })
}
