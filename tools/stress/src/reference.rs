//! The project's reference chat app (`reference-app/server`: Express + Socket.IO + Drizzle
//! on PostgreSQL) as a stress target: its server is copied into `target/stress-reference-app/`
//! with its npm packages installed once per lock file, its schema is pushed into the given
//! database, and it is started on a free port, with its own socket handlers or with one of
//! the shapes of `reference-app/server/src/stress-shapes.js` (`CHAT_SHAPE`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Where the app's server sources are.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reference-app/server")
}

/// The app's folder (with `server/`), for `--source`.
pub fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reference-app")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// The folder under `target/` holding the tests' copies of the reference app: on the file
/// system of the npm package cache, so that the copies' packages are hard-linked.
pub fn scratch_dir() -> Result<PathBuf> {
    let dir = target_dir().join("stress-reference-app");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Copies the reference app into `dest` (new or empty), its npm packages hard-linked from
/// the cache under `target/` (installed once per lock file).
pub fn copy_into(dest: &Path) -> Result<()> {
    let cache = target_dir().join("reference-app-modules");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    bench_app::reference::prepare(&root, &cache, dest)
}

/// A copy of the reference app in a temporary folder of [`scratch_dir`], removed when the
/// returned guard is dropped; the path is its `server/`. Safe to call from parallel tests.
pub fn prepare() -> Result<(tempfile::TempDir, PathBuf)> {
    let parent = scratch_dir()?;
    let copy = tempfile::Builder::new()
        .prefix("app-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a folder in {}", parent.display()))?;
    copy_into(copy.path())?;
    let server = copy.path().join("server");
    Ok((copy, server))
}

/// How to run the app.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// PostgreSQL URL of an existing, empty (or already pushed) database.
    pub db_url: String,
    /// A shape of `stress-shapes.js` (`published`, `rest`, `camel`, `auth`, `classic`,
    /// `limited`, `noop`); `None` runs the app's own socket handlers.
    pub shape: Option<String>,
    /// Messages per second per user for the `limited` shape.
    pub rate_limit: Option<u32>,
}

/// A running reference app; stopped when dropped.
pub struct ReferenceApp {
    child: Child,
    pub port: u16,
    /// The app's copy, removed after the server stops.
    _copy: tempfile::TempDir,
}

impl ReferenceApp {
    /// Pushes the schema into `db_url` and starts the server on a free port.
    pub fn start(options: &Options) -> Result<ReferenceApp> {
        let (copy, dir) = prepare()?;
        let push = Command::new("npm")
            .args(["run", "--silent", "db:push"])
            .env("DATABASE_URL", &options.db_url)
            .env("CI", "true")
            .current_dir(&dir)
            .output()
            .context("cannot run npm run db:push (install Node.js 20+ and npm)")?;
        if !push.status.success() {
            bail!(
                "the reference app's schema push failed:\n{}{}",
                String::from_utf8_lossy(&push.stdout),
                String::from_utf8_lossy(&push.stderr)
            );
        }
        let mut cmd = Command::new(dir.join("node_modules/.bin/tsx"));
        cmd.arg("src/index.ts")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("DATABASE_URL", &options.db_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(shape) = &options.shape {
            cmd.env("CHAT_SHAPE", shape);
        }
        if let Some(limit) = options.rate_limit {
            cmd.env("CHAT_RATE_LIMIT", limit.to_string());
        }
        let child = bench_proc::in_new_group(&mut cmd)
            .spawn()
            .context("cannot start the reference app with tsx (did npm ci work?)")?;
        ReferenceApp::wait_ready(child, copy)
    }

    fn wait_ready(mut child: Child, copy: tempfile::TempDir) -> Result<ReferenceApp> {
        let stdout = child.stdout.take().context("no stdout")?;
        let mut stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("listening on ") {
                    let port = rest.split_whitespace().next().and_then(|p| p.parse().ok());
                    let _ = tx.send(port);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => {
                // Keep draining stderr so the server never blocks on a full pipe.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                });
                Ok(ReferenceApp {
                    child,
                    port,
                    _copy: copy,
                })
            }
            _ => {
                let _ = bench_proc::stop_group(child.id(), Duration::from_secs(3));
                let _ = child.wait();
                let mut err = String::new();
                let _ = stderr.read_to_string(&mut err);
                bail!("the reference app did not start:\n{err}")
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ReferenceApp {
    fn drop(&mut self) {
        // The app runs in a process group of its own (tsx starts node as its child).
        let _ = bench_proc::stop_group(self.child.id(), Duration::from_secs(3));
        let _ = self.child.wait();
    }
}
