//! The grading session itself: the agent CLI run through the runner's machinery
//! (`bench_runner::session::run_agent`: transcript, signals, leftover processes, progress),
//! its telemetry into the OTLP receiver and its cost accounted by bench-telemetry like any
//! session's, in a folder of its own so that it is never added to the cost of building the
//! app. The `system`/`init` line is watched while it runs: a browser that did not attach
//! stops the session at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bench_formats::files::METADATA_FILE;
use bench_formats::{CostSummary, Outcome, SessionMetadata};
use bench_runner::session::{AgentInvocation, Cancel, TRANSCRIPT_FILE};
use bench_runner::{ModelSource, TelemetrySink};
use serde_json::Value;

/// The grading session's record, beside its `cost-summary.json`.
pub const SESSION_RECORD: &str = "grading-session.json";

/// What one grading session needs.
#[derive(Clone)]
pub struct SessionSpec {
    pub agent_bin: PathBuf,
    pub models: ModelSource,
    pub model: String,
    pub max_budget_usd: Option<f64>,
    pub timeout: Option<Duration>,
    pub telemetry: TelemetrySink,
    /// Transcript, cost summary and record go here.
    pub session_dir: PathBuf,
    /// The agent's working folder (its results file is written here).
    pub work_dir: PathBuf,
    pub prompt: String,
    pub extra_args: Vec<String>,
    /// Values for a rehearsal script's placeholders.
    pub vars: BTreeMap<String, String>,
    pub level: u32,
    pub show_progress: bool,
    /// Environment applied last.
    pub extra_env: Vec<(String, String)>,
}

/// How the session went.
#[derive(Debug, Clone)]
pub struct SessionResult {
    pub run_id: String,
    pub session_id: String,
    pub outcome: Outcome,
    pub transcript: PathBuf,
    pub cost: Option<CostSummary>,
    pub cost_error: Option<String>,
    pub cli_total_cost_usd: Option<f64>,
    /// Why the browsers were not usable, when the `init` line said so.
    pub attach_error: Option<String>,
}

/// Runs the session to its end and accounts for its cost (in its own async runtime).
pub fn run(spec: &SessionSpec) -> Result<SessionResult> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(spec))
}

async fn run_async(spec: &SessionSpec) -> Result<SessionResult> {
    for dir in [&spec.session_dir, &spec.work_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S");
    let run_id = format!("grade-level{}-{stamp}", spec.level);
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut meta = start_metadata(spec, &run_id, &session_id);
    bench_formats::io::write_json(&spec.session_dir.join(METADATA_FILE), &meta)?;
    let api = match &spec.models {
        ModelSource::Rehearsal(path) => Some(start_rehearsal(path, &spec.vars).await?),
        ModelSource::Anthropic => {
            bench_runner::run::require_api_key(&spec.extra_env)?;
            None
        }
    };
    let inv = AgentInvocation {
        agent_bin: spec.agent_bin.clone(),
        app_dir: spec.work_dir.clone(),
        session_dir: spec.session_dir.clone(),
        prompt: spec.prompt.clone(),
        model: spec.model.clone(),
        session_id: session_id.clone(),
        resume_from: None,
        max_budget_usd: spec.max_budget_usd,
        timeout: spec.timeout,
        env: environment(
            spec,
            &run_id,
            &session_id,
            api.as_ref().map(|a| a.url.as_str()),
        ),
        env_remove: if api.is_some() {
            vec!["ANTHROPIC_AUTH_TOKEN".into()]
        } else {
            vec![]
        },
        marker: super::prompt::COMPLETION_MARKER.into(),
        extra_args: spec.extra_args.clone(),
    };
    let cancel = Cancel::new();
    let transcript = spec.session_dir.join(TRANSCRIPT_FILE);
    let attach_error = Arc::new(Mutex::new(None));
    let watcher = tokio::spawn(watch_init(
        transcript.clone(),
        cancel.clone(),
        attach_error.clone(),
    ));
    let (logs, metrics) = spec.telemetry.session_files(&session_id);
    let exit = bench_runner::session::run_agent(&inv, &cancel, None, spec.show_progress).await;
    watcher.abort();
    if let Some(api) = api {
        api.shutdown().await;
    }
    let exit = exit?;
    meta.outcome = Some(exit.outcome());
    meta.ended_at_utc = Some(utc_now());
    meta.wall_clock_sec = Some((exit.wall_clock.as_secs_f64() * 1000.0).round() / 1000.0);
    bench_formats::io::write_json(&spec.session_dir.join(METADATA_FILE), &meta)?;
    let tally = Mutex::new(bench_telemetry::LiveTally::new(
        Some(&session_id),
        Some(&run_id),
    ));
    let cli_total = exit.live.result_cost();
    let flush = Duration::from_secs(15);
    bench_runner::costing::wait_for_flush([&logs, &metrics], &tally, cli_total, flush).await;
    let costed =
        bench_runner::costing::summarize(&spec.session_dir, &spec.telemetry, &logs, &metrics);
    let attach_error = attach_error.lock().ok().and_then(|e| e.clone());
    let result = SessionResult {
        run_id,
        session_id,
        outcome: exit.outcome(),
        transcript,
        cli_total_cost_usd: cli_total,
        cost_error: costed.as_ref().err().map(|e| format!("{e:#}")),
        cost: costed.ok(),
        attach_error,
    };
    write_record(spec, &result)?;
    Ok(result)
}

fn utc_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The session's `metadata.json`, as bench-telemetry reads it to pick the session's records
/// out. The grading phase is recorded as `benchPhase: grade` (the metadata's `phase` names the
/// sessions that build the app).
fn start_metadata(spec: &SessionSpec, run_id: &str, session_id: &str) -> SessionMetadata {
    let mut meta = SessionMetadata {
        level: Some(spec.level),
        run_id: Some(run_id.to_owned()),
        session_id: Some(session_id.to_owned()),
        started_at_utc: Some(utc_now()),
        model: Some(spec.model.clone()),
        completion_marker: Some(super::prompt::COMPLETION_MARKER.to_owned()),
        outcome: Some(Outcome::Running),
        ..SessionMetadata::default()
    };
    meta.extra
        .insert("benchPhase".into(), serde_json::json!("grade"));
    meta.extra.insert(
        "rehearsal".into(),
        serde_json::json!(matches!(spec.models, ModelSource::Rehearsal(_))),
    );
    meta
}

async fn start_rehearsal(
    path: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<scripted_api::ScriptedApiHandle> {
    let script = scripted_api::Script::load(path)?
        .render(vars)
        .with_context(|| format!("rehearsal script {}", path.display()))?;
    let addr = "127.0.0.1:0".parse().context("loopback address")?;
    scripted_api::ScriptedApi::start(Some(script), addr).await
}

/// Telemetry to the sink, tagged with the session's ids (as for every session); for a
/// rehearsal, the scripted API; and the MCP servers awaited before the first turn.
fn environment(
    spec: &SessionSpec,
    run_id: &str,
    session_id: &str,
    api: Option<&str>,
) -> Vec<(String, String)> {
    let resource = format!("run.id={run_id},session.id={session_id},bench.phase=grade");
    let mut env = spec.telemetry.agent_env(&resource, api);
    env.extend(
        super::mcp::CLI_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env.extend(spec.extra_env.iter().cloned());
    env
}

/// Follows the transcript until its `system`/`init` line; if a browser is not attached,
/// records why and stops the session.
async fn watch_init(transcript: PathBuf, cancel: Cancel, error: Arc<Mutex<Option<String>>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(text) = tokio::fs::read_to_string(&transcript).await else {
            continue;
        };
        let init = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| {
                v.get("type").and_then(Value::as_str) == Some("system")
                    && v.get("subtype").and_then(Value::as_str) == Some("init")
            });
        let Some(init) = init else { continue };
        if let Err(e) = super::mcp::check_init(&init) {
            if let Ok(mut slot) = error.lock() {
                *slot = Some(format!("{e:#}"));
            }
            cancel.cancel();
        }
        return;
    }
}

fn write_record(spec: &SessionSpec, result: &SessionResult) -> Result<()> {
    let record = serde_json::json!({
        "phase": "grade",
        "runId": result.run_id,
        "sessionId": result.session_id,
        "level": spec.level,
        "model": spec.model,
        "rehearsal": matches!(spec.models, ModelSource::Rehearsal(_)),
        "outcome": result.outcome.as_str(),
        "costUsd": result.cost.as_ref().map(|c| c.total_cost_usd),
        "cliTotalCostUsd": result.cli_total_cost_usd,
        "costError": result.cost_error,
        "attachError": result.attach_error,
    });
    bench_formats::io::write_json(&spec.session_dir.join(SESSION_RECORD), &record)
}

/// The MCP tools the transcript shows the agent calling, per user (`alice` → count).
pub fn tool_calls_per_user(transcript: &Path) -> Result<BTreeMap<String, u32>> {
    let text = std::fs::read_to_string(transcript)
        .with_context(|| format!("cannot read {}", transcript.display()))?;
    let mut out = BTreeMap::new();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let blocks = v.pointer("/message/content").and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                continue;
            }
            let name = block.get("name").and_then(Value::as_str).unwrap_or("");
            if let Some(user) = name
                .strip_prefix("mcp__")
                .and_then(|r| r.split("__").next())
            {
                *out.entry(user.to_owned()).or_insert(0) += 1;
            }
        }
    }
    Ok(out)
}

/// Files the agent wrote other than `allowed`, from the transcript's `Write` calls (its only
/// built-in tool): a grading that wrote anything else is refused.
pub fn other_writes(transcript: &Path, allowed: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(transcript)
        .with_context(|| format!("cannot read {}", transcript.display()))?;
    let mut out = Vec::new();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if v.get("type").and_then(Value::as_str) != Some("assistant") {
            continue;
        }
        let blocks = v.pointer("/message/content").and_then(Value::as_array);
        for block in blocks.into_iter().flatten() {
            let is_tool = block.get("type").and_then(Value::as_str) == Some("tool_use");
            let name = block.get("name").and_then(Value::as_str).unwrap_or("");
            if !is_tool || name.starts_with("mcp__") {
                continue;
            }
            let path = block.pointer("/input/file_path").and_then(Value::as_str);
            if name != "Write" || path.map(Path::new) != Some(allowed) {
                out.push(format!("{name} {}", path.unwrap_or("")));
            }
        }
    }
    Ok(out)
}

/// Fails when the session did not end as a finished grading.
pub fn require_finished(result: &SessionResult) -> Result<()> {
    if let Some(e) = &result.attach_error {
        bail!("{e}");
    }
    if result.outcome != Outcome::Completed {
        bail!(
            "the grading session ended {} (transcript: {})",
            result.outcome,
            result.transcript.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_calls_are_counted_per_user_and_stray_writes_named() {
        let dir = tempfile::tempdir().unwrap();
        let transcript = dir.path().join("transcript.jsonl");
        let results = dir.path().join("grading.json");
        let lines = [
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"a","name":"mcp__alice__browser_navigate","input":{"url":"http://x/"}}]}}"#.to_owned(),
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"b","name":"mcp__bob__browser_snapshot","input":{}},{"type":"tool_use","id":"c","name":"mcp__bob__browser_click","input":{"target":"e1"}}]}}"#.to_owned(),
            format!(
                r#"{{"type":"assistant","message":{{"content":[{{"type":"tool_use","id":"d","name":"Write","input":{{"file_path":{:?},"content":"{{}}"}}}}]}}}}"#,
                results.display().to_string()
            ),
        ];
        std::fs::write(&transcript, lines.join("\n")).unwrap();
        let calls = tool_calls_per_user(&transcript).unwrap();
        assert_eq!(calls.get("alice"), Some(&1));
        assert_eq!(calls.get("bob"), Some(&2));
        assert!(other_writes(&transcript, &results).unwrap().is_empty());
        let stray = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"e","name":"Write","input":{"file_path":"/tmp/elsewhere.md","content":"x"}}]}}"#;
        std::fs::write(&transcript, format!("{}\n{stray}", lines.join("\n"))).unwrap();
        assert_eq!(
            other_writes(&transcript, &results).unwrap(),
            ["Write /tmp/elsewhere.md"]
        );
    }
}
