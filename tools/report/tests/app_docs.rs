//! The app-document parsers of `bench_formats::app_docs` on the fixture run's documents.

use std::path::Path;

use bench_formats::app_docs::{EntryKind, parse_bug_report, parse_iteration_log};

fn read(rel: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sequential-upgrade-20260406")
            .join(rel),
    )
    .unwrap()
}

#[test]
fn spacetime_documents() {
    let report = parse_bug_report(&read(
        "spacetime/results/chat-app-20260406-153727/BUG_REPORT.md",
    ));
    assert_eq!(report.count(), 1);
    assert_eq!(report.level, None);
    assert_eq!(
        report.bugs[0].feature.as_deref(),
        Some("Ephemeral Messages (Feature 6)")
    );
    assert!(
        report.bugs[0]
            .severity
            .as_deref()
            .unwrap()
            .starts_with("Critical")
    );
    let log = parse_iteration_log(&read(
        "spacetime/results/chat-app-20260406-153727/ITERATION_LOG.md",
    ));
    assert_eq!(log.fixes().count(), 2);
    let times: Vec<_> = log.entries.iter().map(|e| e.time.as_deref()).collect();
    assert_eq!(times, vec![Some("15:38"), Some("22:05")]);
    assert_eq!(log.entries[1].categories, vec!["Runtime/Crash"]);
}

#[test]
fn postgres_documents() {
    let report = parse_bug_report(&read(
        "postgres/results/chat-app-20260406-153732/BUG_REPORT.md",
    ));
    assert_eq!(report.count(), 1);
    assert_eq!(report.level, Some(12));
    assert_eq!(report.iteration, Some(2));
    assert!(report.bugs[0].body.contains("Expected"));
    let log = parse_iteration_log(&read(
        "postgres/results/chat-app-20260406-153732/ITERATION_LOG.md",
    ));
    assert_eq!(log.entries.len(), 14);
    assert_eq!(log.fixes().count(), 13);
    let upgrade: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Upgrade)
        .collect();
    assert_eq!(upgrade.len(), 1);
    assert_eq!(upgrade[0].level, Some(11));
    // Numbering restarts in the log; the parser keeps what is written.
    let numbers: Vec<_> = log.fixes().map(|e| e.number.unwrap()).collect();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 12, 13]);
    let categories = log.fix_categories();
    assert_eq!(categories["Feature Broken"], 8);
    assert_eq!(categories["Runtime/Crash"], 5);
    assert_eq!(categories["Integration"], 3);
    assert_eq!(categories["Compilation/Build"], 1);
}
