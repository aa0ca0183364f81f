//! The files the receiver writes: the collector layout plus one pair per session.
//!
//! Every line is written with one `write` call on a file opened for appending, as soon as
//! its request has been decoded, so a session's records are on disk when the session's
//! export call returns.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

use crate::json;
use crate::split::{self, sanitize_key};

/// Combined logs file name (collector file-exporter layout).
pub const LOGS_FILE: &str = "logs.jsonl";
/// Combined metrics file name.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Folder of the per-session files.
pub const SESSIONS_DIR: &str = "sessions";

/// Session files kept open at once; past this, all are closed and reopened on demand.
const MAX_OPEN_SESSIONS: usize = 256;

/// `<dir>/sessions/<key>/logs.jsonl` and `<dir>/sessions/<key>/metrics.jsonl` for a session
/// key (sanitized the way the receiver does it).
pub fn session_files(dir: &Path, key: &str) -> (PathBuf, PathBuf) {
    let folder = dir.join(SESSIONS_DIR).join(sanitize_key(key));
    (folder.join(LOGS_FILE), folder.join(METRICS_FILE))
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Signal {
    Logs,
    Metrics,
}

struct Files {
    logs: File,
    metrics: File,
    sessions: HashMap<(String, Signal), File>,
}

/// Appends export requests to the combined and per-session files.
pub struct Sink {
    dir: PathBuf,
    files: Mutex<Files>,
}

/// What one request added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Log records or metric data points.
    pub records: usize,
    /// Session keys the records went to.
    pub sessions: Vec<String>,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} for appending", path.display()))
}

impl Sink {
    /// Create `dir` and the combined files (empty if new; existing content is kept).
    pub fn open(dir: &Path) -> Result<Sink> {
        fs::create_dir_all(dir.join(SESSIONS_DIR))
            .with_context(|| format!("creating telemetry folder {}", dir.display()))?;
        Ok(Sink {
            dir: dir.to_path_buf(),
            files: Mutex::new(Files {
                logs: open_append(&dir.join(LOGS_FILE))?,
                metrics: open_append(&dir.join(METRICS_FILE))?,
                sessions: HashMap::new(),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn write_logs(&self, req: &ExportLogsServiceRequest) -> Result<Written> {
        let parts = split::split_logs(req);
        let records: usize = parts.iter().map(|p| p.records).sum();
        if records == 0 {
            return Ok(Written::default());
        }
        let combined = line(json::encode_logs(req));
        let per_session: Vec<(String, String)> = parts
            .into_iter()
            .filter(|p| p.records > 0)
            .map(|p| (p.key, line(json::encode_logs(&p.request))))
            .collect();
        self.append(Signal::Logs, &combined, &per_session)?;
        Ok(Written {
            records,
            sessions: per_session.into_iter().map(|(k, _)| k).collect(),
        })
    }

    pub fn write_metrics(&self, req: &ExportMetricsServiceRequest) -> Result<Written> {
        let parts = split::split_metrics(req);
        let metric_count: usize = req
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .map(|s| s.metrics.len())
            .sum();
        if metric_count == 0 {
            return Ok(Written::default());
        }
        let records: usize = parts.iter().map(|p| p.records).sum();
        let combined = line(json::encode_metrics(req));
        let per_session: Vec<(String, String)> = parts
            .into_iter()
            .map(|p| (p.key, line(json::encode_metrics(&p.request))))
            .collect();
        self.append(Signal::Metrics, &combined, &per_session)?;
        Ok(Written {
            records,
            sessions: per_session.into_iter().map(|(k, _)| k).collect(),
        })
    }

    fn append(
        &self,
        signal: Signal,
        combined: &str,
        per_session: &[(String, String)],
    ) -> Result<()> {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (target, name) = match signal {
            Signal::Logs => (&mut files.logs, LOGS_FILE),
            Signal::Metrics => (&mut files.metrics, METRICS_FILE),
        };
        target
            .write_all(combined.as_bytes())
            .with_context(|| format!("appending to {}", self.dir.join(name).display()))?;
        if files.sessions.len() + per_session.len() > MAX_OPEN_SESSIONS {
            files.sessions.clear();
        }
        for (key, text) in per_session {
            let file = match files.sessions.entry((key.clone(), signal)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let (logs, metrics) = session_files(&self.dir, key);
                    let path = if signal == Signal::Logs {
                        logs
                    } else {
                        metrics
                    };
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent)
                            .with_context(|| format!("creating {}", parent.display()))?;
                    }
                    e.insert(open_append(&path)?)
                }
            };
            file.write_all(text.as_bytes())
                .with_context(|| format!("appending to the files of session {key}"))?;
        }
        Ok(())
    }
}

fn line(mut text: String) -> String {
    text.push('\n');
    text
}
