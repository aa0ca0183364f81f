//! Where the project's own folders are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The repository root: `$BENCH_ROOT` when set, else the nearest folder at or above the
/// current directory that holds both `Cargo.toml` and `xtask/`.
pub fn repo_root() -> Result<PathBuf> {
    if let Some(root) = std::env::var_os("BENCH_ROOT") {
        return Ok(PathBuf::from(root));
    }
    let cwd = std::env::current_dir().context(
        "cannot read the current directory: run from the repository (or set BENCH_ROOT to it)",
    )?;
    match find_root(&cwd) {
        Some(root) => Ok(root.to_path_buf()),
        None => bail!(
            "{} is not inside the benchmark repository: run from the repository (or set BENCH_ROOT to it)",
            cwd.display()
        ),
    }
}

fn find_root(start: &Path) -> Option<&Path> {
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("xtask").is_dir())
}

/// The ignored folder where the harness keeps its state (infrastructure data, pid files,
/// the cached agent CLI): `<root>/.bench`.
pub fn state_dir(root: &Path) -> PathBuf {
    root.join(".bench")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace_from_a_nested_folder() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let root = find_root(&here).unwrap();
        assert!(root.join("xtask").is_dir());
        assert_eq!(
            root,
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .parent()
                .unwrap()
        );
    }
}
