//! The project's reference chat server (Node + Express + Socket.IO + `pg`, in
//! `tools/stress/reference-server/`): installing its npm packages once into a cache under
//! `target/`, and starting it on a free port.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

const FILES: [&str; 3] = ["package.json", "package-lock.json", "server.js"];

/// Where the sources are.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reference-server")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// Copies the server into `target/stress-reference-server/` and runs `npm ci` there when
/// the lock file changed since the last install. Safe to call from parallel tests.
pub fn prepare() -> Result<PathBuf> {
    let dir = target_dir().join("stress-reference-server");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = dir.join(".install.lock");
    let lock_file = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    // Held until `lock_file` is dropped: one install at a time across parallel tests.
    lock_file
        .lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    for name in FILES {
        let from = source_dir().join(name);
        std::fs::copy(&from, dir.join(name))
            .with_context(|| format!("cannot copy {}", from.display()))?;
    }
    let lock = std::fs::read(dir.join("package-lock.json")).with_context(|| {
        format!(
            "cannot read the package-lock.json just copied into {}",
            dir.display()
        )
    })?;
    let hash = format!("{:x}", Sha256::digest(&lock));
    let stamp = dir.join("node_modules/.bench-lock-sha256");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(hash.as_str()) {
        return Ok(dir);
    }
    let out = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--cache",
        ])
        .arg(target_dir().join("npm-cache"))
        .current_dir(&dir)
        .output()
        .context("cannot run npm (install Node.js 18+ and npm)")?;
    if !out.status.success() {
        bail!(
            "npm ci failed in {}:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&stamp, hash).with_context(|| {
        format!(
            "npm ci worked, but its stamp {} cannot be written",
            stamp.display()
        )
    })?;
    Ok(dir)
}

/// How to run the server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// PostgreSQL URL; `None` runs the no-database mode (`NOOP=1`).
    pub db_url: Option<String>,
    /// Messages per second per user (`RATE_LIMIT`).
    pub rate_limit: Option<u32>,
    /// The other common shape of generated apps (`SHAPE=alt`).
    pub alt_shape: bool,
    /// Session tokens on REST and the socket (`AUTH=1`).
    pub auth: bool,
}

/// A running reference server; killed when dropped.
pub struct ReferenceServer {
    child: Child,
    pub port: u16,
}

impl ReferenceServer {
    pub fn start(options: &Options) -> Result<ReferenceServer> {
        let dir = prepare()?;
        let mut cmd = Command::new("node");
        cmd.arg("server.js")
            .current_dir(&dir)
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &options.db_url {
            Some(url) => cmd.env("DATABASE_URL", url),
            None => cmd.env("NOOP", "1"),
        };
        if let Some(limit) = options.rate_limit {
            cmd.env("RATE_LIMIT", limit.to_string());
        }
        if options.alt_shape {
            cmd.env("SHAPE", "alt");
        }
        if options.auth {
            cmd.env("AUTH", "1");
        }
        let mut child = cmd
            .spawn()
            .context("cannot start node (install Node.js 18+)")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening on ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(port)) => {
                // Keep draining stderr so the server never blocks on a full pipe.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                });
                Ok(ReferenceServer { child, port })
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                let _ = stderr.read_to_string(&mut err);
                bail!("the reference server did not start:\n{err}")
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process by its id.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..30 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
