//! Turns the driver's events into per-feature step records (`grading.json`'s features),
//! before scoring.

use anyhow::{Result, bail};
use bench_formats::grading::{
    ActionResult, Artifacts, CheckResult, ConsoleError, FeatureGrade, StepOutcome, StepResult,
};

use bench_formats::grading::Severity;

use crate::events::{CheckEvent, Event};
use crate::program::Program;

/// What the driver has reported so far.
pub struct Recorder {
    features: Vec<FeatureGrade>,
    program: Program,
    pub browser_version: String,
    pub warmup_ms: f64,
    done: bool,
    fatal: Option<String>,
}

/// What a caller may want to show after an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Ready,
    Started(u32),
    /// A feature ended: its id, checks passed and checks run.
    Ended {
        feature: u32,
        passed: usize,
        checks: usize,
        failed_actions: usize,
    },
    Nothing,
}

impl Recorder {
    /// A record with every step of the program not yet run; `level_of` gives the level
    /// that adds a feature.
    pub fn new(program: &Program, level_of: impl Fn(u32) -> u32) -> Recorder {
        let features = program
            .features
            .iter()
            .map(|f| FeatureGrade {
                id: f.id,
                key: f.key.clone(),
                name: f.name.clone(),
                level: level_of(f.id),
                score: 0,
                max: bench_content::levels::MAX_SCORE,
                reasons: Vec::new(),
                steps: f
                    .steps
                    .iter()
                    .map(|s| {
                        StepResult::not_run(s.index, s.actor.clone(), s.action.clone(), s.within_s)
                    })
                    .collect(),
                console_errors: Vec::new(),
                borrowed_checks: Vec::new(),
            })
            .collect();
        Recorder {
            features,
            program: program.clone(),
            browser_version: String::new(),
            warmup_ms: 0.0,
            done: false,
            fatal: None,
        }
    }

    fn feature_mut(&mut self, id: u32) -> Result<&mut FeatureGrade> {
        match self.features.iter_mut().find(|f| f.id == id) {
            Some(f) => Ok(f),
            None => bail!("the grading driver reported feature {id}, which it was not given"),
        }
    }

    fn step_mut(&mut self, feature: u32, step: u32) -> Result<&mut StepResult> {
        let f = self.feature_mut(feature)?;
        match f.steps.iter_mut().find(|s| s.index == step) {
            Some(s) => Ok(s),
            None => bail!(
                "the grading driver reported step {step} of feature {feature}, which has no such step"
            ),
        }
    }

    /// Records one event.
    pub fn apply(&mut self, event: Event) -> Result<Progress> {
        match event {
            Event::Ready {
                browser_version,
                warmup_ms,
            } => {
                self.browser_version = browser_version;
                self.warmup_ms = warmup_ms;
                return Ok(Progress::Ready);
            }
            Event::FeatureStart { feature } => {
                self.feature_mut(feature)?;
                return Ok(Progress::Started(feature));
            }
            Event::Action {
                feature,
                step,
                item,
                user,
                what,
                ok,
                error,
                ms,
            } => self.step_mut(feature, step)?.actions.push(ActionResult {
                item,
                user,
                what,
                ok,
                error,
                ms,
            }),
            Event::Check(mut c) => {
                self.complete_from_script(&mut c);
                let observed = c.observed_text();
                self.step_mut(c.feature, c.step)?.checks.push(CheckResult {
                    item: c.item,
                    user: c.user,
                    what: c.what,
                    expect: c.expect,
                    passed: c.passed,
                    latency_ms: c.latency_ms,
                    within_s: c.within_s,
                    observed,
                    severity: c.severity,
                    after_refresh: c.after_refresh,
                    counts_for: c.counts_for.filter(|id| *id != c.feature),
                })
            }
            Event::ConsoleError {
                feature,
                step,
                user,
                text,
                url,
            } => self
                .feature_mut(feature)?
                .console_errors
                .push(ConsoleError {
                    step,
                    user,
                    text,
                    url,
                }),
            Event::Artifacts {
                feature,
                step,
                screenshots,
                trace,
            } => {
                self.step_mut(feature, step)?.artifacts = Some(Artifacts { screenshots, trace });
            }
            Event::FeatureEnd { feature } => return self.ended(feature),
            Event::Done {} => self.done = true,
            Event::Fatal { error } => self.fatal = Some(error),
        }
        Ok(Progress::Nothing)
    }

    /// Fills what the driver left out from the script item itself: the feature the
    /// expectation counts for (`feature`) and its `severity`.
    fn complete_from_script(&self, c: &mut CheckEvent) {
        let item = self
            .program
            .features
            .iter()
            .find(|f| f.id == c.feature)
            .and_then(|f| f.steps.iter().find(|s| s.index == c.step))
            .and_then(|s| s.item(c.item));
        let Some(item) = item else { return };
        if c.counts_for.is_none() {
            c.counts_for = item
                .get("feature")
                .and_then(|v| v.as_u64())
                .map(|v| v as u32);
        }
        if let Some(severity) = item.get("severity").and_then(|v| v.as_str()) {
            c.severity = Severity::parse(severity);
        }
    }

    fn ended(&mut self, feature: u32) -> Result<Progress> {
        let f = self.feature_mut(feature)?;
        let checks = f.steps.iter().flat_map(|s| &s.checks);
        let (passed, total) = checks.fold((0, 0), |(p, t), c| (p + usize::from(c.passed), t + 1));
        let failed_actions = f
            .steps
            .iter()
            .flat_map(|s| &s.actions)
            .filter(|a| !a.ok)
            .count();
        Ok(Progress::Ended {
            feature,
            passed,
            checks: total,
            failed_actions,
        })
    }

    /// The fatal error the driver reported, if any.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// The features with every step's outcome set. Fails (a harness failure) when the driver
    /// reported a fatal error or stopped before `done`.
    pub fn finish(mut self) -> Result<Vec<FeatureGrade>> {
        if let Some(error) = &self.fatal {
            bail!("the grading driver could not go on: {error}");
        }
        if !self.done {
            bail!("the grading driver stopped before reporting `done` (see its log above)");
        }
        for step in self.features.iter_mut().flat_map(|f| f.steps.iter_mut()) {
            step.outcome = outcome_of(step);
        }
        Ok(self.features)
    }
}

fn outcome_of(step: &StepResult) -> StepOutcome {
    if step.actions.iter().any(|a| !a.ok) {
        StepOutcome::NotCarriedOut
    } else if step.checks.iter().any(|c| !c.passed) {
        StepOutcome::Failed
    } else if step.actions.is_empty() && step.checks.is_empty() {
        StepOutcome::NotRun
    } else {
        StepOutcome::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::parse_line;
    use crate::program::{ProgramFeature, ProgramStep};

    fn program() -> Program {
        let step = |index: u32, script: serde_json::Value| ProgramStep {
            index,
            actor: "alice".into(),
            action: format!("step {index}"),
            within_s: Some(2.0),
            script,
        };
        Program {
            version: 1,
            url: "http://127.0.0.1:1/".into(),
            browser: "chromium".into(),
            artifacts_dir: "/tmp/a".into(),
            trace: false,
            warmup: true,
            headings: Vec::new(),
            features: vec![ProgramFeature {
                id: 4,
                key: "unread-counts".into(),
                name: "Unread counts".into(),
                ui: serde_json::json!([]),
                steps: vec![
                    step(1, serde_json::json!([{"user": "alice", "do": "open"}])),
                    step(
                        2,
                        serde_json::json!([
                            {"user": "alice", "do": "click", "button": "Send"},
                            {"user": "bob", "expect": "appears", "text": "Seen by Bob", "feature": 3, "severity": "minor"}
                        ]),
                    ),
                    step(3, serde_json::json!([{"user": "bob", "do": "reload"}])),
                    step(4, serde_json::json!([{"user": "bob", "do": "reload"}])),
                ],
            }],
        }
    }

    fn feed(recorder: &mut Recorder, lines: &[&str]) {
        for line in lines {
            recorder.apply(parse_line(line).unwrap().unwrap()).unwrap();
        }
    }

    #[test]
    fn events_become_step_outcomes_with_the_script_items_attribution() {
        let mut recorder = Recorder::new(&program(), |_| 1);
        feed(
            &mut recorder,
            &[
                r#"{"event":"ready","browser_version":"X","warmup_ms":5}"#,
                r#"{"event":"feature_start","feature":4}"#,
                r#"{"event":"action","feature":4,"step":1,"item":0,"user":"alice","what":"open","ok":true,"ms":3}"#,
                r#"{"event":"action","feature":4,"step":2,"item":0,"user":"alice","what":"click","ok":true,"ms":3}"#,
                r#"{"event":"check","feature":4,"step":2,"item":1,"user":"bob","what":"Seen by Bob","expect":"appears","passed":false,"observed":"not shown"}"#,
                r#"{"event":"action","feature":4,"step":3,"item":0,"user":"bob","what":"reload","ok":false,"error":"page crashed","ms":3}"#,
                r#"{"event":"feature_end","feature":4}"#,
                r#"{"event":"done"}"#,
            ],
        );
        assert_eq!(recorder.browser_version, "X");
        let features = recorder.finish().unwrap();
        let outcomes: Vec<StepOutcome> = features[0].steps.iter().map(|s| s.outcome).collect();
        assert_eq!(
            outcomes,
            vec![
                StepOutcome::Passed,
                StepOutcome::Failed,
                StepOutcome::NotCarriedOut,
                StepOutcome::NotRun
            ]
        );
        let check = &features[0].steps[1].checks[0];
        assert_eq!(check.counts_for, Some(3));
        assert_eq!(check.severity, Severity::Minor);
        assert_eq!(check.observed, "not shown");
    }

    #[test]
    fn a_fatal_error_or_a_missing_done_is_a_harness_failure() {
        let mut recorder = Recorder::new(&program(), |_| 1);
        feed(
            &mut recorder,
            &[r#"{"event":"fatal","error":"browser missing"}"#],
        );
        assert_eq!(recorder.fatal(), Some("browser missing"));
        assert!(
            recorder
                .finish()
                .unwrap_err()
                .to_string()
                .contains("browser missing")
        );
        let unfinished = Recorder::new(&program(), |_| 1);
        assert!(
            unfinished
                .finish()
                .unwrap_err()
                .to_string()
                .contains("done")
        );
        let mut stray = Recorder::new(&program(), |_| 1);
        let event = parse_line(r#"{"event":"feature_start","feature":9}"#)
            .unwrap()
            .unwrap();
        assert!(stray.apply(event).is_err());
    }
}
