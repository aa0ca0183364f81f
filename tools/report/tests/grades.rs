//! bench-report reads `bench-grade`'s gradings per level from an app folder: scores and bugs
//! per level, feature by feature, in METRICS_DATA.json, BENCHMARK_REPORT.md and report.html.

use std::path::{Path, PathBuf};

use bench_formats::grading::{
    ActionResult, BrowserInfo, CheckResult, FeatureGrade, GRADING_SCHEMA, GRADING_SCHEMA_VERSION,
    GradingFile, Severity, StepOutcome, StepResult,
};
use bench_report::data;
use bench_report::{DefaultLocRules, load_runs, run_metrics, write_outputs};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn feature(id: u32, name: &str, failed: u32) -> FeatureGrade {
    let checks = (0..2)
        .map(|i| CheckResult {
            item: i,
            user: "bob".into(),
            what: format!("check {i}"),
            expect: "appears".into(),
            passed: i >= failed,
            latency_ms: Some(100.0),
            within_s: Some(1.0),
            observed: String::new(),
            severity: Severity::Major,
            after_refresh: false,
            counts_for: None,
        })
        .collect();
    FeatureGrade {
        id,
        key: format!("f{id}"),
        name: name.into(),
        level: 1,
        score: if failed == 0 { 3 } else { 1 },
        max: 3,
        reasons: vec![],
        steps: vec![StepResult {
            index: 1,
            actor: "alice".into(),
            action: "Act.".into(),
            within_s: Some(1.0),
            outcome: if failed == 0 {
                StepOutcome::Passed
            } else {
                StepOutcome::Failed
            },
            actions: vec![ActionResult {
                item: 0,
                user: "alice".into(),
                what: "click".into(),
                ok: true,
                error: None,
                ms: 1.0,
            }],
            checks,
            artifacts: None,
        }],
        console_errors: vec![],
        borrowed_checks: vec![],
    }
}

fn grading(level: u32, at: &str, failed_in_3: u32, selection: Vec<u32>) -> GradingFile {
    let features = vec![
        feature(1, "Basic chat", 0),
        feature(2, "Typing indicators", 0),
        feature(3, "Read receipts", failed_in_3),
        feature(4, "Unread counts", 0),
    ];
    GradingFile {
        schema: GRADING_SCHEMA.into(),
        schema_version: GRADING_SCHEMA_VERSION,
        generator: "bench-grade test".into(),
        graded_at: at.into(),
        duration_ms: 1,
        url: "http://127.0.0.1:1/".into(),
        app_dir: None,
        backend: Some("postgres".into()),
        level,
        selection,
        browser: BrowserInfo::default(),
        score: features.iter().map(|f| f.score).sum(),
        max: 12,
        features,
        not_checked: vec![],
    }
}

fn put(app: &Path, folder: &str, file: &GradingFile) {
    let dir = app.join(".bench/grading").join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("grading.json"),
        serde_json::to_string_pretty(file).unwrap(),
    )
    .unwrap();
}

fn graded_run(tmp: &Path) -> PathBuf {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sequential-upgrade-20260406");
    let run = tmp.join("sequential-upgrade-20260406");
    copy_dir(&fixture, &run);
    let app = run.join("postgres/results/chat-app-20260406-153732");
    // Level 1: first grading finds one bug in feature 3, the grading after the fix none.
    put(
        &app,
        "20260406-160000-level-1",
        &grading(1, "2026-04-06T16:00:00Z", 1, vec![]),
    );
    put(
        &app,
        "20260406-163000-level-1",
        &grading(1, "2026-04-06T16:30:00Z", 0, vec![]),
    );
    // A partial grading (--features) and files moved aside do not count.
    put(
        &app,
        "20260406-170000-level-1",
        &grading(1, "2026-04-06T17:00:00Z", 2, vec![3]),
    );
    put(
        &app,
        "replaced-20260406-170000",
        &grading(1, "2026-04-06T15:00:00Z", 2, vec![]),
    );
    // Level 2 is known only from a snapshot's GRADING_RESULTS.md.
    let snapshot = app.join("level-2");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::write(
        snapshot.join("GRADING_RESULTS.md"),
        "# Grading Results — Level 2 (postgres)\n\n| Feature | Score | Notes |\n|---|---|---|\n\
         | Feature 1: Basic chat | 3/3 | |\n| Feature 5: Scheduled | 2/3 | late |\n\
         | **TOTAL** | **5/6** | |\n",
    )
    .unwrap();
    run
}

#[test]
fn grades_per_level_come_from_the_apps_gradings() {
    let tmp = tempfile::tempdir().unwrap();
    let run = graded_run(tmp.path());
    let runs = load_runs(&[run]).unwrap();
    let m = run_metrics(&runs[0], &DefaultLocRules).unwrap();
    let grades = &m.backends["postgres"].grades_by_level;
    assert_eq!(grades.len(), 2, "{grades:?}");
    let l1 = &grades[0];
    assert_eq!(l1.level, 1);
    assert_eq!((l1.score, l1.max, l1.final_score), (10.0, Some(12.0), 12.0));
    assert_eq!(l1.bugs, Some(1));
    assert_eq!(l1.gradings, 2);
    let f3 = l1.features.iter().find(|f| f.id == 3).unwrap();
    assert_eq!((f3.score, f3.bugs), (1.0, Some(1)));
    let l2 = &grades[1];
    assert_eq!(
        (l2.level, l2.score, l2.max, l2.bugs),
        (2, 5.0, Some(6.0), None)
    );
    assert!(m.backends["spacetime"].grades_by_level.is_empty());

    let d = data::build(vec![m], None, 1, &Default::default(), "t".into());
    let row = &d.grades_by_level[0];
    assert_eq!(row["level"], 1);
    assert_eq!(row["postgres"]["score"], 10.0);
    assert_eq!(row["postgres"]["bugs"], 1.0);
    assert!(row["spacetime"].is_null());
    let out = tmp.path().join("out");
    write_outputs(&d, &out).unwrap();
    let md = std::fs::read_to_string(out.join("BENCHMARK_REPORT.md")).unwrap();
    assert!(md.contains("## Grades per level"), "{md}");
    assert!(md.contains("| L1 | 10/12 | 12 | 1 | – | – | – |"), "{md}");
    assert!(md.contains("3. Read receipts | 1 (1 bug) |"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("Score per level, first grading"),
        "chart missing"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("METRICS_DATA.json")).unwrap())
            .unwrap();
    assert_eq!(json["grades_by_level"][1]["postgres"]["max"], 6.0);
}
