//! `cargo xtask bench-clean`: stops the apps of runs, drops their databases and removes what
//! can be regenerated (`node_modules`, `dist`). Lists what it would do unless `--yes`; never
//! touches telemetry, results or reports unless `--purge`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_content::{Backend, CommandKind};
use bench_formats::files::STATE_FILE;

/// Stop the apps of runs, drop their databases, remove their generated node_modules/ and
/// dist/. Lists what it would do; `--yes` does it.
///
/// Telemetry, results (the apps' sources, grading files, state) and reports are kept unless
/// `--purge` is also given, which removes the run folders whole.
///
/// Examples:
///   cargo xtask bench-clean                    # list, for every run under runs/
///   cargo xtask bench-clean runs/sequential-upgrade-20261201 --yes
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folders, or app folders (default: every run under runs/).
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Do it (without it, only list).
    #[arg(long)]
    pub yes: bool,
    /// Also remove the run folders themselves: telemetry, results and reports.
    #[arg(long)]
    pub purge: bool,
    /// The PostgreSQL the apps used, when it is not the infrastructure's.
    #[arg(long, value_name = "PORT")]
    pub pg_port: Option<u16>,
}

/// One thing to clean.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Stop what bench-app started for the app.
    Stop(PathBuf),
    /// Drop the app's database with the backend's drop step.
    DropDatabase { app: PathBuf, database: String },
    /// Remove a generated folder.
    Remove(PathBuf),
    /// Remove a run folder whole (`--purge`).
    Purge(PathBuf),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Stop(app) => write!(f, "stop the app {}", app.display()),
            Action::DropDatabase { app, database } => {
                write!(f, "drop database {database} of {}", app.display())
            }
            Action::Remove(dir) => write!(f, "remove {}", dir.display()),
            Action::Purge(dir) => write!(f, "remove the run folder {} (--purge)", dir.display()),
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let root = bench_formats::paths::repo_root()?;
    let dirs = if args.dirs.is_empty() {
        vec![root.join("runs")]
    } else {
        args.dirs.clone()
    };
    let overrides = pg_override(args.pg_port);
    let actions = plan(&root, &dirs, args.purge, &overrides)?;
    if actions.is_empty() {
        println!("nothing to clean under {}", list(&dirs));
        return Ok(());
    }
    for a in &actions {
        println!("{}{a}", if args.yes { "" } else { "would " });
    }
    if !args.yes {
        println!("(dry run: add --yes to do it)");
        return Ok(());
    }
    let failures = act(&root, &actions, &overrides);
    if !failures.is_empty() {
        bail!(
            "{} action(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

fn list(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn pg_override(port: Option<u16>) -> std::collections::BTreeMap<String, String> {
    port.map(|p| ("pg_port".to_owned(), p.to_string()))
        .into_iter()
        .collect()
}

/// What cleaning `dirs` takes, in order: per app stop, drop, remove; then purges.
pub fn plan(
    root: &Path,
    dirs: &[PathBuf],
    purge: bool,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Action>> {
    let mut apps = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            bail!(
                "{} is not a folder: give run folders or app folders",
                dir.display()
            );
        }
        find_apps(dir, 0, &mut apps)?;
    }
    apps.sort();
    apps.dedup();
    let mut actions = Vec::new();
    for app in &apps {
        let state: bench_formats::AppState = bench_formats::read_json(&app.join(STATE_FILE))?;
        if app.join(bench_formats::app_run::APP_RUN_FILE).is_file() {
            actions.push(Action::Stop(app.clone()));
        }
        let backend = Backend::load(root, &state.backend)?;
        let vars = backend.vars_with(state.run_index, overrides)?;
        if let Some(database) = vars.get("database_name")
            && has_drop_step(&backend)
        {
            actions.push(Action::DropDatabase {
                app: app.clone(),
                database: database.clone(),
            });
        }
        let mut generated = Vec::new();
        find_generated(app, &mut generated)?;
        actions.extend(generated.into_iter().map(Action::Remove));
    }
    if purge {
        let mut runs: Vec<PathBuf> = apps
            .iter()
            .filter_map(|a| a.ancestors().nth(3).map(Path::to_path_buf))
            .collect();
        runs.sort();
        runs.dedup();
        actions.extend(runs.into_iter().map(Action::Purge));
    }
    Ok(actions)
}

/// The backend's reset steps that drop the database (named `drop …`).
fn drop_steps(
    backend: &Backend,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<bench_content::AppCommand>> {
    Ok(backend
        .commands_from(CommandKind::Reset, vars)?
        .into_iter()
        .filter(|c| c.name.starts_with("drop"))
        .collect())
}

fn has_drop_step(backend: &Backend) -> bool {
    backend
        .file
        .commands
        .reset
        .iter()
        .any(|c| c.name.starts_with("drop"))
}

fn find_apps(dir: &Path, depth: u32, apps: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join(STATE_FILE).is_file() {
        apps.push(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()));
        return Ok(());
    }
    if depth >= 4 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() && !matches!(name, "node_modules" | "telemetry" | "inputs" | ".loops") {
            find_apps(&path, depth + 1, apps)?;
        }
    }
    Ok(())
}

/// `node_modules` and `dist` folders inside an app (not looking inside them).
fn find_generated(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        match entry.file_name().to_str() {
            Some("node_modules" | "dist") => found.push(path),
            Some(".bench" | ".git") => {}
            _ => find_generated(&path, found)?,
        }
    }
    Ok(())
}

/// Does every action; returns the failures (one line each), continuing past them.
fn act(
    root: &Path,
    actions: &[Action],
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for a in actions {
        let done = match a {
            Action::Stop(app) => {
                let mut options = bench_app::AppOptions::new(root);
                options.overrides = overrides.clone();
                bench_app::stop(app, &options).map(|_| ())
            }
            Action::DropDatabase { app, .. } => drop_database(root, app, overrides),
            Action::Remove(dir) | Action::Purge(dir) => std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot remove {}", dir.display())),
        };
        match done {
            Ok(()) => println!("done: {a}"),
            Err(e) => failures.push(format!("{a}: {e:#}")),
        }
    }
    failures
}

/// Runs the backend's drop step for the app's database.
pub fn drop_database(
    root: &Path,
    app: &Path,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let state: bench_formats::AppState = bench_formats::read_json(&app.join(STATE_FILE))?;
    let backend = Backend::load(root, &state.backend)?;
    let mut vars = backend.vars_with(state.run_index, overrides)?;
    vars.insert("app_dir".into(), app.display().to_string());
    for step in drop_steps(&backend, &vars)? {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(&step.run).current_dir(app);
        let limit = Duration::from_secs(step.timeout_s);
        let out = bench_proc::output_within(&mut cmd, limit)
            .with_context(|| format!("`{}` did not finish within {limit:?}", step.name))?;
        if !out.status.success() {
            bail!(
                "`{}` failed: {}",
                step.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}
