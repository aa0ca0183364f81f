//! What every app of a loop shares: the repository, where runs go, the agent CLI, where
//! telemetry goes, the app's value overrides and the grader's browser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use bench_formats::loop_record::LoopStep;
use bench_runner::{Cancel, ModelSource, TelemetrySink};

/// The shared environment of a loop's apps.
#[derive(Clone)]
pub struct LoopEnv {
    pub root: PathBuf,
    pub runs_dir: PathBuf,
    pub agent_bin: PathBuf,
    pub telemetry: TelemetrySink,
    /// Environment for the agent (its configuration folder).
    pub extra_env: Vec<(String, String)>,
    /// Time limit of each agent session.
    pub session_timeout: Duration,
    /// Values used in place of the backend's when starting apps (`pg_port=…`).
    pub app_overrides: BTreeMap<String, String>,
    /// The browser bench-grade drives (default: its own discovery).
    pub browser: Option<PathBuf>,
    /// Where bench-grade's driver is installed.
    pub driver_dir: PathBuf,
    /// How long to wait for a person's `GRADING_RESULTS.md` (manual grading); `None`:
    /// do not wait, let `--resume` continue.
    pub manual_wait: Option<Duration>,
    /// Stops the loop's sessions (Ctrl-C does too).
    pub cancel: Cancel,
    /// Print the agent's and the grader's progress lines (one app at a time only).
    pub verbose: bool,
}

impl LoopEnv {
    /// Where a step's answers come from: the API, or the step's script in the rehearsal
    /// folder.
    pub fn models(&self, rehearse: Option<&str>, step: &LoopStep) -> Result<ModelSource> {
        let Some(dir) = rehearse else {
            return Ok(ModelSource::Anthropic);
        };
        Ok(ModelSource::Rehearsal(script_for(Path::new(dir), step)?))
    }
}

/// The rehearsal script of a step: `generate-l<N>.toml`, `upgrade-l<N>.toml`, and for fixes
/// `fix-l<N>-<i>.toml`, else `fix-l<N>.toml`, else `fix.toml`.
pub fn script_for(dir: &Path, step: &LoopStep) -> Result<PathBuf> {
    let names = match step {
        LoopStep::Generate { level } => vec![format!("generate-l{level}.toml")],
        LoopStep::Upgrade { level } => vec![format!("upgrade-l{level}.toml")],
        LoopStep::Fix { level, iteration } => vec![
            format!("fix-l{level}-{iteration}.toml"),
            format!("fix-l{level}.toml"),
            "fix.toml".to_owned(),
        ],
        LoopStep::Grade { .. } | LoopStep::Finish => {
            bail!("the {step} step runs no agent session")
        }
    };
    for name in &names {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "the rehearsal folder {} has no script for {step} (looked for {})",
        dir.display(),
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_scripts_fall_back_from_iteration_to_level_to_any() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fix = |iteration| LoopStep::Fix {
            level: 2,
            iteration,
        };
        let err = script_for(dir, &fix(1)).unwrap_err().to_string();
        assert!(
            err.contains("fix-l2-1.toml, fix-l2.toml, fix.toml"),
            "{err}"
        );
        std::fs::write(dir.join("fix.toml"), "").unwrap();
        assert!(script_for(dir, &fix(1)).unwrap().ends_with("fix.toml"));
        std::fs::write(dir.join("fix-l2.toml"), "").unwrap();
        std::fs::write(dir.join("fix-l2-2.toml"), "").unwrap();
        assert!(script_for(dir, &fix(1)).unwrap().ends_with("fix-l2.toml"));
        assert!(script_for(dir, &fix(2)).unwrap().ends_with("fix-l2-2.toml"));
        let generate = LoopStep::Generate { level: 1 };
        assert!(script_for(dir, &generate).is_err());
    }
}
