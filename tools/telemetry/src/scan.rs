//! Picking one session's records out of collector files.
//!
//! Each line is first checked on its raw bytes (no JSON parsing) with a substring search:
//! a line that names neither this session's id nor its run id, but does carry session tags,
//! belongs to other sessions and is skipped. Only the remaining lines are parsed, into the
//! borrowed types of [`crate::otlp`], and every log record and metric data point is then
//! attributed on its own (see [`Target::decide`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bench_formats::attribution::{Belongs, Level, RUN_ID, SESSION_ID};
use bench_formats::cost::{ApiError, InputStats, ToolStats};
use memchr::memmem::Finder;

use crate::lines::{self, Line};
use crate::otlp::{self, AnyValue, ExportLine, KeyValue, LogRecord, Temporality};

/// Slack added on each side of the session's time window: the metadata's times have
/// one-second resolution, the records' nanosecond.
const WINDOW_SLACK_NS: u64 = 1_000_000_000;

/// How many malformed lines are kept with their location (all are counted).
const MALFORMED_KEPT: usize = 200;

/// The session whose records are wanted.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The agent CLI's session id (`session.id`).
    pub session_id: Option<String>,
    /// The harness's run id (`run.id` resource attribute).
    pub run_id: Option<String>,
    /// Session start and end, in Unix nanoseconds (end open while the session runs).
    pub window: Option<(u64, Option<u64>)>,
    /// Whether untagged records inside the window are taken. [`crate::summarize`] first
    /// reads without it, and reads again with it only if no tagged record of the session
    /// was found: a session whose records carry tags never takes untagged ones.
    pub use_window: bool,
}

/// How a record was recognised as the session's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    RecordTag,
    ResourceTag,
    TimeWindow,
}

/// The attribution of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ours(Origin),
    /// Tagged with another session or run.
    Other,
    /// No tags, inside the window, but the window is not in use.
    UntaggedInWindow,
    /// No tags, and outside the window (or no window/time to compare).
    UntaggedOutside,
}

/// The tags of a record and of its resource: the receiver's type, so that both read
/// them by the same rule ([`bench_formats::attribution`]).
pub use bench_formats::attribution::Tags;

impl Target {
    /// Attribution: the shared rule ([`Tags::belongs_to`]: session ids, then run ids, the
    /// record's tag before its resource's) decides every tagged record; a record tagged
    /// with a different session is never taken. Only a record with no tag at all falls
    /// back to the session's time window.
    pub fn decide(&self, tags: Tags<'_>, time_ns: Option<u64>) -> Verdict {
        match tags.belongs_to(self.session_id.as_deref(), self.run_id.as_deref()) {
            Belongs::Yes(Level::Record) => return Verdict::Ours(Origin::RecordTag),
            Belongs::Yes(Level::Resource) => return Verdict::Ours(Origin::ResourceTag),
            Belongs::No => return Verdict::Other,
            Belongs::Untagged => {}
        }
        match (self.window, time_ns) {
            (Some((start, end)), Some(t))
                if t + WINDOW_SLACK_NS >= start
                    && end.is_none_or(|e| t <= e.saturating_add(WINDOW_SLACK_NS)) =>
            {
                if self.use_window {
                    Verdict::Ours(Origin::TimeWindow)
                } else {
                    Verdict::UntaggedInWindow
                }
            }
            _ => Verdict::UntaggedOutside,
        }
    }
}

/// The raw-bytes test run before any parsing.
pub struct Prefilter {
    session: Option<Finder<'static>>,
    run: Option<Finder<'static>>,
    session_key: Finder<'static>,
    run_key: Finder<'static>,
}

impl Prefilter {
    pub fn new(target: &Target) -> Prefilter {
        let finder = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| Finder::new(s.as_bytes()).into_owned())
        };
        Prefilter {
            session: finder(&target.session_id),
            run: finder(&target.run_id),
            session_key: Finder::new(b"\"session.id\"").into_owned(),
            run_key: Finder::new(b"\"run.id\"").into_owned(),
        }
    }

    /// Whether the line may hold records of the session. `false` only for lines that carry
    /// session or run tags, none of them this session's (the ids are searched as plain
    /// substrings, so a `true` is confirmed by parsing).
    pub fn may_concern(&self, line: &[u8]) -> bool {
        if self
            .session
            .as_ref()
            .is_some_and(|f| f.find(line).is_some())
            || self.run.as_ref().is_some_and(|f| f.find(line).is_some())
        {
            return true;
        }
        self.session_key.find(line).is_none() && self.run_key.find(line).is_none()
    }
}

/// One `claude_code.api_request` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiCall {
    pub time_ns: Option<u64>,
    /// `event.timestamp` as the CLI wrote it (or the record time in RFC 3339).
    pub timestamp: Option<String>,
    pub sequence: Option<u64>,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub cost_usd: f64,
    pub duration_ms: f64,
    pub prompt_id: Option<String>,
}

/// The cost-bearing metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    Cost,
    Tokens,
}

/// One data point of `claude_code.cost.usage` or `claude_code.token.usage`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub kind: MetricKind,
    /// Token type (`input`, `output`, `cacheRead`, `cacheCreation`) for token points.
    pub token_type: Option<String>,
    pub model: Option<String>,
    /// Identity of the time series (metric, resource and point attributes), as an index
    /// into [`Collected::series`].
    pub series: u32,
    pub temporality: Temporality,
    pub start_ns: u64,
    pub time_ns: u64,
    pub value: f64,
}

/// A line that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Everything gathered for one session.
#[derive(Debug, Default)]
pub struct Collected {
    pub calls: Vec<ApiCall>,
    pub api_errors: Vec<ApiError>,
    pub tools: ToolStats,
    /// Other events of the session, counted by name (`user_prompt`, …).
    pub other_events: BTreeMap<String, u64>,
    pub points: Vec<MetricPoint>,
    /// Data points of other metrics of the session, counted by metric name.
    pub other_metrics: BTreeMap<String, u64>,
    pub stats: InputStats,
    pub malformed_count: u64,
    /// The first malformed lines, with their location.
    pub malformed: Vec<Malformed>,
    /// Earliest and latest record times of the session.
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    /// The distinct metric series of the session, each stored once.
    pub series: Vec<String>,
    series_ids: HashMap<String, u32>,
    seen_events: HashSet<(String, u64, u64)>,
    seen_points: HashSet<(u32, u64, u64)>,
}

/// Where the matched parts of a line are, for rewriting it.
#[derive(Debug, Default)]
struct LineMatches {
    logs: Vec<[usize; 3]>,
    points: Vec<[usize; 4]>,
    total: u64,
}

impl Collected {
    fn note_malformed(&mut self, file: &str, line: u64, reason: String) {
        self.malformed_count += 1;
        if self.malformed.len() < MALFORMED_KEPT {
            self.malformed.push(Malformed {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }

    fn note_time(&mut self, t: Option<u64>) {
        if let Some(t) = t {
            self.first_ns = Some(self.first_ns.map_or(t, |f| f.min(t)));
            self.last_ns = Some(self.last_ns.map_or(t, |l| l.max(t)));
        }
    }

    fn count_origin(&mut self, origin: Origin) {
        match origin {
            Origin::RecordTag => self.stats.by_record_tag += 1,
            Origin::ResourceTag => self.stats.by_resource_tag += 1,
            Origin::TimeWindow => self.stats.by_time_window += 1,
        }
    }

    fn count_rejected(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Other => self.stats.other_sessions += 1,
            Verdict::UntaggedOutside => self.stats.untagged_outside_window += 1,
            Verdict::UntaggedInWindow => self.stats.untagged_in_window_unused += 1,
            Verdict::Ours(_) => {}
        }
    }

    /// Sum of the API calls' costs, in time order (the order the agent CLI adds them up,
    /// so the float sum reproduces its total bit for bit).
    pub fn events_cost(&self) -> f64 {
        self.calls
            .iter()
            .map(|c| c.cost_usd)
            .fold(0.0, |a, b| a + b)
    }

    /// Puts the calls in time order (sequence number, then input order, breaks ties).
    pub fn sort_calls(&mut self) {
        self.calls
            .sort_by_key(|c| (c.time_ns.unwrap_or(u64::MAX), c.sequence.unwrap_or(0)));
    }
}

/// Looks a key up in a record's attributes, then in a key-value body.
fn record_attr<'b, 'a>(rec: &'b LogRecord<'a>, key: &str) -> Option<&'b AnyValue<'a>> {
    otlp::attr(&rec.attributes, key)
        .or_else(|| rec.body.as_ref().and_then(|b| otlp::attr(b.kvlist(), key)))
}

fn record_str<'b>(rec: &'b LogRecord<'_>, key: &str) -> Option<&'b str> {
    record_attr(rec, key).and_then(AnyValue::as_str)
}

fn record_u64(rec: &LogRecord<'_>, key: &str) -> Option<u64> {
    record_attr(rec, key).and_then(AnyValue::as_u64)
}

fn record_f64(rec: &LogRecord<'_>, key: &str) -> Option<f64> {
    record_attr(rec, key).and_then(AnyValue::as_f64)
}

/// The event's short name (`api_request`, …), from `event.name`, the record's event name
/// field, or a string body, without the `claude_code.` prefix.
fn event_name<'b>(rec: &'b LogRecord<'_>) -> Option<&'b str> {
    let name = record_str(rec, "event.name")
        .or(rec.event_name.as_deref().filter(|n| !n.is_empty()))
        .or_else(|| rec.body.as_ref().and_then(AnyValue::as_str))?;
    Some(name.strip_prefix("claude_code.").unwrap_or(name))
}

/// A resource's attributes (none when the export has no resource).
fn resource_attrs<'b, 'a>(resource: &'b Option<otlp::Resource<'a>>) -> &'b [KeyValue<'a>] {
    resource.as_ref().map_or(&[], |r| r.attributes.as_slice())
}

fn resource_tags<'b>(attrs: &'b [KeyValue<'_>]) -> (Option<&'b str>, Option<&'b str>) {
    (
        otlp::attr_str(attrs, SESSION_ID),
        otlp::attr_str(attrs, RUN_ID),
    )
}

fn rfc3339_from_ns(ns: u64) -> Option<String> {
    let secs = i64::try_from(ns / 1_000_000_000).ok()?;
    let nanos = (ns % 1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Writes the identity of a series into `key`: the metric name, then the resource's and
/// the point's attributes, each sorted by key.
fn series_key(key: &mut String, name: &str, resource: &[KeyValue<'_>], point: &[KeyValue<'_>]) {
    use std::fmt::Write as _;
    key.clear();
    key.push_str(name);
    for (tag, attrs) in [("|r:", resource), ("|p:", point)] {
        let mut sorted: Vec<&KeyValue<'_>> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        for kv in sorted {
            key.push_str(tag);
            key.push_str(&kv.key);
            key.push('=');
            match kv.value.as_ref() {
                Some(v) if v.string_value.is_some() => key.push_str(v.as_str().unwrap_or("")),
                Some(v) => {
                    let _ = write!(key, "{}", v.to_text());
                }
                None => {}
            }
        }
    }
}

impl Collected {
    /// The id of the series whose key is in `key` (added if new).
    fn series_id(&mut self, key: &str) -> u32 {
        if let Some(&id) = self.series_ids.get(key) {
            return id;
        }
        let id = self.series.len() as u32;
        self.series.push(key.to_string());
        self.series_ids.insert(key.to_string(), id);
        id
    }
}

/// Result of looking at one parsed line.
enum Parsed {
    Matches(LineMatches),
    /// Valid JSON, but neither logs nor metrics (traces, profiles): nothing to count.
    Neither,
}

fn process_export(line: &ExportLine<'_>, target: &Target, out: &mut Collected) -> Parsed {
    if line.resource_logs.is_none() && line.resource_metrics.is_none() {
        return Parsed::Neither;
    }
    let mut m = LineMatches::default();
    let mut key_buf = String::new();
    for (ri, rl) in line.resource_logs.iter().flatten().enumerate() {
        let res_attrs = resource_attrs(&rl.resource);
        let (res_sid, res_rid) = resource_tags(res_attrs);
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            for (li, rec) in sl.log_records.iter().enumerate() {
                m.total += 1;
                let tags = Tags {
                    record_session: record_str(rec, SESSION_ID),
                    record_run: record_str(rec, RUN_ID),
                    resource_session: res_sid,
                    resource_run: res_rid,
                };
                let time = rec.time_ns();
                match target.decide(tags, time) {
                    Verdict::Ours(origin) => {
                        if take_event(rec, time, out) {
                            out.count_origin(origin);
                            out.stats.log_records += 1;
                            m.logs.push([ri, si, li]);
                        } else {
                            out.stats.duplicates += 1;
                        }
                    }
                    other => out.count_rejected(other),
                }
            }
        }
    }
    for (ri, rm) in line.resource_metrics.iter().flatten().enumerate() {
        let res_attrs = resource_attrs(&rm.resource);
        let (res_sid, res_rid) = resource_tags(res_attrs);
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            for (mi, metric) in sm.metrics.iter().enumerate() {
                let (points, temporality) = metric.number_points();
                let kind = match metric.name.as_ref() {
                    "claude_code.cost.usage" => Some(MetricKind::Cost),
                    "claude_code.token.usage" => Some(MetricKind::Tokens),
                    _ => None,
                };
                for (pi, p) in points.iter().enumerate() {
                    m.total += 1;
                    let tags = Tags {
                        record_session: otlp::attr_str(&p.attributes, SESSION_ID),
                        record_run: otlp::attr_str(&p.attributes, RUN_ID),
                        resource_session: res_sid,
                        resource_run: res_rid,
                    };
                    let time = p.time_unix_nano.map(|t| t.0).filter(|&t| t > 0);
                    match target.decide(tags, time) {
                        Verdict::Ours(origin) => {
                            let taken = match (kind, p.value()) {
                                (Some(kind), Some(value)) => {
                                    series_key(
                                        &mut key_buf,
                                        &metric.name,
                                        res_attrs,
                                        &p.attributes,
                                    );
                                    let series = out.series_id(&key_buf);
                                    let start = p.start_time_unix_nano.map_or(0, |t| t.0);
                                    let time = time.unwrap_or(0);
                                    if out.seen_points.insert((series, start, time)) {
                                        out.points.push(MetricPoint {
                                            kind,
                                            token_type: otlp::attr_str(&p.attributes, "type")
                                                .map(str::to_string),
                                            model: otlp::attr_str(&p.attributes, "model")
                                                .map(str::to_string),
                                            series,
                                            temporality,
                                            start_ns: start,
                                            time_ns: time,
                                            value,
                                        });
                                        true
                                    } else {
                                        false
                                    }
                                }
                                _ => {
                                    *out.other_metrics
                                        .entry(metric.name.to_string())
                                        .or_default() += 1;
                                    true
                                }
                            };
                            if taken {
                                out.count_origin(origin);
                                out.stats.metric_points += 1;
                                out.note_time(p.time_unix_nano.map(|t| t.0).filter(|&t| t > 0));
                                m.points.push([ri, si, mi, pi]);
                            } else {
                                out.stats.duplicates += 1;
                            }
                        }
                        other => out.count_rejected(other),
                    }
                }
                // Histogram-like metrics are not read; their points count as seen.
                for extra in [
                    &metric.histogram,
                    &metric.exponential_histogram,
                    &metric.summary,
                ]
                .into_iter()
                .flatten()
                {
                    m.total += extra.data_points.len() as u64;
                }
            }
        }
    }
    Parsed::Matches(m)
}

/// Records one event of the session; `false` when it was already seen (same name, time
/// and sequence number: the same line read twice from overlapping files).
fn take_event(rec: &LogRecord<'_>, time: Option<u64>, out: &mut Collected) -> bool {
    let name = event_name(rec).unwrap_or("unknown");
    let sequence = record_u64(rec, "event.sequence");
    if let (Some(t), Some(seq)) = (time, sequence)
        && !out.seen_events.insert((name.to_string(), t, seq))
    {
        return false;
    }
    out.note_time(time);
    let timestamp = record_str(rec, "event.timestamp")
        .map(str::to_string)
        .or_else(|| time.and_then(rfc3339_from_ns));
    match name {
        "api_request" => out.calls.push(ApiCall {
            time_ns: time,
            timestamp,
            sequence,
            model: record_str(rec, "model").unwrap_or("unknown").to_string(),
            input_tokens: record_u64(rec, "input_tokens").unwrap_or(0),
            output_tokens: record_u64(rec, "output_tokens").unwrap_or(0),
            cache_read_tokens: record_u64(rec, "cache_read_tokens").unwrap_or(0),
            cache_creation_tokens: record_u64(rec, "cache_creation_tokens").unwrap_or(0),
            cost_usd: record_f64(rec, "cost_usd").unwrap_or(0.0),
            duration_ms: record_f64(rec, "duration_ms").unwrap_or(0.0),
            prompt_id: record_str(rec, "prompt.id").map(str::to_string),
        }),
        "api_error" => out.api_errors.push(ApiError {
            timestamp,
            model: record_str(rec, "model").map(str::to_string),
            status_code: record_attr(rec, "status_code").map(AnyValue::to_text),
            error: record_str(rec, "error").map(str::to_string),
            attempt: record_u64(rec, "attempt"),
            duration_ms: record_f64(rec, "duration_ms"),
        }),
        "tool_decision" => {
            let tool = record_str(rec, "tool_name")
                .unwrap_or("unknown")
                .to_string();
            let rejected = record_str(rec, "decision").is_some_and(|d| d != "accept");
            let t = &mut out.tools;
            t.decisions += 1;
            t.rejections += u64::from(rejected);
            let per = t.by_tool.entry(tool).or_default();
            per.decisions += 1;
            per.rejections += u64::from(rejected);
        }
        "tool_result" => {
            let tool = record_str(rec, "tool_name")
                .unwrap_or("unknown")
                .to_string();
            let failed = record_attr(rec, "success")
                .and_then(AnyValue::as_bool)
                .is_some_and(|ok| !ok);
            let t = &mut out.tools;
            t.results += 1;
            t.failures += u64::from(failed);
            let per = t.by_tool.entry(tool).or_default();
            per.results += 1;
            per.failures += u64::from(failed);
        }
        other => *out.other_events.entry(other.to_string()).or_default() += 1,
    }
    true
}

/// Strips the line ending and surrounding blanks.
fn trim(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

/// What happened to one line.
pub(crate) enum LineOutcome {
    Blank,
    Skipped,
    Malformed(String),
    Used,
    Neither,
}

/// Shared per-line work of [`scan`] and [`crate::LiveTally`].
pub(crate) struct LineProcessor {
    pub target: Target,
    pub prefilter: Prefilter,
}

impl LineProcessor {
    pub fn new(target: Target) -> LineProcessor {
        let prefilter = Prefilter::new(&target);
        LineProcessor { target, prefilter }
    }

    /// Looks at one line; when `raw` is given, writes the session's part of it there.
    pub fn process<W: Write + ?Sized>(
        &self,
        line: &[u8],
        out: &mut Collected,
        raw: Option<&mut W>,
    ) -> Result<LineOutcome> {
        let line = trim(line);
        if line.is_empty() {
            return Ok(LineOutcome::Blank);
        }
        if !self.prefilter.may_concern(line) {
            // Not parsed, but a cut-off line is still worth reporting.
            if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
                return Ok(LineOutcome::Malformed(
                    "not a complete JSON object (truncated?)".into(),
                ));
            }
            return Ok(LineOutcome::Skipped);
        }
        out.stats.candidate_lines += 1;
        let export: ExportLine<'_> = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                let reason = if e.is_eof() {
                    format!("truncated JSON ({e})")
                } else {
                    format!("invalid OTLP/JSON ({e})")
                };
                return Ok(LineOutcome::Malformed(reason));
            }
        };
        let m = match process_export(&export, &self.target, out) {
            Parsed::Neither => return Ok(LineOutcome::Neither),
            Parsed::Matches(m) => m,
        };
        let matched = (m.logs.len() + m.points.len()) as u64;
        let all = matched == m.total;
        if matched > 0
            && let Some(w) = raw
        {
            if all {
                w.write_all(line)?;
            } else {
                let filtered = rewrite_line(line, &m)?;
                serde_json::to_writer(&mut *w, &filtered)?;
            }
            w.write_all(b"\n")?;
        }
        Ok(LineOutcome::Used)
    }
}

/// The line with only the session's records (and the resources/scopes/metrics holding them).
fn rewrite_line(line: &[u8], m: &LineMatches) -> Result<serde_json::Value> {
    use serde_json::Value;
    let mut v: Value = serde_json::from_slice(line).context("cannot re-read a matched line")?;
    let logs: HashSet<[usize; 3]> = m.logs.iter().copied().collect();
    let points: HashSet<[usize; 4]> = m.points.iter().copied().collect();

    fn arr_key<'k>(obj: &serde_json::Map<String, Value>, keys: &[&'k str]) -> Option<&'k str> {
        keys.iter().copied().find(|k| obj.contains_key(*k))
    }
    fn filter_indexed(arr: &mut Vec<Value>, mut keep: impl FnMut(usize, &mut Value) -> bool) {
        let mut i = 0;
        arr.retain_mut(|item| {
            let k = keep(i, item);
            i += 1;
            k
        });
    }

    let Some(obj) = v.as_object_mut() else {
        return Ok(v);
    };
    if let Some(key) = arr_key(obj, &["resourceLogs", "resource_logs"])
        && let Some(Value::Array(resources)) = obj.get_mut(key)
    {
        filter_indexed(resources, |ri, res| {
            let Some(res) = res.as_object_mut() else {
                return false;
            };
            let Some(sk) = arr_key(
                res,
                &["scopeLogs", "scope_logs", "instrumentationLibraryLogs"],
            ) else {
                return false;
            };
            let Some(Value::Array(scopes)) = res.get_mut(sk) else {
                return false;
            };
            filter_indexed(scopes, |si, scope| {
                let Some(scope) = scope.as_object_mut() else {
                    return false;
                };
                let Some(lk) = arr_key(scope, &["logRecords", "log_records"]) else {
                    return false;
                };
                let Some(Value::Array(records)) = scope.get_mut(lk) else {
                    return false;
                };
                filter_indexed(records, |li, _| logs.contains(&[ri, si, li]));
                !records.is_empty()
            });
            !scopes.is_empty()
        });
    }
    if let Some(key) = arr_key(obj, &["resourceMetrics", "resource_metrics"])
        && let Some(Value::Array(resources)) = obj.get_mut(key)
    {
        filter_indexed(resources, |ri, res| {
            let Some(res) = res.as_object_mut() else {
                return false;
            };
            let Some(sk) = arr_key(
                res,
                &[
                    "scopeMetrics",
                    "scope_metrics",
                    "instrumentationLibraryMetrics",
                ],
            ) else {
                return false;
            };
            let Some(Value::Array(scopes)) = res.get_mut(sk) else {
                return false;
            };
            filter_indexed(scopes, |si, scope| {
                let Some(Value::Array(metrics)) = scope.get_mut("metrics") else {
                    return false;
                };
                filter_indexed(metrics, |mi, metric| {
                    let Some(metric) = metric.as_object_mut() else {
                        return false;
                    };
                    let mut any = false;
                    for kind in ["sum", "gauge"] {
                        if let Some(Value::Object(body)) = metric.get_mut(kind)
                            && let Some(dk) = arr_key(body, &["dataPoints", "data_points"])
                            && let Some(Value::Array(dps)) = body.get_mut(dk)
                        {
                            filter_indexed(dps, |pi, _| points.contains(&[ri, si, mi, pi]));
                            any |= !dps.is_empty();
                        }
                    }
                    any
                });
                !metrics.is_empty()
            });
            !scopes.is_empty()
        });
    }
    Ok(v)
}

/// Streams `files` as one input and gathers the session's records. When `raw_out` is
/// given, the session's lines (rewritten to hold only its records) are written there.
pub fn scan(
    target: &Target,
    files: &[PathBuf],
    max_line: usize,
    mut raw_out: Option<&mut dyn Write>,
) -> Result<Collected> {
    let processor = LineProcessor::new(target.clone());
    let mut out = Collected::default();
    for path in files {
        let name = path.display().to_string();
        out.stats.files.push(name.clone());
        let bytes = lines::for_each_line(path, max_line, |no, line, last| {
            out.stats.lines += 1;
            match line {
                Line::TooLong(len) => {
                    out.note_malformed(
                        &name,
                        no,
                        format!("line of {len} bytes is longer than the {max_line}-byte limit"),
                    );
                }
                Line::Text(text) => {
                    let outcome = processor
                        .process(text, &mut out, raw_out.as_deref_mut())
                        .context("cannot write the extracted raw telemetry")?;
                    if let LineOutcome::Malformed(reason) = outcome {
                        let reason = if last {
                            format!("last line, without a newline: {reason}")
                        } else {
                            reason
                        };
                        out.note_malformed(&name, no, reason);
                    }
                }
            }
            Ok(())
        })?;
        out.stats.bytes += bytes;
    }
    out.sort_calls();
    Ok(out)
}

/// Parses the metadata's times (`2026-04-10T20:09:37Z`, or `…-0400`) to Unix nanoseconds.
pub fn parse_time_ns(text: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()?;
    u64::try_from(t.timestamp_nanos_opt()?).ok()
}

/// The target of a session's metadata.
pub fn target_of(meta: &bench_formats::SessionMetadata) -> Target {
    let start = meta
        .started_at_utc
        .as_deref()
        .and_then(parse_time_ns)
        .or_else(|| meta.started_at.as_deref().and_then(parse_time_ns));
    let end = meta
        .ended_at_utc
        .as_deref()
        .and_then(parse_time_ns)
        .or_else(|| meta.ended_at.as_deref().and_then(parse_time_ns));
    Target {
        session_id: meta.session_id.clone().filter(|s| !s.is_empty()),
        run_id: meta.run_id.clone().filter(|s| !s.is_empty()),
        window: start.map(|s| (s, end)),
        use_window: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            session_id: Some("S".into()),
            run_id: Some("R".into()),
            window: Some((100 * WINDOW_SLACK_NS, Some(200 * WINDOW_SLACK_NS))),
            use_window: true,
        }
    }

    #[test]
    fn own_session_tag_wins_over_everything_else() {
        let t = target();
        let tags = Tags {
            record_session: Some("other"),
            resource_session: Some("S"),
            resource_run: Some("R"),
            ..Tags::default()
        };
        assert_eq!(t.decide(tags, Some(150 * WINDOW_SLACK_NS)), Verdict::Other);
        let tags = Tags {
            record_session: Some("S"),
            resource_session: Some("other"),
            ..Tags::default()
        };
        assert_eq!(t.decide(tags, None), Verdict::Ours(Origin::RecordTag));
    }

    #[test]
    fn resource_tags_decide_for_records_without_their_own() {
        let t = target();
        let by_run = Tags {
            resource_run: Some("R"),
            ..Tags::default()
        };
        assert_eq!(t.decide(by_run, None), Verdict::Ours(Origin::ResourceTag));
        let other_run = Tags {
            resource_run: Some("R2"),
            ..Tags::default()
        };
        assert_eq!(
            t.decide(other_run, Some(150 * WINDOW_SLACK_NS)),
            Verdict::Other
        );
    }

    #[test]
    fn only_untagged_records_use_the_time_window() {
        let t = target();
        let none = Tags::default();
        assert_eq!(
            t.decide(none, Some(150 * WINDOW_SLACK_NS)),
            Verdict::Ours(Origin::TimeWindow)
        );
        assert_eq!(
            t.decide(none, Some(300 * WINDOW_SLACK_NS)),
            Verdict::UntaggedOutside
        );
        assert_eq!(t.decide(none, None), Verdict::UntaggedOutside);
        let tagged_session = Target {
            use_window: false,
            ..t
        };
        assert_eq!(
            tagged_session.decide(none, Some(150 * WINDOW_SLACK_NS)),
            Verdict::UntaggedInWindow
        );
    }

    #[test]
    fn prefilter_skips_only_lines_tagged_for_other_sessions() {
        let p = Prefilter::new(&target());
        assert!(p.may_concern(br#"{"key":"session.id","value":{"stringValue":"S"}}"#));
        assert!(!p.may_concern(br#"{"key":"session.id","value":{"stringValue":"X"}}"#));
        assert!(!p.may_concern(br#"{"key":"run.id","value":{"stringValue":"X"}}"#));
        assert!(p.may_concern(br#"{"resourceLogs":[]}"#));
    }

    #[test]
    fn array_bodies_and_event_name_fields_are_understood() {
        let line = br#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"session.id","value":{"stringValue":"S"}}]},
          "scopeLogs":[{"logRecords":[
            {"timeUnixNano":"5","eventName":"claude_code.api_request",
             "body":{"arrayValue":{"values":[{"stringValue":"x"},{"intValue":"3"}]}},
             "attributes":[{"key":"cost_usd","value":{"doubleValue":0.25}},
                           {"key":"output_tokens","value":{"intValue":7}}]},
            {"timeUnixNano":"6","eventName":"","body":{"stringValue":"claude_code.tool_result"},
             "attributes":[{"key":"tool_name","value":{"stringValue":"Bash"}},
                           {"key":"success","value":{"boolValue":false}}]}]}]}]}"#;
        let p = LineProcessor::new(target());
        let mut out = Collected::default();
        let outcome = p.process(line, &mut out, None::<&mut Vec<u8>>).unwrap();
        assert!(matches!(outcome, LineOutcome::Used));
        assert_eq!(out.calls.len(), 1);
        assert_eq!(out.calls[0].cost_usd, 0.25);
        assert_eq!(out.calls[0].output_tokens, 7);
        assert_eq!(out.tools.failures, 1);
        assert_eq!(out.stats.by_resource_tag, 2);
    }

    #[test]
    fn metadata_times_in_both_formats() {
        assert_eq!(
            parse_time_ns("2026-04-10T20:09:37Z"),
            parse_time_ns("2026-04-10T16:09:37-0400")
        );
        assert!(parse_time_ns("yesterday").is_none());
    }
}
