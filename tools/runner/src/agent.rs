//! Finding, installing and identifying the agent CLI (Claude Code).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The npm package of the agent CLI.
pub const AGENT_PACKAGE: &str = "@anthropic-ai/claude-code";

/// The version installed when none is asked for: the one this harness was checked against.
/// `BENCH_AGENT_CLI_VERSION` overrides it (e.g. `latest`).
pub const DEFAULT_AGENT_VERSION: &str = "2.1.197";

/// Where the harness keeps its own copy of the CLI: `<root>/.bench/agent-cli`.
pub fn default_cache_dir(root: &Path) -> PathBuf {
    bench_formats::paths::state_dir(root).join("agent-cli")
}

/// The `claude` executable inside an install folder.
pub fn installed_bin(cache_dir: &Path) -> PathBuf {
    cache_dir.join("node_modules").join(".bin").join("claude")
}

/// `claude --version` of `bin`, e.g. `2.1.197 (Claude Code)`.
pub fn agent_version(bin: &Path) -> Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .env("DISABLE_AUTOUPDATER", "1")
        .output()
        .with_context(|| format!("cannot run {} --version", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} --version failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if text.is_empty() {
        bail!("{} --version printed nothing", bin.display());
    }
    Ok(text)
}

/// Looks for an executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The agent CLI to run: `explicit` when given (it must exist), else `claude` on `PATH`,
/// else the harness's own copy under `<root>/.bench/agent-cli`, installed from npm if missing.
pub fn resolve_agent_bin(explicit: Option<&Path>, root: &Path) -> Result<PathBuf> {
    if let Some(bin) = explicit {
        if bin.components().count() == 1
            && let Some(found) = find_on_path(&bin.to_string_lossy())
        {
            return Ok(found);
        }
        if !is_executable(bin) {
            bail!(
                "--agent-bin {} is not an executable file (give the path of the `claude` CLI, or leave it out to use the one on PATH or install one)",
                bin.display()
            );
        }
        return Ok(bin.to_path_buf());
    }
    if let Some(found) = find_on_path("claude") {
        return Ok(found);
    }
    install_agent_cli(&default_cache_dir(root))
}

/// Installs the agent CLI with npm into `cache_dir` (reusing a working install), and returns
/// the path of its `claude` executable. Safe to call from several processes at once: they
/// take turns on a lock file next to the folder.
///
/// npm 11 may skip the package's install script, which puts the native binary in place; if
/// the installed `claude` does not run, the script is run by hand (`node install.cjs`).
pub fn install_agent_cli(cache_dir: &Path) -> Result<PathBuf> {
    let bin = installed_bin(cache_dir);
    if agent_version(&bin).is_ok() {
        return Ok(bin);
    }
    let parent = cache_dir
        .parent()
        .with_context(|| format!("{} has no parent folder", cache_dir.display()))?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let lock_path = cache_dir.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    // Another process may have installed it while this one waited.
    if agent_version(&bin).is_ok() {
        return Ok(bin);
    }
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let npm = find_on_path("npm").context(
        "npm is not on PATH: install Node.js 18 or newer (e.g. `apt-get install nodejs npm`), or pass --agent-bin with an installed `claude`",
    )?;
    let version = std::env::var("BENCH_AGENT_CLI_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_AGENT_VERSION.to_owned());
    let spec = format!("{AGENT_PACKAGE}@{}", version.trim());
    eprintln!(
        "installing the agent CLI ({spec}) into {} …",
        cache_dir.display()
    );
    let out = Command::new(&npm)
        .arg("install")
        .arg("--prefix")
        .arg(cache_dir)
        .args(["--no-audit", "--no-fund", "--loglevel=error", &spec])
        .output()
        .with_context(|| format!("cannot run {}", npm.display()))?;
    if !out.status.success() {
        bail!(
            "`npm install {spec}` failed ({}): {}\nCheck network access to the npm registry, or install the CLI yourself and pass --agent-bin",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if agent_version(&bin).is_err() {
        let package_dir = cache_dir.join("node_modules").join(AGENT_PACKAGE);
        let node =
            find_on_path("node").context("node is not on PATH: install Node.js 18 or newer")?;
        let out = Command::new(&node)
            .arg("install.cjs")
            .current_dir(&package_dir)
            .output()
            .with_context(|| format!("cannot run node install.cjs in {}", package_dir.display()))?;
        if !out.status.success() {
            bail!(
                "the agent CLI's install script failed in {} ({}): {}",
                package_dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    agent_version(&bin).with_context(|| {
        format!(
            "the agent CLI installed into {} does not run; remove that folder and try again",
            cache_dir.display()
        )
    })?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn an_explicit_agent_must_be_an_executable_file() {
        let tmp = tempfile::tempdir().unwrap();
        let not_exec = tmp.path().join("claude");
        std::fs::write(&not_exec, "#!/bin/sh\necho 1.0\n").unwrap();
        let err = resolve_agent_bin(Some(&not_exec), tmp.path()).unwrap_err();
        assert!(err.to_string().contains("not an executable"), "{err}");
        let err = resolve_agent_bin(Some(&tmp.path().join("missing")), tmp.path()).unwrap_err();
        assert!(err.to_string().contains("--agent-bin"), "{err}");

        std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            resolve_agent_bin(Some(&not_exec), tmp.path()).unwrap(),
            not_exec
        );
        assert_eq!(agent_version(&not_exec).unwrap(), "1.0");
    }

    #[test]
    fn a_failing_version_command_is_an_error_naming_the_program() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("claude");
        std::fs::write(&bad, "#!/bin/sh\necho broken >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = agent_version(&bad).unwrap_err().to_string();
        assert!(err.contains("broken") && err.contains("claude"), "{err}");
    }
}
