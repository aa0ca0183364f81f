//! The agent CLI's own final result object (`claude --print --output-format json`, or the
//! `"type":"result"` line that ends a `stream-json` transcript).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::cost::ModelUsage;
use serde_json::Value;

/// The figures of a result object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CliResult {
    pub path: PathBuf,
    pub session_id: Option<String>,
    pub total_cost_usd: f64,
    pub num_turns: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub duration_ms: Option<f64>,
    pub duration_api_ms: Option<f64>,
    pub is_error: Option<bool>,
    pub subtype: Option<String>,
    /// Per model, from `modelUsage` (no call counts: the CLI does not give them per model).
    pub models: BTreeMap<String, ModelUsage>,
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn is_result(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("result")
        || (v.get("type").is_none() && v.get("total_cost_usd").is_some())
}

/// Reads the figures out of one result object.
pub fn from_value(v: &Value, path: &Path) -> Result<CliResult> {
    let total_cost_usd = v
        .get("total_cost_usd")
        .and_then(Value::as_f64)
        .with_context(|| {
            format!(
                "{}: the result object has no numeric total_cost_usd",
                path.display()
            )
        })?;
    let mut r = CliResult {
        path: path.to_path_buf(),
        session_id: v
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        total_cost_usd,
        num_turns: v.get("num_turns").and_then(Value::as_u64),
        duration_ms: v.get("duration_ms").and_then(Value::as_f64),
        duration_api_ms: v.get("duration_api_ms").and_then(Value::as_f64),
        is_error: v.get("is_error").and_then(Value::as_bool),
        subtype: v.get("subtype").and_then(Value::as_str).map(str::to_string),
        ..CliResult::default()
    };
    if let Some(models) = v.get("modelUsage").and_then(Value::as_object) {
        for (name, m) in models {
            r.models.insert(
                name.clone(),
                ModelUsage {
                    api_calls: 0,
                    input_tokens: u64_of(m, "inputTokens"),
                    output_tokens: u64_of(m, "outputTokens"),
                    cache_read_tokens: u64_of(m, "cacheReadInputTokens"),
                    cache_creation_tokens: u64_of(m, "cacheCreationInputTokens"),
                    cost_usd: m.get("costUSD").and_then(Value::as_f64).unwrap_or(0.0),
                    duration_sec: 0.0,
                },
            );
        }
    }
    // modelUsage covers every model the session used; `usage` alone may not.
    if !r.models.is_empty() {
        for m in r.models.values() {
            r.input_tokens += m.input_tokens;
            r.output_tokens += m.output_tokens;
            r.cache_read_tokens += m.cache_read_tokens;
            r.cache_creation_tokens += m.cache_creation_tokens;
        }
    } else if let Some(u) = v.get("usage") {
        r.input_tokens = u64_of(u, "input_tokens");
        r.output_tokens = u64_of(u, "output_tokens");
        r.cache_read_tokens = u64_of(u, "cache_read_input_tokens");
        r.cache_creation_tokens = u64_of(u, "cache_creation_input_tokens");
    }
    Ok(r)
}

/// Reads a result file: a JSON result object, or a stream-json transcript whose last
/// `result` line is taken. `Ok(None)` when a transcript has no result line yet.
pub fn read(path: &Path) -> Result<Option<CliResult>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the result file {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut last: Option<Value> = None;
    let mut whole = String::new();
    let mut line = String::new();
    let mut lines = 0usize;
    let mut nonblank = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        lines += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        nonblank += 1;
        // A pretty-printed object spans lines: keep the text until one line parses alone.
        if lines <= 10_000 && whole.len() < (16 << 20) {
            whole.push_str(&line);
        }
        if text.contains("\"result\"")
            && let Ok(v) = serde_json::from_str::<Value>(text)
            && is_result(&v)
        {
            last = Some(v);
        }
    }
    if last.is_none() {
        match serde_json::from_str::<Value>(whole.trim()) {
            Ok(v) if is_result(&v) => last = Some(v),
            Err(e) if nonblank <= 1 && !whole.trim().is_empty() => bail!(
                "{} is not a result object ({e}); pass the CLI's --output-format json output or its stream-json transcript",
                path.display()
            ),
            _ => {}
        }
    }
    last.map(|v| from_value(&v, path)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_result_line_of_a_transcript_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transcript.jsonl");
        std::fs::write(
            &path,
            concat!(
                "{\"type\":\"system\",\"subtype\":\"init\"}\n",
                "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"content\":\"result\"}]}}\n",
                "{\"type\":\"result\",\"total_cost_usd\":0.5,\"num_turns\":3,",
                "\"usage\":{\"input_tokens\":1,\"output_tokens\":2,\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":4}}\r\n"
            ),
        )
        .unwrap();
        let r = read(&path).unwrap().unwrap();
        assert_eq!(r.total_cost_usd, 0.5);
        assert_eq!(r.num_turns, Some(3));
        assert_eq!(
            (
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_creation_tokens
            ),
            (1, 2, 3, 4)
        );
    }

    #[test]
    fn pretty_printed_result_objects_are_read_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.json");
        std::fs::write(
            &path,
            "{\n  \"type\": \"result\",\n  \"total_cost_usd\": 1.25,\n  \"modelUsage\": {\"m\": {\"inputTokens\": 5, \"costUSD\": 1.25}}\n}\n",
        )
        .unwrap();
        let r = read(&path).unwrap().unwrap();
        assert_eq!(r.total_cost_usd, 1.25);
        assert_eq!(r.input_tokens, 5);
        assert_eq!(r.models["m"].cost_usd, 1.25);
    }

    #[test]
    fn a_file_that_is_not_a_result_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.json");
        std::fs::write(&path, "not json").unwrap();
        let err = read(&path).unwrap_err();
        assert!(format!("{err:#}").contains("not a result object"));
    }
}
