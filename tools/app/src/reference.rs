//! The bundled reference app (`reference-app/`) as a throwaway app folder: its files copied,
//! its npm packages installed once per lock file into a cache and hard-linked into each copy.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The reference app, relative to the repository root.
pub const REFERENCE_APP: &str = "reference-app";
/// Its parts with npm packages of their own.
pub const PARTS: [&str; 2] = ["server", "client"];

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
    bench_proc::npm::install_locked(
        &dir,
        &format!("the reference app's {part} packages"),
        Path::new("node_modules"),
        true,
    )?;
    Ok(dir.join("node_modules"))
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
    bench_proc::npm::copy_tree(&source, dest, &["node_modules", ".bench", "dist"])?;
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
