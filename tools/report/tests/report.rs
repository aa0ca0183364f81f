//! bench-report on the published run of the original harness (figures and JSON copied into
//! `tests/fixtures/`, Markdown documents rewritten in our words with the same structure) and
//! on runs built from it.

use std::path::{Path, PathBuf};

use bench_report::check::Outcome;
use bench_report::cli::{Args, LocRulesChoice, run};
use bench_report::data::{self, MetricsData};
use bench_report::{DefaultLocRules, check_published, load_runs, run_metrics, write_outputs};
use serde_json::Value;

const RUN: &str = "sequential-upgrade-20260406";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(RUN)
}

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

/// A writable copy of the published run under `parent/name`.
fn copy_run(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    copy_dir(&fixture(), &dir);
    dir
}

fn metrics_of(dir: &Path) -> data::RunMetrics {
    let runs = load_runs(&[dir.to_path_buf()]).unwrap();
    assert_eq!(runs.len(), 1);
    run_metrics(&runs[0], &DefaultLocRules).unwrap()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn published() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture().join("METRICS_REPORT.json")).unwrap())
        .unwrap()
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// How a check report judged one figure (the figure must be listed).
fn outcome_of(report: &bench_report::check::CheckReport, figure: &str) -> Outcome {
    report
        .rows
        .iter()
        .find(|r| r.figure == figure)
        .map(|r| r.outcome.clone())
        .unwrap_or_else(|| panic!("{figure} not listed"))
}

#[test]
fn published_run_totals_calls_time_and_tokens() {
    let m = metrics_of(&fixture());
    assert_eq!(m.name, RUN);
    let st = &m.backends["spacetime"];
    let pg = &m.backends["postgres"];
    assert_eq!(st.sessions.total, 13);
    assert_eq!(pg.sessions.total, 22);
    assert_eq!(
        (
            round2(st.cost.total),
            round2(st.cost.upgrades),
            round2(st.cost.fixes)
        ),
        (12.62, 11.81, 0.81)
    );
    assert_eq!(
        (
            round2(pg.cost.total),
            round2(pg.cost.upgrades),
            round2(pg.cost.fixes)
        ),
        (19.68, 14.56, 5.11)
    );
    assert_eq!(st.tokens.api_calls, 390);
    assert_eq!(pg.tokens.api_calls, 718);
    assert_eq!(format!("{:.1}", st.time.total_minutes), "56.7");
    assert_eq!(format!("{:.1}", pg.time.total_minutes), "84.4");
    let p = published();
    for (key, b) in [("spacetime", st), ("postgres", pg)] {
        let t = &p["tokens"][key];
        assert_eq!(t["fresh_input"], b.tokens.fresh_input);
        assert_eq!(t["fresh_output"], b.tokens.fresh_output);
        assert_eq!(t["cache_read"], b.tokens.cache_read);
        assert_eq!(t["cache_creation"], b.tokens.cache_creation);
    }
    // Agent time is the sum of API durations, not wall clock (which is much longer).
    assert!(st.time.wall_clock_total.unwrap() > st.time.total * 1.5);
    assert_eq!(st.levels_completed, 12);
    assert_eq!(st.quality.fix_sessions, 1);
    assert_eq!(pg.quality.fix_sessions, 10);
    // The cumulative cost ends at the total.
    assert!((pg.by_level.last().unwrap().cumulative_cost - pg.cost.total).abs() < 1e-9);
}

#[test]
fn fix_sessions_count_at_the_level_the_app_was_at() {
    let m = metrics_of(&fixture());
    let st = &m.backends["spacetime"];
    let fix = st.session_list.iter().find(|s| s.phase == "fix").unwrap();
    assert_eq!((fix.labelled_level, fix.level), (1, 3));
    assert_eq!(st.by_level[2].fix_sessions, 1);
    let pg = &m.backends["postgres"];
    let per_level: Vec<u32> = pg.by_level.iter().map(|l| l.fix_sessions).collect();
    assert_eq!(per_level, vec![1, 2, 0, 0, 0, 3, 1, 0, 0, 1, 0, 2]);
    // The disagreement with the label is reported, not silently trusted.
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("spacetime-fix-level1-20260406-175052")
                && w.contains("labelled level 1")
                && w.contains("level 3"))
    );
    assert_eq!(
        m.warnings
            .iter()
            .filter(|w| w.contains("postgres-fix-level1") && w.contains("labelled level 1"))
            .count(),
        7
    );
}

#[test]
fn folder_name_and_summary_disagreeing_on_level_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    let session = dir.join("spacetime/telemetry/spacetime-upgrade-to-level5-20260407-093746");
    edit_json(&session.join("cost-summary.json"), |v| {
        v["level"] = 4.into()
    });
    let m = metrics_of(&dir);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("spacetime-upgrade-to-level5")
                && w.contains("folder name says level 5")
                && w.contains("cost-summary.json says level 4")),
        "{:#?}",
        m.warnings
    );
}

#[test]
fn missing_metadata_falls_back_to_summary_and_folder_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    let tel = dir.join("postgres/telemetry");
    for s in [
        "postgres-upgrade-to-level6-20260407-103038",
        "postgres-fix-level1-20260407-110255",
        "postgres-level1-20260406-153732",
    ] {
        std::fs::remove_file(tel.join(s).join("metadata.json")).unwrap();
    }
    let m = metrics_of(&dir);
    let pg = &m.backends["postgres"];
    assert_eq!(round2(pg.cost.total), 19.68);
    assert_eq!(round2(pg.cost.fixes), 5.11);
    assert_eq!(pg.sessions.generate, 1);
    assert_eq!(pg.sessions.fix, 10);
    let fix = pg
        .session_list
        .iter()
        .find(|s| s.run_id == "postgres-fix-level1-20260407-110255")
        .unwrap();
    assert_eq!((fix.phase.as_str(), fix.level), ("fix", 6));
    assert_eq!(
        m.warnings
            .iter()
            .filter(|w| w.contains("no metadata.json"))
            .count(),
        3
    );
}

#[test]
fn check_passes_on_the_published_report() {
    let m = metrics_of(&fixture());
    let report = check_published(&m, &fixture().join("METRICS_REPORT.json")).unwrap();
    assert!(
        report.disagreements().is_empty(),
        "{}",
        bench_report::check::CheckReport::table(report.disagreements())
    );
    let outcome = |figure: &str| outcome_of(&report, figure);
    for figure in [
        "cost.spacetime.total_usd",
        "cost.spacetime.upgrades_usd",
        "cost.spacetime.fixes_usd",
        "cost.postgres.total_usd",
        "cost.pg_premium_usd",
        "tokens.spacetime.total_api_calls",
        "tokens.postgres.cache_read",
        "tokens.postgres.output_per_feature",
        "timing_seconds.spacetime.total_minutes",
        "timing_seconds.postgres.upgrade_avg",
        "timing_seconds.postgres.fix_avg",
        "bugs.summary.postgres.fix_sessions",
        "meta.run_id",
    ] {
        assert_eq!(outcome(figure), Outcome::Agrees, "{figure}");
    }
    assert!(matches!(
        outcome("lines_of_code.spacetime.total_handwritten"),
        Outcome::NotCheckable(_)
    ));
    assert!(matches!(
        outcome("bugs.summary.postgres.total_bugs"),
        Outcome::NotCheckable(_)
    ));
    // The command itself succeeds.
    run(Args {
        runs: vec![fixture()],
        out: None,
        check: Some(fixture().join("METRICS_REPORT.json")),
        baseline: None,
        seed: 1,
        verbose: false,
        loc_rules: LocRulesChoice::Defaults,
    })
    .unwrap();
}

#[test]
fn check_fails_on_a_tampered_report_and_lists_the_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let tampered = tmp.path().join("METRICS_REPORT.json");
    std::fs::copy(fixture().join("METRICS_REPORT.json"), &tampered).unwrap();
    edit_json(&tampered, |v| {
        v["cost"]["postgres"]["total_usd"] = 18.68.into();
        v["tokens"]["spacetime"]["total_api_calls"] = 391.into();
        v["timing_seconds"]["spacetime"]["total_minutes"] = 56.8.into();
    });
    let err = run(Args {
        runs: vec![fixture()],
        out: None,
        check: Some(tampered),
        baseline: None,
        seed: 1,
        verbose: false,
        loc_rules: LocRulesChoice::Defaults,
    })
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("3 published figure(s) disagree"), "{text}");
    assert!(text.contains("cost.postgres.total_usd"), "{text}");
    assert!(text.contains("18.68"), "{text}");
    assert!(text.contains("19.6769"), "{text}");
    assert!(text.contains("tokens.spacetime.total_api_calls"), "{text}");
    assert!(
        text.contains("timing_seconds.spacetime.total_minutes"),
        "{text}"
    );
    // Rounding is not a disagreement.
    assert!(!text.contains("cost.spacetime.total_usd"), "{text}");
}

#[test]
fn outputs_have_the_metrics_data_shape_and_check_against_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    run(Args {
        runs: vec![dir.clone()],
        out: None,
        check: None,
        baseline: None,
        seed: 1,
        verbose: false,
        loc_rules: LocRulesChoice::Defaults,
    })
    .unwrap();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("METRICS_DATA.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], data::SCHEMA);
    assert_eq!(json["schema_version"], data::SCHEMA_VERSION);
    assert_eq!(
        round2(json["cost"]["spacetime"]["total"].as_f64().unwrap()),
        12.62
    );
    assert_eq!(
        round2(json["cost"]["postgres"]["fixes"].as_f64().unwrap()),
        5.11
    );
    assert_eq!(json["tokens"]["postgres"]["api_calls"], 718);
    assert_eq!(json["tokens"]["spacetime"]["cache_read"], 22870337);
    assert_eq!(
        round2(json["time_seconds"]["spacetime"]["total"].as_f64().unwrap()),
        3400.08
    );
    assert_eq!(
        round2(
            json["time_seconds"]["postgres"]["l1_generation"]
                .as_f64()
                .unwrap()
        ),
        623.02
    );
    assert_eq!(json["quality"]["postgres"]["fix_sessions"], 10);
    assert_eq!(json["quality"]["postgres"]["total_levels"], 12);
    assert!(json["quality"]["postgres"]["total_bugs"].is_null());
    assert!(json["loc"]["spacetime"].is_null());
    let levels = json["bugs_by_level"].as_array().unwrap();
    assert_eq!(levels.len(), 12);
    assert_eq!(levels[0]["level"], 1);
    assert!(levels[0].get("spacetime").is_some() && levels[0].get("postgres").is_some());
    assert_eq!(json["runs"][0]["name"], RUN);
    // The data file round-trips through its type.
    let _: MetricsData = serde_json::from_value(json.clone()).unwrap();

    // Our own file passes --check, a tampered copy does not.
    let m = metrics_of(&dir);
    let own = check_published(&m, &dir.join("METRICS_DATA.json")).unwrap();
    assert!(own.disagreements().is_empty());
    assert!(
        own.count(|o| *o == Outcome::Agrees) >= 20,
        "{}",
        own.summary_line()
    );
    let tampered = tmp.path().join("tampered.json");
    std::fs::copy(dir.join("METRICS_DATA.json"), &tampered).unwrap();
    edit_json(&tampered, |v| {
        v["quality"]["spacetime"]["fix_sessions"] = 2.into();
    });
    let bad = check_published(&m, &tampered).unwrap();
    let figures: Vec<&str> = bad
        .disagreements()
        .iter()
        .map(|r| r.figure.as_str())
        .collect();
    assert_eq!(figures, vec!["quality.spacetime.fix_sessions"]);

    // Markdown and HTML: written, marked as ours, self-contained.
    let md = std::fs::read_to_string(dir.join("BENCHMARK_REPORT.md")).unwrap();
    assert!(md.contains("| Total cost | $19.68 | $12.62 |"), "{md}");
    // Every Markdown table row has as many cells as its header.
    let mut columns = None;
    for line in md.lines() {
        if !line.starts_with('|') {
            columns = None;
            continue;
        }
        let cells = line.matches(" | ").count() + 1;
        if line.starts_with("|---") {
            continue;
        }
        match columns {
            None => columns = Some(cells),
            Some(n) => assert_eq!(n, cells, "{line}"),
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 4);
    for bad in [
        "src=\"http",
        "href=\"http",
        "<script",
        "@import",
        "url(http",
    ] {
        assert!(!html.contains(bad), "{bad}");
    }
    // Regenerating overwrites our own files without complaint.
    run(Args {
        runs: vec![dir.clone()],
        out: None,
        check: None,
        baseline: None,
        seed: 1,
        verbose: false,
        loc_rules: LocRulesChoice::Defaults,
    })
    .unwrap();
}

#[test]
fn a_file_someone_else_wrote_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    let theirs = dir.join("METRICS_DATA.json");
    std::fs::write(&theirs, "{\"cost\": {}}\n").unwrap();
    let err = run(Args {
        runs: vec![dir.clone()],
        out: None,
        check: None,
        baseline: None,
        seed: 1,
        verbose: false,
        loc_rules: LocRulesChoice::Defaults,
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("--out"), "{err:#}");
    assert_eq!(
        std::fs::read_to_string(&theirs).unwrap(),
        "{\"cost\": {}}\n"
    );
    assert!(!dir.join("BENCHMARK_REPORT.md").exists());
}

/// Several runs made from the published sessions, costs scaled per run.
fn scaled_runs(parent: &Path, factors: &[(f64, f64)]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for (i, (st, pg)) in factors.iter().enumerate() {
        let dir = copy_run(parent, &format!("sequential-upgrade-2026050{}", i + 1));
        for (backend, factor) in [("spacetime", st), ("postgres", pg)] {
            let tel = dir.join(backend).join("telemetry");
            for session in std::fs::read_dir(&tel).unwrap() {
                let summary = session.unwrap().path().join("cost-summary.json");
                edit_json(&summary, |v| {
                    let cost = v["totalCostUsd"].as_f64().unwrap();
                    v["totalCostUsd"] = (cost * factor).into();
                });
            }
        }
        std::fs::remove_file(dir.join("METRICS_REPORT.json")).unwrap();
        dirs.push(dir);
    }
    dirs
}

#[test]
fn statistics_over_several_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("runs");
    let factors = [(1.0, 1.0), (1.2, 1.1), (0.8, 1.3), (1.4, 0.9)];
    scaled_runs(&parent, &factors);
    // A folder of runs stands for all of them; a run named twice counts once.
    let runs = load_runs(&[parent.clone(), parent.join("sequential-upgrade-20260502")]).unwrap();
    assert_eq!(runs.len(), 4);
    let metrics: Vec<_> = runs
        .iter()
        .map(|r| run_metrics(r, &DefaultLocRules).unwrap())
        .collect();
    let base_st = 12.619521099999998;
    let base_pg = 19.67690335;
    let d = data::build(metrics, None, 42, &Default::default(), "t".into());
    let s = &d.statistics["spacetime"]["cost.total"];
    let st: Vec<f64> = factors.iter().map(|f| f.0 * base_st).collect();
    let mean = st.iter().sum::<f64>() / 4.0;
    assert_eq!(s.n, 4);
    assert!((s.mean - mean).abs() < 1e-9);
    assert!((s.mean - 1.1 * base_st).abs() < 1e-9);
    // Median of 0.8, 1.0, 1.2, 1.4 times the base: 1.1.
    assert!((s.median - 1.1 * base_st).abs() < 1e-9);
    assert!((s.min - 0.8 * base_st).abs() < 1e-9);
    assert!((s.max - 1.4 * base_st).abs() < 1e-9);
    // sd of the factors 0.8..1.4 step 0.2: sqrt(0.2/3) (sum of squares 0.2, n-1 = 3).
    let sd = (0.2f64 / 3.0).sqrt() * base_st;
    assert!((s.sd.unwrap() - sd).abs() < 1e-9);
    let half = 3.182 * sd / 2.0;
    let [lo, hi] = s.ci95.unwrap();
    assert!((lo - (mean - half)).abs() < 1e-9 && (hi - (mean + half)).abs() < 1e-9);
    // Calls do not vary: a point interval.
    let calls = &d.statistics["postgres"]["tokens.api_calls"];
    assert_eq!(calls.ci95, Some([718.0, 718.0]));
    // The ratio of means and its deterministic bootstrap interval.
    let r = d.ratios.iter().find(|r| r.figure == "cost.total").unwrap();
    assert_eq!(
        (r.numerator.as_str(), r.denominator.as_str()),
        ("postgres", "spacetime")
    );
    assert!((r.ratio.ratio - (1.075 * base_pg) / (1.1 * base_st)).abs() < 1e-9);
    let [rlo, rhi] = r.ratio.ci95.unwrap();
    assert!(rlo < r.ratio.ratio && r.ratio.ratio < rhi);
    let again = data::build(
        runs.iter()
            .map(|r| run_metrics(r, &DefaultLocRules).unwrap())
            .collect(),
        None,
        42,
        &Default::default(),
        "t".into(),
    );
    assert_eq!(again.ratios, d.ratios);
    // Per level: the last level's cumulative cost is the total; every run reached level 12.
    let levels = &d.level_statistics["spacetime"];
    assert_eq!(levels.len(), 12);
    assert_eq!(levels[11].cumulative_cost.n, 4);
    assert!((levels[11].cumulative_cost.mean - mean).abs() < 1e-9);
    assert!(levels[2].fix_sessions.mean == 1.0 && levels[2].fix_sessions.ci95 == Some([1.0, 1.0]));
    // The compatibility sections hold the means.
    assert!((d.cost["spacetime"]["total"].as_f64().unwrap() - mean).abs() < 1e-9);

    // The comparison needs --out, and writes there.
    let args = |out: Option<PathBuf>| Args {
        runs: vec![parent.clone()],
        out,
        check: None,
        baseline: None,
        seed: 42,
        verbose: false,
        loc_rules: LocRulesChoice::Defaults,
    };
    assert!(format!("{:#}", run(args(None)).unwrap_err()).contains("--out"));
    let out = tmp.path().join("comparison");
    run(args(Some(out.clone()))).unwrap();
    let md = std::fs::read_to_string(out.join("BENCHMARK_REPORT.md")).unwrap();
    assert!(md.contains("(n=4)"), "{md}");
    assert!(md.contains("Statistics across runs"));
}

#[test]
fn two_runs_are_too_few_for_an_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = scaled_runs(tmp.path(), &[(1.0, 1.0), (1.5, 1.5)]);
    let runs = load_runs(&dirs).unwrap();
    let metrics = runs
        .iter()
        .map(|r| run_metrics(r, &DefaultLocRules).unwrap())
        .collect();
    let d = data::build(metrics, None, 1, &Default::default(), "t".into());
    let s = &d.statistics["spacetime"]["cost.total"];
    assert_eq!(s.n, 2);
    assert_eq!(s.ci95, None);
    assert!(s.note.as_deref().unwrap().contains("at least 3"));
    let r = d.ratios.iter().find(|r| r.figure == "cost.total").unwrap();
    assert_eq!(r.ratio.ci95, None);
    assert!(r.ratio.note.is_some());
}

#[test]
fn bugs_are_counted_from_the_reports_kept_with_fix_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    let tel = dir.join("postgres/telemetry");
    let mut fixes: Vec<PathBuf> = std::fs::read_dir(&tel)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-fix-"))
        .collect();
    fixes.sort();
    // Every fix session gets its report, with one bug, except one with two; some are kept
    // in the telemetry folder, the others in the run's inputs snapshot.
    for (i, f) in fixes.iter().enumerate() {
        let mut text = String::from("# Bug Report\n\n## Bug 1: first\n\nbroken\n");
        if i == 0 {
            text.push_str("\n## Bug 2: second\n\nalso broken\n");
        }
        let target = if i % 2 == 0 {
            f.join("BUG_REPORT.md")
        } else {
            let inputs = dir.join("postgres/inputs").join(f.file_name().unwrap());
            std::fs::create_dir_all(&inputs).unwrap();
            inputs.join("BUG_REPORT.md")
        };
        std::fs::write(target, text).unwrap();
    }
    let m = metrics_of(&dir);
    let pg = &m.backends["postgres"];
    assert_eq!(pg.quality.total_bugs, Some(11));
    assert_eq!(pg.quality.bug_reports_known, 10);
    let bugs: Vec<Option<u32>> = pg.by_level.iter().map(|l| l.bugs).collect();
    // First fix (sorted by name) is postgres-fix-level1-20260406-161247 at level 1.
    assert_eq!(
        bugs,
        [2, 2, 0, 0, 0, 3, 1, 0, 0, 1, 0, 2].map(Some).to_vec()
    );
    assert_eq!(pg.quality.zero_bug_levels, Some(6));
    // spacetime's single fix session has no kept report: unknown, not zero.
    assert_eq!(m.backends["spacetime"].quality.total_bugs, None);
}

#[test]
fn lines_of_code_of_an_app_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    let app = dir.join("spacetime/results/chat-app-20260406-153727");
    let write = |rel: &str, lines: usize| {
        let p = app.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let body: String = (0..lines).map(|i| format!("line {i}\n")).collect();
        std::fs::write(p, body).unwrap();
    };
    write("backend/spacetimedb/src/index.ts", 40);
    write("backend/spacetimedb/src/schema.ts", 12);
    write("client/src/App.tsx", 30);
    write("client/src/main.ts", 5);
    write("client/src/module_bindings/index.ts", 25);
    write("client/src/module_bindings/user_table.ts", 8);
    // Never counted:
    write("client/src/App.css", 100);
    write("client/node_modules/react/index.ts", 100);
    write("client/dist/assets/index.ts", 100);
    write("level-3/client/src/App.tsx", 100);
    write("client/vite.config.ts", 10);
    // A last line without its newline still counts.
    std::fs::write(app.join("client/src/util.ts"), "a\nb").unwrap();

    let m = metrics_of(&dir);
    let loc = m.backends["spacetime"].loc.clone().unwrap();
    assert_eq!(loc.backend_handwritten, 52);
    assert_eq!(loc.frontend_handwritten, 37);
    assert_eq!(loc.generated_bindings, 33);
    assert_eq!(loc.total_handwritten, 89);
    assert_eq!(loc.rules, "defaults");
    // postgres has no source in the run.
    assert!(m.backends["postgres"].loc.is_none());
    // And now the published LOC figures are checkable (and disagree: a different app).
    let report = check_published(&m, &fixture().join("METRICS_REPORT.json")).unwrap();
    let bad: Vec<&str> = report
        .disagreements()
        .iter()
        .map(|r| r.figure.as_str())
        .collect();
    assert!(bad.contains(&"lines_of_code.spacetime.total_handwritten"));
    assert!(!bad.iter().any(|f| f.contains("postgres")));
}

#[test]
fn a_run_without_sessions_or_a_wrong_path_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_runs(&[tmp.path().join("nope")]).unwrap_err();
    assert!(format!("{err:#}").contains("not a directory"));
    let err = load_runs(&[tmp.path().to_path_buf()]).unwrap_err();
    assert!(format!("{err:#}").contains("holds no run"));
    // A malformed summary is skipped with a warning; the rest keeps its data.
    let dir = copy_run(tmp.path(), RUN);
    std::fs::write(
        dir.join(
            "spacetime/telemetry/spacetime-upgrade-to-level2-20260406-162210/cost-summary.json",
        ),
        "{not json",
    )
    .unwrap();
    let m = metrics_of(&dir);
    assert_eq!(m.backends["spacetime"].sessions.total, 12);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("spacetime-upgrade-to-level2") && w.contains("NOT counted"))
    );
    let written = write_outputs(
        &data::build(vec![m], None, 1, &Default::default(), "t".into()),
        &tmp.path().join("out"),
    )
    .unwrap();
    assert_eq!(written.len(), 3);
}

fn stress_result(
    backend: &str,
    label: &str,
    acked: f64,
    passed: bool,
) -> bench_formats::stress::StressResult {
    use bench_formats::stress::*;
    StressResult {
        schema_version: STRESS_SCHEMA_VERSION,
        tool_version: "0.1.0".into(),
        started_at: "2026-04-11T10:00:00Z".into(),
        finished_at: "2026-04-11T10:00:40Z".into(),
        label: Some(label.into()),
        backend: backend.into(),
        client: "socketio".into(),
        scenario: "stress".into(),
        target: Target {
            url: "http://127.0.0.1:6001".into(),
            room: "bench".into(),
            ..Target::default()
        },
        config: RunConfig {
            writers: 8,
            ..RunConfig::default()
        },
        command_line: vec!["bench-stress".into()],
        adapter: None,
        probe_notes: vec![],
        totals: Counts::default(),
        measured: Counts::default(),
        measured_seconds: 30.0,
        warmup_seconds: 5.0,
        throughput: Throughput {
            acked_per_second: acked,
            sent_per_second: acked,
            per_second: vec![],
        },
        ack_latency: LatencySummary {
            p50_us: 1500,
            p99_us: 9000,
            ..LatencySummary::default()
        },
        fanout_latency: None,
        errors: Default::default(),
        verification: Verification {
            method: "postgres-sql".into(),
            passed,
            detail: if passed {
                "all committed".into()
            } else {
                "12 missing".into()
            },
            ..Verification::default()
        },
        client_cpu: ClientCpu::default(),
        host: Host::default(),
        extra: Default::default(),
    }
}

#[test]
fn stress_results_in_the_run_are_tabled_and_charted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    let write = |backend: &str, file: &str, r: &bench_formats::stress::StressResult| {
        let path = dir.join(backend).join("stress").join(file);
        bench_formats::write_json(&path, r).unwrap();
    };
    write(
        "postgres",
        "as-shipped.json",
        &stress_result("postgres", "as-shipped", 850.0, true),
    );
    write(
        "postgres",
        "optimized.json",
        &stress_result("postgres", "optimized", 2400.0, false),
    );
    write(
        "spacetime",
        "as-shipped.json",
        &stress_result("spacetimedb", "as-shipped", 9100.5, true),
    );
    std::fs::write(dir.join("spacetime/stress/broken.json"), "{").unwrap();
    let m = metrics_of(&dir);
    // Only verified results count as the backend's best throughput.
    assert_eq!(m.backends["postgres"].stress_acked_per_second, Some(850.0));
    assert_eq!(
        m.backends["spacetime"].stress_acked_per_second,
        Some(9100.5)
    );
    assert_eq!(m.backends["postgres"].stress.len(), 2);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("stress result skipped") && w.contains("broken.json"))
    );
    let d = data::build(vec![m], None, 1, &Default::default(), "t".into());
    let out = tmp.path().join("out");
    write_outputs(&d, &out).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Stress throughput"));
    assert!(html.contains("9100.5"));
    assert!(html.contains("not passed — 12 missing"));
}

#[test]
fn grading_results_give_the_feature_score_and_summary_status_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    std::fs::write(
        dir.join("postgres/results/chat-app-20260406-153732/GRADING_RESULTS.md"),
        "# Grading\n\n| Feature | Score | Max |\n|---|---|---|\n| 1 Basic chat | 3 | 3 |\n\
         | 2 Typing | 2 | 3 |\n| 3 Receipts | 1.5 | 3 |\n| **TOTAL** | **6.5** | **9** |\n",
    )
    .unwrap();
    edit_json(
        &dir.join(
            "spacetime/telemetry/spacetime-upgrade-to-level4-20260407-091539/cost-summary.json",
        ),
        |v| v["status"] = "partial".into(),
    );
    let m = metrics_of(&dir);
    let score = m.backends["postgres"].feature_score.unwrap();
    assert_eq!((score.score, score.max), (6.5, Some(9.0)));
    assert!(m.backends["spacetime"].feature_score.is_none());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("spacetime-upgrade-to-level4") && w.contains("`partial`"))
    );
    let d = data::build(vec![m], None, 1, &Default::default(), "t".into());
    assert_eq!(d.statistics["postgres"]["feature_score"].mean, 6.5);
    let md = bench_report::render::to_markdown(&bench_report::render::document(&d, false));
    assert!(md.contains("| Feature score | 6.5 | — |"), "{md}");
}

#[test]
fn check_reads_the_original_metrics_data_shape() {
    // The key paths of the original harness's METRICS_DATA.json, with this run's figures
    // rounded as a publisher would.
    let tmp = tempfile::tempdir().unwrap();
    let published = tmp.path().join("METRICS_DATA.json");
    let text = serde_json::json!({
        "cost": {
            "spacetime": {"upgrades": 11.81, "fixes": 0.81, "total": 12.62},
            "postgres": {"upgrades": 14.56, "fixes": 5.11, "total": 19.68}
        },
        "tokens": {
            "spacetime": {"fresh_input": 21490, "fresh_output": 226079, "cache_read": 22870337,
                          "cache_creation": 661888, "api_calls": 390},
            "postgres": {"fresh_input": 29081, "fresh_output": 304198, "cache_read": 40443349,
                         "cache_creation": 792679, "api_calls": 718}
        },
        "time_seconds": {
            "spacetime": {"l1_generation": 281.43, "avg_upgrade": 259.31, "avg_fix_session": 266.23,
                          "total": 3400.08},
            "postgres": {"l1_generation": 623.02, "avg_upgrade": 240.85, "avg_fix_session": 179.41,
                         "total": 5066.39}
        },
        "quality": {
            "spacetime": {"total_bugs": 2, "fix_sessions": 1, "zero_bug_levels": 10, "total_levels": 12},
            "postgres": {"total_bugs": 8, "fix_sessions": 10, "zero_bug_levels": 6, "total_levels": 12}
        },
        "loc": {
            "spacetime": {"backend_handwritten": 876, "frontend_handwritten": 1589,
                          "generated_bindings": 1174, "total_handwritten": 2465}
        },
        "bugs_by_level": [
            {"level": 1, "feature": "Basic chat", "spacetime": 1, "postgres": 1},
            {"level": 2, "feature": "Scheduled messages", "spacetime": 0, "postgres": 0}
        ]
    });
    std::fs::write(&published, text.to_string()).unwrap();
    let m = metrics_of(&fixture());
    let report = check_published(&m, &published).unwrap();
    assert_eq!(report.shape, "METRICS_DATA.json");
    assert!(
        report.disagreements().is_empty(),
        "{}",
        bench_report::check::CheckReport::table(report.disagreements())
    );
    let outcome = |figure: &str| outcome_of(&report, figure);
    for f in [
        "cost.postgres.fixes",
        "tokens.spacetime.api_calls",
        "time_seconds.spacetime.avg_upgrade",
        "time_seconds.postgres.l1_generation",
        "quality.postgres.fix_sessions",
        "quality.spacetime.total_levels",
    ] {
        assert_eq!(outcome(f), Outcome::Agrees, "{f}");
    }
    for f in [
        "quality.spacetime.total_bugs",
        "loc.spacetime.total_handwritten",
        "bugs_by_level[level=1].spacetime",
    ] {
        assert!(matches!(outcome(f), Outcome::NotCheckable(_)), "{f}");
    }
}

#[test]
fn line_counts_and_level_names_from_the_repository_content() {
    use bench_report::{ContentLocRules, LocCounter};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let rules = ContentLocRules {
        content: bench_content::Content::load_sources(&root).unwrap(),
    };
    let names = rules.level_names();
    assert!(names.len() >= 12);
    assert!(names.values().all(|n| !n.is_empty()));

    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    let write = |rel: &str, lines: usize| {
        let p = app.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x\n".repeat(lines)).unwrap();
    };
    write("server/src/index.ts", 10);
    write("client/src/App.tsx", 6);
    write("client/src/App.css", 50);
    write("client/node_modules/lib/index.ts", 50);
    write("level-2/server/src/index.ts", 50);
    let loc = rules.count("postgres", app).unwrap().unwrap();
    assert_eq!(loc.backend_handwritten, 10);
    assert_eq!(loc.frontend_handwritten, 6);
    assert_eq!(loc.total_handwritten, 16);
    assert_eq!(loc.rules, "backends/postgres/backend.toml");
    // A backend the content does not know (the original layout's names) uses the defaults.
    let fallback = rules.count("original-harness", app).unwrap().unwrap();
    assert_eq!(fallback.rules, "defaults");
    assert_eq!(fallback.backend_handwritten, 10);
    // No counted file: no figures.
    let empty = tempfile::tempdir().unwrap();
    assert!(rules.count("postgres", empty.path()).unwrap().is_none());
}

/// A run of this project's `bench-run` (rehearsal sessions of the real agent CLI: generate,
/// upgrade, fix for postgres, generate for spacetime); its telemetry JSON, app documents and
/// small app files copied as written.
fn rehearsal_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rehearsal-run/sequential-upgrade-20261124")
}

#[test]
fn a_run_of_this_project_reads_as_written() {
    let m = metrics_of(&rehearsal_run());
    assert!(m.warnings.is_empty(), "{:#?}", m.warnings);
    assert_eq!(m.models, vec!["claude-sonnet-4-6".to_string()]);
    assert_eq!(m.variants, vec!["sequential-upgrade".to_string()]);
    let pg = &m.backends["postgres"];
    // Every figure is the sum of the sessions' own summaries.
    let tel = rehearsal_run().join("postgres/telemetry");
    let mut cost = 0.0;
    let mut calls = 0;
    let mut output = 0;
    let mut wall = 0.0;
    for entry in std::fs::read_dir(&tel).unwrap() {
        let dir = entry.unwrap().path();
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("cost-summary.json")).unwrap())
                .unwrap();
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("metadata.json")).unwrap())
                .unwrap();
        cost += s["totalCostUsd"].as_f64().unwrap();
        calls += s["apiCalls"].as_u64().unwrap();
        output += s["totalOutputTokens"].as_u64().unwrap();
        wall += meta["wallClockSec"].as_f64().unwrap();
    }
    assert!((pg.cost.total - cost).abs() < 1e-12);
    assert_eq!(pg.tokens.api_calls, calls);
    assert_eq!(pg.tokens.fresh_output, output);
    assert!((pg.time.wall_clock_total.unwrap() - wall).abs() < 1e-9);
    assert_eq!(
        (pg.sessions.generate, pg.sessions.upgrade, pg.sessions.fix),
        (1, 1, 1)
    );
    assert_eq!(pg.levels_completed, 2);
    let fix = pg.session_list.iter().find(|s| s.phase == "fix").unwrap();
    assert_eq!((fix.labelled_level, fix.level), (2, 2));
    assert_eq!(fix.outcome.as_deref(), Some("completed"));
    assert_eq!(pg.by_level[1].fix_sessions, 1);
    assert_eq!(pg.quality.iteration_log_fixes, 1);
    // The app's BUG_REPORT.md is shown, not counted: bench-run kept no copy with the session.
    assert_eq!(pg.quality.total_bugs, None);
    assert_eq!(pg.quality.latest_bug_report.as_ref().unwrap().bugs, 1);
    assert_eq!(m.backends["spacetime"].sessions.total, 1);
    // No fix session: fixes cost zero (not a negative zero from an empty float sum).
    assert!(m.backends["spacetime"].cost.fixes.is_sign_positive());
    let d = data::build(vec![m.clone()], None, 1, &Default::default(), "t".into());
    let md = bench_report::render::to_markdown(&bench_report::render::document(&d, false));
    assert!(md.contains("| — fixes | $0.11 | $0.00 |"), "{md}");

    // With the report kept in the fix session's inputs snapshot, bugs are counted.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sequential-upgrade-20261124");
    copy_dir(&rehearsal_run(), &dir);
    let inputs = dir.join("postgres/inputs").join(&fix.run_id);
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::copy(
        dir.join("postgres/results/chat-app-20261124-091926/BUG_REPORT.md"),
        inputs.join("BUG_REPORT.md"),
    )
    .unwrap();
    let m = metrics_of(&dir);
    let pg = &m.backends["postgres"];
    assert_eq!(pg.quality.total_bugs, Some(1));
    assert_eq!(
        pg.by_level.iter().map(|l| l.bugs).collect::<Vec<_>>(),
        vec![Some(0), Some(1)]
    );
    assert_eq!(pg.quality.zero_bug_levels, Some(1));

    // A second app in the same backend folder (bench-run puts parallel run indexes of one
    // backend there): its sessions would be summed with the first app's, and the report says so.
    std::fs::create_dir(dir.join("postgres/results/chat-app-20261124-120000")).unwrap();
    let m = metrics_of(&dir);
    assert!(
        m.warnings.iter().any(|w| w.contains("2 app folders")),
        "{:#?}",
        m.warnings
    );
}

#[test]
fn a_backend_with_only_stress_results_or_odd_session_folders_still_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_run(tmp.path(), RUN);
    bench_formats::write_json(
        &dir.join("mongodb/stress/as-shipped.json"),
        &stress_result("mongodb", "as-shipped", 1200.0, true),
    )
    .unwrap();
    // A session folder named outside the harness's scheme, without metadata.
    let odd = dir.join("spacetime/telemetry/manual-session");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(
        odd.join("cost-summary.json"),
        r#"{"backend": "spacetime", "totalCostUsd": 0.5, "apiCalls": 3}"#,
    )
    .unwrap();
    let m = metrics_of(&dir);
    let mongo = &m.backends["mongodb"];
    assert_eq!(mongo.sessions.total, 0);
    assert!(mongo.by_level.is_empty());
    assert_eq!(mongo.stress_acked_per_second, Some(1200.0));
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("mongodb:") && w.contains("no session"))
    );
    let st = &m.backends["spacetime"];
    assert_eq!(st.sessions.total, 14);
    assert!((st.cost.total - 13.119521099999998).abs() < 1e-9);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("manual-session") && w.contains("counted as an upgrade"))
    );
    let d = data::build(vec![m], None, 1, &Default::default(), "t".into());
    write_outputs(&d, &tmp.path().join("out")).unwrap();
}
