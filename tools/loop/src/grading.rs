//! Grading a running app: automatically with bench-grade, or by a person with the test
//! plans and a grading sheet (the loop waits for their `GRADING_RESULTS.md`).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use bench_formats::files::{BUG_REPORT_FILE, GRADING_RESULTS_FILE};
use bench_formats::loop_record::{GradeRecord, Grader, LoopSettings};
use bench_grade::grade::{Request, Target};

use crate::driver::{Observer, Slot};
use crate::env::LoopEnv;

/// How bench-app finds the loop's apps.
pub fn app_options(env: &LoopEnv) -> bench_app::AppOptions {
    let mut options = bench_app::AppOptions::new(&env.root);
    options.overrides = env.app_overrides.clone();
    options
}

/// The app's address, as bench-app starts it.
fn client_url(env: &LoopEnv, dir: &Path) -> Result<String> {
    Ok(bench_app::App::open(dir, &app_options(env))?.client_url())
}

/// Grades the app at `level` with bench-grade, which gives it a fresh database, starts it
/// and stops it again when done; its files go into the app folder.
pub fn auto(
    env: &LoopEnv,
    dir: &Path,
    level: u32,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<GradeRecord>> {
    let graded = bench_grade::grade::grade(&request(env, dir, level), progress)?;
    Ok(Some(record_of(level, &graded)))
}

/// Grades the app at `level` with an agent session (`Grader::Agent`), or the deterministic
/// grader followed by one (`Grader::Hybrid`), through bench-grade; the session's cost is
/// recorded with the grading (under `.bench/grading/`), never with the app's sessions.
pub fn agent(
    env: &LoopEnv,
    settings: &LoopSettings,
    grader: Grader,
    dir: &Path,
    level: u32,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<GradeRecord>> {
    let req = request(env, dir, level);
    let mut opts = bench_grade::agent::AgentOptions::new(&env.root);
    opts.agent_bin = Some(env.agent_bin.clone());
    opts.telemetry = Some(env.telemetry.clone());
    opts.model = settings.model.clone();
    opts.max_budget_usd = settings.max_budget_usd;
    opts.extra_env = env.extra_env.clone();
    opts.show_progress = env.verbose;
    if let Some(folder) = &settings.rehearse {
        opts.rehearse = Some(grading_script(&env.root, Path::new(folder), level)?);
    }
    let graded = match grader {
        Grader::Hybrid => bench_grade::agent::hybrid::grade_hybrid(&req, &opts, progress)?.graded,
        _ => bench_grade::agent::grade_agent(&req, &opts, progress)?.graded,
    };
    Ok(Some(record_of(level, &graded)))
}

/// The rehearsal of an agent grading at `level`: `grade-l<N>.toml` in the loop's rehearsal
/// folder, else bench-grade's own `rehearsal/grade/level-<N>.toml`.
fn grading_script(root: &Path, folder: &Path, level: u32) -> Result<std::path::PathBuf> {
    let candidates = [
        folder.join(format!("grade-l{level}.toml")),
        root.join(format!("rehearsal/grade/level-{level}.toml")),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => bail!(
            "no rehearsal of an agent grading at level {level}: looked for {} and {}",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}

/// The request that grades the app folder `dir` at `level`, writing into it.
fn request(env: &LoopEnv, dir: &Path, level: u32) -> Request {
    Request {
        root: env.root.clone(),
        target: Target::App(dir.to_path_buf()),
        level: Some(level),
        features: vec![],
        browser: env.browser.clone(),
        out: Some(dir.to_path_buf()),
        driver_dir: env.driver_dir.clone(),
        trace: false,
        app_options: Some(app_options(env)),
    }
}

/// What the loop keeps of a grading.
fn record_of(level: u32, graded: &bench_grade::grade::Graded) -> GradeRecord {
    let bugs = bench_grade::render::bugs(&graded.file).len();
    GradeRecord {
        level,
        score: graded.file.score,
        max: graded.file.max,
        bugs: u32::try_from(bugs).unwrap_or(u32::MAX),
        completed_sessions: 0,
        graded_at_utc: String::new(),
    }
}

/// Manual grading: says where the app runs, which plans to follow and which sheet to fill,
/// then waits for a `GRADING_RESULTS.md` written after `since` (the end of the app's last
/// session) for as long as the loop may wait; `None` when there is none yet.
pub fn manual(
    env: &LoopEnv,
    dir: &Path,
    level: u32,
    since: SystemTime,
    who: (&dyn Observer, &Slot),
) -> Result<Option<GradeRecord>> {
    let (observer, slot) = who;
    if let Some(grade) = read_results(dir, level, since)? {
        return Ok(Some(grade));
    }
    let url = client_url(env, dir)?;
    let sheet = dir.join(format!("GRADING_SHEET-level-{level}.md"));
    let content = bench_content::Content::load(&env.root)?;
    let blank = content.grading_sheet(level, &slot.backend)?;
    if !sheet.exists() {
        std::fs::write(&sheet, blank)
            .with_context(|| format!("cannot write {}", sheet.display()))?;
    }
    let results = dir.join(GRADING_RESULTS_FILE);
    let lines = [
        format!("manual grading of level {level}: the app runs at {url}"),
        format!(
            "  Alice: open {url} in one browser profile; Bob: open {url} in another (or a private window of another browser)"
        ),
        format!(
            "  test plans: {} (features of levels 1–{level})",
            env.root.join("grading/test-plans.md").display()
        ),
        format!(
            "  grading sheet: {} (rules: {})",
            sheet.display(),
            env.root.join("grading/rubric.md").display()
        ),
        format!(
            "  when done, save it as {} (and the bugs as {})",
            results.display(),
            dir.join(BUG_REPORT_FILE).display()
        ),
    ];
    for line in &lines {
        observer.note(slot, line);
    }
    let Some(wait) = env.manual_wait else {
        return Ok(None);
    };
    let started = Instant::now();
    while started.elapsed() < wait {
        if env.cancel.is_cancelled() {
            return Ok(None);
        }
        if let Some(grade) = read_results(dir, level, since)? {
            return Ok(Some(grade));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok(None)
}

/// The person's results, if written after `since`.
fn read_results(dir: &Path, level: u32, since: SystemTime) -> Result<Option<GradeRecord>> {
    let results = dir.join(GRADING_RESULTS_FILE);
    let fresh = std::fs::metadata(&results)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&results)
        .with_context(|| format!("cannot read {}", results.display()))?;
    let parsed = bench_formats::app_docs::parse_grading_results(&text);
    let Some(total) = parsed.total else {
        bail!(
            "{} has no scores: fill in the feature rows (or a TOTAL row) of the sheet",
            results.display()
        );
    };
    let bug_file = dir.join(BUG_REPORT_FILE);
    let bugs = std::fs::read_to_string(&bug_file)
        .map(|t| bench_formats::app_docs::parse_bug_report(&t).count())
        .unwrap_or(0);
    Ok(Some(GradeRecord {
        level,
        score: total.score.round() as u32,
        max: total.max.unwrap_or(total.score).round() as u32,
        bugs: u32::try_from(bugs).unwrap_or(u32::MAX),
        completed_sessions: 0,
        graded_at_utc: String::new(),
    }))
}
