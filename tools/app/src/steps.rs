//! Running one step of the backend's `[commands]`: a foreground command with its time
//! limit, or a background server until it is ready; output to the step's log.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bench_content::AppCommand;
use bench_formats::app_run::{APP_LOGS_DIR, RunningStep};
use bench_proc::{CommandError, Ready};

use crate::target::App;

/// How often a foreground step is checked.
const POLL: Duration = Duration::from_millis(100);

/// The log file name of a step: its name in lower case, anything but letters and digits
/// replaced by `-` (`install server dependencies` → `install-server-dependencies.log`).
pub fn log_name(step: &str) -> String {
    let mut slug = String::new();
    for c in step.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    format!("{}.log", slug.trim_matches('-'))
}

impl App {
    /// Where a step runs: its `cwd` under the app folder; without one, the app folder.
    fn step_dir(&self, cmd: &AppCommand) -> Result<PathBuf> {
        let dir = match &cmd.cwd {
            Some(rel) => self.dir.join(rel),
            None => self.dir.clone(),
        };
        if !dir.is_dir() {
            anyhow::bail!(
                "step {:?} runs in {}, which does not exist: is {} a complete {} app?",
                cmd.name,
                dir.display(),
                self.dir.display(),
                self.backend.name
            );
        }
        Ok(dir)
    }

    /// Starts `sh -c <run>` for a step in a process group of its own, its log emptied
    /// and headed by the command.
    fn spawn_step(&self, cmd: &AppCommand) -> Result<(Child, PathBuf)> {
        let dir = self.step_dir(cmd)?;
        let log = self.logs_dir().join(log_name(&cmd.name));
        fs::create_dir_all(self.logs_dir())
            .with_context(|| format!("creating {}", self.logs_dir().display()))?;
        let mut file =
            fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        writeln!(file, "# bench-app {now}, in {}: {}", dir.display(), cmd.run)
            .with_context(|| format!("writing {}", log.display()))?;
        drop(file);
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(&cmd.run).current_dir(&dir);
        let child = bench_proc::spawn_group(&mut sh, &log)?;
        Ok((child, log))
    }

    /// Runs a foreground step to its end within its time limit; a failure or a timeout
    /// is an error with the end of its log (its whole process group is stopped).
    pub(crate) fn run_step(&self, cmd: &AppCommand) -> Result<()> {
        let (mut child, log) = self.spawn_step(cmd)?;
        let limit = Duration::from_secs(cmd.timeout_s);
        let deadline = Instant::now() + limit;
        loop {
            let status = child
                .try_wait()
                .with_context(|| format!("watching step {:?}", cmd.name))?;
            if let Some(status) = status {
                // Anything it left in its group (a stray watcher) goes with it.
                bench_proc::stop_group(child.id(), self.grace)?;
                if status.success() {
                    return Ok(());
                }
                let what = format!("step {:?}", cmd.name);
                return Err(
                    CommandError::with_log(&what, CommandError::exited(status), &log).into(),
                );
            }
            if Instant::now() >= deadline {
                bench_proc::stop_group(child.id(), self.grace)?;
                let _ = child.wait();
                let what = format!("step {:?}", cmd.name);
                let failure = format!("did not finish within its {} s (timeout_s)", cmd.timeout_s);
                return Err(CommandError::with_log(&what, failure, &log).into());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Starts a background step and returns its record as soon as it runs (the caller
    /// records it), with the child to wait on for readiness.
    pub(crate) fn start_step(&self, cmd: &AppCommand) -> Result<(Child, RunningStep)> {
        let (child, _) = self.spawn_step(cmd)?;
        let pid = child.id();
        let stat = bench_proc::stat(pid);
        let running = RunningStep {
            step: cmd.name.clone(),
            command: cmd.run.clone(),
            pid,
            pgid: stat.map_or(pid, |s| s.pgid),
            start_ticks: stat.map_or(0, |s| s.start_ticks),
            ready_url: cmd.ready_url.clone(),
            log: format!("{APP_LOGS_DIR}/{}", log_name(&cmd.name)),
        };
        Ok((child, running))
    }

    /// Waits for a background step's `ready_url` within its time limit.
    pub(crate) fn wait_step(&self, cmd: &AppCommand, child: &mut Child) -> Result<()> {
        let log = self.logs_dir().join(log_name(&cmd.name));
        let Some(url) = &cmd.ready_url else {
            return Ok(());
        };
        let what = format!("step {:?}", cmd.name);
        bench_proc::wait_ready(
            &what,
            child,
            &Ready::Http(url.clone()),
            Duration::from_secs(cmd.timeout_s),
            &log,
        )?;
        Ok(())
    }
}

/// Whether a recorded step still runs: its group has live members, and the leader (if it
/// still runs) is the very process started (not a recycled pid).
pub fn step_alive(step: &RunningStep) -> bool {
    if let Some(stat) = bench_proc::stat(step.pid)
        && !stat.zombie
        && step.start_ticks != 0
        && stat.start_ticks != step.start_ticks
    {
        return false;
    }
    bench_proc::group_alive(step.pgid)
}

/// A step's log, absolute.
pub fn step_log(app_dir: &Path, step: &RunningStep) -> PathBuf {
    app_dir.join(&step.log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_are_slugs_of_step_names() {
        assert_eq!(
            log_name("install server dependencies"),
            "install-server-dependencies.log"
        );
        assert_eq!(
            log_name("create the run's database if missing"),
            "create-the-run-s-database-if-missing.log"
        );
        assert_eq!(log_name("  Server (API) "), "server-api.log");
    }
}
