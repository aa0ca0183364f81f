//! Per-session cost accounting from Claude Code's OpenTelemetry export.
//!
//! The input is what the OpenTelemetry Collector's file exporter writes: one OTLP/JSON
//! export request per line (logs and metrics, in one file or several). For one agent
//! session (its `metadata.json`), this crate picks out the session's own records — never
//! another session's, however the files interleave them — and adds up its cost three
//! independent ways: the `claude_code.api_request` events, the cost/token metrics, and the
//! agent CLI's own final result object. The outcome is `cost-summary.json` and
//! `COST_REPORT.md` in the session folder.
//!
//! Entry points:
//! - [`summarize`]: the whole job for one session folder (what `cargo xtask
//!   bench-telemetry` runs);
//! - [`LiveTally`]: a cheap running count of calls and cost while a session is running;
//! - [`cli`]: the command-line front ends.

pub mod cli;
pub mod lines;
pub mod live;
pub mod metrics;
pub mod otlp;
pub mod perf;
pub mod report;
pub mod result;
pub mod scan;
pub mod summary;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::{CostSummary, SessionMetadata, SummaryStatus, read_json, write_json};

pub use live::{LiveSnapshot, LiveTally};
pub use scan::{Malformed, Target};

/// File names inside a session folder (the shared ones are named in bench-formats).
pub use bench_formats::files::{
    COST_REPORT_FILE as REPORT_FILE, COST_SUMMARY_FILE as SUMMARY_FILE, METADATA_FILE,
    TRANSCRIPT_FILE,
};
pub const RAW_FILE: &str = "raw-telemetry.jsonl";
/// Where a `--output-format json` result object may be kept.
pub const RESULT_FILE: &str = "result.json";

/// Default relative tolerance between sources (0.5 %).
pub const DEFAULT_TOLERANCE: f64 = 0.005;

/// The telemetry and result files for one session.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Collector files holding logs (any line may hold logs or metrics: the kind is read
    /// from each line). Read in order, as one stream, before `metrics`.
    pub logs: Vec<PathBuf>,
    /// Collector files holding metrics.
    pub metrics: Vec<PathBuf>,
    /// The CLI's result object (a JSON object, or a stream-json transcript). When `None`,
    /// `transcript.jsonl` then `result.json` in the session folder are tried.
    pub result: Option<PathBuf>,
}

impl Inputs {
    /// The telemetry files to read, in order. With none given, `raw-telemetry.jsonl` of the
    /// session folder is used if it exists.
    pub fn telemetry_files(&self, session_dir: &Path) -> Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = Vec::new();
        for f in self.logs.iter().chain(&self.metrics) {
            // The same file given twice would count its records twice.
            if !files.iter().any(|seen| seen == f || same_file(seen, f)) {
                files.push(f.clone());
            }
        }
        if files.is_empty() {
            let raw = session_dir.join(RAW_FILE);
            if raw.is_file() {
                files.push(raw);
            } else {
                bail!(
                    "no telemetry input for {}: it has no {RAW_FILE}; pass the collector's files with --logs FILE... and/or --metrics FILE... (any file may hold both kinds)",
                    session_dir.display()
                );
            }
        }
        Ok(files)
    }
}

/// How [`summarize`] works.
#[derive(Debug, Clone)]
pub struct Options {
    /// Also write the session's own lines to `raw-telemetry.jsonl`.
    pub extract_raw: bool,
    /// Relative difference between sources above which a warning is recorded.
    pub tolerance: f64,
    /// Lines longer than this are skipped as malformed (memory stays bounded).
    pub max_line_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            extract_raw: false,
            tolerance: DEFAULT_TOLERANCE,
            max_line_bytes: lines::DEFAULT_MAX_LINE,
        }
    }
}

/// What [`summarize`] produced.
#[derive(Debug, Clone)]
pub struct SessionCost {
    /// The summary, as written to `cost-summary.json`.
    pub summary: CostSummary,
    pub summary_path: PathBuf,
    pub report_path: PathBuf,
    /// `raw-telemetry.jsonl`, when it was extracted.
    pub raw_path: Option<PathBuf>,
    /// The first malformed input lines (all are counted in `summary.malformed_lines`).
    pub malformed: Vec<Malformed>,
}

impl SessionCost {
    /// How complete the totals are (`ok` when the summary does not say).
    pub fn status(&self) -> SummaryStatus {
        self.summary.status.unwrap_or(SummaryStatus::Ok)
    }

    /// Warnings recorded by the reconciliation.
    pub fn warnings(&self) -> &[String] {
        self.summary
            .reconciliation
            .as_ref()
            .map_or(&[], |r| r.warnings.as_slice())
    }
}

/// Reads a session folder's `metadata.json`.
pub fn read_metadata(session_dir: &Path) -> Result<SessionMetadata> {
    let path = session_dir.join(METADATA_FILE);
    if !path.is_file() {
        bail!(
            "{} not found: point bench-telemetry at a session folder written by bench-run (it holds metadata.json with the session's sessionId/runId)",
            path.display()
        );
    }
    read_json(&path)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Finds and reads the CLI's result object. Returns it, or why there is none.
fn find_result(
    session_dir: &Path,
    inputs: &Inputs,
    meta: &SessionMetadata,
) -> Result<(Option<result::CliResult>, Option<String>)> {
    let found = if let Some(path) = &inputs.result {
        match result::read(path)? {
            Some(r) => Some(r),
            None => bail!(
                "{} holds no result object (no line with \"type\":\"result\"); pass the CLI's --output-format json output or a finished stream-json transcript",
                path.display()
            ),
        }
    } else {
        let mut found = None;
        for name in [TRANSCRIPT_FILE, RESULT_FILE] {
            let path = session_dir.join(name);
            if path.is_file()
                && let Some(r) = result::read(&path)?
            {
                found = Some(r);
                break;
            }
        }
        if found.is_none() {
            return Ok((
                None,
                Some(format!(
                    "no CLI result object: neither {TRANSCRIPT_FILE} nor {RESULT_FILE} in the session folder holds one (pass --result FILE)"
                )),
            ));
        }
        found
    };
    let Some(r) = found else {
        return Ok((None, None));
    };
    if let (Some(mine), Some(theirs)) = (meta.session_id.as_deref(), r.session_id.as_deref())
        && mine != theirs
    {
        return Ok((
            None,
            Some(format!(
                "the result object in {} is for session {theirs}, not {mine}: it was left out",
                r.path.display()
            )),
        ));
    }
    let mut r = r;
    attach_transcript(session_dir, &mut r, meta.session_id.as_deref());
    Ok((Some(r), None))
}

/// When the result object came from a file that is not a transcript (`--output-format
/// json` output), counts the API calls from the session folder's transcript, if it has
/// one of the same session. Without a transcript the result source has no call count
/// (its `num_turns` is not one).
fn attach_transcript(session_dir: &Path, r: &mut result::CliResult, session_id: Option<&str>) {
    if r.transcript.is_some() {
        return;
    }
    let path = session_dir.join(TRANSCRIPT_FILE);
    if !path.is_file() || same_file(&path, &r.path) {
        return;
    }
    match result::count_calls(&path) {
        Ok(Some(t)) => {
            let theirs = t.session_ids.iter().next().cloned().unwrap_or_default();
            match session_id.or(r.session_id.as_deref()) {
                Some(mine) if !t.is_of(mine) => {
                    r.transcript_note = Some(format!(
                        "{} is of session {theirs}, not {mine}: its API calls were not counted",
                        path.display()
                    ));
                }
                _ => r.transcript = Some(t),
            }
        }
        Ok(None) => {
            r.transcript_note = Some(format!(
                "{} holds no assistant message to count API calls from",
                path.display()
            ));
        }
        Err(e) => r.transcript_note = Some(format!("{e:#}: its API calls were not counted")),
    }
}

/// Writes the session's own raw lines through a temporary file, renamed when complete
/// (and removed if the work stops before that).
struct RawWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl RawWriter {
    fn create(path: PathBuf) -> Result<RawWriter> {
        let tmp = path.with_file_name(format!(".{RAW_FILE}.tmp"));
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(RawWriter {
            tmp,
            path,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    fn writer(&mut self) -> Option<&mut dyn Write> {
        self.out.as_mut().map(|w| w as &mut dyn Write)
    }

    fn finish(mut self) -> Result<PathBuf> {
        let Some(out) = self.out.take() else {
            bail!("{} was already finished", self.tmp.display());
        };
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "cannot move {} to {}",
                self.tmp.display(),
                self.path.display()
            )
        })?;
        Ok(self.path.clone())
    }
}

impl Drop for RawWriter {
    fn drop(&mut self) {
        if let Some(out) = self.out.take() {
            drop(out);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The session's earlier `cost-summary.json`, if it has one this tool may replace. One
/// without `schemaVersion` is the original harness's (published figures), and one that
/// does not parse is not ours either: both stop the command, untouched.
fn earlier_summary(path: &Path) -> Result<Option<CostSummary>> {
    if !path.exists() {
        return Ok(None);
    }
    let previous: CostSummary = read_json(path).with_context(|| {
        format!(
            "{} exists but is not a cost summary this tool can read; not overwriting it: move it away, then run again",
            path.display()
        )
    })?;
    if previous.schema_version.is_none() {
        bail!(
            "{} was written by the original harness (it has no schemaVersion): not overwriting published figures. \
             Copy the session folder elsewhere (without cost-summary.json and COST_REPORT.md) to recompute it",
            path.display()
        );
    }
    Ok(Some(previous))
}

/// Computes one session's cost and writes `cost-summary.json` and `COST_REPORT.md` into
/// `session_dir` (plus `raw-telemetry.jsonl` with [`Options::extract_raw`]).
///
/// A session with no matching telemetry is not an error here: the summary is written with
/// status `no-telemetry` (totals from the CLI's result object if there is one) and
/// returned; callers decide how loud to be. Errors are for what prevents doing the job at
/// all: no `metadata.json`, no input, unreadable files, unwritable outputs.
pub fn summarize(session_dir: &Path, inputs: &Inputs, opts: &Options) -> Result<SessionCost> {
    let meta = read_metadata(session_dir)?;
    let target = scan::target_of(&meta);
    if target.session_id.is_none() && target.run_id.is_none() && target.window.is_none() {
        bail!(
            "{} has no sessionId, runId or startedAtUtc: there is no way to tell which records are this session's",
            session_dir.join(METADATA_FILE).display()
        );
    }
    let files = inputs.telemetry_files(session_dir)?;
    for f in &files {
        if !f.is_file() {
            bail!(
                "telemetry file {} does not exist (check --logs/--metrics)",
                f.display()
            );
        }
    }

    // An earlier summary is checked before anything is written: one this tool did not
    // write (the original harness's published figures) is never replaced.
    let summary_path = session_dir.join(SUMMARY_FILE);
    let previous = earlier_summary(&summary_path)?;

    let raw_path = session_dir.join(RAW_FILE);
    if opts.extract_raw && raw_path.exists() && !files.iter().any(|f| same_file(f, &raw_path)) {
        bail!(
            "{} already exists and is not one of the inputs: move it away first, or pass it with --logs to include it (it will then be rewritten with this session's lines only)",
            raw_path.display()
        );
    }
    let read = |target: &Target| -> Result<(scan::Collected, Option<RawWriter>)> {
        let mut raw = opts
            .extract_raw
            .then(|| RawWriter::create(raw_path.clone()))
            .transpose()?;
        let collected = scan::scan(
            target,
            &files,
            opts.max_line_bytes,
            raw.as_mut().and_then(RawWriter::writer),
        )?;
        Ok((collected, raw))
    };
    let (mut collected, mut raw) = read(&target)?;
    // No tagged record of the session, but untagged ones in its time window: read again,
    // taking those (the time-window fallback).
    if collected.stats.log_records + collected.stats.metric_points == 0
        && collected.stats.untagged_in_window_unused > 0
    {
        let with_window = Target {
            use_window: true,
            ..target.clone()
        };
        // The first pass's raw output is discarded before the second pass rewrites it.
        drop(raw.take());
        (collected, raw) = read(&with_window)?;
    }
    let raw_path = raw.map(RawWriter::finish).transpose()?;

    let (cli_result, result_missing) = find_result(session_dir, inputs, &meta)?;
    let metric_totals = metrics::aggregate(&collected.points);
    let mut summary = summary::build(&summary::Inputs {
        meta: &meta,
        collected: &collected,
        metrics: &metric_totals,
        result: cli_result.as_ref(),
        result_missing,
        tolerance: opts.tolerance,
    });
    if let Some(i) = summary.inputs.as_mut() {
        i.result_file = cli_result.as_ref().map(|r| r.path.display().to_string());
    }

    // Keep what other tools added to an earlier summary.
    if let Some(previous) = previous {
        for (k, v) in previous.extra {
            summary.extra.entry(k).or_insert(v);
        }
    }
    write_json(&summary_path, &summary)?;
    let report_path = session_dir.join(REPORT_FILE);
    let text = report::render(&meta, &summary, &collected, &collected.malformed);
    bench_formats::io::write_atomic(&report_path, text.as_bytes())?;

    Ok(SessionCost {
        summary,
        summary_path,
        report_path,
        raw_path,
        malformed: collected.malformed,
    })
}
