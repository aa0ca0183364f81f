//! Agent grading, rehearsed at zero cost: the real Claude Code CLI, the real Playwright MCP
//! servers (one per user) and the real Chromium, against the real reference app on a
//! throwaway PostgreSQL; the scripted API plays `rehearsal/grade/level-1.toml`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use bench_formats::grading::GradingFile;
use bench_grade::agent::{AgentOptions, grade_agent, mcp};
use bench_grade::grade::{Request, Target};
use bench_runner::TelemetrySink;
use clap::Parser;
use otlp_receiver::{Receiver, ReceiverConfig, ReceiverHandle};
use serde_json::Value;

/// The real CLI, installed once into target/claude-code (shared with the runner's tests).
fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        bench_runner::agent::install_agent_cli(&common::target_dir().join("claude-code"))
            .expect("install the agent CLI")
    })
    .clone()
}

fn mcp_dir() -> PathBuf {
    common::target_dir().join("bench-grade-mcp")
}

fn script() -> PathBuf {
    common::repo_root().join("rehearsal/grade/level-1.toml")
}

fn sink(receiver: &ReceiverHandle) -> TelemetrySink {
    TelemetrySink {
        endpoint: receiver.http_endpoint(),
        protocol: "http/json".into(),
        dir: receiver.dir().to_path_buf(),
    }
}

fn options(work: &Path, receiver: &ReceiverHandle) -> AgentOptions {
    let mut opts = AgentOptions::new(&common::repo_root());
    opts.agent_bin = Some(agent_bin());
    opts.rehearse = Some(script());
    opts.telemetry = Some(sink(receiver));
    opts.mcp_dir = mcp_dir();
    opts.show_progress = false;
    opts.extra_env = vec![(
        "CLAUDE_CONFIG_DIR".into(),
        work.join("claude-config").display().to_string(),
    )];
    opts
}

/// Every MCP tool result in the transcript, as (user, is_error, text).
fn mcp_results(transcript: &Path) -> Vec<(String, bool, String)> {
    let text = std::fs::read_to_string(transcript).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    for v in &lines {
        let blocks = v.pointer("/message/content").and_then(Value::as_array);
        for b in blocks.into_iter().flatten() {
            match b.get("type").and_then(Value::as_str) {
                Some("tool_use") => {
                    names.insert(b["id"].as_str().unwrap().to_owned(), b["name"].clone());
                }
                Some("tool_result") => {
                    let name = names[b["tool_use_id"].as_str().unwrap()].as_str().unwrap();
                    let Some(rest) = name.strip_prefix("mcp__") else {
                        continue;
                    };
                    let user = rest.split("__").next().unwrap().to_owned();
                    let is_error = b.get("is_error").and_then(Value::as_bool) == Some(true);
                    out.push((user, is_error, b["content"].to_string()));
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn rehearsed_agent_grading_of_the_reference_app_at_level_1_through_both_browsers() {
    let work = common::work_dir();
    let receiver =
        Receiver::start(ReceiverConfig::ephemeral(work.path().join("telemetry"))).unwrap();
    let test = common::self_test(work.path(), 1, vec![]);
    let reference = bench_grade::selftest::ReferenceApp::prepare(&test).unwrap();
    let request = Request {
        root: common::repo_root(),
        target: Target::App(reference.dir.clone()),
        level: Some(1),
        features: vec![],
        browser: None,
        out: None,
        driver_dir: common::driver_dir(),
        trace: false,
        app_options: Some(reference.options.clone()),
    };
    let opts = options(work.path(), &receiver);
    let graded = grade_agent(&request, &opts, &mut |_| {}).unwrap();

    // A valid grading.json, in the app folder, rendered like a deterministic grading's.
    let file = GradingFile::read(&reference.dir.join("grading.json")).unwrap();
    assert_eq!(file, graded.graded.file);
    assert_eq!((file.score, file.max, file.level), (12, 12, 1));
    let ids: Vec<u32> = file.features.iter().map(|f| f.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert!(file.generator.contains("agent"));
    assert!(reference.dir.join("GRADING_RESULTS.md").is_file());
    assert!(!reference.dir.join("BUG_REPORT.md").exists());

    // Both browsers were driven, and every browser call worked against the app.
    let session = &graded.session;
    assert!(
        graded.calls.get("alice").copied().unwrap_or(0) >= 5,
        "{:?}",
        graded.calls
    );
    assert!(
        graded.calls.get("bob").copied().unwrap_or(0) >= 5,
        "{:?}",
        graded.calls
    );
    let results = mcp_results(&session.transcript);
    let failed: Vec<_> = results.iter().filter(|r| r.1).collect();
    assert!(failed.is_empty(), "browser calls failed: {failed:?}");
    assert!(
        results
            .iter()
            .any(|(user, _, text)| user == "bob" && text.contains("Hello Bob")),
        "Bob's browser never showed Alice's message"
    );

    // Its cost reconciled like any session's, and kept in the grading's own folder.
    let cost = session
        .cost
        .as_ref()
        .unwrap_or_else(|| panic!("no cost summary: {:?}", session.cost_error));
    let cli = session.cli_total_cost_usd.expect("the CLI's result");
    assert!(cli > 0.0);
    assert!(
        (cost.total_cost_usd - cli).abs() < 1e-9,
        "{cost:?} vs {cli}"
    );
    let rec = cost.reconciliation.as_ref().unwrap();
    assert_eq!(rec.status, "ok", "{rec:?}");
    assert!(session.transcript.starts_with(&graded.graded.run_dir));
    assert!(
        graded
            .graded
            .run_dir
            .join("session/cost-summary.json")
            .is_file()
    );
    // bench-report finds it on a line of its own, apart from the build cost.
    let kept = bench_report::grades::grading_cost(std::iter::once(reference.dir.as_path()));
    let kept = kept.expect("bench-report finds the grading session");
    assert_eq!(kept.sessions, 1);
    assert!((kept.cost_usd - cli).abs() < 1e-9);
}

/// An HTTP server that answers every request with a page, so that the grading reaches the
/// point of starting its browsers.
fn tiny_app() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let body = "<!doctype html><title>chat</title><p>chat</p>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn browsers_that_do_not_attach_fail_the_grading_naming_the_server() {
    let work = common::work_dir();
    let receiver =
        Receiver::start(ReceiverConfig::ephemeral(work.path().join("telemetry"))).unwrap();
    let url = tiny_app();
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).unwrap();

    // Bob's server cannot start: the session stops, the error names him, nothing is written.
    let mut opts = options(work.path(), &receiver);
    opts.server_overrides.insert(
        "bob".into(),
        mcp::ServerCommand {
            command: "node".into(),
            args: vec!["-e".into(), "process.exit(3)".into()],
        },
    );
    let request = Request {
        root: common::repo_root(),
        target: Target::Url(url.clone()),
        level: Some(1),
        features: vec![],
        browser: None,
        out: Some(out.clone()),
        driver_dir: common::driver_dir(),
        trace: false,
        app_options: None,
    };
    let err = format!(
        "{:#}",
        grade_agent(&request, &opts, &mut |_| {}).err().unwrap()
    );
    assert!(err.contains("MCP server `bob`"), "{err}");
    assert!(!err.contains("`alice`"), "{err}");
    assert!(!out.join("grading.json").exists());
    assert!(!out.join("BUG_REPORT.md").exists());

    // Through the command line: a broken install of the MCP server, exit status 2.
    let broken = work.path().join("broken-mcp");
    let installed = mcp::install(&common::repo_root(), &mcp_dir()).unwrap();
    let lock_hash =
        std::fs::read_to_string(mcp_dir().join("node_modules/.bench-lock-sha256")).unwrap();
    std::fs::create_dir_all(broken.join("node_modules/@playwright/mcp")).unwrap();
    std::fs::write(broken.join("node_modules/.bench-lock-sha256"), lock_hash).unwrap();
    std::fs::write(broken.join(mcp::MCP_MAIN), "process.exit(3)\n").unwrap();
    assert!(installed.is_file());
    let config = work.path().join("claude-config").display().to_string();
    // SAFETY: this test's own process; the variable is read by the agent's environment
    // (inherited) and set before any thread of this test reads it.
    unsafe { std::env::set_var("CLAUDE_CONFIG_DIR", &config) };
    let args = bench_grade::cli::Args::parse_from([
        "bench-grade",
        "--url",
        &url,
        "--level",
        "1",
        "--out",
        &out.display().to_string(),
        "--grader",
        "agent",
        "--rehearse",
        &script().display().to_string(),
        "--agent-bin",
        &agent_bin().display().to_string(),
        "--mcp-dir",
        &broken.display().to_string(),
        "--otlp-endpoint",
        &receiver.http_endpoint(),
        "--telemetry-dir",
        &receiver.dir().display().to_string(),
    ]);
    assert_eq!(bench_grade::cli::run(args), ExitCode::from(2));
    assert!(!out.join("grading.json").exists());
    assert!(!out.join("GRADING_RESULTS.md").exists());
}
