//! The two browsers of an agent grading: one Playwright MCP server per user (`alice`, `bob`),
//! `@playwright/mcp` pinned by `tools/grade/mcp/package-lock.json`, installed on first use
//! into an ignored folder, each with an isolated in-memory profile in the system Chromium.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The MCP package's pinned manifest and lock, relative to the repository root.
pub const MCP_SOURCE: &str = "tools/grade/mcp";
/// The server's entry point inside the install folder.
pub const MCP_MAIN: &str = "node_modules/@playwright/mcp/cli.js";
/// The two users, each an MCP server of that name.
pub const USERS: [&str; 2] = ["alice", "bob"];

/// The install folder users get: `<root>/.bench/grade-mcp`.
pub fn default_install_dir(root: &Path) -> PathBuf {
    bench_formats::paths::state_dir(root).join("grade-mcp")
}

/// Makes `install_dir` hold `@playwright/mcp` as the lock pins it (`npm ci`, rerun only when
/// the lock changes; parallel callers take turns) and returns the server's entry point.
pub fn install(root: &Path, install_dir: &Path) -> Result<PathBuf> {
    let src = root.join(MCP_SOURCE);
    if !src.join("package-lock.json").is_file() {
        bail!(
            "{} has no package-lock.json (run from the benchmark repository)",
            src.display()
        );
    }
    std::fs::create_dir_all(install_dir)
        .with_context(|| format!("cannot create {}", install_dir.display()))?;
    let turn_path = install_dir.with_extension("lock");
    let turn = std::fs::File::create(&turn_path)
        .with_context(|| format!("cannot create lock file {}", turn_path.display()))?;
    turn.lock()
        .with_context(|| format!("cannot lock {}", turn_path.display()))?;
    for name in ["package.json", "package-lock.json"] {
        std::fs::copy(src.join(name), install_dir.join(name))
            .with_context(|| format!("cannot copy {}/{name}", src.display()))?;
    }
    bench_proc::npm::install_locked(
        install_dir,
        "the Playwright MCP server",
        Path::new(MCP_MAIN),
        false,
    )?;
    let main = install_dir.join(MCP_MAIN);
    Ok(main)
}

/// How one user's server is started.
#[derive(Debug, Clone)]
pub struct ServerCommand {
    pub command: String,
    pub args: Vec<String>,
}

impl ServerCommand {
    /// `node <main> --headless --isolated --no-sandbox --executable-path <browser>`, its
    /// snapshots and screenshots written under `output_dir/<user>`.
    pub fn playwright(main: &Path, browser: &Path, output_dir: &Path, user: &str) -> Self {
        let args = [
            main.display().to_string(),
            "--headless".into(),
            "--isolated".into(),
            "--no-sandbox".into(),
            "--executable-path".into(),
            browser.display().to_string(),
            "--viewport-size".into(),
            "1280x720".into(),
            "--output-dir".into(),
            output_dir.join(user).display().to_string(),
        ];
        ServerCommand {
            command: "node".into(),
            args: args.into(),
        }
    }
}

/// The `--mcp-config` file's content: one stdio server per user.
pub fn config(servers: &[(&str, ServerCommand)]) -> Value {
    let map: serde_json::Map<String, Value> = servers
        .iter()
        .map(|(name, cmd)| {
            let server = json!({"type": "stdio", "command": cmd.command, "args": cmd.args});
            ((*name).to_owned(), server)
        })
        .collect();
    json!({ "mcpServers": map })
}

/// The CLI arguments that give the session exactly these servers and, of the built-in tools,
/// only `Write` (for the results file).
pub fn cli_args(config_file: &Path) -> Vec<String> {
    let mut allowed: Vec<String> = USERS.iter().map(|u| format!("mcp__{u}")).collect();
    allowed.push("Write".into());
    vec![
        "--mcp-config".into(),
        config_file.display().to_string(),
        "--strict-mcp-config".into(),
        "--tools".into(),
        "Write".into(),
        "--allowedTools".into(),
        allowed.join(","),
    ]
}

/// Environment the CLI needs so that, in `--print` mode, it waits for the MCP servers to
/// connect before the first turn (by default it goes on without them and the first calls to
/// a slow server fail with "No such tool available").
pub const CLI_ENV: [(&str, &str); 1] = [("MCP_CONNECTION_NONBLOCKING", "false")];

/// Checks the stream-json `system`/`init` line: every user's server is listed and
/// `connected`. The error names each server that is not.
pub fn check_init(init: &Value) -> Result<()> {
    let listed = init
        .get("mcp_servers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    for user in USERS {
        let status = listed
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(user))
            .map(|s| {
                s.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned()
            });
        match status.as_deref() {
            Some("connected") => {}
            Some(other) => problems.push(format!("MCP server `{user}` is {other}")),
            None => problems.push(format!(
                "MCP server `{user}` is not attached (the CLI ignored --mcp-config?)"
            )),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the grading session's browsers are not attached: {} — check that Node and the browser run (`cargo xtask bench-grade --self-test --grader agent`)",
            problems.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_line_names_each_server_not_connected() {
        let ok = json!({"mcp_servers": [{"name": "alice", "status": "connected"}, {"name": "bob", "status": "connected"}]});
        assert!(check_init(&ok).is_ok());
        let failed = json!({"mcp_servers": [{"name": "alice", "status": "connected"}, {"name": "bob", "status": "failed"}]});
        let err = check_init(&failed).unwrap_err().to_string();
        assert!(err.contains("`bob` is failed"), "{err}");
        assert!(!err.contains("`alice`"), "{err}");
        let none = json!({"mcp_servers": []});
        let err = check_init(&none).unwrap_err().to_string();
        assert!(err.contains("`alice` is not attached") && err.contains("`bob`"));
    }
}
