//! bench-proc on real processes: shells, sleeps, a Node HTTP server, real sockets.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use bench_proc::{
    CommandError, Ready, alive, descendants, free_port, group_alive, group_members, port_accepts,
    port_free, port_holders, spawn_group, stat, stop_group, tail, terminate, wait_ready,
};

/// Polls `cond` for up to ten seconds.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

#[test]
fn a_spawned_command_leads_its_own_group_and_writes_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/step.log");
    let mut child = spawn_group(&mut sh("echo hello-from-child; sleep 30"), &log).unwrap();
    let pid = child.id();
    let st = stat(pid).unwrap();
    assert_eq!(st.pgid, pid, "the child leads a group of its own");
    assert_ne!(st.pgid, stat(std::process::id()).unwrap().pgid);
    assert!(eventually(|| tail(&log, 5).contains("hello-from-child")));
    assert!(stop_group(pid, Duration::from_secs(5)).unwrap() >= 1);
    child.wait().unwrap();
    assert!(!group_alive(pid));
}

#[test]
fn stopping_a_group_reaches_grandchildren_also_those_that_left_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tree.log");
    // A shell with a grandchild in its group and one in a session of its own.
    let script = "sleep 60 & setsid sleep 61 & wait";
    let mut child = spawn_group(&mut sh(script), &log).unwrap();
    let pid = child.id();
    assert!(eventually(|| descendants(pid).len() >= 2));
    let tree = descendants(pid);
    let away: Vec<u32> = tree
        .iter()
        .copied()
        .filter(|p| stat(*p).is_some_and(|s| s.pgid != pid))
        .collect();
    assert_eq!(away.len(), 1, "setsid moved one sleep out of the group");
    assert!(group_members(pid).len() >= 2);
    let stopped = stop_group(pid, Duration::from_secs(5)).unwrap();
    assert!(stopped >= 3, "stopped {stopped}");
    child.wait().unwrap();
    for p in tree.iter().chain([&pid]) {
        assert!(!alive(*p), "process {p} survived");
    }
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stubborn.log");
    let mut child = spawn_group(
        &mut sh("trap '' TERM; echo trapped; while :; do sleep 1; done"),
        &log,
    )
    .unwrap();
    let pid = child.id();
    assert!(eventually(|| tail(&log, 1).contains("trapped")));
    let reaper = std::thread::spawn(move || child.wait().unwrap());
    terminate(pid, Duration::from_millis(300)).unwrap();
    let status = reaper.join().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "SIGKILL ended it"
    );
    stop_group(pid, Duration::from_secs(1)).unwrap();
}

#[test]
fn a_zombie_is_not_alive() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    // Not reaped yet: it stays a zombie until we wait for it.
    assert!(eventually(|| stat(pid).is_some_and(|s| s.zombie)));
    assert!(!alive(pid));
    child.wait().unwrap();
    assert!(stat(pid).is_none());
    assert!(alive(std::process::id()));
}

#[test]
fn the_holder_of_a_port_is_found_with_its_command_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(!port_free(port));
    assert!(port_accepts(port));
    let holders = port_holders(port);
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(holders[0].pid, std::process::id());
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy();
    assert!(holders[0].cmdline.contains(&*exe_name), "{}", holders[0]);
    drop(listener);
    assert!(port_holders(port).is_empty());
    let other = free_port().unwrap();
    assert!(port_free(other));
    assert!(!port_accepts(other));
}

#[test]
fn waiting_for_readiness_fails_early_with_the_log_when_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let port = free_port().unwrap();
    let mut child = spawn_group(&mut sh("echo cannot-connect-to-db >&2; exit 3"), &log).unwrap();
    let ready = Ready::Http(format!("http://127.0.0.1:{port}/health"));
    let err = wait_ready("server", &mut child, &ready, Duration::from_secs(60), &log).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("server exited with exit status: 3"),
        "{text}"
    );
    assert!(text.contains("cannot-connect-to-db"), "{text}");
    assert_eq!(err.log.as_deref(), Some(log.as_path()));
}

#[test]
fn waiting_for_readiness_sees_a_real_http_server_and_times_out_on_a_silent_one() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let server = format!(
        "setTimeout(() => require('http').createServer((q, s) => {{ s.statusCode = q.url === '/health' ? 200 : 404; s.end('ok'); }}).listen({port}, '127.0.0.1'), 300)"
    );
    let log = dir.path().join("node.log");
    let mut child = spawn_group(Command::new("node").args(["-e", &server]), &log).unwrap();
    let health = Ready::Http(format!("http://127.0.0.1:{port}/health"));
    wait_ready("node", &mut child, &health, Duration::from_secs(30), &log).unwrap();
    assert!(health.probe().is_ok());
    let addr = bench_proc::loopback(port);
    assert!(bench_proc::wait_for_port(addr, Duration::from_secs(1)));
    let holders = bench_proc::port_holders(port);
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert!(holders[0].cmdline.starts_with("node -e"), "{}", holders[0]);
    assert_eq!(
        stat(holders[0].pid).unwrap().pgid,
        child.id(),
        "in the child's group"
    );
    let missing = Ready::Http(format!("http://127.0.0.1:{port}/nope"));
    let seen = missing.probe().unwrap_err();
    assert!(seen.contains("404"), "{seen}");
    let err = wait_ready(
        "node",
        &mut child,
        &missing,
        Duration::from_millis(300),
        &log,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("was not ready after 0 s"), "{err}");
    assert!(err.contains("404"), "{err}");
    stop_group(child.id(), Duration::from_secs(5)).unwrap();
    child.wait().unwrap();
    assert!(Ready::Port(addr).probe().is_err());
    assert!(!bench_proc::wait_for_port(addr, Duration::from_millis(200)));
}

#[test]
fn a_command_error_keeps_the_end_of_the_output() {
    let out: String = (1..=40).map(|i| format!("line {i}\n")).collect();
    let err =
        CommandError::with_output("apply schema", "exited with exit status: 1", out.as_bytes());
    let text = err.to_string();
    assert!(text.contains("line 40"));
    assert!(text.contains("line 16"));
    assert!(!text.contains("line 15\n"));
    let silent = CommandError::with_output("x", "failed", b"");
    assert_eq!(silent.to_string(), "x failed (it printed nothing)");
}
