//! The figures of one backend in one run, computed from its sessions and app documents.
//!
//! Conventions (they are those of the original harness's published reports, so published
//! figures can be recomputed):
//! - **upgrades** cost = generate + upgrade sessions; **fixes** = fix sessions; total = both.
//! - **features** = levels completed (the highest level a generate/upgrade session reached):
//!   each level adds one feature (level 1 counts as one, though it bundles the basics).
//! - **agent time** = the sum of the API calls' durations (`totalDurationSec`), not wall
//!   clock; wall-clock time (session start to end) is reported beside it.
//! - a fix session counts toward the level its app was at (see `load::infer_levels`).

use std::collections::BTreeMap;

use bench_formats::Phase;
use bench_formats::app_docs::Score;
use serde::{Deserialize, Serialize};

use crate::load::{BackendRun, Session};
use crate::loc::LocFigures;

/// Everything computed for one backend in one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendMetrics {
    pub backend: String,
    pub sessions: SessionCounts,
    pub levels_completed: u32,
    /// Features built: equal to `levels_completed` (one per level).
    pub features: u32,
    pub cost: CostFigures,
    pub tokens: TokenFigures,
    pub time: TimeFigures,
    pub quality: QualityFigures,
    pub by_level: Vec<LevelFigures>,
    /// The app's `GRADING_RESULTS.md` total, when graded.
    pub feature_score: Option<Score>,
    /// Grades per level of the latest app that was graded (see `grades`).
    #[serde(default)]
    pub grades_by_level: Vec<crate::grades::LevelGrade>,
    /// What the agent grading sessions of this backend's apps cost (`bench-grade --grader
    /// agent|hybrid`): kept apart, never part of `cost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grading_cost: Option<crate::grades::GradingCost>,
    /// How `bench-loop` left the latest app it made (finished, or stopped and why); `None`
    /// for apps made session by session.
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_outcome: Option<LoopOutcome>,
    /// Lines of code of the final app; `None` when its source is not in the run.
    pub loc: Option<LocFigures>,
    /// Per session, in order.
    pub session_list: Vec<SessionRow>,
    /// `bench-stress` results of this backend's folder.
    #[serde(default)]
    pub stress: Vec<StressRow>,
    /// The highest acknowledged messages/s of a `stress`-scenario result of an app (not the
    /// `ceiling` or a `noop` server) whose verification passed; `None` without one.
    #[serde(default)]
    pub stress_acked_per_second: Option<f64>,
}

/// How an app's loop ended, from its loop record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopOutcome {
    /// The app's folder name.
    pub app: String,
    pub repetition: u32,
    /// `running` (the loop ended during a step: `--resume` continues it), `finished` or
    /// `stopped`.
    pub status: String,
    /// Why the loop stopped the app, or moved on with points lost.
    pub reason: Option<String>,
    pub to_level: u32,
    pub max_fixes: u32,
    pub grader: String,
    /// The last grading: level, score, max.
    pub last_grade: Option<(u32, u32, u32)>,
}

impl LoopOutcome {
    fn of(app: &crate::load::AppDir) -> Option<LoopOutcome> {
        let rec = app.loop_record.as_ref()?;
        Some(LoopOutcome {
            app: app.name.clone(),
            repetition: rec.repetition,
            status: rec.status.to_string(),
            reason: rec.stop_reason.clone(),
            to_level: rec.settings.to_level,
            max_fixes: rec.settings.max_fixes,
            grader: rec.settings.grader.to_string(),
            last_grade: rec.last_grade().map(|g| (g.level, g.score, g.max)),
        })
    }
}

/// One stress result, summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StressRow {
    /// The result's label, else `backend/scenario`.
    pub name: String,
    /// The backend the result names (`postgres`, `spacetimedb`, `ceiling`, …).
    pub backend: String,
    pub scenario: String,
    pub client: String,
    pub writers: u32,
    pub acked_per_second: f64,
    pub sent_per_second: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub failed: u64,
    pub verification_passed: bool,
    pub verification: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub total: u32,
    pub generate: u32,
    pub upgrade: u32,
    pub fix: u32,
}

/// USD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostFigures {
    /// Generate + upgrade sessions.
    pub upgrades: f64,
    pub fixes: f64,
    pub total: f64,
    pub per_feature: f64,
    pub per_feature_upgrades: f64,
    pub per_feature_fixes: f64,
    /// Fixes as a percentage of the total.
    pub fix_share_pct: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenFigures {
    pub fresh_input: u64,
    pub fresh_output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub api_calls: u64,
    pub output_per_feature: f64,
    pub calls_per_feature: f64,
    /// All four token kinds per feature.
    pub tokens_per_feature: f64,
}

/// Seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeFigures {
    /// Sum of API-call durations over every session (the published "agent time").
    pub total: f64,
    /// Same over generate + upgrade sessions.
    pub upgrade_total: f64,
    pub fix_total: f64,
    /// The generate session(s).
    pub generation: f64,
    /// `upgrade_total` / (generate + upgrade sessions), as the original reports average.
    pub upgrade_avg_incl_generate: f64,
    /// Average over upgrade sessions only (generation excluded).
    pub avg_upgrade: f64,
    pub avg_fix_session: f64,
    pub total_minutes: f64,
    /// Wall clock, session start to end, summed; `None` when a session lacks its times.
    pub wall_clock_total: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityFigures {
    pub fix_sessions: u32,
    /// Levels 1..=levels_completed.
    pub total_levels: u32,
    /// Levels that needed no fix session.
    pub zero_fix_levels: u32,
    /// Bugs in the bug reports the fix sessions were given; `None` unless every fix
    /// session's report is known (the original layout keeps only the app's latest one).
    pub total_bugs: Option<u32>,
    pub zero_bug_levels: Option<u32>,
    /// Fix sessions whose bug report is known.
    pub bug_reports_known: u32,
    /// `ITERATION_LOG.md` fix blocks, and their categories.
    pub iteration_log_fixes: u32,
    pub iteration_log_categories: BTreeMap<String, u32>,
    /// The app's current `BUG_REPORT.md` (shown, not counted).
    pub latest_bug_report: Option<LatestBugReport>,
}

/// What the app's current `BUG_REPORT.md` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatestBugReport {
    pub app: String,
    pub bugs: u32,
    pub level: Option<u32>,
    pub iteration: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelFigures {
    pub level: u32,
    pub upgrade_cost: f64,
    pub fix_cost: f64,
    pub cost: f64,
    pub cumulative_cost: f64,
    pub fix_sessions: u32,
    /// Bugs reported at this level; `None` when a fix session's report is unknown.
    pub bugs: Option<u32>,
    pub api_calls: u64,
    pub output_tokens: u64,
    pub agent_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub run_id: String,
    pub phase: String,
    pub labelled_level: u32,
    pub level: u32,
    pub started_at: Option<String>,
    pub cost_usd: f64,
    pub api_calls: u64,
    pub agent_seconds: f64,
    pub wall_clock_seconds: Option<f64>,
    pub bugs: Option<u32>,
    /// How the session ended (`completed`, `failed`, `timeout`, …), when recorded.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// Computes a backend's figures. `loc` is counted by the caller (it needs the rules).
pub fn compute(backend: &BackendRun, loc: Option<LocFigures>) -> BackendMetrics {
    let sessions = &backend.sessions;
    let counts = session_counts(sessions);
    let levels_completed = sessions
        .iter()
        .filter(|s| s.phase != Phase::Fix)
        .map(|s| s.level)
        .max()
        .unwrap_or(0);
    let features = levels_completed;
    // Bugs per fix session: the copy of the bug report kept with the session. The app's own
    // BUG_REPORT.md is only the latest one (each fix overwrites it), so it is reported but
    // never used to count: attributing it to a session would be a guess.
    let bugs_of: Vec<Option<u32>> = sessions
        .iter()
        .map(|s| s.bug_report.as_ref().map(|r| r.count() as u32))
        .collect();
    let by_level = level_figures(sessions, levels_completed, &bugs_of);
    let (by_level, quality) =
        quality_figures(backend, &counts, levels_completed, by_level, &bugs_of);
    let (stress, stress_acked_per_second) = stress_rows(backend);
    BackendMetrics {
        backend: backend.name.clone(),
        levels_completed,
        features,
        cost: cost_figures(sessions, features),
        tokens: token_figures(sessions, features),
        time: time_figures(sessions, &counts),
        sessions: counts,
        quality,
        by_level,
        feature_score: backend
            .apps
            .iter()
            .rev()
            .find_map(|a| a.grading.as_ref().and_then(|g| g.total)),
        grades_by_level: backend
            .apps
            .iter()
            .rev()
            .find(|a| !a.grades.is_empty())
            .map(|a| a.grades.clone())
            .unwrap_or_default(),
        grading_cost: crate::grades::grading_cost(backend.apps.iter().map(|a| a.path.as_path())),
        loop_outcome: backend.apps.iter().rev().find_map(LoopOutcome::of),
        loc,
        session_list: session_rows(sessions, &bugs_of),
        stress,
        stress_acked_per_second,
    }
}

/// Sum of `f` over the sessions `pred` keeps (`+ 0.0` turns an empty `-0.0` into `0.0`).
fn sum_of(
    sessions: &[Session],
    f: impl Fn(&Session) -> f64,
    pred: impl Fn(&Session) -> bool,
) -> f64 {
    sessions.iter().filter(|s| pred(s)).map(f).sum::<f64>() + 0.0
}

fn is_build(s: &Session) -> bool {
    s.phase != Phase::Fix
}

fn is_fix(s: &Session) -> bool {
    s.phase == Phase::Fix
}

/// `x` per feature, 0 without features.
fn per_feature(x: f64, features: u32) -> f64 {
    if features > 0 {
        x / features as f64
    } else {
        0.0
    }
}

fn session_counts(sessions: &[Session]) -> SessionCounts {
    let of = |phase: Phase| sessions.iter().filter(|s| s.phase == phase).count() as u32;
    SessionCounts {
        total: sessions.len() as u32,
        generate: of(Phase::Generate),
        upgrade: of(Phase::Upgrade),
        fix: of(Phase::Fix),
    }
}

fn cost_figures(sessions: &[Session], features: u32) -> CostFigures {
    let cost = |s: &Session| s.summary.total_cost_usd;
    let upgrades = sum_of(sessions, cost, is_build);
    let fixes = sum_of(sessions, cost, is_fix);
    let total = upgrades + fixes;
    CostFigures {
        upgrades,
        fixes,
        total,
        per_feature: per_feature(total, features),
        per_feature_upgrades: per_feature(upgrades, features),
        per_feature_fixes: per_feature(fixes, features),
        fix_share_pct: if total > 0.0 {
            fixes / total * 100.0
        } else {
            0.0
        },
    }
}

fn token_figures(sessions: &[Session], features: u32) -> TokenFigures {
    let tok = |f: fn(&Session) -> u64| sessions.iter().map(f).sum::<u64>();
    let fresh_input = tok(|s| s.summary.total_input_tokens);
    let fresh_output = tok(|s| s.summary.total_output_tokens);
    let cache_read = tok(|s| s.summary.cache_read_tokens);
    let cache_creation = tok(|s| s.summary.cache_creation_tokens);
    let api_calls = tok(|s| s.summary.api_calls);
    let all_tokens = (fresh_input + fresh_output + cache_read + cache_creation) as f64;
    TokenFigures {
        fresh_input,
        fresh_output,
        cache_read,
        cache_creation,
        api_calls,
        output_per_feature: per_feature(fresh_output as f64, features),
        calls_per_feature: per_feature(api_calls as f64, features),
        tokens_per_feature: per_feature(all_tokens, features),
    }
}

fn time_figures(sessions: &[Session], counts: &SessionCounts) -> TimeFigures {
    let secs = |s: &Session| s.summary.total_duration_sec;
    let upgrade_total = sum_of(sessions, secs, is_build);
    let fix_total = sum_of(sessions, secs, is_fix);
    let total_secs = sum_of(sessions, secs, |_| true);
    let n_build = sessions.iter().filter(|s| is_build(s)).count();
    let avg = |x: f64, n: usize| if n > 0 { x / n as f64 } else { 0.0 };
    let generation = sum_of(sessions, secs, |s| s.phase == Phase::Generate);
    let upgrades_only = sum_of(sessions, secs, |s| s.phase == Phase::Upgrade);
    let wall: Option<f64> = sessions
        .iter()
        .map(Session::wall_clock_sec)
        .sum::<Option<f64>>()
        .map(|w| w + 0.0);
    TimeFigures {
        total: total_secs,
        upgrade_total,
        fix_total,
        generation,
        upgrade_avg_incl_generate: avg(upgrade_total, n_build),
        avg_upgrade: avg(upgrades_only, counts.upgrade as usize),
        avg_fix_session: avg(fix_total, counts.fix as usize),
        total_minutes: total_secs / 60.0,
        wall_clock_total: wall,
    }
}

/// Cost, calls, tokens, time, fix sessions and bugs of each level; a fix session counts
/// toward its session's level.
fn level_figures(
    sessions: &[Session],
    levels_completed: u32,
    bugs_of: &[Option<u32>],
) -> Vec<LevelFigures> {
    let mut by_level: Vec<LevelFigures> = (1..=levels_completed)
        .map(|level| LevelFigures {
            level,
            bugs: Some(0),
            ..Default::default()
        })
        .collect();
    for (i, s) in sessions.iter().enumerate() {
        let idx = s.level.max(1) as usize - 1;
        if idx >= by_level.len() {
            let from = by_level.len() as u32 + 1;
            by_level.extend((from..=s.level.max(1)).map(|level| LevelFigures {
                level,
                bugs: Some(0),
                ..Default::default()
            }));
        }
        let l = &mut by_level[idx];
        if s.phase == Phase::Fix {
            l.fix_cost += s.summary.total_cost_usd;
            l.fix_sessions += 1;
            l.bugs = match (l.bugs, bugs_of[i]) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        } else {
            l.upgrade_cost += s.summary.total_cost_usd;
        }
        l.cost += s.summary.total_cost_usd;
        l.api_calls += s.summary.api_calls;
        l.output_tokens += s.summary.total_output_tokens;
        l.agent_seconds += s.summary.total_duration_sec;
    }
    let mut running = 0.0;
    for l in &mut by_level {
        running += l.cost;
        l.cumulative_cost = running;
    }
    by_level
}

/// The quality figures; without every fix session's bug report no level's bug count is
/// known, so `by_level` comes back with its counts cleared.
fn quality_figures(
    backend: &BackendRun,
    counts: &SessionCounts,
    levels_completed: u32,
    mut by_level: Vec<LevelFigures>,
    bugs_of: &[Option<u32>],
) -> (Vec<LevelFigures>, QualityFigures) {
    let sessions = &backend.sessions;
    let latest_bug_report = backend.apps.iter().rev().find_map(|a| {
        a.bug_report.as_ref().map(|r| LatestBugReport {
            app: a.name.clone(),
            bugs: r.count() as u32,
            level: r.level,
            iteration: r.iteration,
        })
    });
    let bug_reports_known = sessions
        .iter()
        .zip(bugs_of)
        .filter(|(s, b)| s.phase == Phase::Fix && b.is_some())
        .count() as u32;
    let all_known = bug_reports_known == counts.fix;
    if !all_known {
        // Without every report, no level's count is known: a level with no fix session may
        // still have had bugs a grader noted, and the missing reports could be anywhere.
        for l in &mut by_level {
            l.bugs = None;
        }
    }
    let total_levels = levels_completed;
    let in_range = |l: &&LevelFigures| l.level <= total_levels;
    let mut iteration_log_fixes = 0;
    let mut iteration_log_categories = BTreeMap::new();
    for app in &backend.apps {
        if let Some(log) = &app.iteration_log {
            iteration_log_fixes += log.fixes().count() as u32;
            for (k, v) in log.fix_categories() {
                *iteration_log_categories.entry(k).or_insert(0) += v;
            }
        }
    }
    let quality = QualityFigures {
        fix_sessions: counts.fix,
        total_levels,
        zero_fix_levels: by_level
            .iter()
            .filter(in_range)
            .filter(|l| l.fix_sessions == 0)
            .count() as u32,
        total_bugs: all_known.then(|| by_level.iter().filter_map(|l| l.bugs).sum()),
        zero_bug_levels: all_known.then(|| {
            by_level
                .iter()
                .filter(in_range)
                .filter(|l| l.bugs == Some(0))
                .count() as u32
        }),
        bug_reports_known,
        iteration_log_fixes,
        iteration_log_categories,
        latest_bug_report,
    };
    (by_level, quality)
}

/// One row per session, for the report's session tables.
fn session_rows(sessions: &[Session], bugs_of: &[Option<u32>]) -> Vec<SessionRow> {
    sessions
        .iter()
        .zip(bugs_of)
        .map(|(s, bugs)| SessionRow {
            run_id: s.run_id.clone(),
            phase: s.phase.to_string(),
            labelled_level: s.labelled_level,
            level: s.level,
            started_at: s.started.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
            cost_usd: s.summary.total_cost_usd,
            api_calls: s.summary.api_calls,
            agent_seconds: s.summary.total_duration_sec,
            wall_clock_seconds: s.wall_clock_sec(),
            bugs: if s.phase == Phase::Fix { *bugs } else { None },
            outcome: s.metadata.as_ref().and_then(|m| {
                m.outcome
                    .map(|o| o.to_string())
                    .or_else(|| m.exit_code.map(|c| format!("exit {c}")))
            }),
        })
        .collect()
}

/// The backend's stress results, and its best verified stress throughput.
fn stress_rows(backend: &BackendRun) -> (Vec<StressRow>, Option<f64>) {
    let stress: Vec<StressRow> = backend
        .stress
        .iter()
        .map(|r| StressRow {
            name: r.display_name(),
            backend: r.backend.clone(),
            scenario: r.scenario.clone(),
            client: r.client.clone(),
            writers: r.config.writers,
            acked_per_second: r.throughput.acked_per_second,
            sent_per_second: r.throughput.sent_per_second,
            ack_p50_ms: r.ack_latency.p50_us as f64 / 1000.0,
            ack_p99_ms: r.ack_latency.p99_us as f64 / 1000.0,
            failed: r.measured.failed,
            verification_passed: r.verification.passed,
            verification: r.verification.detail.clone(),
        })
        .collect();
    let stress_acked_per_second = stress
        .iter()
        .filter(|r| {
            r.scenario == "stress"
                && r.verification_passed
                && !matches!(r.backend.as_str(), "ceiling" | "noop")
        })
        .map(|r| r.acked_per_second)
        .fold(None, |best: Option<f64>, x| {
            Some(best.map_or(x, |b| b.max(x)))
        });
    (stress, stress_acked_per_second)
}
