//! `GRADING_RESULTS.md` and `BUG_REPORT.md`, in the formats of `grading/templates/` that
//! `bench_formats::app_docs` parses.

use std::fmt::Write as _;

use bench_formats::grading::{CheckResult, FeatureGrade, GradingFile, StepOutcome, StepResult};

use crate::score::{ceiling, seconds};

/// One `## Bug N` section.
#[derive(Debug, Clone, PartialEq)]
pub struct BugEntry {
    pub title: String,
    /// `Read receipts (Feature 3)`.
    pub feature: String,
    pub feature_id: u32,
    pub severity: &'static str,
    pub steps: Vec<String>,
    pub expected: String,
    pub actual: String,
    pub console: String,
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line ending with a single full stop.
fn sentence(text: &str) -> String {
    format!("{}.", one_line(text).trim_end_matches('.'))
}

/// A table cell: one line, no `|`.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "/")
}

fn severity_of(cap: u32) -> &'static str {
    match cap {
        0 => "Critical",
        1 => "Major",
        _ => "Minor",
    }
}

/// The plan's steps up to `upto`, as "Alice: …".
fn plan_steps(feature: &FeatureGrade, upto: u32) -> Vec<String> {
    feature
        .steps
        .iter()
        .filter(|s| s.index <= upto)
        .map(|s| format!("{} {}", capitalised(&s.actor) + ":", one_line(&s.action)))
        .collect()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

fn console_of(feature: &FeatureGrade, step: Option<u32>) -> String {
    let errors: Vec<String> = feature
        .console_errors
        .iter()
        .filter(|e| step.is_none() || e.step == step)
        .map(|e| format!("{}: {}", capitalised(&e.user), one_line(&e.text)))
        .collect();
    if errors.is_empty() {
        "No errors.".into()
    } else {
        errors.join("; ")
    }
}

fn feature_label(features: &[FeatureGrade], id: u32) -> String {
    match features.iter().find(|f| f.id == id) {
        Some(f) => format!("{} (Feature {})", f.name, f.id),
        None => format!("Feature {id}"),
    }
}

fn check_bug(
    features: &[FeatureGrade],
    f: &FeatureGrade,
    s: &StepResult,
    c: &CheckResult,
) -> BugEntry {
    let counts_for = c.counts_for.unwrap_or(f.id);
    let (cap, _) = ceiling(c);
    let limit = c.within_s.or(s.within_s);
    let expected = match limit {
        Some(l) => format!(
            "{}: {} within {l} s.",
            capitalised(&c.user),
            one_line(&c.what)
        ),
        None => format!("{}: {}.", capitalised(&c.user), one_line(&c.what)),
    };
    let measured = match c.latency_ms {
        Some(ms) => format!("seen after {}", seconds(ms)),
        None => "not seen within the limit".into(),
    };
    let observed = if c.observed.trim().is_empty() {
        String::new()
    } else {
        format!("{}; ", one_line(&c.observed))
    };
    let refresh = if c.after_refresh {
        ", shown only after a reload"
    } else {
        ""
    };
    BugEntry {
        title: format!("{} — {} step {}", one_line(&c.what), f.name, s.index),
        feature: feature_label(features, counts_for),
        feature_id: counts_for,
        severity: severity_of(cap),
        steps: plan_steps(f, s.index),
        expected,
        actual: format!("{observed}{measured}{refresh}."),
        console: console_of(f, Some(s.index)),
    }
}

fn action_bug(features: &[FeatureGrade], f: &FeatureGrade, s: &StepResult) -> Option<BugEntry> {
    let a = s.actions.iter().find(|a| !a.ok)?;
    Some(BugEntry {
        title: format!(
            "{} could not {} — {} step {}",
            capitalised(&a.user),
            one_line(&a.what),
            f.name,
            s.index
        ),
        feature: feature_label(features, f.id),
        feature_id: f.id,
        severity: "Critical",
        steps: plan_steps(f, s.index),
        expected: format!("{} can {}.", capitalised(&a.user), one_line(&a.what)),
        actual: sentence(a.error.as_deref().unwrap_or("the action failed")),
        console: console_of(f, Some(s.index)),
    })
}

/// Every bug of a grading: each step that could not be carried out, each failed expectation
/// (under the feature it counts for), and console errors of a feature that lost a point
/// to them; in feature and step order.
pub fn bugs(file: &GradingFile) -> Vec<BugEntry> {
    let mut out = Vec::new();
    for f in &file.features {
        for s in &f.steps {
            if let Some(bug) = action_bug(&file.features, f, s) {
                out.push(bug);
            }
            if s.outcome == StepOutcome::NotCarriedOut {
                // Its checks were not reached: the step itself is the bug.
                continue;
            }
            for c in s.checks.iter().filter(|c| !c.passed) {
                out.push(check_bug(&file.features, f, s, c));
            }
        }
        if !f.console_errors.is_empty() && f.score < f.max {
            out.push(BugEntry {
                title: format!("Console errors while testing {}", f.name),
                feature: feature_label(&file.features, f.id),
                feature_id: f.id,
                severity: "Minor",
                steps: plan_steps(f, u32::MAX),
                expected: "No error in either browser console.".into(),
                actual: format!("{} error(s).", f.console_errors.len()),
                console: console_of(f, None),
            });
        }
    }
    out
}

/// ` (postgres)` when the backend is known.
fn backend_text(file: &GradingFile) -> String {
    file.backend
        .as_ref()
        .map(|b| format!(" ({b})"))
        .unwrap_or_default()
}

/// `BUG_REPORT.md`; `None` when the grading found nothing to fix.
pub fn bug_report(file: &GradingFile) -> Option<String> {
    let bugs = bugs(file);
    if bugs.is_empty() {
        return None;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Bug Report — Level {}{}\n",
        file.level,
        backend_text(file)
    );
    let _ = writeln!(
        s,
        "Written by `{}` on {} from `grading.json`: one section per failed expectation, graded in a real browser with two users ({}).\n",
        file.generator, file.graded_at, file.url
    );
    for (n, bug) in bugs.iter().enumerate() {
        let _ = writeln!(s, "## Bug {}: {}\n", n + 1, one_line(&bug.title));
        let _ = writeln!(s, "**Feature:** {}", bug.feature);
        let _ = writeln!(s, "**Severity:** {}", bug.severity);
        let _ = writeln!(s, "**Level:** {}\n", file.level);
        let _ = writeln!(s, "**Steps to reproduce:**");
        for (i, step) in bug.steps.iter().enumerate() {
            let _ = writeln!(s, "{}. {step}", i + 1);
        }
        let _ = writeln!(s, "\n**Expected:** {}", bug.expected);
        let _ = writeln!(s, "**Actual:** {}", bug.actual);
        let _ = writeln!(s, "**Console:** {}\n", bug.console);
    }
    Some(s)
}

/// `GRADING_RESULTS.md`.
pub fn grading_results(file: &GradingFile) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Grading Results — Level {}{}\n",
        file.level,
        backend_text(file)
    );
    let app = file.app_dir.clone().unwrap_or_else(|| file.url.clone());
    let _ = writeln!(s, "**App:** `{app}`");
    let _ = writeln!(s, "**Graded at:** {}", file.graded_at);
    let _ = writeln!(
        s,
        "**Grader:** {} ({}, {})\n",
        file.generator, file.browser.version, file.browser.path
    );
    if !file.selection.is_empty() {
        let ids: Vec<String> = file.selection.iter().map(u32::to_string).collect();
        let _ = writeln!(
            s,
            "Graded: features {} only (`--features`).\n",
            ids.join(", ")
        );
    }
    let _ = writeln!(s, "| Feature | Score | Notes |");
    let _ = writeln!(s, "|---------|-------|-------|");
    for f in &file.features {
        let notes = cell(&f.reasons.join("; "));
        let _ = writeln!(
            s,
            "| Feature {}: {} | {}/{} | {notes} |",
            f.id,
            cell(&f.name),
            f.score,
            f.max
        );
    }
    let _ = writeln!(s, "| **TOTAL** | **{}/{}** | |", file.score, file.max);
    if !file.not_checked.is_empty() {
        let _ = writeln!(s, "\n## Not checked\n");
        let _ = writeln!(
            s,
            "No browser script checks these behaviours; they are neither passed nor failed:\n"
        );
        for n in &file.not_checked {
            let why = if n.reason.is_empty() {
                String::new()
            } else {
                format!(" — {}", one_line(&n.reason))
            };
            let _ = writeln!(
                s,
                "- Feature {}: {}{why}",
                n.feature,
                one_line(&n.behaviour)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_formats::app_docs::{parse_bug_report, parse_grading_results};
    use bench_formats::grading::{
        ActionResult, BrowserInfo, ConsoleError, GRADING_SCHEMA, GRADING_SCHEMA_VERSION,
        NotChecked, Severity, StepOutcome,
    };

    fn step(index: u32, checks: Vec<CheckResult>) -> StepResult {
        StepResult {
            index,
            actor: "alice".into(),
            action: format!("Alice does thing {index} | with a pipe."),
            within_s: Some(2.0),
            outcome: StepOutcome::Passed,
            actions: vec![ActionResult {
                item: 0,
                user: "alice".into(),
                what: "click `Send`".into(),
                ok: true,
                error: None,
                ms: 3.0,
            }],
            checks,
            artifacts: None,
        }
    }

    fn check(what: &str, passed: bool, latency: Option<f64>) -> CheckResult {
        CheckResult {
            item: 1,
            user: "bob".into(),
            what: what.into(),
            expect: "appears".into(),
            passed,
            latency_ms: latency,
            within_s: Some(2.0),
            observed: if passed {
                String::new()
            } else {
                "nothing shown".into()
            },
            severity: Severity::Major,
            after_refresh: false,
            counts_for: None,
        }
    }

    fn feature(id: u32, name: &str, steps: Vec<StepResult>) -> FeatureGrade {
        FeatureGrade {
            id,
            key: format!("f{id}"),
            name: name.into(),
            level: 1,
            score: 3,
            max: 3,
            reasons: vec![],
            steps,
            console_errors: vec![],
            borrowed_checks: vec![],
        }
    }

    /// Feature 3 passes its own steps but feature 4's `Seen by Bob` counts for it; feature 4
    /// has a late message and a console error.
    fn grading() -> GradingFile {
        let mut seen_by = check("`Seen by Bob` under `Hi`", false, None);
        seen_by.counts_for = Some(3);
        let mut f4 = feature(
            4,
            "Unread counts",
            vec![
                step(
                    1,
                    vec![check("badge `1` on `General`", false, Some(3_100.0))],
                ),
                step(2, vec![check("badge gone", true, Some(80.0)), seen_by]),
            ],
        );
        f4.console_errors.push(ConsoleError {
            step: Some(1),
            user: "bob".into(),
            text: "TypeError: boom".into(),
            url: None,
        });
        let mut features = vec![
            feature(
                3,
                "Read receipts",
                vec![step(1, vec![check("`Seen by Bob`", true, Some(300.0))])],
            ),
            f4,
        ];
        crate::score::score_all(&mut features);
        GradingFile {
            schema: GRADING_SCHEMA.into(),
            schema_version: GRADING_SCHEMA_VERSION,
            generator: "bench-grade test".into(),
            graded_at: "2026-12-01T03:00:00Z".into(),
            duration_ms: 1000,
            url: "http://127.0.0.1:1/".into(),
            app_dir: None,
            backend: Some("postgres".into()),
            level: 3,
            selection: vec![3, 4],
            browser: BrowserInfo::default(),
            score: features.iter().map(|f| f.score).sum(),
            max: 6,
            features,
            not_checked: vec![NotChecked {
                feature: 4,
                behaviour: "A hidden tab does not mark messages seen.".into(),
                reason: "headless pages always report visible".into(),
            }],
        }
    }

    #[test]
    fn grading_results_parse_back_with_the_formats_parser() {
        let file = grading();
        let text = grading_results(&file);
        let parsed = parse_grading_results(&text);
        assert_eq!(parsed.features.len(), 2, "{text}");
        assert_eq!(parsed.features[0].number, Some(3));
        assert_eq!(parsed.features[0].score.score, 1.0, "{text}");
        assert_eq!(parsed.features[1].number, Some(4));
        assert_eq!(parsed.features[1].score.score, 2.0, "{text}");
        let total = parsed.total.unwrap();
        assert_eq!((total.score, total.max), (3.0, Some(6.0)));
        assert!(!parsed.total_is_computed);
        assert!(text.contains("## Not checked"), "{text}");
        assert!(text.contains("headless pages always report visible"));
    }

    #[test]
    fn bug_report_has_one_bug_per_failed_expectation_under_the_feature_it_counts_for() {
        let file = grading();
        let text = bug_report(&file).unwrap();
        let parsed = parse_bug_report(&text);
        assert_eq!(parsed.level, Some(3), "{text}");
        // The late badge, the borrowed `Seen by Bob`, and feature 4's console errors.
        assert_eq!(parsed.count(), 3, "{text}");
        let numbers: Vec<u32> = parsed.bugs.iter().map(|b| b.number).collect();
        assert_eq!(numbers, vec![1, 2, 3]);
        let late = &parsed.bugs[0];
        assert_eq!(late.feature.as_deref(), Some("Unread counts (Feature 4)"));
        assert_eq!(late.severity.as_deref(), Some("Minor"));
        assert_eq!(late.level, Some(3));
        assert!(late.body.contains("seen after 3.10 s"), "{}", late.body);
        assert!(late.body.contains("within 2 s"), "{}", late.body);
        assert!(late.body.contains("TypeError: boom"), "{}", late.body);
        assert!(
            late.body.contains("1. Alice: Alice does thing 1"),
            "{}",
            late.body
        );
        let borrowed = &parsed.bugs[1];
        assert_eq!(
            borrowed.feature.as_deref(),
            Some("Read receipts (Feature 3)")
        );
        assert_eq!(borrowed.severity.as_deref(), Some("Major"));
        assert!(
            borrowed.title.contains("Unread counts step 2"),
            "{}",
            borrowed.title
        );
        assert!(parsed.bugs[2].title.starts_with("Console errors"));
    }

    #[test]
    fn no_bug_report_at_full_points() {
        let mut file = grading();
        for f in &mut file.features {
            f.console_errors.clear();
            for s in &mut f.steps {
                for c in &mut s.checks {
                    c.passed = true;
                }
            }
        }
        crate::score::score_all(&mut file.features);
        assert!(file.features.iter().all(|f| f.score == 3));
        assert_eq!(bug_report(&file), None);
    }
}
