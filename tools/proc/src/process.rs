//! Starting processes in groups of their own, telling whether they live, stopping them.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{Pid, User, geteuid, getgid, getuid};
use procfs::process::{ProcState, Process};

/// How often the stop loops look again.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait for processes to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    /// Its process group.
    pub pgid: u32,
    /// Exited but not yet reaped by its parent.
    pub zombie: bool,
    /// When it started, in clock ticks since boot: with the pid, names one process for good
    /// (pids are recycled).
    pub start_ticks: u64,
}

/// `/proc/<pid>/stat` of a process, `None` when there is no such process.
pub fn stat(pid: u32) -> Option<ProcStat> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = process.stat().ok()?;
    Some(ProcStat {
        pid,
        ppid: u32::try_from(stat.ppid).unwrap_or(0),
        pgid: u32::try_from(stat.pgrp).unwrap_or(0),
        zombie: matches!(stat.state(), Ok(ProcState::Zombie | ProcState::Dead)),
        start_ticks: stat.starttime,
    })
}

/// Whether process `pid` runs. A zombie (exited, not yet reaped) does not.
pub fn alive(pid: u32) -> bool {
    let Some(raw) = nix_pid(pid) else {
        return false;
    };
    if stat(pid).is_some_and(|s| s.zombie) {
        return false;
    }
    // Signal 0 only asks whether the process exists (EPERM: it does, but is not ours).
    matches!(kill(raw, None), Ok(()) | Err(nix::errno::Errno::EPERM))
}

/// The command line of process `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Whether `pid` is alive and its command line contains `marker` (so a recycled pid of an
/// unrelated process is never signalled).
pub fn is_ours(pid: u32, marker: &str) -> bool {
    alive(pid) && cmdline(pid).is_some_and(|line| line.contains(marker))
}

/// Makes `cmd` start in a new process group of its own (its pid is the group id): signals
/// to our group, such as Ctrl-C in a terminal, do not reach it, and [`stop_group`] reaches
/// all it starts.
pub fn in_new_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0)
}

/// Starts `cmd` in a new process group, stdin from /dev/null, stdout and stderr appended
/// to `log` (its folder is created).
pub fn spawn_group(cmd: &mut Command, log: &Path) -> Result<Child> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log file {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file handle")?;
    in_new_group(cmd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.spawn()
        .with_context(|| format!("starting {program}: is it installed and on PATH?"))
}

/// SIGTERM to `pid`, up to `grace` for it to exit, then SIGKILL. Returns once it is gone.
pub fn terminate(pid: u32, grace: Duration) -> Result<()> {
    let raw = nix_pid(pid).context("pid out of range")?;
    if !alive(pid) {
        return Ok(());
    }
    let _ = kill(raw, Signal::SIGTERM);
    if wait_gone(grace, || alive(pid)) {
        return Ok(());
    }
    let _ = kill(raw, Signal::SIGKILL);
    if wait_gone(KILL_WAIT, || alive(pid)) {
        return Ok(());
    }
    bail!("process {pid} did not exit after SIGTERM and SIGKILL")
}

/// Live (not zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    every_stat()
        .into_iter()
        .filter(|s| s.pgid == pgid && !s.zombie)
        .map(|s| s.pid)
        .collect()
}

/// Whether any process of group `pgid` still runs.
pub fn group_alive(pgid: u32) -> bool {
    !group_members(pgid).is_empty()
}

/// Live descendants of `pid` (children, their children…), whatever their group.
pub fn descendants(pid: u32) -> Vec<u32> {
    let all = every_stat();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for s in all.iter().filter(|s| !s.zombie) {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(c);
            stack.push(c);
        }
    }
    out
}

/// Stops process group `pgid` and every descendant of its leader that moved to a group of
/// its own: SIGTERM to all, up to `grace` for them to exit, then SIGKILL to those left.
/// Returns how many processes were running. Nothing of another group is touched unless it
/// descends from the leader.
pub fn stop_group(pgid: u32, grace: Duration) -> Result<usize> {
    let raw = nix_pid(pgid).context("process group id out of range")?;
    let tree = || -> BTreeSet<u32> {
        let mut set: BTreeSet<u32> = group_members(pgid).into_iter().collect();
        set.extend(descendants(pgid));
        set
    };
    let first = tree();
    if first.is_empty() {
        return Ok(0);
    }
    let _ = killpg(raw, Signal::SIGTERM);
    signal_each(&first, Signal::SIGTERM);
    if wait_gone(grace, || !tree().is_empty()) {
        return Ok(first.len());
    }
    let _ = killpg(raw, Signal::SIGKILL);
    signal_each(&tree(), Signal::SIGKILL);
    if wait_gone(KILL_WAIT, || !tree().is_empty()) {
        return Ok(first.len());
    }
    let left: Vec<String> = tree().iter().map(u32::to_string).collect();
    bail!(
        "processes {} of group {pgid} did not exit after SIGTERM and SIGKILL",
        left.join(", ")
    )
}

/// Collects the exit status of `pid` when it is an exited child of this process whose
/// [`Child`] handle was dropped, so it does not stay a zombie while this process runs.
/// A no-op for anyone else's process. Never call it for a child you still hold a handle
/// of: its `wait` would then fail.
pub fn reap(pid: u32) {
    if let Some(raw) = nix_pid(pid) {
        let _ = waitpid(raw, Some(WaitPidFlag::WNOHANG));
    }
}

fn signal_each(pids: &BTreeSet<u32>, signal: Signal) {
    for &pid in pids {
        if let Some(raw) = nix_pid(pid) {
            let _ = kill(raw, signal);
        }
    }
}

/// Polls `still_there` until it is false (returns true) or `limit` passes (false).
fn wait_gone(limit: Duration, mut still_there: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !still_there() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

fn every_stat() -> Vec<ProcStat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

fn nix_pid(pid: u32) -> Option<Pid> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 0)?;
    Some(Pid::from_raw(raw))
}

/// Whether this process runs as root.
pub fn effective_uid_is_root() -> bool {
    geteuid().is_root()
}

/// The real user id of this process.
pub fn real_uid() -> u32 {
    getuid().as_raw()
}

/// The real group id of this process.
pub fn real_gid() -> u32 {
    getgid().as_raw()
}

/// An OS account, from the user database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The OS account called `name`, `None` when there is none.
pub fn os_user(name: &str) -> Result<Option<OsUser>> {
    let user = User::from_name(name).with_context(|| format!("looking up OS user {name:?}"))?;
    Ok(user.map(|u| OsUser {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }))
}
