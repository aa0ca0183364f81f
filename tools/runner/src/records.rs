//! What a session writes about itself once its folders exist — `metadata.json`, the app's
//! `.bench/state.json` and the harness trace — and the one place its outcome changes.
//!
//! A session is recorded as `running` before the agent starts (so a crash still shows it),
//! then ends exactly once: [`Records::end`] moves the metadata and the app's state together,
//! and raises the app's level when a generate or upgrade session completed.

use std::path::{Path, PathBuf};

use anyhow::Result;
use bench_formats::files::METADATA_FILE;
use bench_formats::state::SessionRecord;
use bench_formats::{AppState, Outcome, Phase, SessionMetadata};
use chrono::{DateTime, Local, Utc};

use crate::layout;
use crate::trace::HarnessTrace;

/// A moment as the records write it: local time with its offset
/// (`2026-04-06T15:37:27-0400`) and UTC (`2026-04-06T19:37:27Z`), as the original harness did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    pub local: String,
    pub utc: String,
}

impl Moment {
    pub fn of(t: &DateTime<Local>) -> Moment {
        Moment {
            local: t.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
            utc: t
                .with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        }
    }

    pub fn now() -> Moment {
        Moment::of(&Local::now())
    }
}

/// The folders a session claimed, and who it is.
#[derive(Debug, Clone)]
pub struct Folders {
    /// The app the agent works in.
    pub app_dir: PathBuf,
    /// `runs/<variant>-<date>[-N]/<backend>`.
    pub backend_dir: PathBuf,
    /// `telemetry/<run-id>`.
    pub session_dir: PathBuf,
    pub run_id: String,
    /// The agent CLI's session id, chosen by the harness.
    pub session_id: String,
    /// When the folders were claimed (the session's start).
    pub started: DateTime<Local>,
}

/// A started session's records, kept in memory and written through.
pub struct Records {
    pub folders: Folders,
    pub meta: SessionMetadata,
    pub state: AppState,
    pub trace: HarnessTrace,
    phase: Phase,
    level: u32,
}

impl Records {
    /// Writes the session's metadata and adds it to the app's state as `running`.
    pub fn begin(
        folders: Folders,
        mut meta: SessionMetadata,
        mut state: AppState,
        trace: HarnessTrace,
        phase: Phase,
        level: u32,
    ) -> Result<Records> {
        meta.outcome = Some(Outcome::Running);
        state.sessions.push(SessionRecord {
            phase,
            level,
            run_id: folders.run_id.clone(),
            session_id: Some(folders.session_id.clone()),
            outcome: Outcome::Running,
            exit_code: None,
            cost_usd: None,
            started_at_utc: meta.started_at_utc.clone().unwrap_or_default(),
            ended_at_utc: None,
            telemetry_dir: Some(format!("telemetry/{}", folders.run_id)),
        });
        let records = Records {
            folders,
            meta,
            state,
            trace,
            phase,
            level,
        };
        records.write_metadata()?;
        records.save_state()?;
        Ok(records)
    }

    pub fn metadata_path(&self) -> PathBuf {
        self.folders.session_dir.join(METADATA_FILE)
    }

    pub fn app_dir(&self) -> &Path {
        &self.folders.app_dir
    }

    pub fn write_metadata(&self) -> Result<()> {
        bench_formats::write_json(&self.metadata_path(), &self.meta)
    }

    pub fn save_state(&self) -> Result<()> {
        layout::save_state(&self.folders.app_dir, &self.state)
    }

    /// The session's one transition out of `running`: metadata and the app's state say how
    /// it ended and when; a completed generate or upgrade raises the app's level. Written
    /// by the caller ([`Records::write_metadata`], [`Records::save_state`]).
    pub fn end(&mut self, outcome: Outcome, ended: &DateTime<Local>, exit_code: Option<i32>) {
        let at = Moment::of(ended);
        self.meta.outcome = Some(outcome);
        self.meta.ended_at = Some(at.local);
        self.meta.ended_at_utc = Some(at.utc);
        if exit_code.is_some() {
            self.meta.exit_code = exit_code;
        }
        if let Some(rec) = self.state.sessions.last_mut() {
            rec.outcome = outcome;
            rec.exit_code = self.meta.exit_code;
            rec.ended_at_utc = self.meta.ended_at_utc.clone();
        }
        if outcome.succeeded() && self.phase != Phase::Fix {
            self.state.level = self.level;
        }
    }

    /// Records what the session cost in the app's state.
    pub fn set_cost(&mut self, cost_usd: Option<f64>) {
        if let Some(rec) = self.state.sessions.last_mut() {
            rec.cost_usd = cost_usd;
        }
    }

    /// Ends a session that failed before its agent ran to an end: metadata and state say
    /// `failed`, with the error; the trace is closed.
    pub fn fail(mut self, error: &anyhow::Error) -> Result<()> {
        let message = format!("{error:#}");
        self.meta
            .extra
            .insert("error".to_owned(), serde_json::json!(message));
        self.end(Outcome::Failed, &Local::now(), None);
        self.write_metadata()?;
        self.save_state()?;
        self.trace.finish(vec![], Some(&message));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(tmp: &Path, phase: Phase, level: u32) -> Records {
        let app_dir = tmp.join("results/chat-app-x");
        let session_dir = tmp.join("telemetry/run");
        std::fs::create_dir_all(&app_dir).unwrap();
        std::fs::create_dir_all(&session_dir).unwrap();
        let started = Local::now();
        let folders = Folders {
            app_dir,
            backend_dir: tmp.to_path_buf(),
            session_dir: session_dir.clone(),
            run_id: "run".into(),
            session_id: "sid".into(),
            started,
        };
        let meta = SessionMetadata {
            started_at_utc: Some(Moment::of(&started).utc),
            ..SessionMetadata::default()
        };
        let state = AppState {
            backend: "postgres".into(),
            level: level - 1,
            ..AppState::default()
        };
        let trace =
            HarnessTrace::start(&session_dir, "t", std::time::SystemTime::now(), vec![]).unwrap();
        Records::begin(folders, meta, state, trace, phase, level).unwrap()
    }

    fn saved(rec: &Records) -> (SessionMetadata, AppState) {
        (
            bench_formats::read_json(&rec.metadata_path()).unwrap(),
            bench_formats::read_json(&rec.app_dir().join(bench_formats::files::STATE_FILE))
                .unwrap(),
        )
    }

    #[test]
    fn a_session_is_running_until_it_ends_once_and_only_a_completed_build_raises_the_level() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rec = begin(tmp.path(), Phase::Upgrade, 3);
        let (meta, state) = saved(&rec);
        assert_eq!(meta.outcome, Some(Outcome::Running));
        assert_eq!(state.sessions[0].outcome, Outcome::Running);
        assert_eq!(state.level, 2);

        rec.end(Outcome::Completed, &Local::now(), Some(0));
        rec.set_cost(Some(0.5));
        rec.write_metadata().unwrap();
        rec.save_state().unwrap();
        let (meta, state) = saved(&rec);
        assert_eq!(meta.outcome, Some(Outcome::Completed));
        assert!(
            meta.ended_at_utc
                .as_deref()
                .is_some_and(|t| t.ends_with('Z'))
        );
        assert_eq!(state.level, 3);
        let session = &state.sessions[0];
        assert_eq!((session.exit_code, session.cost_usd), (Some(0), Some(0.5)));
        assert_eq!(session.ended_at_utc, meta.ended_at_utc);

        // A completed fix keeps the level; a failure records its error.
        let tmp = tempfile::tempdir().unwrap();
        let mut fix = begin(tmp.path(), Phase::Fix, 3);
        fix.end(Outcome::Completed, &Local::now(), Some(0));
        assert_eq!(fix.state.level, 2);
        let tmp = tempfile::tempdir().unwrap();
        let failed = begin(tmp.path(), Phase::Generate, 1);
        let app_dir = failed.app_dir().to_path_buf();
        let meta_path = failed.metadata_path();
        failed.fail(&anyhow::anyhow!("no prompt")).unwrap();
        let meta: SessionMetadata = bench_formats::read_json(&meta_path).unwrap();
        let state: AppState =
            bench_formats::read_json(&app_dir.join(bench_formats::files::STATE_FILE)).unwrap();
        assert_eq!(meta.outcome, Some(Outcome::Failed));
        assert_eq!(meta.extra["error"], "no prompt");
        assert_eq!(
            (state.level, state.sessions[0].outcome),
            (0, Outcome::Failed)
        );
    }
}
