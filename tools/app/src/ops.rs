//! `start`, `stop`, `reset`, `status` and `logs` of an app.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use bench_content::CommandKind;
use bench_formats::app_run::{APP_RUN_SCHEMA, AppRun, RunningStep};

use crate::steps::{log_name, step_alive, step_log};
use crate::target::App;

/// What `start` did.
#[derive(Debug, Clone)]
pub enum Started {
    /// It started the app; this is what runs now.
    Started(AppRun),
    /// The app was already running (nothing was done).
    AlreadyRunning(AppRun),
}

impl Started {
    pub fn run(&self) -> &AppRun {
        match self {
            Started::Started(run) | Started::AlreadyRunning(run) => run,
        }
    }
}

/// One recorded server and whether it still runs.
#[derive(Debug, Clone)]
pub struct StepStatus {
    pub step: RunningStep,
    pub alive: bool,
}

/// One of the app's ports: whether it accepts connections, and who listens on it.
#[derive(Debug, Clone)]
pub struct PortStatus {
    pub name: String,
    pub port: u16,
    pub accepting: bool,
    pub holders: Vec<bench_proc::Holder>,
}

/// What runs for an app.
#[derive(Debug, Clone)]
pub struct Status {
    pub backend: String,
    pub run_index: u32,
    /// What `start` recorded (absent: not started, or stopped).
    pub run: Option<AppRun>,
    pub steps: Vec<StepStatus>,
    pub ports: Vec<PortStatus>,
}

impl Status {
    /// Every recorded server runs.
    pub fn running(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.alive)
    }

    /// Some recorded server runs.
    pub fn partly_running(&self) -> bool {
        self.steps.iter().any(|s| s.alive)
    }
}

impl App {
    /// Starts the app: preflight, then the backend's start steps in order (foreground
    /// steps to their end, servers until their `ready_url` answers). A running app is
    /// left alone ([`Started::AlreadyRunning`]). On any failure what was started is
    /// stopped again and the error carries the failing step's log tail.
    pub fn start(&self) -> Result<Started> {
        let _lock = self.lock()?;
        self.start_locked()
    }

    fn start_locked(&self) -> Result<Started> {
        if let Some(run) = self.run_record()? {
            if run.processes.iter().all(step_alive) && !run.processes.is_empty() {
                return Ok(Started::AlreadyRunning(run));
            }
            // Half of it died (or it was never cleaned up): start afresh.
            self.stop_locked()?;
        }
        self.preflight()?;
        self.check_ports_free()?;
        let commands = self.backend.commands_from(CommandKind::Start, &self.vars)?;
        let mut run = AppRun {
            schema: APP_RUN_SCHEMA,
            backend: self.backend.name.clone(),
            run_index: self.run_index,
            started_at_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ports: self.ports(),
            overrides: self.overrides.clone(),
            processes: Vec::new(),
        };
        for cmd in &commands {
            let outcome = if cmd.background {
                self.start_background(cmd, &mut run)
            } else {
                self.run_step(cmd)
            };
            if let Err(err) = outcome {
                if let Err(stop_err) = self.stop_locked() {
                    return Err(err.context(format!(
                        "starting the app failed, and so did stopping what had started: {stop_err:#}"
                    )));
                }
                return Err(err.context(format!(
                    "starting the {} app in {} failed (what had started is stopped again)",
                    self.backend.name,
                    self.dir.display()
                )));
            }
        }
        Ok(Started::Started(run))
    }

    fn start_background(&self, cmd: &bench_content::AppCommand, run: &mut AppRun) -> Result<()> {
        let (mut child, step) = self.start_step(cmd)?;
        run.processes.push(step);
        // Recorded before waiting, so that `stop` finds it even if we are interrupted.
        self.write_run(run)?;
        // The handle is dropped after this; `stop` collects the exit status.
        self.wait_step(cmd, &mut child)
    }

    fn write_run(&self, run: &AppRun) -> Result<()> {
        bench_formats::write_json(&self.run_file(), run)
            .with_context(|| format!("recording what runs in {}", self.run_file().display()))
    }

    /// Runs the backend's `[[preflight]]` checks; fails naming every one that fails, with
    /// its hint.
    fn preflight(&self) -> Result<()> {
        let checks = self.backend.preflight_from(&self.vars)?;
        let failed: Vec<String> = checks
            .iter()
            .filter_map(|c| c.check().err().map(|e| format!("{e:#}")))
            .collect();
        if !failed.is_empty() {
            bail!(
                "this machine cannot run a {} app yet:\n  - {}",
                self.backend.name,
                failed.join("\n  - ")
            );
        }
        Ok(())
    }

    /// Fails when another process listens on one of the app's ports, saying which.
    fn check_ports_free(&self) -> Result<()> {
        let mut taken = Vec::new();
        for (name, port) in self.ports() {
            if bench_proc::port_free(port) {
                continue;
            }
            let holders = bench_proc::port_holders(port);
            let who = if holders.is_empty() {
                "a process this user cannot see (as root: `fuser -n tcp PORT`)"
                    .replace("PORT", &port.to_string())
            } else {
                holders
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            taken.push(format!("port {port} ({name}) is held by {who}"));
        }
        if !taken.is_empty() {
            bail!(
                "cannot start the {} app of run index {}: {}. Stop that process, or use another --run-index",
                self.backend.name,
                self.run_index,
                taken.join("; ")
            );
        }
        Ok(())
    }

    /// Stops what `start` started (its process groups, newest first), then runs the
    /// backend's stop steps, if any. Returns how many processes were running.
    pub fn stop(&self) -> Result<usize> {
        let _lock = self.lock()?;
        self.stop_locked()
    }

    fn stop_locked(&self) -> Result<usize> {
        let Some(run) = self.run_record()? else {
            return Ok(0);
        };
        let mut stopped = 0;
        for step in run.processes.iter().rev() {
            if step_alive(step) {
                stopped += bench_proc::stop_group(step.pgid, self.grace)
                    .with_context(|| format!("stopping step {:?}", step.step))?;
            }
            bench_proc::reap(step.pid);
        }
        for cmd in self.backend.commands_from(CommandKind::Stop, &self.vars)? {
            self.run_step(&cmd)?;
        }
        fs::remove_file(self.run_file())
            .with_context(|| format!("removing {}", self.run_file().display()))?;
        Ok(stopped)
    }

    /// Gives the app a fresh, empty database: stops it if it runs, runs the backend's
    /// reset steps, and starts it again if it was running (which applies the schema).
    /// Returns whether it was restarted.
    pub fn reset(&self) -> Result<bool> {
        let _lock = self.lock()?;
        let was_running = self
            .run_record()?
            .is_some_and(|run| run.processes.iter().any(step_alive));
        self.stop_locked()?;
        for cmd in self.backend.commands_from(CommandKind::Reset, &self.vars)? {
            self.run_step(&cmd)
                .with_context(|| format!("resetting the {} app's database", self.backend.name))?;
        }
        if was_running {
            self.start_locked()?;
        }
        Ok(was_running)
    }

    /// What runs for the app, on which ports, since when.
    pub fn status(&self) -> Result<Status> {
        let run = self.run_record()?;
        let steps = run
            .iter()
            .flat_map(|r| r.processes.iter())
            .map(|s| StepStatus {
                step: s.clone(),
                alive: step_alive(s),
            })
            .collect();
        let ports = run
            .as_ref()
            .map_or_else(|| self.ports(), |r| r.ports.clone())
            .into_iter()
            .map(|(name, port)| PortStatus {
                name,
                port,
                accepting: bench_proc::port_accepts(port),
                holders: bench_proc::port_holders(port),
            })
            .collect();
        Ok(Status {
            backend: self.backend.name.clone(),
            run_index: self.run_index,
            run,
            steps,
            ports,
        })
    }

    /// The last `lines` lines of each step's log, in the order of the start steps, then
    /// any other log of the app: `(step, log file, tail)`.
    pub fn logs(&self, lines: usize) -> Result<Vec<(String, PathBuf, String)>> {
        let mut out = Vec::new();
        let mut seen = BTreeMap::new();
        let kinds = [CommandKind::Start, CommandKind::Reset, CommandKind::Stop];
        for kind in kinds {
            for cmd in self.backend.commands_from(kind, &self.vars)? {
                let path = self.logs_dir().join(log_name(&cmd.name));
                if path.is_file() && seen.insert(path.clone(), ()).is_none() {
                    out.push((
                        cmd.name.clone(),
                        path.clone(),
                        bench_proc::tail(&path, lines),
                    ));
                }
            }
        }
        if let Some(run) = self.run_record()? {
            for step in &run.processes {
                let path = step_log(&self.dir, step);
                if path.is_file() && seen.insert(path.clone(), ()).is_none() {
                    out.push((
                        step.step.clone(),
                        path.clone(),
                        bench_proc::tail(&path, lines),
                    ));
                }
            }
        }
        Ok(out)
    }
}
