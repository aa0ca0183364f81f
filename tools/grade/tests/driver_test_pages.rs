//! The grading driver against pages written independently of `reference-app/`
//! (`tools/grade/driver/test-pages/`): feature 1's scripted plan on a chat with other markup
//! (divs, the own name in the header, `Join` in rows and in the room header), region scoping
//! on static markup full of traps, and the driver's harness failures. Real Node, real
//! Chromium, real HTTP.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bench_content::Levels;
use bench_grade::events::{CheckEvent, Event};
use serde_json::{Value, json};

use common::{driver_dir, repo_root};

/// The test-pages server on a free port; stopped when dropped.
struct TestPages {
    child: Child,
    url: String,
}

impl TestPages {
    fn start() -> TestPages {
        let script = repo_root().join("tools/grade/driver/test-pages/server.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the test-pages server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        TestPages {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for TestPages {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver_main() -> PathBuf {
    bench_grade::driver::install(&repo_root(), &driver_dir()).unwrap()
}

fn browser() -> PathBuf {
    bench_grade::browser::find_browser(None).unwrap()
}

/// Runs the driver on `program`; returns its events and whether it exited successfully.
fn run_driver(dir: &Path, program: &Value) -> (Vec<Event>, bool) {
    let file = dir.join("program.json");
    std::fs::write(&file, serde_json::to_vec_pretty(program).unwrap()).unwrap();
    let mut events = Vec::new();
    let exit = bench_grade::driver::run(
        &driver_main(),
        &file,
        &dir.join("driver.log"),
        Duration::from_secs(300),
        &mut |e| {
            events.push(e);
            Ok(())
        },
    )
    .unwrap();
    (events, exit.success)
}

fn program(url: &str, dir: &Path, headings: &[&str], features: Vec<Value>) -> Value {
    json!({
        "version": 1,
        "url": url,
        "browser": browser(),
        "artifacts_dir": dir.join("artifacts"),
        "trace": false,
        "warmup": true,
        "headings": headings,
        "features": features,
    })
}

fn checks(events: &[Event]) -> Vec<&CheckEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Check(c) => Some(c.as_ref()),
            _ => None,
        })
        .collect()
}

fn failed_actions(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Action {
                ok: false,
                what,
                error,
                ..
            } => Some(format!("{what}: {error:?}")),
            _ => None,
        })
        .collect()
}

#[test]
fn feature_1_plan_passes_on_an_app_with_other_markup() {
    let pages = TestPages::start();
    let dir = tempfile::tempdir().unwrap();
    let levels = Levels::load(&repo_root()).unwrap();
    let f = levels.feature(1).unwrap();
    let steps: Vec<Value> = f
        .test
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({ "index": i + 1, "actor": s.actor, "action": s.action,
                    "within_s": s.within_s, "script": s.script })
        })
        .collect();
    let feature = json!({ "id": 1, "key": f.key, "name": f.name, "ui": f.ui, "steps": steps });
    let (events, ok) = run_driver(
        dir.path(),
        &program(&pages.url, dir.path(), &[], vec![feature]),
    );
    assert!(ok, "driver failed: {events:?}");
    assert!(matches!(events.last(), Some(Event::Done {})), "{events:?}");
    assert_eq!(failed_actions(&events), Vec::<String>::new());
    let all = checks(&events);
    let failed: Vec<_> = all.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    let scripted: usize = f
        .test
        .iter()
        .map(|s| s.script.iter().filter(|i| i.expect.is_some()).count())
        .sum();
    assert_eq!(all.len(), scripted, "every expectation is reported once");
    let console: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::ConsoleError { .. }))
        .collect();
    assert!(console.is_empty(), "{console:?}");
    // Live updates are timed in the page: a message reaches the other user in well under 1 s.
    let hello = all
        .iter()
        .find(|c| c.step == 5 && c.user == "bob" && c.what.contains("\"Hello Bob\""))
        .unwrap();
    assert!(hello.latency_ms.unwrap() < 1000.0, "{hello:?}");
}

/// One expectation or action of the scoping page's script.
fn item(fields: Value) -> Value {
    let mut v = json!({ "user": "alice" });
    v.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    v
}

#[test]
fn regions_are_found_from_the_contract_not_from_the_markup() {
    let pages = TestPages::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}scoping.html", pages.url);
    let script = vec![
        item(json!({ "do": "open" })),
        item(json!({ "expect": "absent", "text": "Bob", "in": "Online", "within_s": 0.5 })),
        item(json!({ "expect": "appears", "text": "Alice", "in": "Online" })),
        item(json!({ "expect": "appears", "text": "Dave", "in": "Offline" })),
        item(json!({ "expect": "absent", "text": "Dave", "in": "Online", "within_s": 0.5 })),
        item(json!({ "expect": "appears", "text": "Bob", "in": "Members" })),
        item(json!({ "expect": "appears", "text": "Admin", "in": "Alice" })),
        item(json!({ "expect": "appears", "text": "Seen by Bob", "in": "Hi Bob" })),
        item(
            json!({ "expect": "absent", "text": "Seen by {names}", "in": "Hello there", "within_s": 0.5 }),
        ),
        item(json!({ "expect": "appears", "label": "3 unread", "in": "Mods" })),
        item(
            json!({ "expect": "absent", "label": "{count} unread", "in": "General", "within_s": 0.5 }),
        ),
        item(json!({ "expect": "appears", "text": "3", "in": "Mods", "exact": true })),
        item(json!({ "do": "click", "button": "Join", "in": "General" })),
        item(json!({ "expect": "appears", "text": "clicked row General" })),
        item(json!({ "expect": "absent", "text": "clicked header General", "within_s": 0.5 })),
        // Deliberately wrong: Bob is in the header and under Members, never under Online.
        item(json!({ "expect": "appears", "text": "Bob", "in": "Online", "within_s": 0.3 })),
    ];
    let ui = json!([
        { "kind": "text", "text": "Online", "on": "the heading of the online users panel" },
        { "kind": "text", "text": "Offline", "on": "the heading of the offline users list" },
        { "kind": "text", "text": "Members", "on": "the heading of the open room's member panel" },
    ]);
    let feature = json!({ "id": 1, "key": "scoping", "name": "Scoping", "ui": ui,
        "steps": [{ "index": 1, "actor": "alice", "action": "look", "within_s": 5, "script": script }] });
    let (events, ok) = run_driver(dir.path(), &program(&url, dir.path(), &[], vec![feature]));
    assert!(ok, "driver failed: {events:?}");
    assert_eq!(failed_actions(&events), Vec::<String>::new());
    let all = checks(&events);
    assert_eq!(all.len(), 14);
    let (last, rest) = all.split_last().unwrap();
    let failed: Vec<_> = rest.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    assert!(!last.passed, "the wrong expectation must fail: {last:?}");
    assert!(last.observed_text().starts_with("not shown"), "{last:?}");
}

/// A level-1 grading of an app that already has later levels' panels: its `Offline` list
/// under the `Online` one is not part of `Online`, whether its title is a heading element
/// (the driver stops a panel at any heading) or a plain `<div>` (the program names every
/// level's panel headings, as bench-grade's does). Level 1's contract names `Online` only.
#[test]
fn panels_the_graded_features_do_not_name_still_end_online() {
    let pages = TestPages::start();
    let dir = tempfile::tempdir().unwrap();
    let ui = json!([
        { "kind": "text", "text": "Online", "on": "the heading of the online users panel" },
    ]);
    let feature = |script: Vec<Value>| {
        json!({ "id": 1, "key": "panels", "name": "Panels", "ui": ui,
            "steps": [{ "index": 1, "actor": "alice", "action": "look", "within_s": 5,
                        "script": script }] })
    };
    let pages_and_absent = [
        ("scoping.html", "Dave", Vec::new()),
        ("panels.html", "Bob", vec!["Members", "Offline", "Online"]),
    ];
    for (page, offline, headings) in pages_and_absent {
        let url = format!("{}{page}", pages.url);
        let script = vec![
            item(json!({ "do": "open" })),
            item(json!({ "expect": "appears", "text": "Alice", "in": "Online" })),
            item(json!({ "expect": "absent", "text": offline, "in": "Online", "within_s": 0.5 })),
            item(json!({ "expect": "gone", "text": offline, "in": "Online", "within_s": 1 })),
        ];
        let program = program(&url, dir.path(), &headings, vec![feature(script)]);
        let (events, ok) = run_driver(dir.path(), &program);
        assert!(ok, "{page}: driver failed: {events:?}");
        assert_eq!(failed_actions(&events), Vec::<String>::new(), "{page}");
        let all = checks(&events);
        assert_eq!(all.len(), 3, "{page}: {all:#?}");
        let failed: Vec<_> = all.iter().filter(|c| !c.passed).collect();
        assert!(failed.is_empty(), "{page}: failed checks: {failed:#?}");
    }
}

#[test]
fn an_unreachable_app_or_a_missing_browser_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/");
    let (events, ok) = run_driver(dir.path(), &program(&url, dir.path(), &[], vec![]));
    assert!(!ok);
    match events.as_slice() {
        [Event::Fatal { error }] => assert!(error.contains("cannot be reached"), "{error}"),
        other => panic!("{other:?}"),
    }
    let pages = TestPages::start();
    let mut p = program(&pages.url, dir.path(), &[], vec![]);
    p["browser"] = json!("/nonexistent/chromium");
    let (events, ok) = run_driver(dir.path(), &p);
    assert!(!ok);
    match events.as_slice() {
        [Event::Fatal { error }] => assert!(error.contains("apt-get install chromium"), "{error}"),
        other => panic!("{other:?}"),
    }
}
