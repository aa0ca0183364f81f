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
/// packages, build output, harness state). A file already in `to` with the same bytes is
/// left alone; a different one is replaced whole (written beside it, then renamed over it),
/// so that a process running from `to` meanwhile (another grading's driver) never reads a
/// file half written.
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
            replace_file(&path, &to.join(&name))?;
        }
    }
    Ok(())
}

/// Makes `to` hold the bytes of `from`: untouched when it does already, else replaced by a
/// rename (atomic on one file system).
fn replace_file(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    if std::fs::read(to).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let mut tmp_name = to.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp_name);
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    let permissions = std::fs::metadata(from)
        .with_context(|| format!("cannot stat {}", from.display()))?
        .permissions();
    std::fs::set_permissions(&tmp, permissions)
        .with_context(|| format!("cannot set the permissions of {}", tmp.display()))?;
    if let Err(err) = std::fs::rename(&tmp, to) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err)
            .with_context(|| format!("cannot replace {} (is its folder writable?)", to.display()));
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;
    use std::path::Path;

    use super::copy_tree;

    fn inode(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    /// A second copy leaves files that did not change alone (a driver running from the copy
    /// keeps its files); a changed file is replaced by a new one, never rewritten in place;
    /// skipped folders stay out.
    #[test]
    fn copies_replace_only_changed_files_and_replace_them_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        std::fs::create_dir_all(from.join("lib")).unwrap();
        std::fs::create_dir_all(from.join("node_modules")).unwrap();
        std::fs::write(from.join("main.mjs"), "one").unwrap();
        std::fs::write(from.join("lib/a.mjs"), "a").unwrap();
        std::fs::write(from.join("node_modules/x"), "x").unwrap();
        copy_tree(&from, &to, &["node_modules"]).unwrap();
        assert!(!to.join("node_modules").exists());
        let (main, lib) = (inode(&to.join("main.mjs")), inode(&to.join("lib/a.mjs")));

        std::fs::write(from.join("main.mjs"), "two").unwrap();
        copy_tree(&from, &to, &["node_modules"]).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("main.mjs")).unwrap(), "two");
        assert_ne!(inode(&to.join("main.mjs")), main, "replaced by a rename");
        assert_eq!(
            inode(&to.join("lib/a.mjs")),
            lib,
            "the same bytes: left alone"
        );
        let names: Vec<_> = std::fs::read_dir(&to).unwrap().flatten().collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
