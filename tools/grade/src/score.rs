//! The deterministic rubric (`grading/rubric.md`, "Automatic grading"): from the recorded
//! steps to a 0–3 score per feature, with the reason for every lost point.
//!
//! For each feature, in this order:
//! 1. A step that could not be carried out (an action failed: control not found, page
//!    crashed) or was never reached: **0**.
//! 2. Its own expectations (those of its steps not attributed to another feature, plus
//!    those of later features' steps attributed to it) all failed: **0** (missing).
//! 3. Each failed expectation gives a ceiling; the score is the lowest: `critical` → 0;
//!    seen only after a reload → 1; `minor` → 2; late by less than double its limit → 2;
//!    anything else (`major`) → 1.
//! 4. A console error while the feature ran caps it at **2**.

use bench_formats::grading::{CheckRef, CheckResult, FeatureGrade, Severity, StepOutcome};

use bench_content::levels::MAX_SCORE;

/// The ceiling one failed expectation puts on its feature, and why.
pub fn ceiling(check: &CheckResult) -> (u32, String) {
    let measured = match check.latency_ms {
        Some(ms) => format!(" (seen after {})", seconds(ms)),
        None => String::new(),
    };
    let what = format!("{}: {}{measured}", check.user, check.what);
    if check.severity == Severity::Critical {
        return (0, format!("critical expectation failed — {what}"));
    }
    if check.after_refresh {
        return (1, format!("shown only after a reload — {what}"));
    }
    if check.severity == Severity::Minor {
        return (2, format!("minor expectation failed — {what}"));
    }
    if late_by_less_than_double(check) {
        return (2, format!("late by less than double its limit — {what}"));
    }
    (1, format!("expectation failed — {what}"))
}

/// Failed only because the expected change came after its limit, but before twice the
/// limit. A change that came too early (`after_s`), or a text that should have stayed
/// absent, is not late.
pub fn late_by_less_than_double(check: &CheckResult) -> bool {
    match (check.latency_ms, check.within_s) {
        (Some(ms), Some(limit)) => {
            let limit_ms = limit * 1000.0;
            !check.passed && check.expect != "absent" && ms > limit_ms && ms < 2.0 * limit_ms
        }
        _ => false,
    }
}

/// `1.25 s`.
pub fn seconds(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}

/// Scores every feature in place (sets `score`, `reasons`, `borrowed_checks`).
pub fn score_all(features: &mut [FeatureGrade]) {
    let borrowed: Vec<(u32, CheckRef, CheckResult)> = features
        .iter()
        .flat_map(|f| {
            f.steps.iter().flat_map(move |s| {
                s.checks.iter().filter_map(move |c| {
                    let target = c.counts_for?;
                    let at = CheckRef {
                        feature: f.id,
                        step: s.index,
                        item: c.item,
                    };
                    Some((target, at, c.clone()))
                })
            })
        })
        .collect();
    for feature in features.iter_mut() {
        let mine: Vec<&(u32, CheckRef, CheckResult)> = borrowed
            .iter()
            .filter(|(t, _, _)| *t == feature.id)
            .collect();
        feature.borrowed_checks = mine.iter().map(|(_, at, _)| *at).collect();
        let extra: Vec<&CheckResult> = mine.iter().map(|(_, _, c)| c).collect();
        let (score, reasons) = score_feature(feature, &extra);
        feature.score = score;
        feature.reasons = reasons;
    }
}

/// The rubric for one feature; `borrowed` are checks made in other features' steps that
/// count for this one.
pub fn score_feature(feature: &FeatureGrade, borrowed: &[&CheckResult]) -> (u32, Vec<String>) {
    if let Some(reason) = untestable(feature) {
        return (0, vec![reason]);
    }
    let own: Vec<&CheckResult> = feature
        .steps
        .iter()
        .flat_map(|s| &s.checks)
        .filter(|c| c.counts_for.is_none())
        .chain(borrowed.iter().copied())
        .collect();
    if !own.is_empty() && own.iter().all(|c| !c.passed) {
        return (
            0,
            vec![format!(
                "every expectation failed ({} of {}): the feature is missing",
                own.len(),
                own.len()
            )],
        );
    }
    let mut score = MAX_SCORE;
    let mut reasons = Vec::new();
    for check in own.iter().filter(|c| !c.passed) {
        let (cap, reason) = ceiling(check);
        score = score.min(cap);
        reasons.push(reason);
    }
    if let Some(first) = feature.console_errors.first() {
        score = score.min(2);
        reasons.push(format!(
            "{} console error(s), first from {}: {}",
            feature.console_errors.len(),
            first.user,
            first.text
        ));
    }
    (score, reasons)
}

/// Why the feature cannot be tested, if it cannot.
fn untestable(feature: &FeatureGrade) -> Option<String> {
    for step in &feature.steps {
        match step.outcome {
            StepOutcome::NotCarriedOut => {
                let failed = step.actions.iter().find(|a| !a.ok);
                let detail = failed
                    .map(|a| {
                        let error = a.error.as_deref().unwrap_or("failed");
                        format!("{} could not {}: {error}", a.user, a.what)
                    })
                    .unwrap_or_default();
                return Some(format!(
                    "step {} could not be carried out — {detail}",
                    step.index
                ));
            }
            StepOutcome::NotRun => {
                return Some(format!("step {} was not run", step.index));
            }
            StepOutcome::Passed | StepOutcome::Failed => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_formats::grading::{ActionResult, ConsoleError, StepResult};

    fn check(passed: bool) -> CheckResult {
        CheckResult {
            item: 1,
            user: "bob".into(),
            what: "`Hello` appears".into(),
            expect: "appears".into(),
            passed,
            latency_ms: if passed { Some(120.0) } else { None },
            within_s: Some(1.0),
            observed: String::new(),
            severity: Severity::Major,
            after_refresh: false,
            counts_for: None,
        }
    }

    fn feature(id: u32, checks: Vec<CheckResult>) -> FeatureGrade {
        let outcome = if checks.iter().all(|c| c.passed) {
            StepOutcome::Passed
        } else {
            StepOutcome::Failed
        };
        FeatureGrade {
            id,
            key: format!("f{id}"),
            name: format!("Feature {id}"),
            level: 1,
            score: 0,
            max: 3,
            reasons: vec![],
            steps: vec![StepResult {
                index: 1,
                actor: "alice".into(),
                action: "Send".into(),
                within_s: Some(1.0),
                outcome,
                actions: vec![ActionResult {
                    item: 0,
                    user: "alice".into(),
                    what: "click `Send`".into(),
                    ok: true,
                    error: None,
                    ms: 5.0,
                }],
                checks,
                artifacts: None,
            }],
            console_errors: vec![],
            borrowed_checks: vec![],
        }
    }

    fn score(f: &FeatureGrade) -> u32 {
        score_feature(f, &[]).0
    }

    #[test]
    fn every_expectation_passing_scores_three() {
        let f = feature(1, vec![check(true), check(true)]);
        assert_eq!(score_feature(&f, &[]), (3, vec![]));
    }

    #[test]
    fn a_major_failure_scores_one() {
        assert_eq!(score(&feature(1, vec![check(true), check(false)])), 1);
    }

    #[test]
    fn a_minor_failure_scores_two() {
        let mut c = check(false);
        c.severity = Severity::Minor;
        assert_eq!(score(&feature(1, vec![check(true), c])), 2);
    }

    #[test]
    fn a_critical_failure_scores_zero() {
        let mut c = check(false);
        c.severity = Severity::Critical;
        assert_eq!(score(&feature(1, vec![check(true), c])), 0);
    }

    #[test]
    fn late_by_less_than_double_scores_two_and_double_or_more_scores_one() {
        let mut late = check(false);
        late.latency_ms = Some(1_900.0);
        assert_eq!(score(&feature(1, vec![check(true), late.clone()])), 2);
        late.latency_ms = Some(2_000.0);
        assert_eq!(score(&feature(1, vec![check(true), late])), 1);
    }

    #[test]
    fn too_early_or_shown_when_it_should_stay_absent_is_not_late() {
        let mut early = check(false);
        early.latency_ms = Some(400.0);
        assert!(!late_by_less_than_double(&early));
        assert_eq!(score(&feature(1, vec![check(true), early])), 1);
        let mut shown = check(false);
        shown.expect = "absent".into();
        shown.latency_ms = Some(1_500.0);
        assert!(!late_by_less_than_double(&shown));
    }

    #[test]
    fn seen_only_after_a_reload_caps_at_one_even_when_minor() {
        let mut c = check(false);
        c.after_refresh = true;
        c.severity = Severity::Minor;
        let (s, reasons) = score_feature(&feature(1, vec![check(true), c]), &[]);
        assert_eq!(s, 1);
        assert!(reasons[0].contains("only after a reload"), "{reasons:?}");
    }

    #[test]
    fn console_errors_cap_at_two() {
        let mut f = feature(1, vec![check(true)]);
        f.console_errors.push(ConsoleError {
            step: Some(1),
            user: "alice".into(),
            text: "TypeError: x is undefined".into(),
            url: None,
        });
        let (s, reasons) = score_feature(&f, &[]);
        assert_eq!(s, 2);
        assert!(reasons[0].contains("TypeError"), "{reasons:?}");
        // A cap never raises a lower score.
        f.steps[0].checks.push(check(false));
        assert_eq!(score(&f), 1);
    }

    #[test]
    fn a_step_that_cannot_be_carried_out_scores_zero() {
        let mut f = feature(1, vec![check(true)]);
        f.steps[0].actions[0].ok = false;
        f.steps[0].actions[0].error = Some("no button `Send`".into());
        f.steps[0].outcome = StepOutcome::NotCarriedOut;
        let (s, reasons) = score_feature(&f, &[]);
        assert_eq!(s, 0);
        assert!(reasons[0].contains("no button `Send`"), "{reasons:?}");
    }

    #[test]
    fn every_expectation_failing_scores_zero() {
        assert_eq!(score(&feature(1, vec![check(false), check(false)])), 0);
    }

    #[test]
    fn an_expectation_attributed_to_an_earlier_feature_scores_that_feature() {
        let mut seen_by = check(false);
        seen_by.what = "`Seen by Bob` under `Hi`".into();
        seen_by.counts_for = Some(3);
        let mut features = vec![
            feature(3, vec![check(true), check(true)]),
            feature(4, vec![check(true), seen_by]),
        ];
        score_all(&mut features);
        assert_eq!(features[0].score, 1, "{:?}", features[0].reasons);
        assert!(features[0].reasons[0].contains("Seen by Bob"));
        assert_eq!(
            features[0].borrowed_checks,
            vec![CheckRef {
                feature: 4,
                step: 1,
                item: 1
            }]
        );
        assert_eq!(features[1].score, 3, "{:?}", features[1].reasons);
    }
}
