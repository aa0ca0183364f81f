//! The loop's step machine: from what an app's state says happened, the one step that comes
//! next. Nothing here runs anything, so a loop killed anywhere decides the same step again
//! when it resumes.

use bench_formats::loop_record::{LoopRecord, LoopStep};
use bench_formats::{AppState, Outcome, Phase, Variant};

/// What to do next with an app.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run this step.
    Step(LoopStep),
    /// Stop the app's loop early, for this reason.
    Stop(String),
    /// The loop is over for this app.
    Over,
}

/// Sessions that changed the app as far as the loop is concerned: a killed or interrupted
/// session is run again, so it does not count.
fn counts(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Completed | Outcome::Failed | Outcome::Timeout
    )
}

/// How many sessions of the app completed.
pub fn completed_sessions(state: &AppState) -> usize {
    state
        .sessions
        .iter()
        .filter(|s| s.outcome == Outcome::Completed)
        .count()
}

/// Fix sessions that ran to an end at `level`.
pub fn fixes_at(state: &AppState, level: u32) -> u32 {
    let n = state
        .sessions
        .iter()
        .filter(|s| s.phase == Phase::Fix && s.level == level && counts(s.outcome))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the app's sessions cost together (sessions whose cost is unknown count nothing).
pub fn total_cost(state: &AppState) -> f64 {
    state.sessions.iter().filter_map(|s| s.cost_usd).sum()
}

/// The level a new app is generated at: 1, or the target at once for one-shot.
pub fn generate_level(variant: Variant, to_level: u32) -> u32 {
    match variant {
        Variant::OneShot => to_level,
        Variant::SequentialUpgrade => 1,
    }
}

/// The step after what `state` and `rec` say happened.
pub fn next(state: &AppState, rec: &LoopRecord) -> Next {
    if rec.is_over() {
        return Next::Over;
    }
    let settings = &rec.settings;
    // A session that failed (not one that was killed) stops the app: running it again
    // would pay again for the same failure.
    if let Some(last) = state.sessions.last()
        && matches!(last.outcome, Outcome::Failed | Outcome::Timeout)
    {
        return Next::Stop(format!(
            "the {} session at level {} ended {} (see telemetry/{}/)",
            last.phase, last.level, last.outcome, last.run_id
        ));
    }
    let level = state.level;
    if level == 0 {
        return Next::Step(LoopStep::Generate {
            level: generate_level(state.variant, settings.to_level),
        });
    }
    let done = completed_sessions(state);
    let graded = rec
        .grades
        .iter()
        .rev()
        .find(|g| g.level == level && g.completed_sessions == done);
    let Some(grade) = graded else {
        return Next::Step(LoopStep::Grade { level });
    };
    let fixes = fixes_at(state, level);
    if grade.lost_points() && fixes < settings.max_fixes {
        return Next::Step(LoopStep::Fix {
            level,
            iteration: fixes + 1,
        });
    }
    if level < settings.to_level && state.variant == Variant::SequentialUpgrade {
        return Next::Step(LoopStep::Upgrade { level: level + 1 });
    }
    Next::Step(LoopStep::Finish)
}

/// Why the loop moves on although points were lost, if it does.
pub fn fixes_exhausted_note(state: &AppState, rec: &LoopRecord) -> Option<String> {
    let grade = rec.last_grade()?;
    let fixes = fixes_at(state, grade.level);
    (grade.lost_points() && fixes >= rec.settings.max_fixes).then(|| {
        format!(
            "level {} kept {}/{} points after {fixes} fix session(s) (--max-fixes {})",
            grade.level, grade.score, grade.max, rec.settings.max_fixes
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_formats::loop_record::{GradeRecord, Grader, LoopSettings, LoopStatus};
    use bench_formats::state::SessionRecord;

    fn record(to_level: u32, max_fixes: u32) -> LoopRecord {
        LoopRecord {
            loop_id: "l".into(),
            repetition: 1,
            settings: LoopSettings {
                to_level,
                max_fixes,
                max_budget_usd: None,
                max_total_usd: None,
                grader: Grader::Auto,
                model: "m".into(),
                rehearse: None,
            },
            status: LoopStatus::Running,
            current: None,
            steps: vec![],
            grades: vec![],
            stop_reason: None,
        }
    }

    fn session(phase: Phase, level: u32, outcome: Outcome) -> SessionRecord {
        SessionRecord {
            phase,
            level,
            run_id: format!("{phase}-{level}"),
            session_id: None,
            outcome,
            exit_code: None,
            cost_usd: Some(0.5),
            started_at_utc: String::new(),
            ended_at_utc: None,
            telemetry_dir: None,
        }
    }

    fn grade(state: &AppState, score: u32, max: u32) -> GradeRecord {
        GradeRecord {
            level: state.level,
            score,
            max,
            bugs: max - score,
            completed_sessions: completed_sessions(state),
            graded_at_utc: String::new(),
        }
    }

    #[test]
    fn the_rehearsal_path_generate_grade_upgrade_grade_fix_grade_finish() {
        let mut state = AppState::default();
        let mut rec = record(2, 5);
        assert_eq!(
            next(&state, &rec),
            Next::Step(LoopStep::Generate { level: 1 })
        );
        state
            .sessions
            .push(session(Phase::Generate, 1, Outcome::Completed));
        state.level = 1;
        assert_eq!(next(&state, &rec), Next::Step(LoopStep::Grade { level: 1 }));
        rec.grades.push(grade(&state, 12, 12));
        assert_eq!(
            next(&state, &rec),
            Next::Step(LoopStep::Upgrade { level: 2 })
        );
        // Killed half-way: the upgrade runs again, no regrade of level 1.
        state
            .sessions
            .push(session(Phase::Upgrade, 2, Outcome::Killed));
        assert_eq!(
            next(&state, &rec),
            Next::Step(LoopStep::Upgrade { level: 2 })
        );
        state
            .sessions
            .push(session(Phase::Upgrade, 2, Outcome::Completed));
        state.level = 2;
        assert_eq!(next(&state, &rec), Next::Step(LoopStep::Grade { level: 2 }));
        rec.grades.push(grade(&state, 12, 15));
        let fix = Next::Step(LoopStep::Fix {
            level: 2,
            iteration: 1,
        });
        assert_eq!(next(&state, &rec), fix);
        state
            .sessions
            .push(session(Phase::Fix, 2, Outcome::Completed));
        assert_eq!(next(&state, &rec), Next::Step(LoopStep::Grade { level: 2 }));
        rec.grades.push(grade(&state, 15, 15));
        assert_eq!(next(&state, &rec), Next::Step(LoopStep::Finish));
        assert!(fixes_exhausted_note(&state, &rec).is_none());
        assert!((total_cost(&state) - 2.0).abs() < 1e-9);
        rec.status = LoopStatus::Finished;
        assert_eq!(next(&state, &rec), Next::Over);
    }

    #[test]
    fn no_fixes_allowed_moves_on_with_a_note_and_failures_stop() {
        let mut state = AppState {
            level: 1,
            ..AppState::default()
        };
        state
            .sessions
            .push(session(Phase::Generate, 1, Outcome::Completed));
        let mut rec = record(1, 0);
        rec.grades.push(grade(&state, 9, 12));
        assert_eq!(next(&state, &rec), Next::Step(LoopStep::Finish));
        let note = fixes_exhausted_note(&state, &rec).unwrap();
        assert!(note.contains("--max-fixes 0"), "{note}");

        state.sessions.push(session(Phase::Fix, 1, Outcome::Failed));
        match next(&state, &rec) {
            Next::Stop(why) => {
                assert!(why.contains("fix session at level 1 ended failed"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_shot_generates_the_target_level_and_never_upgrades() {
        let mut state = AppState {
            variant: Variant::OneShot,
            ..AppState::default()
        };
        let mut rec = record(12, 1);
        assert_eq!(
            next(&state, &rec),
            Next::Step(LoopStep::Generate { level: 12 })
        );
        state
            .sessions
            .push(session(Phase::Generate, 12, Outcome::Completed));
        state.level = 12;
        rec.grades.push(grade(&state, 45, 45));
        assert_eq!(next(&state, &rec), Next::Step(LoopStep::Finish));
    }
}
