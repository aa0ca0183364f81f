//! `--app APP_DIR`: measuring an app the harness built, by its folder.
//!
//! The app's backend, URL, database URL and ports come from its state and its backend's
//! `backend.toml` (through `bench-app`), with `--var NAME=VALUE` replacing backend values
//! as `bench-app --var` does (`pg_port` for a PostgreSQL on another port); its source is
//! read for discovery; results go to its run's `stress/` folder. An app that is not running
//! is started on a fresh database and stopped again after the run; a running app is left
//! as it is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_app::{App, AppOptions, Started};

use crate::cli::{Args, BackendKind};

/// An app opened for a run; stops the app on drop when this run started it.
pub struct AppUnderTest {
    app: App,
    started_here: bool,
}

impl AppUnderTest {
    /// Opens the app, fills in what `args` leaves out, and starts the app if needed.
    pub fn prepare(dir: &Path, args: &mut Args) -> Result<AppUnderTest> {
        let root = bench_formats::paths::repo_root()?;
        let mut options = AppOptions::new(&root);
        options.overrides = args.vars.iter().cloned().collect();
        let app = App::open(dir, &options).with_context(|| {
            format!(
                "cannot open the app in {} for --app: give the folder of an app the harness built, and only values its backend has to --var",
                dir.display()
            )
        })?;
        let kind = kind_of(&app.backend().name)?;
        args.backend.get_or_insert(kind);
        let vars = app.vars();
        let port = |name: &str| {
            vars.get(name)
                .cloned()
                .with_context(|| format!("the {} backend defines no {name}", app.backend().name))
        };
        if args.url.is_none() {
            let port = match kind {
                BackendKind::Spacetimedb => port("spacetime_port")?,
                _ => port("express_port")?,
            };
            args.url = Some(format!("http://127.0.0.1:{port}"));
        }
        if kind == BackendKind::Postgres && args.db_url.is_none() {
            args.db_url = Some(port("database_url")?);
        }
        if kind == BackendKind::Spacetimedb
            && let Some(name) = vars.get("database_name")
        {
            args.database = name.clone();
        }
        if args.source.is_none() {
            args.source = Some(app.dir().to_path_buf());
        }
        if args.out.is_none() {
            args.out = run_stress_dir(app.dir());
        }
        let started_here = start_fresh(&app)?;
        Ok(AppUnderTest { app, started_here })
    }
}

impl Drop for AppUnderTest {
    fn drop(&mut self) {
        if !self.started_here {
            return;
        }
        eprintln!("stopping the app this run started...");
        if let Err(err) = self.app.stop() {
            eprintln!(
                "warning: could not stop the app in {}: {err:#}",
                self.app.dir().display()
            );
        }
    }
}

fn kind_of(backend: &str) -> Result<BackendKind> {
    Ok(match backend {
        "postgres" => BackendKind::Postgres,
        "mongodb" => BackendKind::Mongodb,
        "spacetime" | "spacetimedb" => BackendKind::Spacetimedb,
        other => bail!(
            "the app's backend {other:?} is not one bench-stress drives: give --backend, --url and --db-url"
        ),
    })
}

/// Starts the app on a fresh database unless it runs; true when it was started here.
fn start_fresh(app: &App) -> Result<bool> {
    let running = app.status()?.steps.iter().any(|s| s.alive);
    if running {
        eprintln!(
            "the app in {} is running: measuring it as it is",
            app.dir().display()
        );
        return Ok(false);
    }
    eprintln!(
        "starting the app in {} on a fresh database...",
        app.dir().display()
    );
    app.reset()
        .context("cannot give the app a fresh database before the run")?;
    Ok(matches!(app.start()?, Started::Started(_)))
}

/// `runs/<run>/<backend>/stress/` for an app in `runs/<run>/<backend>/results/chat-app-*/`.
fn run_stress_dir(app_dir: &Path) -> Option<PathBuf> {
    let results = app_dir.parent()?;
    (results.file_name()? == "results").then(|| results.parent().map(|b| b.join("stress")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_go_to_the_runs_stress_folder() {
        assert_eq!(
            run_stress_dir(Path::new("/r/runs/x-20260101/postgres/results/chat-app-1")),
            Some(PathBuf::from("/r/runs/x-20260101/postgres/stress"))
        );
        assert_eq!(run_stress_dir(Path::new("/tmp/some-app")), None);
    }
}
