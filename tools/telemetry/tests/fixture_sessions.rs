//! bench-telemetry on the real Claude Code export in `tests/fixtures/claude-code-otlp/`:
//! two sessions that ran in parallel, interleaved line by line in one logs file and one
//! metrics file, with each session's own result object as the truth.

use std::path::{Path, PathBuf};

use bench_formats::{CostSummary, SourceStatus, SummaryStatus};
use bench_telemetry::{Inputs, LiveTally, Options, cli, summarize};
use serde_json::{Value, json};

const PG: &str = "postgres-level1";
const ST: &str = "spacetime-level1";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-code-otlp")
}

fn logs() -> PathBuf {
    fixtures().join("logs.jsonl")
}

fn metrics() -> PathBuf {
    fixtures().join("metrics.jsonl")
}

fn result_file(name: &str) -> PathBuf {
    fixtures().join(format!("sessions/{name}.result.json"))
}

fn read_value(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ids(name: &str) -> (String, String) {
    let v = read_value(&fixtures().join(format!("sessions/{name}.ids.json")));
    (
        v["sessionId"].as_str().unwrap().to_string(),
        v["runId"].as_str().unwrap().to_string(),
    )
}

/// The CLI's truth for a session: (turns, total cost).
fn truth(name: &str) -> (u64, f64) {
    let v = read_value(&result_file(name));
    (
        v["num_turns"].as_u64().unwrap(),
        v["total_cost_usd"].as_f64().unwrap(),
    )
}

/// A session folder whose metadata.json carries the session's ids (and `extra` fields).
fn session_dir(root: &Path, name: &str, extra: Value) -> PathBuf {
    let (sid, rid) = ids(name);
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut meta = json!({
        "runId": rid, "sessionId": sid, "backend": name.split('-').next().unwrap(),
        "level": 1, "phase": "generate", "variant": "sequential-upgrade", "rules": "guided", "runIndex": 0
    });
    for (k, v) in extra.as_object().unwrap() {
        meta[k] = v.clone();
    }
    std::fs::write(dir.join("metadata.json"), meta.to_string()).unwrap();
    dir
}

fn both_files(result: Option<PathBuf>) -> Inputs {
    Inputs {
        logs: vec![logs()],
        metrics: vec![metrics()],
        result,
    }
}

fn assert_cost(actual: f64, expected: f64) {
    let rel = (actual - expected).abs() / expected;
    assert!(
        rel <= 1e-9,
        "cost {actual} differs from {expected} (relative {rel})"
    );
}

/// Every record (log record or metric data point) of an export line, with its
/// `session.id` (own attribute, else resource).
fn record_sessions(line: &Value) -> Vec<Option<String>> {
    let find = |attrs: &Value| -> Option<String> {
        attrs.as_array()?.iter().find_map(|kv| {
            (kv["key"] == "session.id")
                .then(|| kv["value"]["stringValue"].as_str().unwrap().to_string())
        })
    };
    let mut out = Vec::new();
    for rl in line["resourceLogs"].as_array().into_iter().flatten() {
        let res = find(&rl["resource"]["attributes"]);
        for sl in rl["scopeLogs"].as_array().unwrap() {
            for rec in sl["logRecords"].as_array().unwrap() {
                out.push(find(&rec["attributes"]).or(res.clone()));
            }
        }
    }
    for rm in line["resourceMetrics"].as_array().into_iter().flatten() {
        let res = find(&rm["resource"]["attributes"]);
        for sm in rm["scopeMetrics"].as_array().unwrap() {
            for m in sm["metrics"].as_array().unwrap() {
                for p in m["sum"]["dataPoints"].as_array().into_iter().flatten() {
                    out.push(find(&p["attributes"]).or(res.clone()));
                }
            }
        }
    }
    out
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn each_session_reproduces_the_cli_totals_and_all_three_sources_agree() {
    let tmp = tempfile::tempdir().unwrap();
    for name in [PG, ST] {
        let dir = session_dir(tmp.path(), name, json!({}));
        let cost = summarize(
            &dir,
            &both_files(Some(result_file(name))),
            &Options::default(),
        )
        .unwrap();
        let (turns, total) = truth(name);
        let s = &cost.summary;
        assert_eq!(s.api_calls, turns, "{name}: api calls");
        assert_cost(s.total_cost_usd, total);
        // The float sum in event order is the CLI's own sum, bit for bit.
        assert_eq!(s.total_cost_usd, total, "{name}: exact cost");
        assert_eq!(s.status, Some(SummaryStatus::Ok));
        let r = s.reconciliation.as_ref().unwrap();
        assert_eq!(r.status, "ok", "{name}: {:?}", r.warnings);
        assert_eq!(r.trusted_source, "events");
        assert_eq!(
            r.events.as_ref().unwrap().status,
            Some(SourceStatus::Trusted)
        );
        assert_eq!(r.metrics.as_ref().unwrap().status, Some(SourceStatus::Ok));
        assert_eq!(r.result.as_ref().unwrap().status, Some(SourceStatus::Ok));
        assert_cost(r.metrics.as_ref().unwrap().cost_usd, total);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);

        // Token totals equal the CLI's usage.
        let v = read_value(&result_file(name));
        assert_eq!(
            s.total_input_tokens,
            v["usage"]["input_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            s.total_output_tokens,
            v["usage"]["output_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            s.cache_read_tokens,
            v["usage"]["cache_read_input_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            s.cache_creation_tokens,
            v["usage"]["cache_creation_input_tokens"].as_u64().unwrap()
        );
        assert_eq!(s.models.len(), 1);
        assert_eq!(s.models["claude-sonnet-4-6"].api_calls, turns);
        let tools = s.tools.as_ref().unwrap();
        assert_eq!(tools.decisions, tools.results);
        assert!(tools.results > 0);

        // The files on disk say the same, and the report shows the exact figure.
        let on_disk: CostSummary = bench_formats::read_json(&cost.summary_path).unwrap();
        assert_eq!(&on_disk, s);
        let report = std::fs::read_to_string(&cost.report_path).unwrap();
        assert!(report.contains(&format!("exactly {total} USD")), "{report}");
        assert_eq!(
            report.matches("| claude-sonnet-4-6 |").count() as u64,
            turns + 1
        );
    }
}

#[test]
fn interleaved_sessions_never_leak_into_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let mut per_session = Vec::new();
    for name in [PG, ST] {
        let dir = session_dir(tmp.path(), name, json!({}));
        let opts = Options {
            extract_raw: true,
            ..Options::default()
        };
        let cost = summarize(&dir, &both_files(None), &opts).unwrap();
        let raw = cost.raw_path.clone().unwrap();
        let (sid, _) = ids(name);
        let mut records = 0;
        for line in lines_of(&raw) {
            let v: Value = serde_json::from_str(&line).unwrap();
            for s in record_sessions(&v) {
                assert_eq!(s.as_deref(), Some(sid.as_str()), "{name}: foreign record");
                records += 1;
            }
        }
        let i = cost.summary.inputs.as_ref().unwrap();
        assert_eq!(records, i.log_records + i.metric_points);
        per_session.push(records);

        // The extracted file alone (the default input) gives the same totals.
        let again = summarize(&dir, &Inputs::default(), &Options::default()).unwrap();
        assert_eq!(again.summary.api_calls, cost.summary.api_calls);
        assert_eq!(again.summary.total_cost_usd, cost.summary.total_cost_usd);
    }
    // Together the two extractions hold every record of the input, each once.
    let mut all = 0;
    for path in [logs(), metrics()] {
        for line in lines_of(&path) {
            let v: Value = serde_json::from_str(&line).unwrap();
            all += record_sessions(&v).len() as u64;
        }
    }
    assert_eq!(per_session.iter().sum::<u64>(), all);
}

#[test]
fn malformed_truncated_crlf_and_blank_lines_are_skipped_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = session_dir(tmp.path(), PG, json!({}));
    let lines = lines_of(&logs());
    let (sid, _) = ids(PG);
    let ours = lines.iter().find(|l| l.contains(&sid)).unwrap();
    let mut text = String::new();
    for (i, l) in lines.iter().enumerate() {
        text.push_str(l);
        text.push_str("\r\n");
        if i == 2 {
            text.push_str("{\"resourceLogs\": [ this is not json\r\n");
            text.push_str("\r\n   \r\n");
        }
        if i == 5 {
            // A complete JSON value of the wrong shape, mentioning the session.
            text.push_str(&format!("{{\"resourceLogs\": \"{sid}\"}}\r\n"));
        }
    }
    // The collector died while writing: the last line stops half-way.
    text.push_str(&ours[..ours.len() / 2]);
    let path = tmp.path().join("broken-logs.jsonl");
    std::fs::write(&path, text).unwrap();

    let inputs = Inputs {
        logs: vec![path.clone()],
        metrics: vec![metrics()],
        result: Some(result_file(PG)),
    };
    let cost = summarize(&dir, &inputs, &Options::default()).unwrap();
    let (turns, total) = truth(PG);
    assert_eq!(cost.summary.api_calls, turns);
    assert_eq!(cost.summary.total_cost_usd, total);
    assert_eq!(cost.summary.malformed_lines, Some(3));
    let shown: Vec<String> = cost.malformed.iter().map(ToString::to_string).collect();
    let file = path.display().to_string();
    assert!(shown[0].starts_with(&format!("{file}:4: ")), "{shown:?}");
    assert!(shown[1].starts_with(&format!("{file}:10: ")), "{shown:?}");
    let last_no = lines.len() + 5;
    assert!(
        shown[2].starts_with(&format!("{file}:{last_no}: last line")),
        "{shown:?}"
    );
    assert!(shown[2].contains("truncated"), "{shown:?}");
    // Malformed lines do not make the sources disagree, but they are recorded.
    let r = cost.summary.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "ok");
    assert!(r.warnings.iter().any(|w| w.contains("3 malformed")));
    let report = std::fs::read_to_string(&cost.report_path).unwrap();
    assert!(report.contains(&format!("{file}:4:")));
}

/// Rewrites every export line of `path` with `f` and writes the result to `out`.
fn rewrite(path: &Path, out: &Path, mut f: impl FnMut(&mut Value)) {
    let mut text = String::new();
    for line in lines_of(path) {
        let mut v: Value = serde_json::from_str(&line).unwrap();
        f(&mut v);
        text.push_str(&v.to_string());
        text.push('\n');
    }
    std::fs::write(out, text).unwrap();
}

/// Applies `f` to every JSON object inside `v`.
fn walk(v: &mut Value, f: &mut impl FnMut(&mut serde_json::Map<String, Value>)) {
    match v {
        Value::Object(map) => {
            f(map);
            for child in map.values_mut() {
                walk(child, f);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(child, f);
            }
        }
        _ => {}
    }
}

#[test]
fn integers_as_json_numbers_read_the_same_as_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = session_dir(tmp.path(), ST, json!({}));
    let mut converted = 0;
    let mut numbers = |v: &mut Value| {
        walk(v, &mut |map| {
            for key in [
                "intValue",
                "timeUnixNano",
                "observedTimeUnixNano",
                "startTimeUnixNano",
            ] {
                if let Some(Value::String(s)) = map.get(key) {
                    let n: u64 = s.parse().unwrap();
                    map.insert(key.to_string(), json!(n));
                    converted += 1;
                }
            }
        })
    };
    let l = tmp.path().join("logs.jsonl");
    let m = tmp.path().join("metrics.jsonl");
    rewrite(&logs(), &l, &mut numbers);
    rewrite(&metrics(), &m, &mut numbers);
    assert!(converted > 100);
    let inputs = Inputs {
        logs: vec![l],
        metrics: vec![m],
        result: Some(result_file(ST)),
    };
    let cost = summarize(&dir, &inputs, &Options::default()).unwrap();
    let (turns, total) = truth(ST);
    assert_eq!(cost.summary.api_calls, turns);
    assert_eq!(cost.summary.total_cost_usd, total);
    assert_eq!(cost.summary.reconciliation.unwrap().status, "ok");
}

/// Removes `session.id`/`run.id` from every attribute list of lines of session `sid`.
fn strip_tags(v: &mut Value, sid: &str) {
    if !v.to_string().contains(sid) {
        return;
    }
    walk(v, &mut |map| {
        if let Some(Value::Array(attrs)) = map.get_mut("attributes") {
            attrs.retain(|kv| kv["key"] != "session.id" && kv["key"] != "run.id");
        }
    });
}

#[test]
fn untagged_records_fall_back_to_the_time_window_and_only_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (pg_sid, _) = ids(PG);
    let l = tmp.path().join("logs.jsonl");
    let m = tmp.path().join("metrics.jsonl");
    rewrite(&logs(), &l, |v| strip_tags(v, &pg_sid));
    rewrite(&metrics(), &m, |v| strip_tags(v, &pg_sid));
    let inputs = |result: &str| Inputs {
        logs: vec![l.clone()],
        metrics: vec![m.clone()],
        result: Some(result_file(result)),
    };

    // The postgres session ran from 08:38:15 to 08:38:31 (record times); the spacetime
    // session's records, interleaved in that span, are still tagged and must stay out.
    let window =
        json!({"startedAtUtc": "2026-11-24T08:38:15Z", "endedAtUtc": "2026-11-24T08:38:32Z"});
    let dir = session_dir(tmp.path(), PG, window.clone());
    let extract = Options {
        extract_raw: true,
        ..Options::default()
    };
    let cost = summarize(&dir, &inputs(PG), &extract).unwrap();
    let (turns, total) = truth(PG);
    assert_eq!(cost.summary.api_calls, turns);
    assert_eq!(cost.summary.total_cost_usd, total);
    let i = cost.summary.inputs.as_ref().unwrap();
    assert_eq!(i.by_record_tag + i.by_resource_tag, 0);
    assert_eq!(i.by_time_window, i.log_records + i.metric_points);
    assert_eq!(cost.summary.reconciliation.unwrap().status, "ok");
    // The raw extraction holds exactly the records taken (the second reading's).
    let raw = cost.raw_path.unwrap();
    let mut records = 0;
    for line in lines_of(&raw) {
        let v: Value = serde_json::from_str(&line).unwrap();
        let in_line = record_sessions(&v);
        assert!(in_line.iter().all(Option::is_none), "only untagged records");
        records += in_line.len() as u64;
    }
    assert_eq!(records, i.log_records + i.metric_points);
    assert!(!dir.join(".raw-telemetry.jsonl.tmp").exists());

    // The tagged spacetime session is unaffected by the untagged records around it.
    let st_dir = session_dir(tmp.path(), ST, window);
    let st = summarize(&st_dir, &inputs(ST), &Options::default()).unwrap();
    let (st_turns, st_total) = truth(ST);
    assert_eq!(st.summary.api_calls, st_turns);
    assert_eq!(st.summary.total_cost_usd, st_total);
    // The untagged records in its window are not taken either: its own records carry
    // tags, so untagged ones come from elsewhere.
    let st_inputs = st.summary.inputs.as_ref().unwrap();
    assert_eq!(st_inputs.by_time_window, 0);
    assert!(st_inputs.untagged_in_window_unused > 0);

    // A window that ends before the session started takes nothing.
    let early = tmp.path().join("early");
    std::fs::create_dir_all(&early).unwrap();
    let early_dir = session_dir(
        &early,
        PG,
        json!({"startedAtUtc": "2026-11-24T07:00:00Z", "endedAtUtc": "2026-11-24T08:00:00Z"}),
    );
    let none = summarize(&early_dir, &inputs(PG), &Options::default()).unwrap();
    assert_eq!(
        none.summary.api_calls, turns,
        "totals come from the CLI result"
    );
    assert_eq!(none.status(), "no-telemetry");
    assert!(none.summary.inputs.unwrap().untagged_outside_window > 0);
}

#[test]
fn a_session_without_telemetry_is_a_clear_error_with_a_summary_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lost");
    std::fs::create_dir_all(&dir).unwrap();
    // The stream-json transcript is of a session that exported nothing to these files.
    let transcript = fixtures().join("sessions/spacetime-level1.stream.jsonl");
    let last = lines_of(&transcript).pop().unwrap();
    let result: Value = serde_json::from_str(&last).unwrap();
    let sid = result["session_id"].as_str().unwrap();
    std::fs::write(
        dir.join("metadata.json"),
        json!({"sessionId": sid, "runId": "spacetime-level1-lost", "backend": "spacetime", "level": 1})
            .to_string(),
    )
    .unwrap();
    std::fs::copy(&transcript, dir.join("transcript.jsonl")).unwrap();

    let err = cli::run(cli::Args {
        session_dir: dir.clone(),
        logs: vec![logs()],
        metrics: vec![metrics()],
        result: None,
        extract_raw: false,
        tolerance_percent: 0.5,
    })
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("no telemetry"), "{msg}");
    assert!(msg.contains(sid), "{msg}");

    let s: CostSummary = bench_formats::read_json(&dir.join("cost-summary.json")).unwrap();
    assert_eq!(s.status, Some(SummaryStatus::NoTelemetry));
    let r = s.reconciliation.unwrap();
    assert_eq!(r.status, "no-telemetry");
    assert!(r.events.is_none() && r.metrics.is_none());
    // What the CLI itself reported is kept, and said to be the source.
    assert_eq!(r.trusted_source, "result");
    assert_eq!(s.total_cost_usd, result["total_cost_usd"].as_f64().unwrap());
    assert_eq!(s.api_calls, result["num_turns"].as_u64().unwrap());
    assert!(dir.join("COST_REPORT.md").is_file());
}

#[test]
fn rotated_and_overlapping_files_read_as_one_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = lines_of(&logs());
    let half = lines.len() / 2;
    let write = |name: &str, part: &[String]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, part.join("\n") + "\n").unwrap();
        p
    };
    let first = write("logs-1.jsonl", &lines[..half]);
    let second = write("logs-2.jsonl", &lines[half..]);
    // A copy that overlaps both (the same lines exported twice).
    let overlap = write("logs-overlap.jsonl", &lines[half - 3..half + 3]);
    for name in [PG, ST] {
        let dir = session_dir(tmp.path(), name, json!({}));
        let (turns, total) = truth(name);
        for files in [
            vec![first.clone(), second.clone()],
            vec![first.clone(), overlap.clone(), second.clone()],
        ] {
            let inputs = Inputs {
                logs: files.clone(),
                metrics: vec![metrics()],
                result: Some(result_file(name)),
            };
            let cost = summarize(&dir, &inputs, &Options::default()).unwrap();
            assert_eq!(cost.summary.api_calls, turns, "{name} {files:?}");
            assert_eq!(cost.summary.total_cost_usd, total);
            assert_eq!(cost.summary.reconciliation.unwrap().status, "ok");
        }
    }
}

#[test]
fn lost_events_make_the_summary_trust_a_complete_source_and_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let (sid, _) = ids(PG);
    // The collector was down for a while: three of the session's log lines are gone.
    let mut dropped = 0;
    let kept: Vec<String> = lines_of(&logs())
        .into_iter()
        .filter(|l| {
            let drop = l.contains(&sid) && l.contains("api_request") && dropped < 3;
            dropped += usize::from(drop);
            !drop
        })
        .collect();
    let l = tmp.path().join("logs.jsonl");
    std::fs::write(&l, kept.join("\n")).unwrap();
    let (turns, total) = truth(PG);

    let dir = session_dir(tmp.path(), PG, json!({}));
    let with_result = Inputs {
        logs: vec![l.clone()],
        metrics: vec![metrics()],
        result: Some(result_file(PG)),
    };
    let cost = summarize(&dir, &with_result, &Options::default()).unwrap();
    let s = &cost.summary;
    let r = s.reconciliation.as_ref().unwrap();
    assert_eq!(r.trusted_source, "result");
    assert!(r.reason.contains("incomplete"), "{}", r.reason);
    // Lost events explain the difference: not a mismatch.
    assert_eq!(r.status, "telemetry-incomplete");
    assert_eq!(s.status, Some(SummaryStatus::Partial));
    assert_eq!(s.total_cost_usd, total);
    // A bare result object has no call count (num_turns is not one): the events received
    // are the calls known, and the summary says it is a lower bound.
    assert_eq!(s.api_calls, turns - 3);
    assert!(
        r.warnings.iter().any(|w| w.contains("lower bound")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.events.as_ref().unwrap().api_calls, Some(turns - 3));
    assert_eq!(r.events.as_ref().unwrap().status, Some(SourceStatus::Short));
    assert_eq!(r.metrics.as_ref().unwrap().status, Some(SourceStatus::Ok));
    assert!(
        r.warnings.iter().any(|w| w.contains("differs")),
        "{:?}",
        r.warnings
    );

    // Without the result object, the metrics are the complete source.
    let dir2 = session_dir(&tmp.path().join("b"), PG, json!({}));
    let no_result = Inputs {
        logs: vec![l],
        metrics: vec![metrics()],
        result: None,
    };
    let cost = summarize(&dir2, &no_result, &Options::default()).unwrap();
    let r = cost.summary.reconciliation.as_ref().unwrap();
    assert_eq!(r.trusted_source, "metrics");
    assert_cost(cost.summary.total_cost_usd, total);
    assert_eq!(cost.summary.api_calls, turns - 3);
    assert!(r.warnings.iter().any(|w| w.contains("no CLI result")));
}

#[test]
fn cumulative_metrics_give_the_same_totals_as_delta() {
    let tmp = tempfile::tempdir().unwrap();
    // Turn every delta series into a cumulative one: running totals since the first start.
    let mut running: std::collections::HashMap<String, (f64, Value)> = Default::default();
    let m = tmp.path().join("metrics-cumulative.jsonl");
    rewrite(&metrics(), &m, |v| {
        walk(v, &mut |map| {
            if map.contains_key("aggregationTemporality") {
                map.insert("aggregationTemporality".into(), json!(2));
            }
        });
        for rm in v["resourceMetrics"].as_array_mut().unwrap() {
            for sm in rm["scopeMetrics"].as_array_mut().unwrap() {
                for metric in sm["metrics"].as_array_mut().unwrap() {
                    let name = metric["name"].as_str().unwrap().to_string();
                    for p in metric["sum"]["dataPoints"].as_array_mut().unwrap() {
                        let key = format!("{name}{}", p["attributes"]);
                        let entry = running
                            .entry(key)
                            .or_insert((0.0, p["startTimeUnixNano"].clone()));
                        entry.0 += p["asDouble"].as_f64().unwrap();
                        p["asDouble"] = json!(entry.0);
                        p["startTimeUnixNano"] = entry.1.clone();
                    }
                }
            }
        }
    });
    for name in [PG, ST] {
        let dir = session_dir(tmp.path(), name, json!({}));
        let inputs = Inputs {
            logs: vec![logs()],
            metrics: vec![m.clone()],
            result: Some(result_file(name)),
        };
        let cost = summarize(&dir, &inputs, &Options::default()).unwrap();
        let r = cost.summary.reconciliation.unwrap();
        assert_eq!(r.status, "ok", "{name}: {:?}", r.warnings);
        let metrics = r.metrics.unwrap();
        assert!(metrics.detail.unwrap().contains("cumulative"));
        assert_cost(metrics.cost_usd, truth(name).1);
    }
}

#[test]
fn key_value_bodies_carry_the_event_data() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("logs-kvlist.jsonl");
    // Move each record's attributes into a kvlistValue body.
    rewrite(&logs(), &l, |v| {
        walk(v, &mut |map| {
            if map.contains_key("body") {
                let attrs = map.insert("attributes".into(), json!([])).unwrap();
                map.insert("body".into(), json!({"kvlistValue": {"values": attrs}}));
            }
        })
    });
    let dir = session_dir(tmp.path(), PG, json!({}));
    let inputs = Inputs {
        logs: vec![l],
        metrics: vec![metrics()],
        result: Some(result_file(PG)),
    };
    let cost = summarize(&dir, &inputs, &Options::default()).unwrap();
    let (turns, total) = truth(PG);
    assert_eq!(cost.summary.api_calls, turns);
    assert_eq!(cost.summary.total_cost_usd, total);
}

#[test]
fn live_tally_counts_as_bytes_arrive_in_any_chunking() {
    let (sid, rid) = ids(PG);
    let (turns, total) = truth(PG);
    let bytes = std::fs::read(logs()).unwrap();
    for chunk in [1usize, 7, 4096, bytes.len()] {
        let mut tally = LiveTally::new(Some(&sid), Some(&rid));
        for piece in bytes.chunks(chunk) {
            tally.feed(piece);
        }
        assert_eq!(tally.api_calls(), turns, "chunk {chunk}");
        assert_cost(tally.cost_usd(), total);
    }

    // Following a growing file.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("session.jsonl");
    let mut tally = LiveTally::new(Some(&sid), None);
    assert_eq!(tally.poll_file(&path).unwrap(), 0);
    let cut = bytes.len() / 2;
    std::fs::write(&path, &bytes[..cut]).unwrap();
    tally.poll_file(&path).unwrap();
    let midway = tally.api_calls();
    assert!(midway > 0 && midway < turns);
    std::fs::write(&path, &bytes).unwrap();
    tally.poll_file(&path).unwrap();
    assert_eq!(tally.api_calls(), turns);
    assert_eq!(tally.snapshot().output_tokens, 7742);
    // Nothing new: nothing changes.
    assert_eq!(tally.poll_file(&path).unwrap(), 0);
    assert_eq!(tally.api_calls(), turns);
}

#[test]
fn the_command_line_path_writes_the_summary_and_refuses_to_clobber_raw_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = session_dir(tmp.path(), ST, json!({}));
    cli::run(cli::Args {
        session_dir: dir.clone(),
        logs: vec![logs()],
        metrics: vec![metrics()],
        result: Some(result_file(ST)),
        extract_raw: true,
        tolerance_percent: 0.5,
    })
    .unwrap();
    let s: CostSummary = bench_formats::read_json(&dir.join("cost-summary.json")).unwrap();
    assert_eq!(s.total_cost_usd, truth(ST).1);
    let raw = std::fs::read(dir.join("raw-telemetry.jsonl")).unwrap();

    // A second extraction from other inputs must not overwrite the existing raw file.
    let err = summarize(
        &dir,
        &both_files(None),
        &Options {
            extract_raw: true,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    assert_eq!(std::fs::read(dir.join("raw-telemetry.jsonl")).unwrap(), raw);

    // Without inputs and without a raw file, the error says which flags to pass.
    let empty = session_dir(&tmp.path().join("e"), ST, json!({}));
    let err = summarize(&empty, &Inputs::default(), &Options::default()).unwrap_err();
    assert!(format!("{err:#}").contains("--logs"), "{err:#}");
    // Without metadata.json, it says what the folder should be.
    let err = summarize(tmp.path(), &both_files(None), &Options::default()).unwrap_err();
    assert!(format!("{err:#}").contains("metadata.json"), "{err:#}");
}

#[test]
fn fields_other_tools_added_to_a_summary_survive_a_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = session_dir(tmp.path(), PG, json!({}));
    std::fs::write(
        dir.join("cost-summary.json"),
        json!({"totalCostUsd": 99.0, "schemaVersion": 1, "reviewNote": "checked by hand"})
            .to_string(),
    )
    .unwrap();
    // The same file named twice is read once.
    let twice = Inputs {
        logs: vec![logs(), logs()],
        metrics: vec![metrics(), logs()],
        result: None,
    };
    let cost = summarize(&dir, &twice, &Options::default()).unwrap();
    assert_eq!(cost.summary.inputs.as_ref().unwrap().files.len(), 2);
    assert_eq!(cost.summary.total_cost_usd, truth(PG).1);
    assert_eq!(cost.summary.extra["reviewNote"], "checked by hand");
}

#[test]
fn a_published_or_unreadable_summary_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    // A session folder of the original harness's published run, as it was published.
    let published = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/published-runs/spacetime-level1-20260406-153727");
    let dir = tmp.path().join("published");
    std::fs::create_dir(&dir).unwrap();
    for name in ["metadata.json", "cost-summary.json"] {
        std::fs::copy(published.join(name), dir.join(name)).unwrap();
    }
    let before = std::fs::read(dir.join("cost-summary.json")).unwrap();
    let err = summarize(&dir, &both_files(None), &Options::default()).unwrap_err();
    assert!(format!("{err:#}").contains("original harness"), "{err:#}");
    assert_eq!(
        std::fs::read(dir.join("cost-summary.json")).unwrap(),
        before
    );
    assert!(!dir.join("COST_REPORT.md").exists());

    // A file there that is not a summary at all is left alone too.
    let dir = session_dir(tmp.path(), PG, json!({}));
    std::fs::write(dir.join("cost-summary.json"), "notes, not JSON\n").unwrap();
    let err = summarize(&dir, &both_files(None), &Options::default()).unwrap_err();
    assert!(format!("{err:#}").contains("move it away"), "{err:#}");
    assert_eq!(
        std::fs::read_to_string(dir.join("cost-summary.json")).unwrap(),
        "notes, not JSON\n"
    );
}

#[test]
fn batches_mixing_sessions_are_split_record_by_record() {
    // A collector's batch processor merges exports: one line may hold resources of both
    // sessions, and one resource (without tags of its own) records of both.
    let tmp = tempfile::tempdir().unwrap();
    let mut merged = String::new();
    for path in [logs(), metrics()] {
        let lines = lines_of(&path);
        for pair in lines.chunks(2) {
            let values: Vec<Value> = pair
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let key = if values[0].get("resourceLogs").is_some() {
                "resourceLogs"
            } else {
                "resourceMetrics"
            };
            let mut resources: Vec<Value> = values
                .iter()
                .flat_map(|v| v[key].as_array().unwrap().clone())
                .collect();
            if key == "resourceLogs" && resources.len() == 2 {
                // Fold both into one untagged resource holding both sessions' records.
                let second = resources.pop().unwrap();
                let first = &mut resources[0];
                first["resource"]["attributes"] = json!([]);
                let records = second["scopeLogs"][0]["logRecords"]
                    .as_array()
                    .unwrap()
                    .clone();
                first["scopeLogs"][0]["logRecords"]
                    .as_array_mut()
                    .unwrap()
                    .extend(records);
            }
            merged.push_str(&json!({ key: resources }).to_string());
            merged.push('\n');
        }
    }
    let path = tmp.path().join("merged.jsonl");
    std::fs::write(&path, merged).unwrap();
    for name in [PG, ST] {
        let dir = session_dir(tmp.path(), name, json!({}));
        let inputs = Inputs {
            logs: vec![path.clone()],
            metrics: vec![],
            result: Some(result_file(name)),
        };
        let opts = Options {
            extract_raw: true,
            ..Options::default()
        };
        let cost = summarize(&dir, &inputs, &opts).unwrap();
        let (turns, total) = truth(name);
        assert_eq!(cost.summary.api_calls, turns, "{name}");
        assert_eq!(cost.summary.total_cost_usd, total, "{name}");
        assert_eq!(cost.summary.reconciliation.as_ref().unwrap().status, "ok");
        let i = cost.summary.inputs.as_ref().unwrap();
        assert!(
            i.other_sessions > 0,
            "the other session's records were seen and left out"
        );
        // The rewritten lines hold this session's records only, all of them.
        let (sid, _) = ids(name);
        let mut records = 0;
        for line in lines_of(&cost.raw_path.unwrap()) {
            let v: Value = serde_json::from_str(&line).unwrap();
            for s in record_sessions(&v) {
                assert_eq!(s.as_deref(), Some(sid.as_str()));
                records += 1;
            }
        }
        assert_eq!(records, i.log_records + i.metric_points);
    }
}

#[test]
fn token_metrics_without_cost_metrics_are_compared_on_tokens_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("metrics-tokens-only.jsonl");
    rewrite(&metrics(), &m, |v| {
        for rm in v["resourceMetrics"].as_array_mut().unwrap() {
            for sm in rm["scopeMetrics"].as_array_mut().unwrap() {
                sm["metrics"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|metric| metric["name"] != "claude_code.cost.usage");
            }
        }
    });
    let dir = session_dir(tmp.path(), PG, json!({}));
    let inputs = Inputs {
        logs: vec![logs()],
        metrics: vec![m],
        result: Some(result_file(PG)),
    };
    let cost = summarize(&dir, &inputs, &Options::default()).unwrap();
    let r = cost.summary.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "ok", "{:?}", r.warnings);
    let metrics = r.metrics.as_ref().unwrap();
    assert_eq!(metrics.status, Some(SourceStatus::Ok));
    assert_eq!(metrics.diff_from_trusted, None);
    assert_eq!(metrics.output_tokens, Some(7742));
    let report = std::fs::read_to_string(&cost.report_path).unwrap();
    assert!(report.contains("user_prompt 1"), "{report}");
}

/// The fixture's stream-json transcript, as the spacetime session's own: it is the CLI's
/// transcript of the same scripted conversation (same calls and figures), recorded under
/// another session id, which is replaced. Returned as parsed lines.
fn st_transcript() -> Vec<Value> {
    let (sid, _) = ids(ST);
    lines_of(&fixtures().join("sessions/spacetime-level1.stream.jsonl"))
        .iter()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if v.get("session_id").is_some() {
                v["session_id"] = json!(sid);
            }
            v
        })
        .collect()
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The transcript with a second tool use added to the response of `msg_3`, as the CLI
/// prints it: a second assistant line of the same response (`second_id` is its message
/// id), and its tool result. The CLI's `num_turns` goes up by one for it.
fn transcript_with_two_tool_uses_in_one_turn(second_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for v in st_transcript() {
        let is_msg3 = v["type"] == "assistant" && v["message"]["id"] == "msg_3";
        if v["type"] == "result" {
            let mut r = v.clone();
            r["num_turns"] = json!(r["num_turns"].as_u64().unwrap() + 1);
            out.push(r);
            continue;
        }
        out.push(v.clone());
        if is_msg3 {
            let mut second = v.clone();
            second["message"]["id"] = json!(second_id);
            second["message"]["content"] = json!([{
                "type": "tool_use", "id": "toolu_extra", "name": "Bash",
                "input": {"command": "ls src"}
            }]);
            second["uuid"] = json!("00000000-0000-4000-8000-000000000001");
            out.push(second);
            out.push(json!({
                "type": "user", "session_id": v["session_id"], "parent_tool_use_id": null,
                "message": {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_extra", "content": "file3.ts"}
                ]}
            }));
        }
    }
    out
}

#[test]
fn api_calls_come_from_the_transcript_not_from_num_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let (turns, total) = truth(ST);
    let lines = transcript_with_two_tool_uses_in_one_turn("msg_3");
    // The CLI printed 10 assistant lines for 9 API responses, and num_turns 10.
    assert_eq!(
        lines.iter().filter(|v| v["type"] == "assistant").count(),
        10
    );

    // The transcript in the session folder is the result source (as bench-run leaves it).
    let dir = session_dir(tmp.path(), ST, json!({}));
    write_lines(&dir.join("transcript.jsonl"), &lines);
    let cost = summarize(&dir, &both_files(None), &Options::default()).unwrap();
    let s = &cost.summary;
    let r = s.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "ok", "{:?}", r.warnings);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(s.status, Some(SummaryStatus::Ok));
    let result = r.result.as_ref().unwrap();
    assert_eq!(result.api_calls, Some(turns));
    assert_eq!(result.turns, Some(turns + 1));
    assert_eq!(result.status, Some(SourceStatus::Ok));
    assert_eq!(s.api_calls, turns);
    assert_eq!(s.total_cost_usd, total);
    let report = std::fs::read_to_string(&cost.report_path).unwrap();
    assert!(report.contains("9 distinct message ids among 10 assistant lines"));
    assert!(report.contains(&format!("num_turns {}", turns + 1)));

    // A bare result object given with --result: the calls are still counted from the
    // folder's transcript.
    let dir = session_dir(&tmp.path().join("bare"), ST, json!({}));
    write_lines(&dir.join("transcript.jsonl"), &lines);
    let bare = tmp.path().join("result.json");
    std::fs::write(&bare, lines.last().unwrap().to_string()).unwrap();
    let cost = summarize(&dir, &both_files(Some(bare.clone())), &Options::default()).unwrap();
    let r = cost.summary.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "ok", "{:?}", r.warnings);
    assert_eq!(r.result.as_ref().unwrap().api_calls, Some(turns));

    // A transcript of another session in the folder is not counted, and that is said.
    let dir = session_dir(&tmp.path().join("other"), ST, json!({}));
    std::fs::copy(
        fixtures().join("sessions/spacetime-level1.stream.jsonl"),
        dir.join("transcript.jsonl"),
    )
    .unwrap();
    let cost = summarize(&dir, &both_files(Some(bare)), &Options::default()).unwrap();
    let r = cost.summary.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "ok", "{:?}", r.warnings);
    assert_eq!(r.result.as_ref().unwrap().api_calls, None);
    assert!(
        r.warnings.iter().any(|w| w.contains("not counted")),
        "{:?}",
        r.warnings
    );

    // Two lines with different message ids are two API responses: with 9 events for
    // 10 responses, an event is missing and the CLI's total is used.
    let dir = session_dir(&tmp.path().join("ten"), ST, json!({}));
    write_lines(
        &dir.join("transcript.jsonl"),
        &transcript_with_two_tool_uses_in_one_turn("msg_3b"),
    );
    let cost = summarize(&dir, &both_files(None), &Options::default()).unwrap();
    let r = cost.summary.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "telemetry-incomplete", "{:?}", r.warnings);
    assert_eq!(r.trusted_source, "result");
    assert_eq!(cost.summary.api_calls, turns + 1);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("only 9 api_request events were received for the 10")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_bare_result_whose_num_turns_is_not_the_call_count_still_reconciles() {
    let tmp = tempfile::tempdir().unwrap();
    let (calls, total) = truth(PG);
    let mut v = read_value(&result_file(PG));
    // As after turns with several tool uses each: num_turns runs ahead of the calls.
    v["num_turns"] = json!(calls + 7);
    let bare = tmp.path().join("result.json");
    std::fs::write(&bare, v.to_string()).unwrap();
    let dir = session_dir(tmp.path(), PG, json!({}));
    let cost = summarize(&dir, &both_files(Some(bare)), &Options::default()).unwrap();
    let s = &cost.summary;
    let r = s.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "ok", "{:?}", r.warnings);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let result = r.result.as_ref().unwrap();
    assert_eq!(result.api_calls, None, "num_turns is not a call count");
    assert_eq!(result.turns, Some(calls + 7));
    assert_eq!(result.status, Some(SourceStatus::Ok));
    assert!(
        result
            .detail
            .as_deref()
            .unwrap()
            .contains("calls are not compared")
    );
    assert_eq!(s.api_calls, calls);
    assert_eq!(s.total_cost_usd, total);
}

/// The logs without the session's last `api_request` record (the CLI exited before
/// exporting it).
fn logs_without_last_api_request(name: &str, out: &Path) {
    let (sid, _) = ids(name);
    let mut lines: Vec<Value> = lines_of(&logs())
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut removed = false;
    'lines: for v in lines.iter_mut().rev() {
        for rl in v["resourceLogs"].as_array_mut().unwrap() {
            for sl in rl["scopeLogs"].as_array_mut().unwrap() {
                let records = sl["logRecords"].as_array_mut().unwrap();
                if let Some(i) = records.iter().rposition(|rec| {
                    rec["body"]["stringValue"] == "claude_code.api_request"
                        && rec["attributes"].as_array().unwrap().iter().any(|kv| {
                            kv["key"] == "session.id" && kv["value"]["stringValue"] == sid
                        })
                }) {
                    records.remove(i);
                    removed = true;
                    break 'lines;
                }
            }
        }
    }
    assert!(removed);
    write_lines(out, &lines);
}

#[test]
fn events_missing_the_last_call_are_reported_as_incomplete_telemetry() {
    let tmp = tempfile::tempdir().unwrap();
    let (calls, total) = truth(ST);
    let l = tmp.path().join("logs.jsonl");
    logs_without_last_api_request(ST, &l);
    let inputs = Inputs {
        logs: vec![l.clone()],
        metrics: vec![metrics()],
        result: None,
    };
    let dir = session_dir(tmp.path(), ST, json!({}));
    write_lines(&dir.join("transcript.jsonl"), &st_transcript());
    let cost = summarize(&dir, &inputs, &Options::default()).unwrap();
    let s = &cost.summary;
    let r = s.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "telemetry-incomplete", "{:?}", r.warnings);
    assert_eq!(r.trusted_source, "result");
    assert!(r.reason.contains("incomplete"), "{}", r.reason);
    assert_eq!(s.status, Some(SummaryStatus::Partial));
    assert_eq!(s.total_cost_usd, total);
    assert_eq!(s.api_calls, calls);
    let events = r.events.as_ref().unwrap();
    assert_eq!(events.api_calls, Some(calls - 1));
    assert_eq!(events.status, Some(SourceStatus::Short));
    assert!(events.cost_usd < total);
    assert_eq!(r.metrics.as_ref().unwrap().status, Some(SourceStatus::Ok));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains(&format!("only {} api_request events", calls - 1))),
        "{:?}",
        r.warnings
    );
    let report = std::fs::read_to_string(&cost.report_path).unwrap();
    assert!(report.contains("Telemetry is incomplete"), "{report}");
}

#[test]
fn a_result_below_complete_events_is_a_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, total) = truth(PG);
    // The events (and metrics) report more than the CLI's own total: lost records cannot
    // explain that.
    let mut v = read_value(&result_file(PG));
    v["total_cost_usd"] = json!(total * 0.9);
    v["modelUsage"]["claude-sonnet-4-6"]["costUSD"] = json!(total * 0.9);
    let low = tmp.path().join("result.json");
    std::fs::write(&low, v.to_string()).unwrap();
    let dir = session_dir(tmp.path(), PG, json!({}));
    let cost = summarize(&dir, &both_files(Some(low)), &Options::default()).unwrap();
    let s = &cost.summary;
    let r = s.reconciliation.as_ref().unwrap();
    assert_eq!(r.status, "mismatch");
    assert_eq!(r.trusted_source, "events");
    assert_eq!(
        r.result.as_ref().unwrap().status,
        Some(SourceStatus::Mismatch)
    );
    assert_eq!(r.metrics.as_ref().unwrap().status, Some(SourceStatus::Ok));
    assert_eq!(s.status, Some(SummaryStatus::Partial));
    assert_eq!(s.total_cost_usd, total);
    let report = std::fs::read_to_string(&cost.report_path).unwrap();
    assert!(report.contains("The sources disagree"), "{report}");
}
