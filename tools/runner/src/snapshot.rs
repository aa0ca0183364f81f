//! Copies of folders: the app's `level-N` snapshots and the sessions' input snapshots, with
//! SHA-256 manifests.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Whether a top-level or nested entry is left out of an app snapshot: dependencies, build
/// output, earlier snapshots, logs and the harness's own state.
pub fn excluded_from_app_snapshot(rel: &Path) -> bool {
    rel.components().any(|c| {
        let name = c.as_os_str().to_string_lossy();
        matches!(
            name.as_ref(),
            "node_modules" | "dist" | ".bench" | "logs" | ".git"
        ) || name.ends_with(".log")
    }) || rel
        .components()
        .next()
        .is_some_and(|c| is_level_snapshot_name(&c.as_os_str().to_string_lossy()))
}

/// `level-<N>`: the name of an app snapshot folder.
pub fn is_level_snapshot_name(name: &str) -> bool {
    name.strip_prefix("level-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Copies `src` into the new folder `dst` (which must not exist), leaving out what `skip`
/// says (given paths relative to `src`). Symbolic links are copied as links. Returns the
/// number of files copied.
pub fn copy_tree(src: &Path, dst: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<u64> {
    if dst.exists() {
        bail!("{} already exists: not overwriting it", dst.display());
    }
    let tmp = dst.with_file_name(format!(
        ".{}.partial",
        dst.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("cannot remove the leftover {}", tmp.display()))?;
    }
    // The copy may be made inside the folder being copied (app/level-N): never copy it into itself.
    let inside: Vec<PathBuf> = [&tmp, &dst.to_path_buf()]
        .iter()
        .filter_map(|p| p.strip_prefix(src).ok().map(Path::to_path_buf))
        .collect();
    let skip_all = |rel: &Path| inside.iter().any(|i| i == rel) || skip(rel);
    let mut count = 0;
    copy_dir(src, &tmp, Path::new(""), &skip_all, &mut count)?;
    std::fs::rename(&tmp, dst)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), dst.display()))?;
    Ok(count)
}

fn copy_dir(
    src_root: &Path,
    dst_root: &Path,
    rel: &Path,
    skip: &dyn Fn(&Path) -> bool,
    count: &mut u64,
) -> Result<()> {
    let dst = dst_root.join(rel);
    std::fs::create_dir_all(&dst).with_context(|| format!("cannot create {}", dst.display()))?;
    let src = src_root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&src)
        .with_context(|| format!("cannot list {}", src.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", src.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let child_rel = rel.join(entry.file_name());
        if skip(&child_rel) {
            continue;
        }
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?;
        let target = dst_root.join(&child_rel);
        if kind.is_dir() {
            copy_dir(src_root, dst_root, &child_rel, skip, count)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())
                .with_context(|| format!("cannot read link {}", entry.path().display()))?;
            std::os::unix::fs::symlink(&link, &target)
                .with_context(|| format!("cannot create link {}", target.display()))?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    target.display()
                )
            })?;
            *count += 1;
        }
    }
    Ok(())
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every regular file under `dir` (relative paths, sorted), except `SHA256SUMS` itself.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        for entry in
            std::fs::read_dir(&here).with_context(|| format!("cannot list {}", here.display()))?
        {
            let entry = entry.with_context(|| format!("cannot list {}", here.display()))?;
            let child = rel.join(entry.file_name());
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() && child != Path::new(MANIFEST) {
                out.push(child);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The manifest's file name (the `sha256sum` format: `<hex>  <path>` per line).
pub const MANIFEST: &str = "SHA256SUMS";

/// Writes `dir/SHA256SUMS` for every file under `dir`; `sha256sum -c SHA256SUMS` checks it.
pub fn write_manifest(dir: &Path) -> Result<PathBuf> {
    let mut text = String::new();
    for rel in files_under(dir)? {
        let sum = sha256_file(&dir.join(&rel))?;
        text.push_str(&format!("{sum}  {}\n", rel.display()));
    }
    let path = dir.join(MANIFEST);
    bench_formats::io::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_snapshot_leaves_out_dependencies_builds_snapshots_and_logs() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("app");
        for (rel, body) in [
            ("src/main.ts", "main"),
            ("package.json", "{}"),
            ("node_modules/x/index.js", "dep"),
            ("client/dist/bundle.js", "built"),
            ("level-1/src/main.ts", "old"),
            ("server.log", "log"),
            (".bench/state.json", "{}"),
            ("levels.md", "kept: not a snapshot name"),
        ] {
            let p = app.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let snap = app.join("level-2");
        let n = copy_tree(&app, &snap, &excluded_from_app_snapshot).unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            std::fs::read_to_string(snap.join("src/main.ts")).unwrap(),
            "main"
        );
        assert!(snap.join("levels.md").is_file());
        assert!(!snap.join("node_modules").exists());
        assert!(!snap.join("client/dist").exists());
        assert!(!snap.join("level-1").exists());
        assert!(!snap.join("server.log").exists());
        assert!(!snap.join(".bench").exists());
        // Never overwrites an existing snapshot.
        assert!(copy_tree(&app, &snap, &excluded_from_app_snapshot).is_err());
    }

    #[test]
    fn manifest_matches_sha256sum_format() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a")).unwrap();
        std::fs::write(tmp.path().join("a/x.txt"), "abc").unwrap();
        std::fs::write(tmp.path().join("y.txt"), "").unwrap();
        let manifest = write_manifest(tmp.path()).unwrap();
        let text = std::fs::read_to_string(manifest).unwrap();
        assert_eq!(
            text,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a/x.txt\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  y.txt\n"
        );
    }
}
