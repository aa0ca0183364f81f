//! The repository's reference app (`reference-app/`) as a throwaway app folder, with its
//! npm packages installed once into a cache under `target/` and hard-linked into each copy.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use bench_app::AppOptions;
use bench_pg::PgCluster;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target"),
    }
}

/// A copy of the reference app in a temporary folder under `target/` (same file system
/// as the module cache), its `node_modules` hard-linked from the cache.
pub fn reference_app() -> Result<tempfile::TempDir> {
    let parent = target_dir().join("bench-app-tests");
    fs::create_dir_all(&parent)?;
    let app = tempfile::Builder::new()
        .prefix("chat-app-")
        .tempdir_in(&parent)?;
    let cache = target_dir().join("reference-app-modules");
    bench_app::reference::prepare(&repo_root(), &cache, app.path())?;
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
