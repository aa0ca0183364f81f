//! Reading run directories: sessions (telemetry), app documents, stress results.
//!
//! A run directory holds one folder per backend, each with `telemetry/<session>/` folders
//! (`metadata.json` + `cost-summary.json`) and `results/chat-app-*/` app folders. That is the
//! layout of this project's `runs/<variant>-<date>/` and of the original harness's published
//! runs alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::app_docs::{
    BugReport, GradingResults, IterationLog, parse_bug_report, parse_grading_results,
    parse_iteration_log,
};
use bench_formats::files::{
    BUG_REPORT_FILE, COST_SUMMARY_FILE, GRADING_RESULTS_FILE, ITERATION_LOG_FILE, METADATA_FILE,
    STATE_FILE,
};
use bench_formats::loop_record::LoopRecord;
use bench_formats::stress::StressResult;
use bench_formats::{
    AppState, CostSummary, Phase, SessionMetadata, Status, SummaryStatus, read_json,
};
use chrono::{DateTime, NaiveDateTime, Utc};

/// One run directory.
#[derive(Debug, Clone)]
pub struct Run {
    /// The directory's name (`sequential-upgrade-20260406`).
    pub name: String,
    pub path: PathBuf,
    pub backends: BTreeMap<String, BackendRun>,
}

/// One backend's part of a run.
#[derive(Debug, Clone, Default)]
pub struct BackendRun {
    pub name: String,
    pub path: PathBuf,
    /// Sessions, oldest first.
    pub sessions: Vec<Session>,
    /// App folders under `results/`, by name.
    pub apps: Vec<AppDir>,
    /// `stress/*.json` results (`bench-stress`), by file name.
    pub stress: Vec<StressResult>,
    /// Anything read with doubt: missing files, disagreeing labels.
    pub warnings: Vec<String>,
}

/// One agent session, as its telemetry folder describes it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The folder's name (`postgres-upgrade-to-level3-20260406-171712`).
    pub run_id: String,
    pub dir: PathBuf,
    pub phase: Phase,
    /// The level the session's files state (metadata, else summary, else folder name).
    pub labelled_level: u32,
    /// The level the folder's name states, when it follows the harness's naming.
    pub dir_level: Option<u32>,
    /// The level the session counts toward (see `infer_levels`).
    pub level: u32,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub summary: CostSummary,
    pub metadata: Option<SessionMetadata>,
    /// The app folder's name the session worked on, when known.
    pub app: Option<String>,
    /// The bug report this fix session was given, when the run kept a copy.
    pub bug_report: Option<BugReport>,
}

impl Session {
    /// Wall-clock seconds: recorded by `bench-run`, else from the start and end times.
    pub fn wall_clock_sec(&self) -> Option<f64> {
        self.metadata
            .as_ref()
            .and_then(|m| m.wall_clock_sec)
            .or_else(|| match (self.started, self.ended) {
                (Some(s), Some(e)) if e >= s => Some((e - s).num_milliseconds() as f64 / 1000.0),
                _ => None,
            })
    }
}

/// An app folder and the documents in it.
#[derive(Debug, Clone)]
pub struct AppDir {
    pub name: String,
    pub path: PathBuf,
    pub bug_report: Option<BugReport>,
    pub iteration_log: Option<IterationLog>,
    pub grading: Option<GradingResults>,
    /// `bench-grade`'s gradings per level (see `grades`).
    pub grades: Vec<crate::grades::LevelGrade>,
    /// What `bench-loop` recorded about the app in its `.bench/state.json`, if a loop made it.
    pub loop_record: Option<LoopRecord>,
}

/// What a session folder's name says: `<backend>-level<N>-<ts>`,
/// `<backend>-upgrade-to-level<N>-<ts>`, `<backend>-fix-level<N>-<ts>`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirName {
    pub phase: Phase,
    pub level: u32,
    /// `YYYYMMDD-HHMMSS`, the harness machine's local time.
    pub timestamp: Option<String>,
}

/// Reads a session folder's name.
pub fn parse_session_dir_name(name: &str) -> Option<DirName> {
    let (phase, marker) = if let Some(i) = name.find("-upgrade-to-level") {
        (Phase::Upgrade, (i, "-upgrade-to-level".len()))
    } else if let Some(i) = name.find("-fix-level") {
        (Phase::Fix, (i, "-fix-level".len()))
    } else if let Some(i) = name.find("-level") {
        (Phase::Generate, (i, "-level".len()))
    } else {
        return None;
    };
    let rest = &name[marker.0 + marker.1..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let level = digits.parse().ok()?;
    let after = &rest[digits.len()..];
    // `YYYYMMDD-HHMMSS`; `get` because a folder name may hold any character.
    let timestamp = after
        .strip_prefix('-')
        .and_then(|t| t.get(..15))
        .filter(|t| {
            t.bytes().enumerate().all(|(i, b)| {
                if i == 8 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
        })
        .map(str::to_string);
    Some(DirName {
        phase,
        level,
        timestamp,
    })
}

/// Parses the harness's timestamps: RFC 3339 (`…Z`), or with a numeric offset without colon
/// (`2026-04-06T15:37:27-0400`).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Is `dir` a run directory (a backend folder with `telemetry/`, `results/` or `stress/` inside)?
pub fn is_run_dir(dir: &Path) -> bool {
    subdirs(dir)
        .map(|dirs| dirs.iter().any(|d| is_backend_dir(d)))
        .unwrap_or(false)
}

fn is_backend_dir(dir: &Path) -> bool {
    dir.join("telemetry").is_dir() || dir.join("results").is_dir() || dir.join("stress").is_dir()
}

/// The run directories an argument names: itself when it is one, else the run directories
/// directly inside it (so `runs/` stands for every run in it).
pub fn expand_run_arg(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        bail!(
            "{} is not a directory: give a run directory (runs/<variant>-<date>) or a folder of them",
            path.display()
        );
    }
    if is_run_dir(path) {
        return Ok(vec![path.to_path_buf()]);
    }
    let runs: Vec<PathBuf> = subdirs(path)?
        .into_iter()
        .filter(|d| is_run_dir(d))
        .collect();
    if runs.is_empty() {
        bail!(
            "{} holds no run: a run directory has <backend>/telemetry/<session>/cost-summary.json inside",
            path.display()
        );
    }
    Ok(runs)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Reads a run directory.
pub fn load_run(path: &Path) -> Result<Run> {
    let path = path.to_path_buf();
    let name = file_name(&std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone()));
    let mut backends = BTreeMap::new();
    for dir in subdirs(&path)? {
        if !is_backend_dir(&dir) {
            continue;
        }
        let backend = load_backend(&dir)?;
        backends.insert(backend.name.clone(), backend);
    }
    if backends.is_empty() {
        bail!(
            "{} has no backend folder (<backend>/telemetry or <backend>/results)",
            path.display()
        );
    }
    Ok(Run {
        name,
        path,
        backends,
    })
}

fn load_backend(dir: &Path) -> Result<BackendRun> {
    let name = file_name(dir);
    let mut backend = BackendRun {
        name: name.clone(),
        path: dir.to_path_buf(),
        ..Default::default()
    };
    let results = dir.join("results");
    if results.is_dir() {
        for app in subdirs(&results)? {
            backend.apps.push(load_app(&app, &mut backend.warnings));
        }
    }
    let telemetry = dir.join("telemetry");
    if telemetry.is_dir() {
        for session_dir in subdirs(&telemetry)? {
            if let Some(session) = load_session(&session_dir, &name, &mut backend.warnings) {
                backend.sessions.push(session);
            }
        }
    }
    if backend.sessions.is_empty() {
        backend.warnings.push(format!(
            "{}: no session with a cost-summary.json; its cost figures are zero",
            dir.display()
        ));
    }
    backend.sessions.sort_by(|a, b| {
        a.started
            .cmp(&b.started)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    if backend.apps.len() > 1 {
        backend.warnings.push(format!(
            "{}: {} app folders ({}); their sessions are added up as one run's figures \
             (for separate figures, keep each app in a run folder of its own)",
            results.display(),
            backend.apps.len(),
            backend
                .apps
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let single_app = (backend.apps.len() == 1).then(|| backend.apps[0].name.clone());
    for s in &mut backend.sessions {
        if s.app.is_none() {
            s.app = single_app.clone();
        }
    }
    let stress = dir.join("stress");
    if stress.is_dir() {
        load_stress(&stress, &mut backend);
    }
    infer_levels(&mut backend);
    Ok(backend)
}

fn read_text(path: &Path, warnings: &mut Vec<String>) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            warnings.push(format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn load_app(dir: &Path, warnings: &mut Vec<String>) -> AppDir {
    AppDir {
        name: file_name(dir),
        path: dir.to_path_buf(),
        bug_report: read_text(&dir.join(BUG_REPORT_FILE), warnings).map(|t| parse_bug_report(&t)),
        iteration_log: read_text(&dir.join(ITERATION_LOG_FILE), warnings)
            .map(|t| parse_iteration_log(&t)),
        grading: read_text(&dir.join(GRADING_RESULTS_FILE), warnings)
            .map(|t| parse_grading_results(&t)),
        grades: crate::grades::load(dir, warnings),
        loop_record: load_loop_record(dir, warnings),
    }
}

/// The loop record of the app's `.bench/state.json`; a state file that cannot be read is a
/// warning (apps of the original harness have none, and that is no warning).
fn load_loop_record(dir: &Path, warnings: &mut Vec<String>) -> Option<LoopRecord> {
    let path = dir.join(STATE_FILE);
    if !path.is_file() {
        return None;
    }
    match read_json::<AppState>(&path) {
        Ok(state) => state.loop_record,
        Err(e) => {
            warnings.push(format!("{e:#}"));
            None
        }
    }
}

fn load_session(dir: &Path, backend: &str, warnings: &mut Vec<String>) -> Option<Session> {
    let run_id = file_name(dir);
    let summary_path = dir.join(COST_SUMMARY_FILE);
    if !summary_path.is_file() {
        warnings.push(format!(
            "session {run_id}: no cost-summary.json, so its cost is NOT counted \
             (run `cargo xtask bench-telemetry` on {} to compute it)",
            dir.display()
        ));
        return None;
    }
    let summary: CostSummary = match read_json(&summary_path) {
        Ok(s) => s,
        Err(e) => {
            warnings.push(format!("session {run_id}: {e:#}; its cost is NOT counted"));
            return None;
        }
    };
    if let Some(status) = summary.status
        && status != SummaryStatus::Ok
    {
        warnings.push(format!(
            "session {run_id}: cost-summary.json status is `{status}`; its figures may be incomplete"
        ));
    }
    if let Some(rec) = &summary.reconciliation
        && rec.status != Status::Ok
    {
        warnings.push(format!(
            "session {run_id}: cost sources reconcile as `{}` (trusted: {}){}",
            rec.status,
            rec.trusted_source,
            if rec.warnings.is_empty() {
                String::new()
            } else {
                format!(": {}", rec.warnings.join("; "))
            }
        ));
    }
    let metadata_path = dir.join(METADATA_FILE);
    let metadata: Option<SessionMetadata> = if metadata_path.is_file() {
        match read_json(&metadata_path) {
            Ok(m) => Some(m),
            Err(e) => {
                warnings.push(format!(
                    "session {run_id}: {e:#}; using the summary and folder name instead"
                ));
                None
            }
        }
    } else {
        warnings.push(format!(
            "session {run_id}: no metadata.json; phase and level taken from the summary and the folder name"
        ));
        None
    };
    let dir_name = parse_session_dir_name(&run_id);
    if !run_id.starts_with(&format!("{backend}-")) && dir_name.is_some() {
        warnings.push(format!(
            "session {run_id}: folder name does not start with the backend name `{backend}`"
        ));
    }

    let phase = metadata
        .as_ref()
        .and_then(|m| m.effective_phase())
        .or(summary.phase)
        .or(dir_name.as_ref().map(|d| d.phase));
    let Some(phase) = phase else {
        warnings.push(format!(
            "session {run_id}: neither metadata, summary nor folder name says whether it generated, \
             upgraded or fixed; counted as an upgrade"
        ));
        return Some(finish_session(
            dir,
            run_id,
            Phase::Upgrade,
            summary,
            metadata,
            dir_name,
            warnings,
        ));
    };
    if let Some(d) = &dir_name
        && d.phase != phase
    {
        warnings.push(format!(
            "session {run_id}: folder name says {} but the session's files say {phase}; using {phase}",
            d.phase
        ));
    }
    Some(finish_session(
        dir, run_id, phase, summary, metadata, dir_name, warnings,
    ))
}

fn finish_session(
    dir: &Path,
    run_id: String,
    phase: Phase,
    summary: CostSummary,
    metadata: Option<SessionMetadata>,
    dir_name: Option<DirName>,
    warnings: &mut Vec<String>,
) -> Session {
    let meta_level = metadata.as_ref().and_then(|m| m.level);
    let summary_level = (summary.level > 0).then_some(summary.level);
    let dir_level = dir_name.as_ref().map(|d| d.level);
    if let (Some(d), Some(s)) = (dir_level, summary_level)
        && d != s
    {
        warnings.push(format!(
            "session {run_id}: folder name says level {d} but cost-summary.json says level {s}"
        ));
    }
    if let (Some(m), Some(s)) = (meta_level, summary_level)
        && m != s
    {
        warnings.push(format!(
            "session {run_id}: metadata.json says level {m} but cost-summary.json says level {s}"
        ));
    }
    let labelled_level = meta_level.or(summary_level).or(dir_level).unwrap_or(1);

    let started = parse_time(&summary.started_at)
        .or_else(|| {
            metadata
                .as_ref()
                .and_then(|m| m.started_at_utc.as_deref().or(m.started_at.as_deref()))
                .and_then(parse_time)
        })
        .or_else(|| {
            // Last resort: the folder's local timestamp (offset unknown, read as UTC).
            dir_name
                .as_ref()
                .and_then(|d| d.timestamp.as_deref())
                .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y%m%d-%H%M%S").ok())
                .map(|n| n.and_utc())
        });
    if started.is_none() {
        warnings.push(format!(
            "session {run_id}: no start time; its place in the level sequence is a guess"
        ));
    }
    let ended = parse_time(&summary.ended_at).or_else(|| {
        metadata
            .as_ref()
            .and_then(|m| m.ended_at_utc.as_deref().or(m.ended_at.as_deref()))
            .and_then(parse_time)
    });
    let app = metadata
        .as_ref()
        .and_then(|m| m.app_dir.as_deref())
        .and_then(|a| a.rsplit(['/', '\\']).find(|s| !s.is_empty()))
        .map(str::to_string);
    // A copy of the bug report the fix was given, when the harness kept one: in the
    // session's telemetry folder, or in its inputs snapshot (`<backend>/inputs/<run-id>/`).
    let bug_report = if phase == Phase::Fix {
        let inputs = dir
            .parent()
            .and_then(Path::parent)
            .map(|backend_dir| backend_dir.join("inputs").join(&run_id));
        [
            Some(dir.join(BUG_REPORT_FILE)),
            Some(dir.join("inputs/BUG_REPORT.md")),
            inputs.as_ref().map(|i| i.join(BUG_REPORT_FILE)),
            inputs.as_ref().map(|i| i.join("app-files/BUG_REPORT.md")),
        ]
        .into_iter()
        .flatten()
        .find_map(|path| read_text(&path, warnings))
        .map(|t| parse_bug_report(&t))
    } else {
        None
    };
    Session {
        run_id,
        dir: dir.to_path_buf(),
        phase,
        labelled_level,
        dir_level,
        level: labelled_level,
        started,
        ended,
        summary,
        metadata,
        app,
        bug_report,
    }
}

/// A fix session counts toward the level its app was at when it started: the level of the
/// latest generate/upgrade session of the same app that started before it. The original
/// harness labelled most fixes `fix-level1` whatever the app's level, so the label is not
/// trusted; where it disagrees, a warning says so.
pub fn infer_levels(backend: &mut BackendRun) {
    let mut current: BTreeMap<Option<String>, u32> = BTreeMap::new();
    let mut notes = Vec::new();
    for s in &mut backend.sessions {
        match s.phase {
            Phase::Generate | Phase::Upgrade => {
                s.level = s.labelled_level;
                current.insert(s.app.clone(), s.level);
            }
            Phase::Fix => {
                if let Some(&level) = current.get(&s.app) {
                    s.level = level;
                    if level != s.labelled_level {
                        notes.push(format!(
                            "session {}: labelled level {} but the app was at level {} when it started \
                             (after the latest generate/upgrade); counted at level {}",
                            s.run_id, s.labelled_level, level, level
                        ));
                    }
                } else {
                    s.level = s.labelled_level;
                    notes.push(format!(
                        "session {}: a fix with no earlier generate/upgrade session of its app; kept at its \
                         labelled level {}",
                        s.run_id, s.labelled_level
                    ));
                }
            }
        }
    }
    backend.warnings.extend(notes);
}

fn load_stress(dir: &Path, backend: &mut BackendRun) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            backend
                .warnings
                .push(format!("cannot list {}: {e}", dir.display()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        match read_json::<StressResult>(&path).and_then(|r| r.check_version().map(|()| r)) {
            Ok(result) => backend.stress.push(result),
            Err(e) => backend
                .warnings
                .push(format!("stress result skipped: {e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_folder_names_of_the_three_kinds() {
        assert_eq!(
            parse_session_dir_name("postgres-level1-20260406-153732"),
            Some(DirName {
                phase: Phase::Generate,
                level: 1,
                timestamp: Some("20260406-153732".into())
            })
        );
        assert_eq!(
            parse_session_dir_name("spacetime-upgrade-to-level10-20260407-124548")
                .map(|d| (d.phase, d.level)),
            Some((Phase::Upgrade, 10))
        );
        assert_eq!(
            parse_session_dir_name("postgres-fix-level12-20260410-160937")
                .map(|d| (d.phase, d.level)),
            Some((Phase::Fix, 12))
        );
        assert_eq!(parse_session_dir_name("notes"), None);
        // A renamed folder: no timestamp, and no panic on a character cut in half.
        let odd = parse_session_dir_name("postgres-level1-2026040é-153732").unwrap();
        assert_eq!(
            (odd.phase, odd.level, odd.timestamp),
            (Phase::Generate, 1, None)
        );
        let odd = parse_session_dir_name("postgres-level1-20260406-15373é").unwrap();
        assert_eq!(odd.timestamp, None);
    }

    #[test]
    fn times_with_and_without_colon_offsets() {
        let a = parse_time("2026-04-06T15:37:27-0400").unwrap();
        let b = parse_time("2026-04-06T19:37:27Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_time("yesterday").is_none());
    }
}
