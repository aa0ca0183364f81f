//! Checks run before an agent session, each failure carrying the command that fixes it.
//!
//! The harness's own checks (the agent CLI runs on a recent enough Node.js, the app's ports
//! are free) come first; then the backend's `[[preflight]]` entries of its `backend.toml`,
//! each a shell command that must succeed, with the hint it gives when it does not. Nothing
//! here knows a backend by name.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use bench_content::Backend;
use serde::Serialize;

use crate::Ports;
use crate::process;

/// Oldest Node.js major version Claude Code runs on.
const MIN_NODE_MAJOR: u32 = 18;

/// How long one of the backend's checks may take.
const BACKEND_CHECK_LIMIT: Duration = Duration::from_secs(60);

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
    /// The backend whose `[[preflight]]` checks run.
    pub backend: &'a Backend,
    /// The run index its values (ports, database names) are taken for.
    pub run_index: u32,
    /// The agent CLI (`claude`, or a path); run with `--version`.
    pub agent_bin: &'a Path,
    /// Ports the session's app will listen on: they must be free.
    pub ports: &'a [u16],
    /// Where the infrastructure's services listen (the backend's checks see these ports
    /// as `{{pg_port}}`, `{{mongo_port}}`, …).
    pub infra: &'a Ports,
}

/// [`preflight_with`] with the infrastructure's ports from the environment (see
/// [`Ports::from_env`]).
pub fn preflight(
    backend: &Backend,
    run_index: u32,
    agent_bin: &Path,
    ports: &[u16],
) -> Result<Vec<Check>> {
    preflight_with(&Preflight {
        backend,
        run_index,
        agent_bin,
        ports,
        infra: &Ports::from_env(),
    })
}

/// Runs the harness's checks, then the backend's. Fails only when the backend's checks
/// cannot be filled in; failed checks are in the list (see [`require`]).
pub fn preflight_with(input: &Preflight<'_>) -> Result<Vec<Check>> {
    let mut checks = vec![agent_cli(input.agent_bin), node()];
    for &port in input.ports {
        checks.push(free_port(port));
    }
    let vars = input
        .backend
        .vars_with(input.run_index, &input.infra.as_values())?;
    for check in input.backend.preflight_from(&vars)? {
        checks.push(backend_check(&check));
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

/// One `[[preflight]]` entry of the backend: `sh -c RUN` must exit 0 in time.
fn backend_check(check: &bench_content::Preflight) -> Check {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&check.run);
    let limit = BACKEND_CHECK_LIMIT;
    match process::output_within(&mut cmd, limit) {
        None => Check::fail(
            &check.name,
            format!(
                "`{}` could not run or gave no answer within {}s",
                check.run,
                limit.as_secs()
            ),
            &check.hint,
        ),
        Some(out) if !out.status.success() => Check::fail(
            &check.name,
            format!(
                "`{}` failed ({}): {}",
                check.run,
                out.status,
                process::first_line(&out)
            ),
            &check.hint,
        ),
        Some(out) => Check::pass(&check.name, process::first_line(&out)),
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
