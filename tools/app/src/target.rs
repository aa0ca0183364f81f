//! Which app, of which backend, at which run index, with which values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bench_content::Backend;
use bench_content::backend::BACKENDS_DIR;
use bench_formats::AppState;
use bench_formats::app_run::{APP_LOGS_DIR, APP_RUN_FILE, AppRun};
use bench_formats::files::STATE_FILE;

/// Lock file serialising bench-app commands on one app, relative to the app folder.
const LOCK_FILE: &str = ".bench/app.lock";
/// How long a stopped server gets to exit after SIGTERM before SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How to find the app's backend and run values.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The repository root, which holds `backends/`.
    pub root: PathBuf,
    /// The backend, when the app has no `.bench/state.json` (else it overrides the state's).
    pub backend: Option<String>,
    /// The run index (ports, database), when the app has no state (else it overrides it).
    pub run_index: Option<u32>,
    /// Values used in place of the backend's (`pg_port` → a PostgreSQL on another port).
    /// Empty: those the running app was started with, if any.
    pub overrides: BTreeMap<String, String>,
    /// SIGTERM → SIGKILL grace period when stopping.
    pub grace: Duration,
}

impl AppOptions {
    /// Defaults for the repository at `root`: backend and run index from the app's state.
    pub fn new(root: &Path) -> AppOptions {
        AppOptions {
            root: root.to_path_buf(),
            backend: None,
            run_index: None,
            overrides: BTreeMap::new(),
            grace: DEFAULT_GRACE,
        }
    }
}

/// An app folder resolved to its backend, run index and the values its commands use.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) dir: PathBuf,
    pub(crate) backend: Backend,
    pub(crate) run_index: u32,
    pub(crate) overrides: BTreeMap<String, String>,
    /// The backend's values for this run, overrides applied, plus `app_dir`.
    pub(crate) vars: BTreeMap<String, String>,
    pub(crate) grace: Duration,
}

impl App {
    /// Resolves `app_dir`: backend and run index from `--backend`/`--run-index`, else the
    /// app's `.bench/state.json`, else detection by the backends' `[detect]` rules and run
    /// index 0.
    pub fn open(app_dir: &Path, options: &AppOptions) -> Result<App> {
        let dir = std::path::absolute(app_dir)
            .with_context(|| format!("cannot resolve the app folder {}", app_dir.display()))?;
        if !dir.is_dir() {
            bail!(
                "{} is not a folder: give the app's folder (results/chat-app-<ts>/)",
                dir.display()
            );
        }
        let state = read_state(&dir)?;
        let backend = match (&options.backend, &state) {
            (Some(name), _) => Backend::load(&options.root, name)?,
            (None, Some(state)) => Backend::load(&options.root, &state.backend)
                .with_context(|| format!("the backend named in {STATE_FILE}"))?,
            (None, None) => detect(&options.root, &dir)?,
        };
        let run_index = options
            .run_index
            .or(state.as_ref().map(|s| s.run_index))
            .unwrap_or(0);
        let mut overrides = options.overrides.clone();
        if overrides.is_empty()
            && let Some(run) = read_run(&dir)?
        {
            overrides = run.overrides;
        }
        let mut vars = backend.vars_with(run_index, &overrides)?;
        vars.insert("app_dir".into(), dir.display().to_string());
        Ok(App {
            dir,
            backend,
            run_index,
            overrides,
            vars,
            grace: options.grace,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn run_index(&self) -> u32 {
        self.run_index
    }

    /// The values the backend's commands are filled with.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    /// The ports the app's own servers listen on, by name (`vite`, `express`); shared
    /// servers (a SpacetimeDB host) are not the app's.
    pub fn ports(&self) -> BTreeMap<String, u16> {
        let spec = &self.backend.file.ports;
        let named = [
            ("vite", Some(spec.vite)),
            ("express", spec.express),
            ("spacetime", spec.spacetime),
        ];
        named
            .into_iter()
            .filter_map(|(name, p)| Some((name, p?)))
            .filter(|(_, p)| p.per_run > 0)
            .filter_map(|(name, _)| {
                let port = self.vars.get(&format!("{name}_port"))?.parse().ok()?;
                Some((name.to_string(), port))
            })
            .collect()
    }

    /// The client's address (`http://127.0.0.1:<vite port>/`), what a browser opens.
    pub fn client_url(&self) -> String {
        let port = self.ports().get("vite").copied().unwrap_or_default();
        format!("http://127.0.0.1:{port}/")
    }

    pub(crate) fn run_file(&self) -> PathBuf {
        self.dir.join(APP_RUN_FILE)
    }

    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.dir.join(APP_LOGS_DIR)
    }

    pub(crate) fn lock(&self) -> Result<std::fs::File> {
        bench_proc::lock_exclusive(&self.dir.join(LOCK_FILE))
    }

    /// The record of what `start` left running, if any.
    pub fn run_record(&self) -> Result<Option<AppRun>> {
        read_run(&self.dir)
    }
}

fn read_state(dir: &Path) -> Result<Option<AppState>> {
    let path = dir.join(STATE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let state: AppState = bench_formats::read_json(&path).with_context(|| {
        format!(
            "{} is unreadable: fix it, or move it away and give --backend and --run-index",
            path.display()
        )
    })?;
    Ok(Some(state))
}

pub(crate) fn read_run(dir: &Path) -> Result<Option<AppRun>> {
    let path = dir.join(APP_RUN_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let run = bench_formats::read_json(&path).with_context(|| {
        format!(
            "{} is unreadable: stop the app's servers yourself, then delete it",
            path.display()
        )
    })?;
    Ok(Some(run))
}

/// The one backend whose `[detect]` rules match the app.
fn detect(root: &Path, dir: &Path) -> Result<Backend> {
    let folder = root.join(BACKENDS_DIR);
    let entries = std::fs::read_dir(&folder).with_context(|| {
        format!(
            "cannot list {}: run from the repository (or set BENCH_ROOT)",
            folder.display()
        )
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("backend.toml").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    let mut found = Vec::new();
    for name in &names {
        let backend = Backend::load(root, name)?;
        if backend.detects(dir) {
            found.push(backend);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "{} has no {STATE_FILE} and looks like an app of no backend ({}): give --backend",
            dir.display(),
            names.join(", ")
        ),
        _ => bail!(
            "{} looks like an app of several backends ({}): give --backend",
            dir.display(),
            found
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
