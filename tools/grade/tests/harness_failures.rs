//! A grading that cannot run exits 2, writes no BUG_REPORT.md and changes none of the
//! app's files: app not answering, browser missing, bad --level or --features.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use bench_grade::cli::{Args, EXIT_HARNESS, run};
use clap::Parser;

fn args(list: &[&str]) -> Args {
    let mut all = vec!["bench-grade".to_string()];
    all.extend(list.iter().map(|s| s.to_string()));
    let mut args = Args::try_parse_from(all).unwrap();
    args.driver_dir = Some(common::driver_dir());
    args
}

/// An app folder the harness made (state at level 4) with a file of the user's.
fn app_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".bench")).unwrap();
    std::fs::write(
        dir.path().join(".bench/state.json"),
        r#"{"backend":"postgres","level":4,"variant":"sequential-upgrade","rules":"guided","runIndex":0,"sessions":[]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("BUG_REPORT.md"), "# Bug Report\n\nmine\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_app_that_does_not_answer_is_a_harness_failure() {
    let out = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", free_port());
    let out_dir = out.path().display().to_string();
    let code = run(args(&["--url", &url, "--level", "1", "--out", &out_dir]));
    assert_eq!(code, ExitCode::from(EXIT_HARNESS));
    let request = bench_grade::grade::Request {
        root: common::repo_root(),
        target: bench_grade::grade::Target::Url(url.clone()),
        level: Some(1),
        features: vec![],
        browser: None,
        out: Some(out.path().to_path_buf()),
        driver_dir: common::driver_dir(),
        trace: false,
        app_options: None,
    };
    let text = format!(
        "{:#}",
        bench_grade::grade::grade(&request, &mut |_| {}).unwrap_err()
    );
    assert!(
        text.contains(&format!("the app does not answer at {url}")),
        "{text}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_browser_is_a_harness_failure_naming_the_package() {
    let app = app_folder();
    let before = common::app_files(app.path());
    let missing = app.path().join("no-such-chromium");
    let request = bench_grade::grade::Request {
        root: common::repo_root(),
        target: bench_grade::grade::Target::App(app.path().to_path_buf()),
        level: None,
        features: vec![],
        browser: Some(missing.clone()),
        out: None,
        driver_dir: common::driver_dir(),
        trace: false,
        app_options: None,
    };
    let err = bench_grade::grade::grade(&request, &mut |_| {}).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("apt-get install chromium"), "{text}");
    let app_dir = app.path().display().to_string();
    let code = run(args(&[
        &app_dir,
        "--browser",
        &missing.display().to_string(),
    ]));
    assert_eq!(code, ExitCode::from(EXIT_HARNESS));
    assert_eq!(common::app_files(app.path()), before);
}

#[test]
fn a_level_or_feature_that_does_not_exist_is_a_harness_failure() {
    let app = app_folder();
    let before = common::app_files(app.path());
    let app_dir = app.path().display().to_string();
    for bad in [
        vec![app_dir.as_str(), "--level", "99"],
        vec![app_dir.as_str(), "--level", "0"],
        vec![app_dir.as_str(), "--level", "1", "--features", "7"],
    ] {
        assert_eq!(run(args(&bad)), ExitCode::from(EXIT_HARNESS), "{bad:?}");
    }
    let request = bench_grade::grade::Request {
        root: common::repo_root(),
        target: bench_grade::grade::Target::App(PathBuf::from(&app_dir)),
        level: Some(1),
        features: vec![7],
        browser: None,
        out: None,
        driver_dir: common::driver_dir(),
        trace: false,
        app_options: None,
    };
    let text = format!(
        "{:#}",
        bench_grade::grade::grade(&request, &mut |_| {}).unwrap_err()
    );
    assert!(text.contains("feature 7 is not part of level 1"), "{text}");
    assert_eq!(common::app_files(app.path()), before);
    assert!(!app.path().join(".bench/grading").exists());
}
