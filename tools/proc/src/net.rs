//! Loopback ports: free ones, who holds a taken one, and waiting for a server to answer.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use procfs::net::TcpState;
use procfs::process::FDTarget;

use crate::error::CommandError;
use crate::process::cmdline;

/// How often readiness is probed.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Time limit of one readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// 127.0.0.1:`port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(loopback(0)).context("finding a free loopback port")?;
    Ok(listener
        .local_addr()
        .context("reading the port of a fresh listener")?
        .port())
}

/// Whether 127.0.0.1:`port` can be bound right now.
pub fn port_free(port: u16) -> bool {
    TcpListener::bind(loopback(port)).is_ok()
}

/// Whether something accepts TCP connections at `addr` (half a second to answer).
pub fn reachable(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_accepts(port: u16) -> bool {
    reachable(loopback(port))
}

/// A process listening on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command line (empty when it could not be read).
    pub cmdline: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.cmdline)
    }
}

/// The processes listening on TCP `port` (any address, IPv4 or IPv6), from `/proc/net/tcp*`
/// and the processes' open files. Processes of other users are invisible to a non-root
/// caller: an empty list does not prove the port is free.
pub fn port_holders(port: u16) -> Vec<Holder> {
    let mut inodes = HashSet::new();
    for table in [procfs::net::tcp(), procfs::net::tcp6()] {
        for entry in table.unwrap_or_default() {
            if entry.state == TcpState::Listen && entry.local_address.port() == port {
                inodes.insert(entry.inode);
            }
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for process in procfs::process::all_processes()
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(fds) = process.fd() else { continue };
        let holds = fds
            .flatten()
            .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if inodes.contains(&inode)));
        if holds && let Ok(pid) = u32::try_from(process.pid) {
            out.push(Holder {
                pid,
                cmdline: cmdline(pid).unwrap_or_default(),
            });
        }
    }
    out.sort_by_key(|h| h.pid);
    out
}

/// Waits up to `timeout` for something to accept connections at `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if reachable(addr) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(PROBE_EVERY);
    }
}

/// How a server shows it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// It accepts TCP connections here.
    Port(SocketAddr),
    /// A GET of this URL answers with a 2xx or 3xx status.
    Http(String),
}

impl Ready {
    /// One probe: `Ok` when ready, else what was seen (for the error message).
    pub fn probe(&self) -> Result<(), String> {
        match self {
            Ready::Port(addr) if reachable(*addr) => Ok(()),
            Ready::Port(addr) => Err(format!("nothing accepts connections at {addr}")),
            Ready::Http(url) => http_ready(url),
        }
    }
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Port(addr) => write!(f, "a connection to {addr}"),
            Ready::Http(url) => write!(f, "GET {url}"),
        }
    }
}

/// One GET of `url`: `Ok` on a 2xx or 3xx answer, else what happened.
pub fn http_ready(url: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(PROBE_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) if response.status().as_u16() < 400 => Ok(()),
        Ok(response) => Err(format!("{url} answered {}", response.status())),
        Err(err) => Err(format!("{url}: {err}")),
    }
}

/// Waits up to `timeout` for `ready`, while `child` (whose output goes to `log`) runs.
/// Fails as soon as the child exits, and on timeout, with the end of its log; `what`
/// names the step in the error.
pub fn wait_ready(
    what: &str,
    child: &mut Child,
    ready: &Ready,
    timeout: Duration,
    log: &Path,
) -> Result<(), CommandError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match ready.probe() {
            Ok(()) => return Ok(()),
            Err(seen) => seen,
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                let failure = format!("{} before it was ready", CommandError::exited(status));
                return Err(CommandError::with_log(what, failure, log));
            }
            Ok(None) => {}
            Err(err) => {
                let failure = format!("could not be watched ({err})");
                return Err(CommandError::with_log(what, failure, log));
            }
        }
        if Instant::now() >= deadline {
            let failure = format!(
                "was not ready after {} s (waited for {ready}; last: {last})",
                timeout.as_secs()
            );
            return Err(CommandError::with_log(what, failure, log));
        }
        std::thread::sleep(PROBE_EVERY);
    }
}
