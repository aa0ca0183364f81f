//! What `bench-loop` records about an app in its `.bench/state.json` (the `loop` field of
//! [`AppState`](crate::AppState)): the loop's settings, the step under way, the steps done
//! and every grading, so that a loop killed at any point continues at the exact step.

use serde::{Deserialize, Serialize};

use crate::named::named_enum;

named_enum! {
    /// Who grades the app after each session.
    pub enum Grader ("grader") {
        /// `bench-grade`: the scripted test plans in a real browser, scored by the rubric.
        Auto => "auto",
        /// A person, with the test plans and a grading sheet; the loop waits for
        /// `GRADING_RESULTS.md`.
        Manual => "manual",
        /// A Claude Code session judging the plans through two Playwright browsers
        /// (`bench-grade --grader agent`); its cost is kept apart from the app's.
        Agent => "agent",
        /// The deterministic grader, then an agent session for what its scripts could not
        /// carry out or do not check (`bench-grade --grader hybrid`).
        Hybrid => "hybrid",
    }
}

named_enum! {
    /// Where an app's loop stands.
    pub enum LoopStatus ("loop status") {
        /// Steps remain (or one was under way when the loop ended).
        Running => "running",
        /// Every level up to the target was built and graded.
        Finished => "finished",
        /// The loop stopped the app early (budget, a failed session, no script): see
        /// `stop_reason`.
        Stopped => "stopped",
    }
}

/// The settings an app's loop runs with (kept so `--resume` needs none of them again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopSettings {
    /// The level the loop takes the app to.
    pub to_level: u32,
    /// Fix sessions allowed per level.
    pub max_fixes: u32,
    /// The cap of each session, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget_usd: Option<f64>,
    /// The cap of the app's sessions together, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_usd: Option<f64>,
    pub grader: Grader,
    pub model: String,
    /// The folder of rehearsal scripts (a zero-cost rehearsal), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearse: Option<String>,
}

/// One step of the loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum LoopStep {
    /// The generate session, at `level`.
    Generate { level: u32 },
    /// Start the app on a fresh database and grade features of levels 1..=`level`.
    Grade { level: u32 },
    /// Fix session number `iteration` at `level`.
    Fix { level: u32, iteration: u32 },
    /// The upgrade session to `level`.
    Upgrade { level: u32 },
    /// Stop the app: the loop is over for it.
    Finish,
}

impl std::fmt::Display for LoopStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopStep::Generate { level } => write!(f, "generate level {level}"),
            LoopStep::Grade { level } => write!(f, "grade level {level}"),
            LoopStep::Fix { level, iteration } => write!(f, "fix {iteration} at level {level}"),
            LoopStep::Upgrade { level } => write!(f, "upgrade to level {level}"),
            LoopStep::Finish => f.write_str("finish"),
        }
    }
}

/// A step as recorded: when it started and, once it has, how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    #[serde(flatten)]
    pub step: LoopStep,
    pub started_at_utc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_utc: Option<String>,
    /// What the step gave (`completed`, `12/12`, `killed, run again`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// One grading of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GradeRecord {
    pub level: u32,
    pub score: u32,
    pub max: u32,
    /// Bugs written to `BUG_REPORT.md` (0 when every point was kept).
    pub bugs: u32,
    /// How many of the app's sessions had completed when it was graded: a grading counts
    /// for the app as those sessions left it.
    pub completed_sessions: usize,
    pub graded_at_utc: String,
}

impl GradeRecord {
    pub fn lost_points(&self) -> bool {
        self.score < self.max
    }
}

/// The loop's record of one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopRecord {
    /// The loop this app belongs to (its manifest under `<runs>/.loops/`).
    pub loop_id: String,
    /// Which repetition of its backend this app is (1-based).
    pub repetition: u32,
    pub settings: LoopSettings,
    pub status: LoopStatus,
    /// The step under way (`None` between steps). A loop that finds one here was killed
    /// during it, and runs it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<StepRecord>,
    /// Steps done, oldest first.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    /// Gradings, oldest first.
    #[serde(default)]
    pub grades: Vec<GradeRecord>,
    /// Why the loop stopped early, or what it wants the user to know at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

impl LoopRecord {
    /// The newest grading.
    pub fn last_grade(&self) -> Option<&GradeRecord> {
        self.grades.last()
    }

    /// Whether the loop is over for this app.
    pub fn is_over(&self) -> bool {
        self.status != LoopStatus::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_written_as_tagged_objects_and_read_back() {
        let rec = StepRecord {
            step: LoopStep::Fix {
                level: 2,
                iteration: 1,
            },
            started_at_utc: "2026-12-01T03:00:00Z".into(),
            ended_at_utc: None,
            result: None,
        };
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["step"], "fix");
        assert_eq!(json["iteration"], 1);
        let back: StepRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, rec);
        assert_eq!(rec.step.to_string(), "fix 1 at level 2");
    }
}
