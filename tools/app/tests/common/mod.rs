//! The repository's reference app (`reference-app/`) as a throwaway app folder, with its
//! npm packages installed once into a cache under `target/` and hard-linked into each copy.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use bench_app::AppOptions;
use bench_pg::PgCluster;
use sha2::{Digest, Sha256};

/// Folders of the reference app that have their own npm packages.
const PARTS: [&str; 2] = ["server", "client"];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target"),
    }
}

/// `target/bench-app-reference/<part>/node_modules`, installed with `npm ci` when the
/// part's lock file changed since the last install. Safe from parallel tests.
fn cached_modules(part: &str) -> Result<PathBuf> {
    let dir = target_dir().join("bench-app-reference").join(part);
    fs::create_dir_all(&dir)?;
    let lock = fs::File::create(dir.join(".install.lock"))?;
    lock.lock()?;
    let source = repo_root().join("reference-app").join(part);
    for name in ["package.json", "package-lock.json"] {
        fs::copy(source.join(name), dir.join(name))
            .with_context(|| format!("copying {name} of reference-app/{part}"))?;
    }
    let hash = format!(
        "{:x}",
        Sha256::digest(fs::read(dir.join("package-lock.json"))?)
    );
    let stamp = dir.join("node_modules/.bench-lock-sha256");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(hash.as_str()) {
        // `npm ci` wants the lock in sync with package.json; when it is not (a lock
        // written on another platform may lack optional packages), `npm install` still
        // installs from it.
        if let Err(err) = npm(&dir, "ci") {
            eprintln!("{err:#}\nfalling back to npm install");
            npm(&dir, "install")?;
        }
        fs::write(&stamp, hash)?;
    }
    Ok(dir.join("node_modules"))
}

fn npm(dir: &Path, command: &str) -> Result<()> {
    let out = Command::new("npm")
        .args([
            command,
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--cache",
        ])
        .arg(target_dir().join("npm-cache"))
        .current_dir(dir)
        .output()
        .context("running npm (install Node.js 20 and npm)")?;
    if !out.status.success() {
        bail!(
            "npm {command} in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_str(), Some("node_modules" | ".bench" | "dist")) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// A copy of the reference app in a temporary folder under `target/` (same file system
/// as the module cache), its `node_modules` hard-linked from the cache.
pub fn reference_app() -> Result<tempfile::TempDir> {
    let parent = target_dir().join("bench-app-tests");
    fs::create_dir_all(&parent)?;
    let app = tempfile::Builder::new()
        .prefix("chat-app-")
        .tempdir_in(&parent)?;
    copy_tree(&repo_root().join("reference-app"), app.path())?;
    for part in PARTS {
        let modules = cached_modules(part)?;
        let status = Command::new("cp")
            .arg("-al")
            .arg(&modules)
            .arg(app.path().join(part).join("node_modules"))
            .status()?;
        if !status.success() {
            bail!("cp -al of {} failed", modules.display());
        }
    }
    Ok(app)
}

/// Options for an app on the throwaway cluster `pg`, on free ports of its own.
pub fn options(pg: &PgCluster) -> AppOptions {
    let mut options = AppOptions::new(&repo_root());
    let mut vars = BTreeMap::new();
    vars.insert("pg_port".to_string(), pg.port().to_string());
    for (name, port) in ["express_port", "vite_port"].into_iter().zip(free_ports(2)) {
        vars.insert(name.to_string(), port.to_string());
    }
    options.overrides = vars;
    options.grace = std::time::Duration::from_secs(5);
    options
}

/// `n` distinct free loopback ports (all held until every one is found).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}
