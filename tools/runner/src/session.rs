//! Running the agent CLI for one session: its command line and environment, its transcript,
//! progress on the terminal, and how it ends (exit, timeout, interruption).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bench_formats::Outcome;
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The agent's stream-json transcript, inside the session folder: where bench-telemetry
/// looks for the CLI's result.
pub use bench_telemetry::TRANSCRIPT_FILE;
/// The agent's standard error, inside the session folder.
pub const STDERR_FILE: &str = "agent-stderr.log";
/// The agent's process id (also its process group) while it runs; removed when it ends.
pub const PID_FILE: &str = "agent.pid";

/// A flag that stops a running session (as Ctrl-C would), from any thread.
#[derive(Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// How the agent process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited by itself (with `exit_code`, or killed by a signal nobody here sent).
    Exited,
    /// The harness stopped it at the time limit.
    Timeout,
    /// The harness stopped it on Ctrl-C / SIGTERM / [`Cancel`].
    Interrupted,
}

/// What the transcript showed while the agent ran.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Distinct assistant messages (model responses).
    pub assistant_messages: u64,
    /// Tool calls the agent made.
    pub tool_calls: u64,
    /// The last assistant message id seen.
    last_message_id: Option<String>,
    /// Whether the completion marker appeared in an assistant text or the final result.
    pub marker_seen: bool,
    /// The CLI's final `result` object, if it printed one.
    pub result: Option<Value>,
    /// The CLI version from the `system`/`init` line.
    pub cli_version: Option<String>,
    /// Transcript lines that were not JSON.
    pub non_json_lines: u64,
}

impl Live {
    fn observe(&mut self, line: &str, marker: &str) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            if !line.trim().is_empty() {
                self.non_json_lines += 1;
            }
            return;
        };
        match v.get("type").and_then(Value::as_str) {
            Some("system") => {
                if let Some(version) = v.get("claude_code_version").and_then(Value::as_str) {
                    self.cli_version = Some(version.to_owned());
                }
            }
            Some("assistant") => {
                let id = v
                    .pointer("/message/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                if id.is_none() || id != self.last_message_id {
                    self.assistant_messages += 1;
                    self.last_message_id = id;
                }
                if let Some(blocks) = v.pointer("/message/content").and_then(Value::as_array) {
                    for block in blocks {
                        match block.get("type").and_then(Value::as_str) {
                            Some("tool_use") => self.tool_calls += 1,
                            Some("text")
                                if block
                                    .get("text")
                                    .and_then(Value::as_str)
                                    .is_some_and(|t| t.contains(marker)) =>
                            {
                                self.marker_seen = true;
                            }
                            _ => {}
                        }
                    }
                }
            }
            Some("result") => {
                if v.get("result")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.contains(marker))
                {
                    self.marker_seen = true;
                }
                self.result = Some(v);
            }
            _ => {}
        }
    }

    /// The CLI's own total cost, from its result line.
    pub fn result_cost(&self) -> Option<f64> {
        self.result
            .as_ref()
            .and_then(|r| r.get("total_cost_usd"))
            .and_then(Value::as_f64)
    }
}

/// Everything needed to start the agent for one session.
#[derive(Debug, Clone)]
pub struct AgentInvocation {
    pub agent_bin: PathBuf,
    /// The agent works here (the app folder).
    pub app_dir: PathBuf,
    /// Transcript and stderr go here.
    pub session_dir: PathBuf,
    pub prompt: String,
    pub model: String,
    /// The session id the harness chose (`--session-id`).
    pub session_id: String,
    /// Fork this earlier session (`--resume <id> --fork-session`).
    pub resume_from: Option<String>,
    pub max_budget_usd: Option<f64>,
    pub timeout: Option<Duration>,
    /// Environment added to the harness's own.
    pub env: Vec<(String, String)>,
    /// Variables of the harness's environment the agent must not see.
    pub env_remove: Vec<String>,
    /// The text the agent prints when done.
    pub marker: String,
    /// Further CLI arguments, after the harness's own (e.g. a grading session's
    /// `--mcp-config … --strict-mcp-config --tools …`).
    pub extra_args: Vec<String>,
}

impl AgentInvocation {
    /// The CLI arguments (the prompt goes on standard input).
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--print",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
            "--model",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(self.model.clone());
        args.push("--session-id".to_owned());
        args.push(self.session_id.clone());
        if let Some(previous) = &self.resume_from {
            args.extend([
                "--resume".to_owned(),
                previous.clone(),
                "--fork-session".to_owned(),
            ]);
        }
        if let Some(budget) = self.max_budget_usd {
            args.push("--max-budget-usd".to_owned());
            args.push(format!("{budget}"));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// How the agent ended, and what it showed.
#[derive(Debug, Clone)]
pub struct AgentExit {
    pub ending: Ending,
    /// The process's exit code (`None` if a signal ended it).
    pub exit_code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    pub live: Live,
    pub wall_clock: Duration,
    /// Processes the agent started that were still running when it ended, and were stopped.
    pub leftovers_stopped: usize,
    pub started: chrono::DateTime<chrono::Local>,
    pub ended: chrono::DateTime<chrono::Local>,
}

impl AgentExit {
    /// How the session ended, as the records say it.
    pub fn outcome(&self) -> Outcome {
        match self.ending {
            Ending::Timeout => Outcome::Timeout,
            Ending::Interrupted => Outcome::Interrupted,
            Ending::Exited if self.signal.is_some() => Outcome::Killed,
            Ending::Exited if self.exit_code == Some(0) && self.live.marker_seen => {
                Outcome::Completed
            }
            Ending::Exited => Outcome::Failed,
        }
    }
}

/// What the progress line shows besides elapsed time and turns.
pub type CostProbe = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

/// Runs the agent to its end. `cancel` (and Ctrl-C / SIGTERM) stop it early; the time limit
/// too. In every case the agent's whole process group is stopped (see `stop_group`) and the
/// function returns normally with how it ended, so the caller can finalize the session.
pub async fn run_agent(
    inv: &AgentInvocation,
    cancel: &Cancel,
    cost_probe: Option<CostProbe>,
    show_progress: bool,
) -> Result<AgentExit> {
    use std::os::unix::process::ExitStatusExt;

    // From the moment the agent exists, Ctrl-C, SIGTERM and a closed terminal (SIGHUP) stop
    // it and let the session be finalized, instead of killing the harness and leaving the
    // agent running (it is in its own process group, so the terminal does not reach it).
    let mut signals = StopSignals::watch()?;
    let outputs = Outputs::create(inv).await?;
    let started = chrono::Local::now();
    let clock = Instant::now();
    let mut child = spawn_agent(inv)?;
    let pid = child
        .id()
        .context("the agent exited before it could be watched")?;
    // Which process is the agent (and its process group), for whoever wants to look at it.
    let pid_file = inv.session_dir.join(PID_FILE);
    let _ = tokio::fs::write(&pid_file, format!("{pid}\n")).await;
    let live = Arc::new(Mutex::new(Live::default()));
    let streams = Streams::start(&mut child, inv, outputs, live.clone())?;

    let mut watch = Watch {
        tracker: crate::procs::Tracker::new(pid),
        progress: show_progress.then(|| spinner(inv)),
        cost_probe,
        live: live.clone(),
        last_cost: None,
        last_probe: Instant::now() - Duration::from_secs(10),
    };
    let (ending, status) = watch
        .until_end(&mut child, pid, inv.timeout, cancel, &mut signals)
        .await?;
    // Whatever the agent left running (dev servers, watchers, in its group or in groups of
    // their own) goes with it.
    let leftovers_stopped = watch.stop_leftovers(pid).await;
    let _ = tokio::fs::remove_file(&pid_file).await;

    streams.finish().await;
    let live = live.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(AgentExit {
        ending,
        exit_code: status.code(),
        signal: status.signal(),
        live,
        wall_clock: clock.elapsed(),
        leftovers_stopped,
        started,
        ended: chrono::Local::now(),
    })
}

/// The files the agent's output goes to, created before it starts.
struct Outputs {
    transcript_path: PathBuf,
    transcript: tokio::fs::File,
    stderr_file: tokio::fs::File,
}

impl Outputs {
    async fn create(inv: &AgentInvocation) -> Result<Outputs> {
        let transcript_path = inv.session_dir.join(TRANSCRIPT_FILE);
        Ok(Outputs {
            transcript: create_file(&transcript_path).await?,
            stderr_file: create_file(&inv.session_dir.join(STDERR_FILE)).await?,
            transcript_path,
        })
    }
}

/// The agent's standard streams: the prompt in, the transcript and its stderr out.
struct Streams {
    transcript_path: PathBuf,
    stdout_task: tokio::task::JoinHandle<Option<std::io::Error>>,
    stderr_task: tokio::task::JoinHandle<()>,
}

impl Streams {
    /// Feeds the prompt and starts copying the agent's output into `outputs`.
    fn start(
        child: &mut tokio::process::Child,
        inv: &AgentInvocation,
        outputs: Outputs,
        live: Arc<Mutex<Live>>,
    ) -> Result<Streams> {
        let Outputs {
            transcript_path,
            transcript,
            mut stderr_file,
        } = outputs;
        // The prompt goes in on stdin; closing it tells the CLI the prompt is complete.
        if let Some(mut stdin) = child.stdin.take() {
            let prompt = inv.prompt.clone();
            tokio::spawn(async move {
                let _ = stdin.write_all(prompt.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let stdout = child.stdout.take().context("agent stdout not captured")?;
        let stdout_task = follow_transcript(stdout, transcript, live, inv.marker.clone());
        let stderr = child.stderr.take().context("agent stderr not captured")?;
        let stderr_task = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut BufReader::new(stderr), &mut stderr_file).await;
            let _ = stderr_file.flush().await;
        });
        Ok(Streams {
            transcript_path,
            stdout_task,
            stderr_task,
        })
    }

    /// Waits for the output to end. The transcript ends when the pipe closes; a process
    /// that escaped the group could keep it open, so this does not wait forever.
    async fn finish(self) {
        let write_error =
            match tokio::time::timeout(Duration::from_secs(10), self.stdout_task).await {
                Ok(Ok(e)) => e,
                _ => None,
            };
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stderr_task).await;
        if let Some(e) = write_error {
            eprintln!(
                "warning: the transcript {} could not be fully written: {e}",
                self.transcript_path.display()
            );
        }
    }
}

async fn create_file(path: &Path) -> Result<tokio::fs::File> {
    tokio::fs::File::create(path)
        .await
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Starts the agent CLI in a process group of its own, its standard streams piped.
fn spawn_agent(inv: &AgentInvocation) -> Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(&inv.agent_bin);
    cmd.args(inv.args())
        .current_dir(&inv.app_dir)
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for name in &inv.env_remove {
        cmd.env_remove(name);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // If the harness itself dies without a chance to clean up, the agent is told to stop.
    // SAFETY: the closure runs in the child between fork and exec; it only makes one
    // prctl(2) call, which is async-signal-safe and changes the child's own settings.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
        });
    }
    cmd.spawn().with_context(|| {
        format!(
            "cannot start the agent CLI {} (check --agent-bin)",
            inv.agent_bin.display()
        )
    })
}

/// Copies the agent's stdout into the transcript, line by line, and follows it in `live`.
/// Returns the first write error, if any.
fn follow_transcript(
    stdout: tokio::process::ChildStdout,
    mut transcript: tokio::fs::File,
    live: Arc<Mutex<Live>>,
    marker: String,
) -> tokio::task::JoinHandle<Option<std::io::Error>> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut write_error = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if write_error.is_none() {
                let written = async {
                    transcript.write_all(line.as_bytes()).await?;
                    transcript.write_all(b"\n").await?;
                    transcript.flush().await
                }
                .await;
                if let Err(e) = written {
                    write_error = Some(e);
                }
            }
            if let Ok(mut l) = live.lock() {
                l.observe(&line, &marker);
            }
        }
        write_error
    })
}

/// The signals that stop a session as Ctrl-C does.
struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn watch() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            int: signal(SignalKind::interrupt()).context("cannot watch for Ctrl-C")?,
            term: signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?,
        })
    }

    async fn any(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

/// What the harness keeps an eye on while the agent runs: its descendants (to stop the
/// ones left behind) and the progress line.
struct Watch {
    tracker: crate::procs::Tracker,
    progress: Option<indicatif::ProgressBar>,
    cost_probe: Option<CostProbe>,
    live: Arc<Mutex<Live>>,
    last_cost: Option<f64>,
    last_probe: Instant,
}

impl Watch {
    /// Waits for the agent to end by itself, or stops it on a signal, a cancel or the time
    /// limit. Returns how it ended and its exit status.
    async fn until_end(
        &mut self,
        child: &mut tokio::process::Child,
        pgid: u32,
        timeout: Option<Duration>,
        cancel: &Cancel,
        signals: &mut StopSignals,
    ) -> Result<(Ending, std::process::ExitStatus)> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let ending = loop {
            tokio::select! {
                status = child.wait() => {
                    return Ok((Ending::Exited, status.context("cannot wait for the agent")?));
                }
                _ = signals.any() => break Ending::Interrupted,
                _ = cancel.cancelled() => break Ending::Interrupted,
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => break Ending::Timeout,
                _ = tick.tick() => self.tick().await,
            }
        };
        Ok((ending, stop_group(child, pgid).await?))
    }

    /// Notes the agent's descendants and refreshes the progress line.
    async fn tick(&mut self) {
        self.tracker.scan();
        let Some(pb) = &self.progress else {
            return;
        };
        if let Some(probe) = &self.cost_probe
            && self.last_probe.elapsed() >= Duration::from_secs(2)
        {
            self.last_probe = Instant::now();
            let probe = probe.clone();
            if let Ok(Some(c)) = tokio::task::spawn_blocking(move || probe()).await {
                self.last_cost = Some(c);
            }
        }
        let (turns, tools) = self
            .live
            .lock()
            .map(|l| (l.assistant_messages, l.tool_calls))
            .unwrap_or_default();
        let cost = self
            .last_cost
            .map_or("–".to_owned(), |c| format!("${c:.4}"));
        pb.set_message(format!(
            "turns {turns} · tool calls {tools} · cost so far {cost}"
        ));
    }

    /// Stops what is left of the agent's group and every process it started that still
    /// runs; clears the progress line. Returns how many of its processes were still running.
    async fn stop_leftovers(&mut self, pgid: u32) -> usize {
        let running = self.tracker.alive().len();
        let grace = Duration::from_secs(3);
        let _ = tokio::task::spawn_blocking(move || bench_proc::stop_group(pgid, grace)).await;
        self.tracker.stop_leftovers(grace).await;
        if let Some(pb) = self.progress.take() {
            pb.finish_and_clear();
        }
        running
    }
}

/// Stops the agent's process group: SIGINT first (the CLI then ends its turn, prints its
/// result and flushes its telemetry, as on Ctrl-C), then, if it is still running after a
/// grace period, SIGTERM and at last SIGKILL to the group and all it started. Returns its
/// exit status.
async fn stop_group(
    child: &mut tokio::process::Child,
    pgid: u32,
) -> Result<std::process::ExitStatus> {
    if let Ok(group) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), Signal::SIGINT);
    }
    if let Ok(status) = tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        return status.context("cannot wait for the agent");
    }
    let grace = Duration::from_secs(5);
    let _ = tokio::task::spawn_blocking(move || bench_proc::stop_group(pgid, grace)).await;
    child.wait().await.context("cannot wait for the agent")
}

fn spinner(inv: &AgentInvocation) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    let style =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    pb.set_style(style);
    pb.set_prefix(format!("agent session {}", short(&inv.session_id)));
    pb.set_message("starting…");
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_lines_update_turns_tools_marker_and_result() {
        let mut live = Live::default();
        let lines = [
            r#"{"type":"system","subtype":"init","claude_code_version":"2.1.197"}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"Working"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","name":"Write","input":{}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"ok"}]}}"#,
            r#"{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"All done. DEPLOY_COMPLETE"}]}}"#,
            "not json",
            r#"{"type":"result","subtype":"success","result":"All done. DEPLOY_COMPLETE","total_cost_usd":0.25}"#,
        ];
        for line in lines {
            live.observe(line, "DEPLOY_COMPLETE");
        }
        assert_eq!(live.assistant_messages, 2);
        assert_eq!(live.tool_calls, 1);
        assert!(live.marker_seen);
        assert_eq!(live.result_cost(), Some(0.25));
        assert_eq!(live.cli_version.as_deref(), Some("2.1.197"));
        assert_eq!(live.non_json_lines, 1);

        let mut other = Live::default();
        other.observe(lines[4], "FIX_COMPLETE");
        assert!(!other.marker_seen);
    }

    #[test]
    fn arguments_fork_and_cap_the_session() {
        let inv = AgentInvocation {
            agent_bin: "claude".into(),
            app_dir: ".".into(),
            session_dir: ".".into(),
            prompt: "p".into(),
            model: "claude-sonnet-4-6".into(),
            session_id: "new".into(),
            resume_from: Some("old".into()),
            max_budget_usd: Some(2.5),
            timeout: None,
            env: vec![],
            env_remove: vec![],
            marker: "X".into(),
            extra_args: vec![],
        };
        let args = inv.args().join(" ");
        assert!(args.contains("--output-format stream-json --verbose"));
        assert!(args.contains("--session-id new --resume old --fork-session"));
        assert!(args.ends_with("--max-budget-usd 2.5"));
    }
}
