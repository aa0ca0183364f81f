//! `bench-infra up/status/down` as a user runs it, on private ports and a private state
//! folder, with the real receiver process and a real PostgreSQL server.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bench_infra::{Component, Mode, Needs, Options, Ports};

const BIN: &str = env!("CARGO_BIN_EXE_bench-infra");

/// A fake repository root the `postgres` OS user can reach.
fn repo_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs `down` when the test ends, even after a failed assertion, so that no receiver or
/// PostgreSQL process outlives the test (their state folder is about to be deleted).
struct DownOnDrop<'a>(&'a Path);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("down")
            .env("BENCH_ROOT", self.0)
            .env_remove("BENCH_INFRA_EXE")
            .output();
    }
}

fn free_ports() -> Ports {
    Ports {
        otlp_grpc: bench_pg::free_port().unwrap(),
        otlp_http: bench_pg::free_port().unwrap(),
        postgres: bench_pg::free_port().unwrap(),
        mongodb: bench_pg::free_port().unwrap(),
    }
}

fn infra(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BENCH_ROOT", root)
        .env_remove("BENCH_INFRA_EXE")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn status_json(root: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(infra(root, &["status", "--json"]))).unwrap()
}

/// POST a body over plain HTTP/1.1 and return the status code and body.
fn http_post(port: u16, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-tA", url, "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const LOG_LINE: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"run.id","value":{"stringValue":"postgres-level1"}},{"key":"session.id","value":{"stringValue":"94d4ea57-e5dd-4b37-a5cf-303380ffbfd2"}}]},"scopeLogs":[{"scope":{"name":"com.anthropic.claude_code.events"},"logRecords":[{"timeUnixNano":"1795509494312000000","body":{"stringValue":"claude_code.api_request"},"attributes":[{"key":"session.id","value":{"stringValue":"94d4ea57-e5dd-4b37-a5cf-303380ffbfd2"}},{"key":"cost_usd","value":{"doubleValue":0.0123}}]}]}]}]}"#;

#[test]
fn up_status_down_with_the_embedded_services() {
    let root = repo_root();
    let _down = DownOnDrop(root.path());
    let ports = free_ports();
    let (g, h, p) = (
        ports.otlp_grpc.to_string(),
        ports.otlp_http.to_string(),
        ports.postgres.to_string(),
    );
    let up_args = [
        "up",
        "--embedded",
        "--otlp-grpc-port",
        &g,
        "--otlp-http-port",
        &h,
        "--pg-port",
        &p,
    ];
    let text = ok(infra(root.path(), &up_args));
    assert!(text.contains("OTLP receiver  running"), "{text}");
    assert!(text.contains("MongoDB"), "{text}");

    let status = status_json(root.path());
    let otlp = &status["otlp"];
    assert_eq!(otlp["running"], true);
    assert_eq!(otlp["reachable"], true);
    let pid = otlp["pid"].as_u64().unwrap();
    assert_eq!(
        otlp["endpoints"],
        serde_json::json!([
            format!("grpc 127.0.0.1:{}", ports.otlp_grpc),
            format!("http 127.0.0.1:{}", ports.otlp_http)
        ])
    );
    let pg = &status["postgres"];
    assert_eq!(pg["running"], true);
    assert_eq!(pg["reachable"], true);
    let url = format!(
        "postgres://spacetime:spacetime@127.0.0.1:{}/spacetime",
        ports.postgres
    );
    assert_eq!(pg["endpoints"][0], url.as_str());
    assert_eq!(
        psql(&url, "SELECT current_user || '@' || current_database()"),
        "spacetime@spacetime"
    );

    // A second `up` reuses both.
    let again = ok(infra(root.path(), &up_args));
    assert!(again.contains("already running"), "{again}");
    assert_eq!(status_json(root.path())["otlp"]["pid"].as_u64(), Some(pid));

    // OTLP reaches the files: combined and per session.
    let (code, body) = http_post(
        ports.otlp_http,
        "/v1/logs",
        "application/json",
        LOG_LINE.as_bytes(),
    );
    assert_eq!((code, body.as_str()), (200, "{}"));
    let telemetry = root.path().join(".bench/telemetry");
    let combined = std::fs::read_to_string(telemetry.join("logs.jsonl")).unwrap();
    assert_eq!(combined.lines().count(), 1);
    assert!(combined.contains("\"doubleValue\":0.0123"), "{combined}");
    let (session_logs, _) =
        otlp_receiver::session_files(&telemetry, "94d4ea57-e5dd-4b37-a5cf-303380ffbfd2");
    assert_eq!(
        std::fs::read_to_string(session_logs)
            .unwrap()
            .lines()
            .count(),
        1
    );

    // The library sees the same services and starts nothing new.
    let found = bench_infra::ensure_up_with(
        root.path(),
        &Needs::for_backend(content().backend("postgres").unwrap()),
        &Options {
            ports: free_ports(),
            mode: Mode::Embedded,
        },
    )
    .unwrap();
    assert!(found.started_now.is_empty(), "{found:?}");
    assert_eq!(
        found.otlp_http_endpoint,
        format!("http://127.0.0.1:{}", ports.otlp_http)
    );
    assert_eq!(found.pg_url.as_deref(), Some(url.as_str()));

    let down = ok(infra(root.path(), &["down"]));
    assert!(
        down.contains(&format!("OTLP receiver (pid {pid})")),
        "{down}"
    );
    assert!(down.contains("PostgreSQL"), "{down}");
    let status = status_json(root.path());
    assert_eq!(status["otlp"]["running"], false);
    assert_eq!(status["postgres"]["running"], false);
    assert!(TcpStream::connect(("127.0.0.1", ports.otlp_http)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", ports.postgres)).is_err());
    // Gone, or a zombie waiting for whoever adopted it to reap it.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        state.is_empty()
            || state
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('Z'),
        "receiver process still running: {state}"
    );
    // Data stays.
    assert!(telemetry.join("logs.jsonl").is_file());
    assert!(root.path().join(".bench/pg/data/PG_VERSION").is_file());

    let nothing = ok(infra(root.path(), &["down"]));
    assert!(nothing.contains("nothing to stop"), "{nothing}");
}

#[test]
fn up_refuses_a_port_taken_by_someone_else() {
    let root = repo_root();
    let _down = DownOnDrop(root.path());
    let ports = free_ports();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", ports.otlp_http)).unwrap();
    let out = infra(
        root.path(),
        &[
            "up",
            "--embedded",
            "--no-postgres",
            "--otlp-grpc-port",
            &ports.otlp_grpc.to_string(),
            "--otlp-http-port",
            &ports.otlp_http.to_string(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("port {}", ports.otlp_http)), "{err}");
    assert!(err.contains("--otlp-http-port"), "{err}");
    drop(squatter);
    assert_eq!(status_json(root.path())["otlp"]["running"], false);
}

#[test]
fn ensure_up_runs_the_receiver_in_process_when_no_executable_can_host_it() {
    // This test binary is neither xtask nor bench-infra.
    let root = repo_root();
    let mut ports = free_ports();
    ports.otlp_grpc = 0;
    ports.otlp_http = 0;
    let options = Options {
        ports,
        mode: Mode::Embedded,
    };
    let needs = Needs {
        otlp: true,
        ..Needs::default()
    };
    let first = bench_infra::ensure_up_with(root.path(), &needs, &options).unwrap();
    assert_eq!(first.started_now, vec![Component::InProcessReceiver]);
    assert_eq!(first.pg_url, None);
    let port: u16 = first
        .otlp_http_endpoint
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (code, _) = http_post(port, "/v1/logs", "application/json", LOG_LINE.as_bytes());
    assert_eq!(code, 200);
    let written = std::fs::read_to_string(first.telemetry_dir.join("logs.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 1);

    let second = bench_infra::ensure_up_with(root.path(), &needs, &options).unwrap();
    assert!(second.started_now.is_empty());
    assert_eq!(second.otlp_http_endpoint, first.otlp_http_endpoint);
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The repository's benchmark content (backends/*/backend.toml).
fn content() -> bench_content::Content {
    bench_content::Content::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

#[test]
fn preflight_names_each_problem_with_its_fix() {
    let content = content();
    let dir = tempfile::tempdir().unwrap();
    let agent = script(dir.path(), "claude", "echo '2.1.197 (Claude Code)'");
    let broken = script(dir.path(), "broken-claude", "echo 'boom' >&2; exit 3");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let free_port = bench_pg::free_port().unwrap();
    let closed_pg = bench_pg::free_port().unwrap();

    // The postgres backend's checks, with PostgreSQL expected where nothing listens.
    let postgres = content.backend("postgres").unwrap();
    let checks = bench_infra::preflight::preflight_with(&bench_infra::preflight::Preflight {
        backend: postgres,
        run_index: 0,
        agent_bin: &agent,
        ports: &[busy_port, free_port],
        infra: &Ports {
            postgres: closed_pg,
            ..Ports::default()
        },
    })
    .unwrap();
    let by_name = |name: &str| checks.iter().find(|c| c.name == name).unwrap().clone();
    let agent_check = by_name("agent CLI");
    assert!(agent_check.ok, "{agent_check}");
    assert!(agent_check.detail.contains("2.1.197 (Claude Code)"));
    // Every [[preflight]] entry of backend.toml ran, under its own name.
    for p in postgres.preflight(0).unwrap() {
        by_name(&p.name);
    }
    let pg = by_name("postgresql-server");
    assert!(!pg.ok);
    assert!(pg.detail.contains(&closed_pg.to_string()), "{pg}");
    assert!(
        pg.fix
            .as_deref()
            .unwrap()
            .contains(&format!("bench-infra up --pg-port {closed_pg}"))
    );
    let busy_check = by_name(&format!("port {busy_port}"));
    assert!(!busy_check.ok);
    assert!(busy_check.fix.as_deref().unwrap().contains("--run-index"));
    assert!(by_name(&format!("port {free_port}")).ok);
    assert!(checks.iter().all(|c| c.name != "spacetime"));

    let err = bench_infra::require(&checks).unwrap_err().to_string();
    assert!(err.contains("postgresql-server"), "{err}");
    assert!(err.contains(&format!("port {busy_port}")), "{err}");

    // A broken or missing agent CLI: what failed, and how to install it.
    let spacetime = content.backend("spacetime").unwrap();
    for agent_bin in [broken, dir.path().join("missing-claude")] {
        let checks = bench_infra::preflight(spacetime, 0, &agent_bin, &[]).unwrap();
        let agent_check = checks.iter().find(|c| c.name == "agent CLI").unwrap();
        assert!(!agent_check.ok);
        assert!(
            agent_check
                .fix
                .as_deref()
                .unwrap()
                .contains("npm install -g @anthropic-ai/claude-code"),
            "{agent_check}"
        );
        assert!(checks.iter().any(|c| c.name == "spacetime"));
    }

    let err = content.backend("sqlite").unwrap_err().to_string();
    assert!(err.contains("mongodb, postgres, spacetime"), "{err}");
}

#[test]
fn needs_come_from_the_backends_services() {
    let content = content();
    let needs = |name: &str| Needs::for_backend(content.backend(name).unwrap());
    assert!(needs("postgres").postgres && !needs("postgres").mongodb);
    assert!(needs("mongodb").mongodb && !needs("mongodb").postgres);
    let spacetime = needs("spacetime");
    assert!(spacetime.otlp && !spacetime.postgres && !spacetime.mongodb);
}

#[test]
fn parallel_ups_share_one_receiver() {
    let root = repo_root();
    let _down = DownOnDrop(root.path());
    let ports = free_ports();
    let (g, h) = (ports.otlp_grpc.to_string(), ports.otlp_http.to_string());
    let args = [
        "up",
        "--embedded",
        "--no-postgres",
        "--otlp-grpc-port",
        &g,
        "--otlp-http-port",
        &h,
    ];
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(BIN)
                .args(args)
                .env("BENCH_ROOT", root.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| ok(c.wait_with_output().unwrap()))
        .collect();
    let started = outputs
        .iter()
        .filter(|o| !o.contains("already running"))
        .count();
    assert_eq!(
        started, 1,
        "exactly one `up` starts the receiver: {outputs:#?}"
    );
    let status = status_json(root.path());
    assert_eq!(status["otlp"]["running"], true);
    let down = ok(infra(root.path(), &["down"]));
    assert!(down.contains("OTLP receiver"), "{down}");
    assert!(!down.contains("PostgreSQL"), "{down}");
}
