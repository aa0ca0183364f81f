//! Where a run's files go, compatible with the original harness:
//!
//! ```text
//! runs/<variant>-<YYYYMMDD>[-N]/<backend>/
//!     inputs/<run-id>/            prompt and content files of each session + SHA256SUMS
//!     results/chat-app-<ts>/      the app (its state in .bench/state.json, level-N snapshots)
//!     telemetry/<run-id>/         metadata.json, transcript.jsonl, cost-summary.json, …
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::{AppState, Phase};
use chrono::{DateTime, Local};

/// The app's state file, relative to the app folder.
pub use bench_formats::files::STATE_FILE;

/// Local time as used in folder names: `YYYYMMDD-HHMMSS`.
pub fn stamp(t: &DateTime<Local>) -> String {
    t.format("%Y%m%d-%H%M%S").to_string()
}

/// The local date as used in run folder names: `YYYYMMDD`.
pub fn day(t: &DateTime<Local>) -> String {
    t.format("%Y%m%d").to_string()
}

/// `<backend>-level<N>-<ts>`, `<backend>-upgrade-to-level<N>-<ts>`, `<backend>-fix-level<N>-<ts>`.
pub fn run_id(backend: &str, phase: Phase, level: u32, ts: &str) -> String {
    match phase {
        Phase::Generate => format!("{backend}-level{level}-{ts}"),
        Phase::Upgrade => format!("{backend}-upgrade-to-level{level}-{ts}"),
        Phase::Fix => format!("{backend}-fix-level{level}-{ts}"),
    }
}

/// The backend folder of a new app: `runs/<variant>-<date>[-N]/<backend>`, claimed for it.
///
/// A run folder holds one app per backend, so that a run compares backends and each
/// repetition (another `--run-index`, or the same one later that day) is a run of its own
/// that `bench-report` can put in its statistics instead of adding two apps together. The
/// claim is the creation of `<backend>/results/`, which only one caller can win: parallel
/// runs starting together end up in different folders, and a folder some other tool made
/// (a published run, say) is never written into.
pub fn backend_dir_for_new_app(
    runs_dir: &Path,
    variant: &str,
    date: &str,
    backend: &str,
) -> Result<PathBuf> {
    for n in 1..10_000u32 {
        let name = if n == 1 {
            format!("{variant}-{date}")
        } else {
            format!("{variant}-{date}-{n}")
        };
        let dir = runs_dir.join(name).join(backend);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        match std::fs::create_dir(dir.join("results")) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create {}", dir.join("results").display()));
            }
        }
    }
    bail!(
        "too many runs under {} for {variant} on {date}",
        runs_dir.display()
    )
}

/// Creates `results/chat-app-<ts>` (or `…-<ts>-2`, … if taken) and returns it.
pub fn create_app_dir(backend_dir: &Path, ts: &str) -> Result<PathBuf> {
    let results = backend_dir.join("results");
    std::fs::create_dir_all(&results)
        .with_context(|| format!("cannot create {}", results.display()))?;
    for n in 1..1000u32 {
        let name = if n == 1 {
            format!("chat-app-{ts}")
        } else {
            format!("chat-app-{ts}-{n}")
        };
        let dir = results.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!(
        "cannot find a free app folder name under {}",
        results.display()
    )
}

/// Creates the session's telemetry folder `telemetry/<run-id>` (never reusing one: a
/// second session with the same id in the same second, e.g. a parallel run, gets
/// `<run-id>-2`). Returns the folder and the run id it stands for.
pub fn create_session_dir(backend_dir: &Path, run_id: &str) -> Result<(PathBuf, String)> {
    let telemetry = backend_dir.join("telemetry");
    std::fs::create_dir_all(&telemetry)
        .with_context(|| format!("cannot create {}", telemetry.display()))?;
    for n in 1..1000u32 {
        let id = if n == 1 {
            run_id.to_owned()
        } else {
            format!("{run_id}-{n}")
        };
        let dir = telemetry.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((dir, id)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!(
        "cannot find a free session folder name for {run_id} under {}",
        telemetry.display()
    )
}

/// An existing app: its folder, its backend folder and its state.
#[derive(Debug, Clone)]
pub struct ExistingApp {
    pub app_dir: PathBuf,
    pub backend_dir: PathBuf,
    pub state: AppState,
}

/// Opens an app made by `bench-run` (it has `.bench/state.json`).
pub fn open_app(app_dir: &Path) -> Result<ExistingApp> {
    if !app_dir.exists() {
        bail!(
            "app folder {} does not exist (give the path of a results/chat-app-<ts> folder made by `cargo xtask bench-run --backend …`)",
            app_dir.display()
        );
    }
    if !app_dir.is_dir() {
        bail!("{} is not a folder", app_dir.display());
    }
    let app_dir = app_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", app_dir.display()))?;
    let state_path = app_dir.join(STATE_FILE);
    if !state_path.is_file() {
        bail!(
            "{} has no {STATE_FILE}: it was not made by `cargo xtask bench-run` (generate an app first with --backend)",
            app_dir.display()
        );
    }
    let state: AppState = bench_formats::read_json(&state_path)?;
    let results = app_dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "results"))
        .with_context(|| {
            format!(
                "{} is not inside a results/ folder of a run (expected runs/<variant>-<date>/<backend>/results/chat-app-<ts>)",
                app_dir.display()
            )
        })?;
    let backend_dir = results
        .parent()
        .with_context(|| format!("{} has no backend folder", results.display()))?
        .to_path_buf();
    Ok(ExistingApp {
        app_dir,
        backend_dir,
        state,
    })
}

/// Holds an app for one session: a second session on the same app is refused while the
/// first runs. Released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct AppLock {
    _file: std::fs::File,
}

/// Takes the app's session lock (`.bench/session.lock`), or says who holds it.
pub fn lock_app(app_dir: &Path) -> Result<AppLock> {
    let path = app_dir.join(".bench").join("session.lock");
    let file = try_lock_file(&path, |holder| {
        format!(
            "another bench-run session is working on {} (process {holder}): wait for it to finish",
            app_dir.display()
        )
    })?;
    Ok(AppLock { _file: file })
}

/// Takes an exclusive lock on `path` (created with its folder) without waiting, and writes
/// this process's id into it; released when the file is dropped or the process ends. When
/// another process holds it, fails with `busy(its process id)`.
pub fn try_lock_file(path: &Path, busy: impl FnOnce(&str) -> String) -> Result<std::fs::File> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            bail!("{}", busy(holder.trim()));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file)
}

/// Saves an app's state.
pub fn save_state(app_dir: &Path, state: &AppState) -> Result<()> {
    bench_formats::write_json(&app_dir.join(STATE_FILE), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(run_index: u32) -> AppState {
        AppState {
            backend: "postgres".into(),
            level: 1,
            variant: bench_formats::Variant::SequentialUpgrade,
            rules: bench_formats::Rules::Guided,
            run_index,
            ..AppState::default()
        }
    }

    #[test]
    fn run_ids_follow_the_original_names() {
        assert_eq!(
            run_id("postgres", Phase::Upgrade, 3, "20260406-153732"),
            "postgres-upgrade-to-level3-20260406-153732"
        );
        assert_eq!(
            run_id("spacetime", Phase::Generate, 1, "x"),
            "spacetime-level1-x"
        );
        assert_eq!(
            run_id("mongodb", Phase::Fix, 2, "x"),
            "mongodb-fix-level2-x"
        );
    }

    #[test]
    fn each_new_app_claims_a_run_folder_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path();
        let first =
            backend_dir_for_new_app(runs, "sequential-upgrade", "20260406", "postgres").unwrap();
        assert!(first.ends_with("sequential-upgrade-20260406/postgres"));
        let app = create_app_dir(&first, "20260406-100000").unwrap();
        save_state(&app, &state(0)).unwrap();

        // Another backend joins the same run; another app of the same backend (a parallel
        // run index, or a repetition) starts a run of its own.
        let other_backend =
            backend_dir_for_new_app(runs, "sequential-upgrade", "20260406", "spacetime").unwrap();
        assert!(other_backend.ends_with("sequential-upgrade-20260406/spacetime"));
        let second =
            backend_dir_for_new_app(runs, "sequential-upgrade", "20260406", "postgres").unwrap();
        assert!(second.ends_with("sequential-upgrade-20260406-2/postgres"));
        let third =
            backend_dir_for_new_app(runs, "sequential-upgrade", "20260406", "postgres").unwrap();
        assert!(third.ends_with("sequential-upgrade-20260406-3/postgres"));

        // A folder another tool made (no claim by this harness) is never written into.
        let foreign = runs.join("one-shot-20260406/postgres/results/chat-app-x");
        std::fs::create_dir_all(&foreign).unwrap();
        let fresh = backend_dir_for_new_app(runs, "one-shot", "20260406", "postgres").unwrap();
        assert!(fresh.ends_with("one-shot-20260406-2/postgres"));

        // Same second: the app folder gets a suffix instead of being reused.
        let again = create_app_dir(&first, "20260406-100000").unwrap();
        assert!(again.ends_with("chat-app-20260406-100000-2"));

        let opened = open_app(&app).unwrap();
        assert_eq!(opened.backend_dir, first.canonicalize().unwrap());
        assert_eq!(opened.state.level, 1);
    }

    #[test]
    fn one_session_at_a_time_per_app() {
        let tmp = tempfile::tempdir().unwrap();
        let first = lock_app(tmp.path()).unwrap();
        let err = lock_app(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("another bench-run session"), "{err}");
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        drop(first);
        lock_app(tmp.path()).unwrap();
    }

    #[test]
    fn opening_a_missing_or_foreign_folder_says_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let err = format!("{:#}", open_app(&tmp.path().join("nope")).unwrap_err());
        assert!(err.contains("does not exist"), "{err}");
        let err = format!("{:#}", open_app(tmp.path()).unwrap_err());
        assert!(err.contains("not made by"), "{err}");
    }
}
