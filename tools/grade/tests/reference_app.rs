//! The bundled reference app graded for real: Chromium, the Playwright driver, a throwaway
//! PostgreSQL, the app started by bench-app. One full level-12 pass per test run.

mod common;

use bench_formats::app_docs::{parse_bug_report, parse_grading_results};
use bench_formats::grading::{FeatureGrade, StepOutcome};
use bench_grade::grade::{Graded, Request, Target, grade};
use bench_grade::selftest::ReferenceApp;

fn request(reference: &ReferenceApp, level: u32, features: Vec<u32>) -> Request {
    Request {
        root: common::repo_root(),
        target: Target::App(reference.dir.clone()),
        level: Some(level),
        features,
        browser: None,
        out: None,
        driver_dir: common::driver_dir(),
        trace: false,
        app_options: Some(reference.options.clone()),
    }
}

/// Why each feature lost points, for assertion messages.
fn reasons(graded: &Graded) -> String {
    graded
        .file
        .features
        .iter()
        .filter(|f| f.score < f.max)
        .map(|f| {
            format!(
                "feature {} {}/{}: {}",
                f.id,
                f.score,
                f.max,
                f.reasons.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each step's outcome and each check's pass/fail, latencies aside.
fn outcomes(features: &[FeatureGrade]) -> Vec<(u32, u32, StepOutcome, Vec<bool>)> {
    features
        .iter()
        .flat_map(|f| {
            f.steps.iter().map(move |s| {
                let checks = s.checks.iter().map(|c| c.passed).collect();
                (f.id, s.index, s.outcome, checks)
            })
        })
        .collect()
}

#[test]
fn the_reference_app_scores_every_point_at_level_12_and_level_1_grades_features_1_to_4_alike() {
    let work = common::work_dir();
    let setup = common::self_test(work.path(), 12, vec![]);
    let reference = ReferenceApp::prepare(&setup).unwrap();

    let full = grade(&request(&reference, 12, vec![]), &mut |l| eprintln!("{l}")).unwrap();
    assert_eq!(
        (full.file.score, full.file.max),
        (45, 45),
        "{}",
        reasons(&full)
    );
    assert_eq!(full.file.features.len(), 15);
    assert!(!reference.dir.join("BUG_REPORT.md").exists());
    let text = std::fs::read_to_string(reference.dir.join("GRADING_RESULTS.md")).unwrap();
    let parsed = parse_grading_results(&text);
    assert_eq!(parsed.total.unwrap().score, 45.0);
    assert_eq!(parsed.features.len(), 15);

    // Level 1 of the same app (its database reset again): features 1–4 only, the same
    // outcomes step by step as in the level-12 pass.
    let level_1 = grade(&request(&reference, 1, vec![]), &mut |l| eprintln!("{l}")).unwrap();
    assert_eq!(
        (level_1.file.score, level_1.file.max),
        (12, 12),
        "{}",
        reasons(&level_1)
    );
    let ids: Vec<u32> = level_1.file.features.iter().map(|f| f.id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4]);
    assert_eq!(
        outcomes(&level_1.file.features),
        outcomes(&full.file.features[..4])
    );
    // The level-12 files were moved aside, not overwritten.
    let replaced = std::fs::read_dir(reference.dir.join(".bench/grading"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("replaced-"))
        .count();
    assert_eq!(replaced, 1);
}

/// Grades `feature` and a neighbour with the seeded bug `key` switched on: the feature
/// loses points, the neighbour keeps 3, and BUG_REPORT.md names the feature.
fn seeded_bug(key: &str, feature: u32, neighbour: u32) {
    // SAFETY: set before this test starts any thread of its own; nextest runs each test in
    // a process of its own. The app's server inherits it through bench-app.
    unsafe { std::env::set_var("REFERENCE_BUG", key) };
    let work = common::work_dir();
    let mut selection = vec![feature, neighbour];
    selection.sort();
    let setup = common::self_test(work.path(), 12, selection.clone());
    let reference = ReferenceApp::prepare(&setup).unwrap();
    let level = bench_content::Levels::load(&common::repo_root())
        .unwrap()
        .level_of(feature.max(neighbour))
        .unwrap()
        .number;
    let graded = grade(&request(&reference, level, selection), &mut |l| {
        eprintln!("{l}")
    })
    .unwrap();
    let score_of = |id: u32| {
        graded
            .file
            .features
            .iter()
            .find(|f| f.id == id)
            .unwrap()
            .score
    };
    assert!(score_of(feature) < 3, "{key}: feature {feature} kept 3");
    assert_eq!(score_of(neighbour), 3, "{key}: {}", reasons(&graded));
    let report = std::fs::read_to_string(reference.dir.join("BUG_REPORT.md")).unwrap();
    let parsed = parse_bug_report(&report);
    assert!(parsed.count() >= 1);
    let tag = format!("(Feature {feature})");
    assert!(
        parsed
            .bugs
            .iter()
            .all(|b| b.feature.as_deref().is_some_and(|f| f.ends_with(&tag))),
        "{key}: every bug must name feature {feature}:\n{report}"
    );
    assert!(
        graded
            .file
            .features
            .iter()
            .all(|f| f.steps.iter().all(|s| s.outcome != StepOutcome::NotRun)),
        "{key}: a step was not run"
    );
}

#[test]
fn seeded_bug_leave_still_receives_lowers_basic_chat_only() {
    seeded_bug("leave-still-receives", 1, 2);
}

#[test]
fn seeded_bug_receipts_lost_on_refresh_lowers_read_receipts_only() {
    seeded_bug("receipts-lost-on-refresh", 3, 2);
}

#[test]
fn seeded_bug_unread_lost_on_refresh_lowers_unread_counts_only() {
    seeded_bug("unread-lost-on-refresh", 4, 3);
}

#[test]
fn seeded_bug_typing_never_clears_lowers_typing_indicators_only() {
    seeded_bug("typing-never-clears", 2, 1);
}

/// The other seeded bugs, one feature each: slow together (the features before each run
/// first, up to four minutes each), so run on demand with `cargo nextest run -p bench-grade --run-ignored only`.
macro_rules! slow_seeded_bugs {
    ($($name:ident: $key:literal, $feature:literal, $neighbour:literal;)*) => {
        $(
            #[test]
            #[ignore = "slow: one app start and grading each; run with --run-ignored only"]
            fn $name() {
                seeded_bug($key, $feature, $neighbour);
            }
        )*
    };
}

slow_seeded_bugs! {
    seeded_bug_scheduled_past_accepted: "scheduled-past-accepted", 5, 4;
    seeded_bug_scheduled_late: "scheduled-late", 5, 4;
    seeded_bug_ephemeral_not_live: "ephemeral-not-live", 6, 5;
    seeded_bug_reaction_tooltip_missing: "reaction-tooltip-missing", 7, 6;
    seeded_bug_edit_history_empty: "edit-history-empty", 8, 7;
    seeded_bug_kick_no_notice: "kick-no-notice", 9, 8;
    seeded_bug_invisible_shows_online: "invisible-shows-online", 10, 9;
    seeded_bug_thread_replies_in_main: "thread-replies-in-main", 11, 10;
    seeded_bug_invite_not_live: "invite-not-live", 12, 11;
    seeded_bug_hot_needs_six: "hot-needs-six", 13, 12;
    seeded_bug_draft_not_synced: "draft-not-synced", 14, 13;
    seeded_bug_register_case_sensitive: "register-case-sensitive", 15, 14;
}

/// The seeded bugs this file tests, with their feature.
const TESTED: [(&str, u32); 16] = [
    ("leave-still-receives", 1),
    ("typing-never-clears", 2),
    ("receipts-lost-on-refresh", 3),
    ("unread-lost-on-refresh", 4),
    ("scheduled-past-accepted", 5),
    ("scheduled-late", 5),
    ("ephemeral-not-live", 6),
    ("reaction-tooltip-missing", 7),
    ("edit-history-empty", 8),
    ("kick-no-notice", 9),
    ("invisible-shows-online", 10),
    ("thread-replies-in-main", 11),
    ("invite-not-live", 12),
    ("hot-needs-six", 13),
    ("draft-not-synced", 14),
    ("register-case-sensitive", 15),
];

/// The table of seeded bugs in reference-app/README.md: `| `key` | N feature-key | … |`.
#[test]
fn every_seeded_bug_of_the_reference_app_has_a_test_for_its_feature() {
    let readme =
        std::fs::read_to_string(common::repo_root().join("reference-app/README.md")).unwrap();
    let mut listed: Vec<(String, u32)> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let feature = cells.get(2)?.split_whitespace().next()?.parse().ok()?;
            Some((key.to_string(), feature))
        })
        .collect();
    listed.sort();
    let mut tested: Vec<(String, u32)> = TESTED.iter().map(|(k, f)| (k.to_string(), *f)).collect();
    tested.sort();
    assert_eq!(listed, tested);
}
