//! The bundled reference app (`reference-app/`) as a throwaway app folder: its files copied,
//! its npm packages installed once per lock file into a cache and hard-linked into each copy.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The reference app, relative to the repository root.
pub const REFERENCE_APP: &str = "reference-app";
/// Its parts with npm packages of their own.
pub const PARTS: [&str; 2] = ["server", "client"];

/// Copies `from` into `to`, leaving out installed packages, build output and harness state.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", from.display()))?;
        let name = entry.file_name();
        if matches!(name.to_str(), Some("node_modules" | ".bench" | "dist")) {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if kind.is_dir() {
            copy_tree(&path, &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(&path, to.join(&name))
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    Ok(())
}

/// `<cache>/<part>/node_modules`, installed with `npm ci` (else `npm install`) when the
/// part's lock file changed since the last install. Parallel callers take turns.
fn cached_modules(root: &Path, cache: &Path, part: &str) -> Result<PathBuf> {
    let dir = cache.join(part);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = dir.join(".install.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let source = root.join(REFERENCE_APP).join(part);
    for name in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(name), dir.join(name))
            .with_context(|| format!("cannot copy {name} of {REFERENCE_APP}/{part}"))?;
    }
    let lock_bytes = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("cannot read {}/package-lock.json", dir.display()))?;
    let hash = format!("{:x}", Sha256::digest(&lock_bytes));
    let stamp = dir.join("node_modules/.bench-lock-sha256");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(hash.as_str()) {
        eprintln!(
            "installing the reference app's {part} packages into {} …",
            dir.display()
        );
        // `npm ci` refuses a lock out of step with package.json (a lock written on another
        // platform may lack optional packages); `npm install` still installs from it.
        if let Err(ci) = npm(&dir, "ci") {
            npm(&dir, "install").map_err(|e| e.context(format!("after {ci:#}")))?;
        }
        std::fs::write(&stamp, hash)
            .with_context(|| format!("cannot write {}", stamp.display()))?;
    }
    Ok(dir.join("node_modules"))
}

fn npm(dir: &Path, command: &str) -> Result<()> {
    let out = Command::new("npm")
        .args([command, "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .context(
            "cannot run npm: install Node.js 20 and npm (Debian: apt-get install nodejs npm)",
        )?;
    if !out.status.success() {
        bail!(
            "npm {command} failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Makes `dest` (which must not exist, or be an empty folder) a copy of the reference app
/// with its packages hard-linked from `cache` (copied when the cache is on another file
/// system). Used by `bench-grade --self-test` and by the tests of bench-app, bench-grade and
/// bench-stress.
pub fn prepare(root: &Path, cache: &Path, dest: &Path) -> Result<()> {
    let occupied = std::fs::read_dir(dest).is_ok_and(|mut entries| entries.next().is_some());
    if occupied || dest.is_file() {
        bail!(
            "{} already exists; the reference app is copied into a new or empty folder",
            dest.display()
        );
    }
    let source = root.join(REFERENCE_APP);
    if !source.join("server/package.json").is_file() {
        bail!(
            "the reference app is missing: {} has no server/package.json (run from the benchmark repository)",
            source.display()
        );
    }
    copy_tree(&source, dest)?;
    for part in PARTS {
        let modules = cached_modules(root, cache, part)?;
        let target = dest.join(part).join("node_modules");
        let linked = Command::new("cp")
            .arg("-al")
            .arg(&modules)
            .arg(&target)
            .status();
        if !linked.is_ok_and(|s| s.success()) {
            let _ = std::fs::remove_dir_all(&target);
            let copied = Command::new("cp")
                .arg("-a")
                .arg(&modules)
                .arg(&target)
                .status()
                .context("cannot run cp")?;
            if !copied.success() {
                bail!(
                    "cannot copy {} into {}",
                    modules.display(),
                    target.display()
                );
            }
        }
    }
    Ok(())
}
