//! The Playwright driver (`tools/grade/driver/`): installing its npm packages on first use
//! into an ignored folder, and running it on a program while its events stream in.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::events::{Event, parse_line};

/// The driver's sources, relative to the repository root.
pub const DRIVER_SOURCE: &str = "tools/grade/driver";
/// The driver's entry point inside its folder.
pub const DRIVER_MAIN: &str = "driver.mjs";

/// The install folder users get: `<root>/.bench/grade-driver`.
pub fn default_install_dir(root: &Path) -> PathBuf {
    bench_formats::paths::state_dir(root).join("grade-driver")
}

/// Makes `install_dir` hold the driver with its npm packages (`npm ci` from the checked-in
/// `package-lock.json`, rerun only when the lock changes), and returns its entry point.
/// Parallel callers take turns on a lock file beside the folder.
pub fn install(root: &Path, install_dir: &Path) -> Result<PathBuf> {
    let src = root.join(DRIVER_SOURCE);
    if !src.join(DRIVER_MAIN).is_file() || !src.join("package-lock.json").is_file() {
        bail!(
            "the grading driver is missing: {} needs {DRIVER_MAIN} and package-lock.json (run from the benchmark repository)",
            src.display()
        );
    }
    let parent = install_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let lock_path = install_dir.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create lock file {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    bench_proc::npm::copy_tree(&src, install_dir, &["node_modules"])?;
    bench_proc::npm::install_locked(
        install_dir,
        "the grading driver's npm packages",
        Path::new("node_modules/playwright-core"),
        false,
    )?;
    Ok(install_dir.join(DRIVER_MAIN))
}

/// A driver run's end: how it exited and the tail of its log.
pub struct DriverExit {
    pub success: bool,
    pub status: String,
    pub log_tail: String,
}

/// Runs `node <main> <program>`; every stdout event goes to `on_event` as it arrives,
/// stderr to `log`. The driver is killed when `deadline` passes.
pub fn run(
    main: &Path,
    program: &Path,
    log: &Path,
    deadline: Duration,
    on_event: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<DriverExit> {
    let dir = main.parent().unwrap_or(Path::new("."));
    let mut command = Command::new("node");
    bench_proc::in_new_group(&mut command);
    let mut child = command
        .arg(main)
        .arg(program)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run node: install Node.js 20 (Debian: apt-get install nodejs)")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("driver stdout missing")?;
    let stderr = child.stderr.take().context("driver stderr missing")?;
    let log_file = std::fs::File::create(log)
        .with_context(|| format!("cannot create the driver log {}", log.display()))?;
    let stderr_thread = std::thread::spawn(move || copy_log(stderr, log_file));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let result = pump(&rx, Instant::now() + deadline, on_event);
    if result.is_err() {
        // The browser is the driver's child: stop the whole group, not only node.
        let _ = bench_proc::stop_group(pid, Duration::from_secs(3));
    }
    let status = child.wait().context("cannot wait for the grading driver")?;
    // Whatever the driver left behind (a browser it did not close) goes with it.
    let _ = bench_proc::stop_group(pid, Duration::from_secs(3));
    let tail = stderr_thread.join().unwrap_or_default();
    result?;
    Ok(DriverExit {
        success: status.success(),
        status: status.to_string(),
        log_tail: tail,
    })
}

fn pump(
    rx: &mpsc::Receiver<String>,
    deadline: Instant,
    on_event: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(event) = parse_line(&line)? {
                    on_event(event)?;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("the grading driver did not finish in time and was stopped")
            }
        }
    }
}

/// Copies the driver's stderr into its log as it comes (so it can be followed while the
/// driver runs); returns the last 40 lines.
fn copy_log(from: impl Read, mut to: std::fs::File) -> String {
    let mut tail = std::collections::VecDeque::with_capacity(40);
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(to, "{line}");
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join("\n")
}
