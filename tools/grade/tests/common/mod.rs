//! Shared by bench-grade's integration tests: where the repository, the driver's npm
//! packages and the reference app's packages are (caches under `target/`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bench_grade::selftest::SelfTest;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target"),
    }
}

/// The driver's npm packages, installed once for all tests.
pub fn driver_dir() -> PathBuf {
    target_dir().join("bench-grade-driver")
}

/// A self-test setup with every cache under `target/` and the app copied into `work`.
pub fn self_test(work: &Path, level: u32, features: Vec<u32>) -> SelfTest {
    let mut test = SelfTest::for_user(&repo_root(), driver_dir(), None);
    test.work_dir = work.to_path_buf();
    test.modules_cache = target_dir().join("reference-app-modules");
    test.level = level;
    test.features = features;
    test
}

/// A temporary folder under `target/` (same file system as the caches, for hard links).
pub fn work_dir() -> tempfile::TempDir {
    let parent = target_dir().join("bench-grade-tests");
    std::fs::create_dir_all(&parent).unwrap();
    tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(parent)
        .unwrap()
}

/// Every file under `dir` outside `.bench/`, with its bytes: what "the app's files" are.
pub fn app_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_name() == ".bench" || entry.file_name() == "node_modules" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}
