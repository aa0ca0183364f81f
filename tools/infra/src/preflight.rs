//! Checks run before an agent session, each failure carrying the command that fixes it.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::Ports;
use crate::process;

/// Backends the benchmark knows.
pub const BACKENDS: &[&str] = &["spacetime", "postgres", "mongodb"];

/// Oldest Node.js major version Claude Code runs on.
const MIN_NODE_MAJOR: u32 = 18;

/// One preflight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `agent CLI`, `node`, `port 6000`.
    pub name: String,
    pub ok: bool,
    /// What was found (a version, an address) or what went wrong.
    pub detail: String,
    /// How to fix a failure.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        write!(f, "{mark} {}: {}", self.name, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     fix: {fix}")?;
        }
        Ok(())
    }
}

/// Inputs of [`preflight_with`].
#[derive(Debug, Clone)]
pub struct Preflight<'a> {
    pub backend: &'a str,
    /// The agent CLI (`claude`, or a path); run with `--version`.
    pub agent_bin: &'a Path,
    /// Ports the session's app will listen on: they must be free.
    pub ports: &'a [u16],
    /// Where PostgreSQL must answer for the postgres backend.
    pub postgres_port: u16,
    /// Where MongoDB must answer for the mongodb backend.
    pub mongodb_port: u16,
}

/// [`preflight_with`] with the database ports from the environment (see [`Ports::from_env`]).
pub fn preflight(backend: &str, agent_bin: &Path, ports: &[u16]) -> Result<Vec<Check>> {
    let defaults = Ports::from_env();
    preflight_with(&Preflight {
        backend,
        agent_bin,
        ports,
        postgres_port: defaults.postgres,
        mongodb_port: defaults.mongodb,
    })
}

/// Run every check that applies to the backend. Fails only for an unknown backend; failed
/// checks are in the list (see [`require`]).
pub fn preflight_with(input: &Preflight<'_>) -> Result<Vec<Check>> {
    if !BACKENDS.contains(&input.backend) {
        bail!(
            "unknown backend {:?}: choose one of {}",
            input.backend,
            BACKENDS.join(", ")
        );
    }
    let mut checks = vec![agent_cli(input.agent_bin), node(), npm()];
    match input.backend {
        "spacetime" => checks.push(spacetime_cli()),
        "postgres" => checks.push(postgres(input.postgres_port)),
        "mongodb" => checks.push(mongodb(input.mongodb_port)),
        _ => {}
    }
    for &port in input.ports {
        checks.push(free_port(port));
    }
    Ok(checks)
}

/// Ok when every check passed; else one error listing each failure with its fix.
pub fn require(checks: &[Check]) -> Result<()> {
    let failures: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.to_string())
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    bail!(
        "preflight found {} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    )
}

fn version_of(program: &Path, args: &[&str], limit: Duration) -> Result<String, String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    match process::output_within(&mut cmd, limit) {
        None => Err(format!(
            "`{} {}` could not run (not installed, not executable, or no answer within {}s)",
            program.display(),
            args.join(" "),
            limit.as_secs()
        )),
        Some(out) if !out.status.success() => Err(format!(
            "`{} {}` failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            process::first_line(&out)
        )),
        Some(out) => Ok(process::first_line(&out)),
    }
}

fn agent_cli(agent_bin: &Path) -> Check {
    match version_of(agent_bin, &["--version"], Duration::from_secs(60)) {
        Ok(version) => Check::pass("agent CLI", format!("{} {version}", agent_bin.display())),
        Err(detail) => Check::fail(
            "agent CLI",
            detail,
            "install Claude Code: `npm install -g @anthropic-ai/claude-code` (needs Node.js 18+), \
             or pass --agent-bin /path/to/claude",
        ),
    }
}

fn node() -> Check {
    let fix = format!(
        "install Node.js {MIN_NODE_MAJOR} or newer: `apt-get install nodejs npm` (or from https://nodejs.org)"
    );
    match version_of(Path::new("node"), &["--version"], Duration::from_secs(30)) {
        Ok(version) => {
            let major = version
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            match major {
                Some(m) if m >= MIN_NODE_MAJOR => Check::pass("node", version),
                _ => Check::fail(
                    "node",
                    format!("node {version} is too old or unreadable"),
                    fix,
                ),
            }
        }
        Err(detail) => Check::fail("node", detail, fix),
    }
}

fn npm() -> Check {
    match version_of(Path::new("npm"), &["--version"], Duration::from_secs(30)) {
        Ok(version) => Check::pass("npm", version),
        Err(detail) => Check::fail("npm", detail, "install npm: `apt-get install npm`"),
    }
}

fn spacetime_cli() -> Check {
    match version_of(
        Path::new("spacetime"),
        &["--version"],
        Duration::from_secs(30),
    ) {
        Ok(version) => Check::pass("spacetime CLI", version),
        Err(detail) => Check::fail(
            "spacetime CLI",
            detail,
            "install the SpacetimeDB CLI: `curl -sSf https://install.spacetimedb.com | sh`, then put ~/.local/bin on PATH",
        ),
    }
}

fn postgres(port: u16) -> Check {
    let addr = process::loopback(port);
    if process::reachable(addr) {
        Check::pass("PostgreSQL", format!("answers on {addr}"))
    } else {
        Check::fail(
            "PostgreSQL",
            format!("nothing answers on {addr}"),
            format!(
                "start it: `cargo xtask bench-infra up --pg-port {port}` (native PostgreSQL, user/password/db spacetime)"
            ),
        )
    }
}

fn mongodb(port: u16) -> Check {
    let addr = process::loopback(port);
    if process::reachable(addr) {
        Check::pass("MongoDB", format!("answers on {addr}"))
    } else {
        Check::fail(
            "MongoDB",
            format!("nothing answers on {addr}"),
            format!(
                "start it: `cargo xtask bench-infra up --docker` (needs a Docker engine), or install MongoDB 7 \
                 so `mongod` is on PATH and run `cargo xtask bench-infra up --mongo-port {port}`"
            ),
        )
    }
}

fn free_port(port: u16) -> Check {
    let name = format!("port {port}");
    if process::port_free(port) {
        Check::pass(name, "free")
    } else {
        Check::fail(
            name,
            "already in use",
            format!(
                "stop what listens there (`ss -ltnp 'sport = :{port}'` shows it), or pick other ports with --run-index"
            ),
        )
    }
}
