//! npm packages pinned by a checked-in `package-lock.json`, installed into a folder of the
//! harness's own (the grading driver, the Playwright MCP server, the reference app's
//! packages) once per lock: a stamp in `node_modules` records the lock's SHA-256, so
//! `npm` runs again only when the lock changes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The stamp inside `node_modules` that names the lock file it was installed from.
const STAMP: &str = "node_modules/.bench-lock-sha256";

/// Copies `from` into `to` recursively, leaving out the folders named in `skip` (installed
/// packages, build output, harness state); files already in `to` are replaced.
pub fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| skip.contains(&n)) {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if kind.is_dir() {
            copy_tree(&path, &to.join(&name), skip)?;
        } else if kind.is_file() {
            std::fs::copy(&path, to.join(&name))
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    Ok(())
}

/// Installs the packages of `dir` (which holds `package.json` and `package-lock.json`) with
/// `npm ci` unless `node_modules` was installed from this very lock and holds `required`
/// (a file the install must have produced). With `or_install`, a refused `npm ci` (a lock
/// written on another platform may lack optional packages) is followed by `npm install`.
/// `what` names the packages in messages. The caller keeps parallel installs apart.
/// Returns whether npm ran.
pub fn install_locked(dir: &Path, what: &str, required: &Path, or_install: bool) -> Result<bool> {
    let lock = dir.join("package-lock.json");
    let bytes = std::fs::read(&lock).with_context(|| format!("cannot read {}", lock.display()))?;
    let hash = format!("{:x}", Sha256::digest(&bytes));
    let stamp = dir.join(STAMP);
    let current = std::fs::read_to_string(&stamp).ok().as_deref() == Some(hash.as_str());
    if current && dir.join(required).exists() {
        return Ok(false);
    }
    eprintln!(
        "installing {what} into {} (once per lock file) …",
        dir.display()
    );
    if let Err(ci) = npm(dir, "ci", what) {
        if !or_install {
            return Err(ci);
        }
        npm(dir, "install", what).map_err(|e| e.context(format!("after {ci:#}")))?;
    }
    std::fs::write(&stamp, hash)
        .with_context(|| format!("npm worked, but {} cannot be written", stamp.display()))?;
    Ok(true)
}

fn npm(dir: &Path, command: &str, what: &str) -> Result<()> {
    let out = Command::new("npm")
        .args([command, "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .context(
            "cannot run npm: install Node.js 20 and npm (Debian: apt-get install nodejs npm)",
        )?;
    if !out.status.success() {
        bail!(
            "`npm {command}` for {what} failed in {} ({}): {}\nCheck access to the npm registry, then run again",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
