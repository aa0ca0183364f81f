//! Where a grading's files go, and archiving the previous ones.
//!
//! Layout, under the output folder (the app folder, or `--out`):
//! - `GRADING_RESULTS.md`, `grading.json` and, when points were lost, `BUG_REPORT.md`: the
//!   latest grading, where the fix session and people look;
//! - `.bench/grading/<YYYYMMDD-HHMMSS>-level-<N>/`: one folder per grading, holding copies of
//!   those files, the driver's program and log, and `artifacts/` (screenshots and traces of
//!   failed steps). `bench-report` reads grades per level from these folders;
//! - `.bench/grading/replaced-<YYYYMMDD-HHMMSS>/`: the files a grading found in place of its
//!   own (a previous grading's, or a hand-written `BUG_REPORT.md`), moved there, never
//!   overwritten.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bench_formats::files::{BUG_REPORT_FILE, GRADING_RESULTS_FILE};
use bench_formats::grading::{GRADING_FILE, GradingFile};

use crate::render;

/// The files of the latest grading, in the output folder.
pub const OUTPUT_FILES: [&str; 3] = [GRADING_RESULTS_FILE, BUG_REPORT_FILE, GRADING_FILE];

/// `<out>/.bench/grading`.
pub fn grading_root(out: &Path) -> PathBuf {
    bench_formats::paths::state_dir(out).join("grading")
}

/// The folder of one grading: `<out>/.bench/grading/<stamp>-level-<N>`, made unique with a
/// `-2`, `-3`… suffix.
pub fn run_dir(out: &Path, stamp: &str, level: u32) -> PathBuf {
    let base = grading_root(out).join(format!("{stamp}-level-{level}"));
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    dir
}

/// Moves the output files already in `out` into `.bench/grading/replaced-<stamp>/`;
/// returns where each went.
pub fn archive_previous(out: &Path, stamp: &str) -> Result<Vec<PathBuf>> {
    let present: Vec<PathBuf> = OUTPUT_FILES
        .iter()
        .map(|n| out.join(n))
        .filter(|p| p.exists())
        .collect();
    if present.is_empty() {
        return Ok(Vec::new());
    }
    let base = grading_root(out).join(format!("replaced-{stamp}"));
    let mut dest = base.clone();
    let mut n = 2;
    while dest.exists() {
        dest = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    std::fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut moved = Vec::new();
    for path in present {
        let to = dest.join(path.file_name().unwrap_or_default());
        std::fs::rename(&path, &to).with_context(|| {
            format!(
                "cannot move {} to {} (nothing was overwritten)",
                path.display(),
                to.display()
            )
        })?;
        moved.push(to);
    }
    Ok(moved)
}

/// Writes `name` with `text` into both folders; returns the output folder's path.
fn write_both(out: &Path, run: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = out.join(name);
    bench_formats::io::write_atomic(&path, text.as_bytes())?;
    bench_formats::io::write_atomic(&run.join(name), text.as_bytes())?;
    Ok(path)
}

/// Writes the grading's files into `out` (after archiving what was there) and copies into
/// `run`; returns the paths written in `out`.
pub fn write_outputs(
    out: &Path,
    run: &Path,
    stamp: &str,
    file: &GradingFile,
) -> Result<Vec<PathBuf>> {
    archive_previous(out, stamp)?;
    std::fs::create_dir_all(run).with_context(|| format!("cannot create {}", run.display()))?;
    let json = serde_json::to_string_pretty(file).context("cannot serialise grading.json")?;
    let mut written = vec![
        write_both(
            out,
            run,
            GRADING_RESULTS_FILE,
            &render::grading_results(file),
        )?,
        write_both(out, run, GRADING_FILE, &(json + "\n"))?,
    ];
    if let Some(report) = render::bug_report(file) {
        written.push(write_both(out, run, BUG_REPORT_FILE, &report)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_files_are_moved_aside_never_overwritten() {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("BUG_REPORT.md"), "hand-written").unwrap();
        std::fs::write(out.path().join("notes.txt"), "mine").unwrap();
        let first = archive_previous(out.path(), "20261201-030000").unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(std::fs::read_to_string(&first[0]).unwrap(), "hand-written");
        assert!(!out.path().join("BUG_REPORT.md").exists());
        assert!(out.path().join("notes.txt").exists());
        // The same second again gets a folder of its own.
        std::fs::write(out.path().join("BUG_REPORT.md"), "second").unwrap();
        let second = archive_previous(out.path(), "20261201-030000").unwrap();
        assert_ne!(first[0], second[0]);
        assert_eq!(std::fs::read_to_string(&first[0]).unwrap(), "hand-written");
        assert_eq!(
            archive_previous(out.path(), "x").unwrap(),
            Vec::<PathBuf>::new()
        );
    }
}
