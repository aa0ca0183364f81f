//! `COST_REPORT.md`: the session's cost for people.

use std::fmt::Write;

use bench_formats::SessionMetadata;
use bench_formats::cost::{
    CostSummary, InputStats, Reconciliation, SourceFigures, SourceStatus, Status, SummaryStatus,
    ToolStats,
};

use crate::scan::{Collected, Malformed};

/// How many malformed lines the report lists (all are counted).
const MALFORMED_LISTED: usize = 20;

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn opt_thousands(n: Option<u64>) -> String {
    n.map_or_else(|| "–".to_string(), thousands)
}

fn usd(v: f64) -> String {
    format!("${v:.4}")
}

/// Renders the report.
pub fn render(
    meta: &SessionMetadata,
    s: &CostSummary,
    c: &Collected,
    malformed: &[Malformed],
) -> String {
    let mut r = String::new();
    write_header(&mut r, meta, s);
    write_totals(&mut r, s);
    if !s.models.is_empty() {
        write_models(&mut r, s);
    }
    if !c.calls.is_empty() {
        write_calls(&mut r, c);
    }
    if let Some(t) = s.tools.as_ref().filter(|t| !t.by_tool.is_empty()) {
        write_tools(&mut r, t);
    }
    if !s.api_errors.is_empty() {
        write_api_errors(&mut r, s);
    }
    if let Some(rec) = &s.reconciliation {
        write_sources(&mut r, rec);
    }
    if let Some(i) = &s.inputs {
        write_inputs(&mut r, s, i, c, malformed);
    }
    r
}

/// Title, what the session was, and when.
fn write_header(r: &mut String, meta: &SessionMetadata, s: &CostSummary) {
    let title = meta
        .run_id
        .clone()
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| s.session_id.clone());
    let _ = writeln!(r, "# What session `{title}` cost\n");
    let mut facts = Vec::new();
    if !s.backend.is_empty() {
        facts.push(format!("backend **{}**", s.backend));
    }
    if s.level > 0 {
        facts.push(format!("level **{}**", s.level));
    }
    if let Some(p) = &s.phase {
        facts.push(format!("phase **{p}**"));
    }
    if let Some(variant) = s.variant {
        facts.push(format!("variant {variant}"));
    }
    if let Some(rules) = s.rules {
        facts.push(format!("rules {rules}"));
    }
    if !facts.is_empty() {
        let _ = writeln!(r, "{}.\n", facts.join(", "));
    }
    let _ = writeln!(
        r,
        "Agent session `{}`, from {} to {}.\n",
        if s.session_id.is_empty() {
            "unknown"
        } else {
            &s.session_id
        },
        if s.started_at.is_empty() {
            "?"
        } else {
            &s.started_at
        },
        if s.ended_at.is_empty() {
            "?"
        } else {
            &s.ended_at
        },
    );
}

/// The totals table, and a warning when no telemetry matched.
fn write_totals(r: &mut String, s: &CostSummary) {
    let recon = s.reconciliation.as_ref();
    let status = s.status.unwrap_or(SummaryStatus::Ok);
    let _ = writeln!(r, "## Totals\n");
    if status == SummaryStatus::NoTelemetry {
        let _ = writeln!(
            r,
            "> **No telemetry matched this session.** The figures below come from {}.\n",
            match recon.map(|x| x.trusted_source.as_str()) {
                Some("result") => "the CLI's own result object",
                _ => "nowhere: they are zero",
            }
        );
    }
    let _ = writeln!(r, "| | |\n|---|---:|");
    let _ = writeln!(
        r,
        "| Cost | **{}** (exactly {} USD) |",
        usd(s.total_cost_usd),
        s.total_cost_usd
    );
    let _ = writeln!(r, "| API calls | {} |", s.api_calls);
    let _ = writeln!(
        r,
        "| Fresh input tokens | {} |",
        thousands(s.total_input_tokens)
    );
    let _ = writeln!(
        r,
        "| Output tokens | {} |",
        thousands(s.total_output_tokens)
    );
    let _ = writeln!(
        r,
        "| Input + output tokens | {} |",
        thousands(s.total_tokens)
    );
    let _ = writeln!(r, "| Cache reads | {} |", thousands(s.cache_read_tokens));
    let _ = writeln!(
        r,
        "| Cache writes | {} |",
        thousands(s.cache_creation_tokens)
    );
    let _ = writeln!(
        r,
        "| Time waiting on the API | {:.1} s |",
        s.total_duration_sec
    );
    if let Some(t) = &s.tools {
        let _ = writeln!(r, "| Tool uses (failed) | {} ({}) |", t.results, t.failures);
    }
    let _ = writeln!(r, "| API errors | {} |", s.api_errors.len());
    if let Some(rec) = recon {
        let _ = writeln!(r, "| Totals taken from | {} |", rec.trusted_source);
    }
    let _ = writeln!(r, "| Status | {status} |\n");
}

fn write_models(r: &mut String, s: &CostSummary) {
    let _ = writeln!(r, "## By model\n");
    let _ = writeln!(
        r,
        "| Model | Calls | Input | Output | Cache reads | Cache writes | Cost | API time |"
    );
    let _ = writeln!(r, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, m) in &s.models {
        let _ = writeln!(
            r,
            "| {name} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            m.api_calls,
            thousands(m.input_tokens),
            thousands(m.output_tokens),
            thousands(m.cache_read_tokens),
            thousands(m.cache_creation_tokens),
            usd(m.cost_usd),
            m.duration_sec
        );
    }
    let _ = writeln!(r);
}

fn write_calls(r: &mut String, c: &Collected) {
    let _ = writeln!(r, "## Each API call\n");
    let _ = writeln!(
        r,
        "| # | Time (UTC) | Model | Input | Output | Cache reads | Cache writes | Cost | Running total | Took |"
    );
    let _ = writeln!(r, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut running = 0.0;
    for (i, call) in c.calls.iter().enumerate() {
        running += call.cost_usd;
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            i + 1,
            call.timestamp.as_deref().unwrap_or("?"),
            call.model,
            thousands(call.input_tokens),
            thousands(call.output_tokens),
            thousands(call.cache_read_tokens),
            thousands(call.cache_creation_tokens),
            usd(call.cost_usd),
            usd(running),
            call.duration_ms / 1000.0
        );
    }
    let _ = writeln!(r);
}

fn write_tools(r: &mut String, t: &ToolStats) {
    let _ = writeln!(r, "## Tools\n");
    let _ = writeln!(r, "| Tool | Decisions | Not allowed | Ran | Failed |");
    let _ = writeln!(r, "|---|---:|---:|---:|---:|");
    for (name, x) in &t.by_tool {
        let _ = writeln!(
            r,
            "| {name} | {} | {} | {} | {} |",
            x.decisions, x.rejections, x.results, x.failures
        );
    }
    let _ = writeln!(r);
}

fn write_api_errors(r: &mut String, s: &CostSummary) {
    let _ = writeln!(r, "## API errors\n");
    let _ = writeln!(r, "| Time | Model | Status | Attempt | Error |");
    let _ = writeln!(r, "|---|---|---|---:|---|");
    for e in &s.api_errors {
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} |",
            e.timestamp.as_deref().unwrap_or("?"),
            e.model.as_deref().unwrap_or("?"),
            e.status_code.as_deref().unwrap_or("?"),
            e.attempt.map_or_else(|| "?".to_string(), |a| a.to_string()),
            e.error.as_deref().unwrap_or("").replace('|', "\\|")
        );
    }
    let _ = writeln!(r);
}

/// The three sources side by side, and what their differences mean.
fn write_sources(r: &mut String, rec: &Reconciliation) {
    let _ = writeln!(r, "## Three sources, side by side\n");
    let _ = writeln!(
        r,
        "Result: **{}** (tolerance {:.2} %). Totals come from **{}**: {}.\n",
        rec.status,
        rec.tolerance * 100.0,
        rec.trusted_source,
        rec.reason
    );
    let _ = writeln!(
        r,
        "| Source | Cost (USD) | Calls | Input | Output | Cache reads | Cache writes | vs. trusted | Status |"
    );
    let _ = writeln!(r, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let row = |r: &mut String, name: &str, f: Option<&SourceFigures>| {
        let _ = match f {
            Some(f) => writeln!(
                r,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.cost_usd,
                opt_thousands(f.api_calls),
                opt_thousands(f.input_tokens),
                opt_thousands(f.output_tokens),
                opt_thousands(f.cache_read_tokens),
                opt_thousands(f.cache_creation_tokens),
                f.diff_from_trusted
                    .map_or_else(|| "–".to_string(), |d| format!("{:+.4} %", d * 100.0)),
                f.status.map_or("–", SourceStatus::as_str)
            ),
            None => writeln!(r, "| {name} | – | – | – | – | – | – | – | missing |"),
        };
    };
    row(r, "api_request events", rec.events.as_ref());
    row(r, "cost/token metrics", rec.metrics.as_ref());
    row(r, "CLI result object", rec.result.as_ref());
    let _ = writeln!(r);
    let _ = writeln!(
        r,
        "Calls are counted once per api_request event, and for the CLI result object as the distinct API responses (assistant message ids) of the session's transcript. \
         The result object's num_turns is the CLI's turn count, which follows tool uses rather than API calls: it is listed below but never compared.\n"
    );
    match rec.status {
        Status::TelemetryIncomplete => {
            let _ = writeln!(
                r,
                "Telemetry is incomplete: a telemetry source (status `short`) is below **{}** on every figure that differs, which is what lost records look like (the CLI stopped before exporting its last events, or the collector was down). The totals come from the complete source.\n",
                rec.trusted_source
            );
        }
        Status::Mismatch => {
            let _ = writeln!(
                r,
                "**The sources disagree** in a way lost records do not explain (a source reports more than **{}**, or the result object differs from complete events): check the warnings below before using these figures.\n",
                rec.trusted_source
            );
        }
        _ => {}
    }
    for f in [&rec.events, &rec.metrics, &rec.result]
        .into_iter()
        .flatten()
    {
        if let Some(d) = &f.detail {
            let _ = writeln!(r, "- {d}");
        }
    }
    if !rec.warnings.is_empty() {
        let _ = writeln!(r, "\nWarnings:\n");
        for w in &rec.warnings {
            let _ = writeln!(r, "- {w}");
        }
    }
    let _ = writeln!(r);
}

/// What was read, what was taken and left out, and the malformed lines.
fn write_inputs(
    r: &mut String,
    s: &CostSummary,
    i: &InputStats,
    c: &Collected,
    malformed: &[Malformed],
) {
    let _ = writeln!(r, "## What was read\n");
    for f in &i.files {
        let _ = writeln!(r, "- `{f}`");
    }
    if let Some(f) = &i.result_file {
        let _ = writeln!(r, "- result object: `{f}`");
    }
    let _ = writeln!(
        r,
        "\n{} lines ({} bytes); {} parsed as possibly this session's, the rest carried only other sessions' tags. \
         Taken: {} log records and {} metric points ({} by their own session tag, {} by their resource's tags, {} by time window). \
         Left out: {} records of other sessions, {} untagged records outside the session's time. Duplicates dropped: {}. Malformed lines: {}.",
        i.lines,
        i.bytes,
        i.candidate_lines,
        i.log_records,
        i.metric_points,
        i.by_record_tag,
        i.by_resource_tag,
        i.by_time_window,
        i.other_sessions,
        i.untagged_outside_window,
        i.duplicates,
        s.malformed_lines.unwrap_or(0)
    );
    let others: Vec<String> = c
        .other_events
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .chain(
            c.other_metrics
                .iter()
                .map(|(k, v)| format!("{k} {v} points")),
        )
        .collect();
    if !others.is_empty() {
        let _ = writeln!(r, "\nOther records of the session: {}.", others.join(", "));
    }
    if !malformed.is_empty() {
        let _ = writeln!(r, "\nMalformed lines (skipped):\n");
        for m in malformed.iter().take(MALFORMED_LISTED) {
            let _ = writeln!(r, "- {m}");
        }
        let total = s.malformed_lines.unwrap_or(0) as usize;
        if total > MALFORMED_LISTED {
            let _ = writeln!(r, "- … and {} more", total - MALFORMED_LISTED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
