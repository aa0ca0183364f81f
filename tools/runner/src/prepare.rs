//! A session's inputs: the level snapshot an upgrade starts from, the prompt and the files
//! placed in the app, the inputs folder that keeps all of it with checksums, and (for a
//! rehearsal) the scripted API playing the script.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use bench_content::{Content, PromptRequest, SessionPrompt};
use bench_formats::Phase;
use bench_formats::files::{BUG_REPORT_FILE, PROMPT_FILE};
use bench_formats::io::write_atomic;

use crate::plan::{AppPlace, Plan};
use crate::records::Folders;
use crate::run::{ModelSource, RunOptions};
use crate::snapshot;
use crate::trace::HarnessTrace;

/// Copies the app as the previous level left it into `level-<N>/`, before an upgrade
/// changes it. A repeated upgrade keeps the first snapshot of that level.
pub fn level_snapshot(plan: &Plan, app_dir: &Path, trace: &HarnessTrace) -> Result<()> {
    let AppPlace::Existing(app) = &plan.app else {
        return Ok(());
    };
    if plan.phase != Phase::Upgrade {
        return Ok(());
    }
    let name = format!("level-{}", app.state.level);
    trace.in_step("snapshot", || {
        let dst = app_dir.join(&name);
        if dst.exists() {
            return Ok(());
        }
        snapshot::copy_tree(app_dir, &dst, &snapshot::excluded_from_app_snapshot)
            .map(|_| ())
            .with_context(|| format!("cannot snapshot {} into {name}", app_dir.display()))
    })
}

/// The folder, inside the app, where a generate session run again sets aside what the
/// cut-off session left (`<app>/.bench/cut-off/<its run id>/`).
pub const CUT_OFF_DIR: &str = ".bench/cut-off";

/// Before a generate session runs again in its app: moves everything the cut-off session
/// left (all but `.bench/`) to `.bench/cut-off/<its run id>/`, so the new session starts
/// from an empty folder and nothing it wrote is lost.
pub fn set_aside_cut_off(plan: &Plan, app_dir: &Path, trace: &HarnessTrace) -> Result<()> {
    let AppPlace::Existing(app) = &plan.app else {
        return Ok(());
    };
    if plan.phase != Phase::Generate {
        return Ok(());
    }
    let run_id = app
        .state
        .sessions
        .last()
        .map_or("unknown", |s| s.run_id.as_str());
    trace.in_step("set aside the cut-off session's files", || {
        let dst = app_dir.join(CUT_OFF_DIR).join(run_id);
        std::fs::create_dir_all(&dst)
            .with_context(|| format!("cannot create {}", dst.display()))?;
        let entries = std::fs::read_dir(app_dir)
            .with_context(|| format!("cannot list {}", app_dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", app_dir.display()))?;
            if entry.file_name() == ".bench" {
                continue;
            }
            let to = dst.join(entry.file_name());
            std::fs::rename(entry.path(), &to).with_context(|| {
                format!(
                    "cannot move {} to {} (move it yourself, then run again)",
                    entry.path().display(),
                    to.display()
                )
            })?;
        }
        Ok(())
    })
}

/// Assembles the prompt, places its files in the app and keeps a copy of every input.
/// Returns the prompt's text.
pub fn prompt(
    opts: &RunOptions,
    content: &Content,
    plan: &Plan,
    folders: &Folders,
    trace: &HarnessTrace,
) -> Result<String> {
    trace.in_step("prompt assembly", || {
        let mut vars = BTreeMap::new();
        vars.insert("run_index".to_owned(), plan.run_index.to_string());
        vars.insert("app_dir".to_owned(), folders.app_dir.display().to_string());
        let prompt = content.session_prompt(&PromptRequest {
            backend: &plan.backend,
            phase: plan.phase,
            level: plan.level,
            rules: plan.rules,
            composed: plan.composed,
            ui_contracts: opts.ui_contracts,
            vars,
        })?;
        write_atomic(
            &folders.session_dir.join(PROMPT_FILE),
            prompt.text.as_bytes(),
        )?;
        for (rel, text) in &prompt.files {
            write_atomic(&folders.app_dir.join(rel), text.as_bytes())?;
        }
        keep_inputs(opts, plan, folders, &prompt)?;
        Ok(prompt.text)
    })
}

/// The inputs snapshot `inputs/<run-id>/`: what the session was given, with checksums.
fn keep_inputs(
    opts: &RunOptions,
    plan: &Plan,
    folders: &Folders,
    prompt: &SessionPrompt,
) -> Result<()> {
    let inputs = folders.backend_dir.join("inputs").join(&folders.run_id);
    std::fs::create_dir_all(&inputs)
        .with_context(|| format!("cannot create {}", inputs.display()))?;
    write_atomic(&inputs.join(PROMPT_FILE), prompt.text.as_bytes())?;
    for (rel, text) in &prompt.files {
        write_atomic(&inputs.join("app-files").join(rel), text.as_bytes())?;
    }
    for rel in &prompt.sources {
        copy_into(&opts.root.join(rel), &inputs.join("content").join(rel))?;
    }
    if plan.phase == Phase::Fix {
        // The bug report this fix session was given: the app's copy is rewritten by later
        // gradings, so the report counts bugs per level from this one.
        copy_into(
            &folders.app_dir.join(BUG_REPORT_FILE),
            &inputs.join(BUG_REPORT_FILE),
        )?;
    }
    if let ModelSource::Rehearsal(path) = &opts.models {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script.toml".to_owned());
        copy_into(path, &inputs.join(format!("rehearsal-{name}")))?;
    }
    snapshot::write_manifest(&inputs)?;
    Ok(())
}

fn copy_into(src: &Path, dst: &Path) -> Result<()> {
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::copy(src, dst)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} into the inputs", src.display()))
}

/// The values a rehearsal script's placeholders take in this session.
pub fn script_vars(
    content: &Content,
    plan: &Plan,
    folders: &Folders,
) -> Result<BTreeMap<String, String>> {
    let mut vars = content.backend(&plan.backend)?.vars(plan.run_index);
    vars.insert("app_dir".to_owned(), folders.app_dir.display().to_string());
    vars.insert("run_id".to_owned(), folders.run_id.clone());
    vars.insert("session_id".to_owned(), folders.session_id.clone());
    vars.insert("level".to_owned(), plan.level.to_string());
    vars.insert("phase".to_owned(), plan.phase.as_str().to_owned());
    vars.insert(
        "completion_marker".to_owned(),
        plan.phase.completion_marker().to_owned(),
    );
    Ok(vars)
}

/// Starts the scripted API on a free loopback port, playing `script` with this session's
/// values; its requests are logged into the session folder.
pub async fn scripted_api(
    script: &scripted_api::Script,
    vars: &BTreeMap<String, String>,
    session_dir: &Path,
    trace: &HarnessTrace,
) -> Result<scripted_api::ScriptedApiHandle> {
    let rendered = script.render(vars)?;
    let mut step = trace.step("scripted api");
    let started = scripted_api::ScriptedApi::start(
        Some(rendered),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await;
    let handle = match started {
        Ok(handle) => handle,
        Err(e) => {
            step.end_err(&format!("{e:#}"));
            return Err(e);
        }
    };
    handle.log_requests_to(&session_dir.join("scripted-api-requests.jsonl"))?;
    step.set("url", handle.url.clone());
    step.end_ok();
    Ok(handle)
}
