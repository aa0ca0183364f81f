//! Turning what was gathered into `cost-summary.json`: totals, the three-way
//! reconciliation, and the choice of the source the totals come from.
//!
//! The rules:
//! - Sources compared: the `api_request` events, the cost/token metrics, and the CLI's
//!   result object. Costs and tokens are compared for all three.
//! - API calls are compared between the events (one per call) and the result source, whose
//!   call count is the number of distinct assistant `message.id` in the session's
//!   stream-json transcript. The result object's `num_turns` is never compared: the CLI
//!   raises it for every tool use, so one response asking for two tools adds two. With a
//!   bare result object and no transcript, the result source has no call count (its
//!   `num_turns` is kept as `turns`, for information).
//! - The events are trusted (they give per-call detail) unless they fall short of the
//!   result object (cost below it beyond the tolerance, or fewer calls than the
//!   transcript), or, without a result object, of the cost metrics. Telemetry falls short
//!   when exports are lost: the CLI stopped abruptly (e.g. its budget cap) before sending
//!   its last events, or the collector was down.
//! - Each other source is then `ok` (agrees with the trusted one), `short` (a telemetry
//!   source whose every difference is a shortfall: records were lost) or `mismatch`
//!   (anything else: a source reports MORE than the trusted one, the result object
//!   disagrees with complete events, figures differ in both directions).
//! - The reconciliation status is `no-telemetry`, else `mismatch` if any source
//!   mismatches, else `telemetry-incomplete` if a telemetry source is short, else
//!   `incomplete` if a source is missing, else `ok`.

use std::collections::BTreeMap;

use bench_formats::SessionMetadata;
use bench_formats::cost::{
    CostSummary, ModelUsage, Reconciliation, SourceFigures, SourceStatus, Status, SummaryStatus,
};

use crate::metrics::MetricTotals;
use crate::result::CliResult;
use crate::scan::{Collected, parse_time_ns};

/// Version of this crate's additions to `cost-summary.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Which source the totals come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Events,
    Metrics,
    Result,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Events => "events",
            Source::Metrics => "metrics",
            Source::Result => "result",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Source::Events => "api_request events",
            Source::Metrics => "cost/token metrics",
            Source::Result => "the CLI's result object",
        }
    }
}

/// Relative difference of `a` from `b` (0 when both are 0).
pub fn rel_diff(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

fn events_figures(c: &Collected) -> Option<SourceFigures> {
    if c.stats.log_records == 0 {
        return None;
    }
    let mut f = SourceFigures {
        cost_usd: c.events_cost(),
        api_calls: Some(c.calls.len() as u64),
        ..SourceFigures::default()
    };
    let (mut i, mut o, mut r, mut w) = (0, 0, 0, 0);
    for call in &c.calls {
        i += call.input_tokens;
        o += call.output_tokens;
        r += call.cache_read_tokens;
        w += call.cache_creation_tokens;
    }
    f.input_tokens = Some(i);
    f.output_tokens = Some(o);
    f.cache_read_tokens = Some(r);
    f.cache_creation_tokens = Some(w);
    f.detail = Some(format!(
        "{} api_request events among {} log records of the session",
        c.calls.len(),
        c.stats.log_records
    ));
    Some(f)
}

fn metrics_figures(m: &MetricTotals) -> Option<SourceFigures> {
    if !m.has_cost && !m.has_tokens {
        return None;
    }
    let tokens = |present: bool, v: f64| present.then_some(v.round().max(0.0) as u64);
    let temporalities: Vec<&str> = m.temporalities.iter().copied().collect();
    Some(SourceFigures {
        cost_usd: m.total.cost_usd,
        api_calls: None,
        input_tokens: tokens(m.has_tokens, m.total.input_tokens),
        output_tokens: tokens(m.has_tokens, m.total.output_tokens),
        cache_read_tokens: tokens(m.has_tokens, m.total.cache_read_tokens),
        cache_creation_tokens: tokens(m.has_tokens, m.total.cache_creation_tokens),
        detail: Some(format!(
            "{} data points in {} series ({}){}",
            m.points,
            m.series,
            temporalities.join(", "),
            if m.restarts > 0 {
                format!(", {} cumulative restarts", m.restarts)
            } else {
                String::new()
            }
        )),
        ..SourceFigures::default()
    })
}

fn result_figures(r: &CliResult) -> SourceFigures {
    let turns = r
        .num_turns
        .map_or_else(|| "no num_turns".to_string(), |t| format!("num_turns {t}"));
    let calls = match &r.transcript {
        Some(t) => format!(
            "API calls: {} distinct message ids among {} assistant lines of {}{}; {turns} (the CLI's turn count, not a count of API calls) is shown but not compared",
            t.calls,
            t.assistant_lines,
            t.path.display(),
            if t.not_counted > 0 {
                format!(
                    " ({} lines made up by the CLI, not API responses)",
                    t.not_counted
                )
            } else {
                String::new()
            }
        ),
        None => format!(
            "no transcript to count API calls from, so calls are not compared ({turns} is the CLI's turn count, not a count of API calls)"
        ),
    };
    SourceFigures {
        cost_usd: r.total_cost_usd,
        api_calls: r.transcript.as_ref().map(|t| t.calls),
        turns: r.num_turns,
        input_tokens: Some(r.input_tokens),
        output_tokens: Some(r.output_tokens),
        cache_read_tokens: Some(r.cache_read_tokens),
        cache_creation_tokens: Some(r.cache_creation_tokens),
        detail: Some(format!(
            "{}{}: {calls}",
            r.path.display(),
            match r.subtype.as_deref() {
                Some(s) => format!(" (subtype {s})"),
                None => String::new(),
            }
        )),
        ..SourceFigures::default()
    }
}

/// Whether `events` fall short of `other`: cost below it by more than the tolerance, or
/// fewer calls than it counts (only the result source counts calls, from the transcript).
fn short_of(events: &SourceFigures, other: &SourceFigures, tol: f64) -> bool {
    let cost_short =
        events.cost_usd < other.cost_usd && rel_diff(events.cost_usd, other.cost_usd) > tol;
    let calls_short = matches!((events.api_calls, other.api_calls), (Some(e), Some(o)) if e < o);
    cost_short || calls_short
}

/// How a source stands against the trusted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Within tolerance on every figure both give.
    Agrees,
    /// A telemetry source below the trusted one on every figure that differs: records
    /// were lost.
    Short,
    /// Any other difference.
    Mismatch,
}

impl Verdict {
    fn status(self) -> SourceStatus {
        match self {
            Verdict::Agrees => SourceStatus::Ok,
            Verdict::Short => SourceStatus::Short,
            Verdict::Mismatch => SourceStatus::Mismatch,
        }
    }
}

fn money(v: f64) -> String {
    format!("${v:.6}")
}

/// Compares `fig` with the trusted figures; fills its status and returns the warnings.
fn compare(
    name: Source,
    fig: &mut SourceFigures,
    trusted_name: Source,
    trusted: &SourceFigures,
    tol: f64,
    cost_known: bool,
) -> (Vec<String>, Verdict) {
    let mut warnings = Vec::new();
    // Differences beyond tolerance, by direction (`fig` below / above the trusted source).
    let (mut lower, mut higher) = (false, false);
    // A source without cost figures (token metrics only) is compared on tokens alone.
    let d = if cost_known {
        rel_diff(fig.cost_usd, trusted.cost_usd)
    } else {
        0.0
    };
    fig.diff_from_trusted = Some(if trusted.cost_usd == 0.0 {
        if fig.cost_usd == 0.0 { 0.0 } else { 1.0 }
    } else {
        (fig.cost_usd - trusted.cost_usd) / trusted.cost_usd
    });
    if d > tol {
        if fig.cost_usd < trusted.cost_usd {
            lower = true;
        } else {
            higher = true;
        }
        warnings.push(format!(
            "{} cost {} differs from {} {} by {:.2} % (tolerance {:.2} %)",
            name.label(),
            money(fig.cost_usd),
            trusted_name.label(),
            money(trusted.cost_usd),
            d * 100.0,
            tol * 100.0
        ));
    }
    let pairs = [
        ("input tokens", fig.input_tokens, trusted.input_tokens),
        ("output tokens", fig.output_tokens, trusted.output_tokens),
        (
            "cache read tokens",
            fig.cache_read_tokens,
            trusted.cache_read_tokens,
        ),
        (
            "cache creation tokens",
            fig.cache_creation_tokens,
            trusted.cache_creation_tokens,
        ),
    ];
    for (what, a, b) in pairs {
        if let (Some(a), Some(b)) = (a, b)
            && rel_diff(a as f64, b as f64) > tol
        {
            if a < b {
                lower = true;
            } else {
                higher = true;
            }
            warnings.push(format!(
                "{} {what}: {a}, {} {b}",
                name.label(),
                trusted_name.label()
            ));
        }
    }
    // Calls: only the events and the result source (from the transcript) count them.
    if let (Some(a), Some(b)) = (fig.api_calls, trusted.api_calls)
        && a != b
    {
        let (events, responses) = if name == Source::Events {
            (a, b)
        } else {
            (b, a)
        };
        if events < responses {
            if a < b {
                lower = true;
            } else {
                higher = true;
            }
            warnings.push(format!(
                "only {events} api_request events were received for the {responses} API responses of the transcript: events are missing"
            ));
        } else {
            // Not a disagreement on cost: the CLI makes calls that never show in the
            // conversation (e.g. a small model naming the session), and retried
            // requests are events too.
            warnings.push(format!(
                "{events} api_request events for {responses} API responses in the transcript (calls outside the conversation, or retries, are events too)"
            ));
        }
    }
    let telemetry = name != Source::Result;
    let verdict = match (lower, higher) {
        (false, false) => Verdict::Agrees,
        (true, false) if telemetry => Verdict::Short,
        _ => Verdict::Mismatch,
    };
    fig.status = Some(verdict.status());
    (warnings, verdict)
}

/// Everything `build` needs.
pub struct Inputs<'a> {
    pub meta: &'a SessionMetadata,
    pub collected: &'a Collected,
    pub metrics: &'a MetricTotals,
    pub result: Option<&'a CliResult>,
    /// Why no result object is available, when none is.
    pub result_missing: Option<String>,
    pub tolerance: f64,
}

/// Builds the session's summary.
pub fn build(inp: &Inputs<'_>) -> CostSummary {
    let c = inp.collected;
    let tol = inp.tolerance;
    let mut events = events_figures(c);
    let mut metrics = metrics_figures(inp.metrics);
    let mut result = inp.result.map(result_figures);
    let no_telemetry = events.is_none() && metrics.is_none();
    let (trusted, reason) = choose_trusted(events.as_ref(), metrics.as_ref(), result.as_ref(), tol);
    let (mut warnings, mismatch, short) = match trusted {
        Some(t) => compare_with_trusted(inp, t, [&mut events, &mut metrics, &mut result]),
        None => (Vec::new(), false, false),
    };
    input_warnings(inp, [&events, &metrics, &result], &mut warnings);

    let all_present = events.is_some() && metrics.is_some() && result.is_some();
    let recon_status = if no_telemetry {
        Status::NoTelemetry
    } else if mismatch {
        Status::Mismatch
    } else if short {
        Status::TelemetryIncomplete
    } else if !all_present {
        Status::Incomplete
    } else {
        Status::Ok
    };
    let status = if no_telemetry {
        SummaryStatus::NoTelemetry
    } else if trusted == Some(Source::Events) && !mismatch && !short {
        SummaryStatus::Ok
    } else {
        SummaryStatus::Partial
    };

    // Totals from the trusted source.
    let mut s = summary_head(inp, status);
    fill_from_trusted(
        &mut s,
        inp,
        trusted,
        [&events, &metrics, &result],
        &mut warnings,
    );
    s.total_tokens = s.total_input_tokens + s.total_output_tokens;
    if c.stats.log_records > 0 {
        s.tools = Some(c.tools.clone());
    }
    s.api_errors = c.api_errors.clone();
    s.reconciliation = Some(Reconciliation {
        status: recon_status,
        tolerance: tol,
        trusted_source: trusted.map_or("none", Source::as_str).to_string(),
        reason,
        events,
        metrics,
        result,
        warnings,
    });
    s
}

/// Which source to trust, and why.
fn choose_trusted(
    events: Option<&SourceFigures>,
    metrics: Option<&SourceFigures>,
    result: Option<&SourceFigures>,
    tol: f64,
) -> (Option<Source>, String) {
    match (events, metrics, result) {
        (Some(e), _, Some(r)) if short_of(e, r, tol) => (
            Some(Source::Result),
            format!(
                "the event stream is incomplete: its {} calls cost {}, against the {} the CLI reported for the session{} (events were lost: the CLI stopped before exporting its last ones, or the collector was down); the CLI's own total is complete, so it is used",
                e.api_calls.unwrap_or(0),
                money(e.cost_usd),
                money(r.cost_usd),
                r.api_calls
                    .map(|n| format!(" over {n} API calls"))
                    .unwrap_or_default()
            ),
        ),
        (Some(e), Some(m), None) if short_of(e, m, tol) => (
            Some(Source::Metrics),
            format!(
                "the event stream is incomplete: its {} calls cost {}, less than the {} of the cost metrics, and there is no CLI result object to settle it; the metrics' total is used (apiCalls counts only the events received)",
                e.api_calls.unwrap_or(0),
                money(e.cost_usd),
                money(m.cost_usd)
            ),
        ),
        (Some(_), _, _) => (
            Some(Source::Events),
            "the api_request events are complete (no other source reports more), and they give per-call detail".to_string(),
        ),
        (None, _, Some(_)) => (
            Some(Source::Result),
            "no telemetry events matched the session; the CLI's own result object is the only per-session total".to_string(),
        ),
        (None, Some(_), None) => (
            Some(Source::Metrics),
            "no api_request events matched the session; only the cost/token metrics did".to_string(),
        ),
        (None, None, None) => (None, "no source reported anything for this session".to_string()),
    }
}

/// Compares every source with the trusted one (events, metrics, result, in that order);
/// returns the warnings and whether any source mismatched or fell short.
fn compare_with_trusted(
    inp: &Inputs<'_>,
    t: Source,
    [events, metrics, result]: [&mut Option<SourceFigures>; 3],
) -> (Vec<String>, bool, bool) {
    let tol = inp.tolerance;
    let mut warnings = Vec::new();
    let mut mismatch = false;
    let mut short = false;
    let trusted_fig = match t {
        Source::Events => events.clone(),
        Source::Metrics => metrics.clone(),
        Source::Result => result.clone(),
    }
    .unwrap_or_default();
    for (name, fig) in [
        (Source::Events, events),
        (Source::Metrics, metrics),
        (Source::Result, result),
    ] {
        let Some(fig) = fig else { continue };
        if name == t {
            fig.status = Some(SourceStatus::Trusted);
            fig.diff_from_trusted = Some(0.0);
            continue;
        }
        let cost_known = name != Source::Metrics || inp.metrics.has_cost;
        let (w, verdict) = compare(name, fig, t, &trusted_fig, tol, cost_known);
        if !cost_known {
            fig.diff_from_trusted = None;
        }
        warnings.extend(w);
        mismatch |= verdict == Verdict::Mismatch;
        short |= verdict == Verdict::Short;
    }
    (warnings, mismatch, short)
}

/// Warnings about what is missing from the inputs.
fn input_warnings(
    inp: &Inputs<'_>,
    [events, metrics, result]: [&Option<SourceFigures>; 3],
    warnings: &mut Vec<String>,
) {
    let c = inp.collected;
    let no_telemetry = events.is_none() && metrics.is_none();
    if let Some(note) = inp.result.and_then(|r| r.transcript_note.clone()) {
        warnings.push(note);
    }
    if events.is_none() && !no_telemetry {
        warnings.push("no api_request events matched the session (only metrics)".to_string());
    }
    if metrics.is_none() && !no_telemetry {
        warnings
            .push("no claude_code.cost.usage/token.usage metrics matched the session".to_string());
    }
    if result.is_none() {
        warnings.push(
            inp.result_missing
                .clone()
                .unwrap_or_else(|| "no CLI result object available".to_string()),
        );
    }
    if !inp.metrics.unknown_token_types.is_empty() {
        let kinds: Vec<&str> = inp
            .metrics
            .unknown_token_types
            .iter()
            .map(String::as_str)
            .collect();
        warnings.push(format!(
            "token metric points with unknown type were not counted: {}",
            kinds.join(", ")
        ));
    }
    if c.malformed_count > 0 {
        warnings.push(format!(
            "{} malformed input line(s) were skipped",
            c.malformed_count
        ));
    }
}

/// The summary's identity (backend, level, session, times, status) from the metadata.
fn summary_head(inp: &Inputs<'_>, status: SummaryStatus) -> CostSummary {
    let c = inp.collected;
    let meta = inp.meta;
    CostSummary {
        backend: meta.backend.clone().unwrap_or_default(),
        level: meta.level.unwrap_or(0),
        variant: meta.variant,
        rules: meta.rules,
        run_index: meta.run_index.unwrap_or(0),
        session_id: meta
            .session_id
            .clone()
            .or_else(|| inp.result.and_then(|r| r.session_id.clone()))
            .unwrap_or_default(),
        started_at: utc_text(
            meta.started_at_utc
                .as_deref()
                .or(meta.started_at.as_deref()),
            c.first_ns,
        ),
        ended_at: utc_text(
            meta.ended_at_utc.as_deref().or(meta.ended_at.as_deref()),
            c.last_ns,
        ),
        schema_version: Some(SCHEMA_VERSION),
        status: Some(status),
        phase: meta.effective_phase(),
        run_id: meta.run_id.clone(),
        malformed_lines: Some(c.malformed_count),
        inputs: Some(c.stats.clone()),
        ..CostSummary::default()
    }
}

/// Totals, duration and per-model figures from the trusted source.
fn fill_from_trusted(
    s: &mut CostSummary,
    inp: &Inputs<'_>,
    trusted: Option<Source>,
    [events, metrics, result]: [&Option<SourceFigures>; 3],
    warnings: &mut Vec<String>,
) {
    let c = inp.collected;
    let event_models = models_from_events(c);
    let events_duration: f64 = c.calls.iter().map(|x| x.duration_ms).sum::<f64>() / 1000.0;
    match trusted {
        Some(Source::Events) | None => {
            if let Some(e) = events {
                fill_totals(s, e);
            }
            s.total_duration_sec = events_duration;
            s.models = event_models;
        }
        Some(Source::Result) => {
            if let Some(r) = result {
                fill_totals(s, r);
            }
            let cli = inp.result;
            s.api_calls = result_calls(cli, events.is_some().then_some(c.calls.len() as u64))
                .map_or(0, |(n, note)| {
                    warnings.extend(note);
                    n
                });
            s.total_duration_sec = cli
                .and_then(|r| r.duration_api_ms)
                .map_or(events_duration, |ms| ms / 1000.0);
            s.models = cli.map(|r| r.models.clone()).unwrap_or_default();
            for (name, m) in &mut s.models {
                if let Some(e) = event_models.get(name) {
                    m.api_calls = e.api_calls;
                    m.duration_sec = e.duration_sec;
                }
            }
        }
        Some(Source::Metrics) => {
            if let Some(m) = metrics {
                fill_totals(s, m);
            }
            s.api_calls = c.calls.len() as u64;
            s.total_duration_sec = events_duration;
            for (name, a) in &inp.metrics.per_model {
                let e = event_models.get(name);
                s.models.insert(
                    name.clone(),
                    ModelUsage {
                        api_calls: e.map_or(0, |e| e.api_calls),
                        input_tokens: a.input_tokens.round() as u64,
                        output_tokens: a.output_tokens.round() as u64,
                        cache_read_tokens: a.cache_read_tokens.round() as u64,
                        cache_creation_tokens: a.cache_creation_tokens.round() as u64,
                        cost_usd: a.cost_usd,
                        duration_sec: e.map_or(0.0, |e| e.duration_sec),
                    },
                );
            }
        }
    }
}

/// The session's API calls when the totals come from the result source: the transcript's
/// count; else the events received (a lower bound); else the CLI's `num_turns`, the only
/// figure left (an approximation). With a note saying which, when it is not exact.
fn result_calls(cli: Option<&CliResult>, events: Option<u64>) -> Option<(u64, Option<String>)> {
    let turns = cli.and_then(|r| r.num_turns);
    let turns_text = turns.map_or_else(String::new, |t| {
        format!(" (the CLI's num_turns, {t}, is not a count of API calls)")
    });
    if let Some(t) = cli.and_then(|r| r.transcript.as_ref()) {
        return Some((t.calls, None));
    }
    if let Some(n) = events {
        return Some((
            n,
            Some(format!(
                "apiCalls is the number of api_request events received ({n}), a lower bound: there was no transcript to count the session's API calls from{turns_text}"
            )),
        ));
    }
    turns.map(|t| {
        (
            t,
            Some(format!(
                "apiCalls is the CLI's num_turns ({t}), an approximation (the CLI raises it per tool use, not per API call): neither a transcript nor api_request events were there to count the calls"
            )),
        )
    })
}

fn fill_totals(s: &mut CostSummary, f: &SourceFigures) {
    s.total_cost_usd = f.cost_usd;
    s.api_calls = f.api_calls.unwrap_or(0);
    s.total_input_tokens = f.input_tokens.unwrap_or(0);
    s.total_output_tokens = f.output_tokens.unwrap_or(0);
    s.cache_read_tokens = f.cache_read_tokens.unwrap_or(0);
    s.cache_creation_tokens = f.cache_creation_tokens.unwrap_or(0);
}

fn models_from_events(c: &Collected) -> BTreeMap<String, ModelUsage> {
    let mut out: BTreeMap<String, ModelUsage> = BTreeMap::new();
    for call in &c.calls {
        let m = out.entry(call.model.clone()).or_default();
        m.api_calls += 1;
        m.input_tokens += call.input_tokens;
        m.output_tokens += call.output_tokens;
        m.cache_read_tokens += call.cache_read_tokens;
        m.cache_creation_tokens += call.cache_creation_tokens;
        m.cost_usd += call.cost_usd;
        m.duration_sec += call.duration_ms / 1000.0;
    }
    out
}

/// A metadata time as UTC RFC 3339 (as the original harness wrote it), else the time of
/// the session's first/last record.
fn utc_text(meta: Option<&str>, fallback_ns: Option<u64>) -> String {
    let ns = meta.and_then(parse_time_ns).or(fallback_ns);
    match ns.and_then(|ns| {
        chrono::DateTime::from_timestamp(
            i64::try_from(ns / 1_000_000_000).ok()?,
            (ns % 1_000_000_000) as u32,
        )
    }) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => meta.unwrap_or_default().to_string(),
    }
}
