//! The agent CLI's own final result object (`claude --print --output-format json`, or the
//! `"type":"result"` line that ends a `stream-json` transcript), and the number of API
//! calls a transcript shows.
//!
//! The result object's `num_turns` is NOT a count of API calls: the CLI raises it for each
//! tool use (roughly tool uses + 1), so a response asking for two tools at once adds two;
//! a session stopped early can report fewer turns than calls.
//! The API calls are counted from the transcript instead: each API response appears there
//! as one or more `"type":"assistant"` lines (the CLI prints one line per content block,
//! all with the response's `message.id`), so the calls are the distinct message ids.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bench_formats::cost::ModelUsage;
use serde::Deserialize;
use serde_json::Value;

/// The model name the CLI gives messages it made up itself (an API error or a budget stop
/// shown as an assistant message): they are not API responses.
const SYNTHETIC_MODEL: &str = "<synthetic>";

/// The API calls a stream-json transcript shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptCalls {
    pub path: PathBuf,
    /// Distinct `message.id` of the `assistant` lines: one per API response.
    pub calls: u64,
    /// `assistant` lines read (several may belong to one response).
    pub assistant_lines: u64,
    /// `assistant` lines the CLI made up itself (model `<synthetic>`), or without a
    /// message id: not counted as calls.
    pub not_counted: u64,
    /// Session ids carried by the `assistant` lines.
    pub session_ids: BTreeSet<String>,
}

impl TranscriptCalls {
    /// Whether the transcript is of `session_id` (a transcript whose lines carry no
    /// session id is taken as the session's).
    pub fn is_of(&self, session_id: &str) -> bool {
        self.session_ids.iter().all(|s| s == session_id)
    }
}

/// The part of a transcript line the call count needs (everything else is skipped).
#[derive(Deserialize)]
struct Line {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<LineMessage>,
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    id: Option<String>,
    model: Option<String>,
}

/// Adds up the calls of transcript lines.
#[derive(Default)]
struct CallCounter {
    ids: BTreeSet<String>,
    counted: TranscriptCalls,
}

impl CallCounter {
    fn line(&mut self, text: &str) {
        // Only assistant lines matter; the others are not parsed.
        if !text.contains("\"assistant\"") {
            return;
        }
        let Ok(line) = serde_json::from_str::<Line>(text) else {
            return;
        };
        if line.kind.as_deref() != Some("assistant") {
            return;
        }
        let c = &mut self.counted;
        c.assistant_lines += 1;
        if let Some(s) = line.session_id {
            c.session_ids.insert(s);
        }
        match line.message {
            Some(LineMessage {
                id: Some(id),
                model,
            }) if model.as_deref() != Some(SYNTHETIC_MODEL) => {
                self.ids.insert(id);
            }
            _ => c.not_counted += 1,
        }
    }

    /// The count, if the file had any assistant line (`None`: not a transcript).
    fn finish(self, path: &Path) -> Option<TranscriptCalls> {
        let mut c = self.counted;
        if c.assistant_lines == 0 {
            return None;
        }
        c.calls = self.ids.len() as u64;
        c.path = path.to_path_buf();
        Some(c)
    }
}

/// The figures of a result object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CliResult {
    pub path: PathBuf,
    pub session_id: Option<String>,
    pub total_cost_usd: f64,
    /// The CLI's turn count: informational only, it is not a number of API calls (see the
    /// module documentation).
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
    /// The API calls of the session's transcript, when one was available: the result
    /// source's call count.
    pub transcript: Option<TranscriptCalls>,
    /// Why a transcript that was found was not used for the call count.
    pub transcript_note: Option<String>,
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
/// `result` line is taken (its API calls are then counted too, see
/// [`CliResult::transcript`]). `Ok(None)` when a transcript has no result line yet.
pub fn read(path: &Path) -> Result<Option<CliResult>> {
    let mut counter = CallCounter::default();
    let mut last: Option<Value> = None;
    let mut whole = String::new();
    let mut lines = 0usize;
    let mut nonblank = 0usize;
    for_each_line(path, "the result file", |line| {
        lines += 1;
        let text = line.trim();
        if text.is_empty() {
            return;
        }
        nonblank += 1;
        counter.line(text);
        // A pretty-printed object spans lines: keep the text until one line parses alone.
        if lines <= 10_000 && whole.len() < (16 << 20) {
            whole.push_str(line);
        }
        if text.contains("\"result\"")
            && let Ok(v) = serde_json::from_str::<Value>(text)
            && is_result(&v)
        {
            last = Some(v);
        }
    })?;
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
    let Some(v) = last else { return Ok(None) };
    let mut r = from_value(&v, path)?;
    r.transcript = counter.finish(path);
    Ok(Some(r))
}

/// Counts the API calls of a stream-json transcript. `Ok(None)` when it has no
/// `assistant` line.
pub fn count_calls(path: &Path) -> Result<Option<TranscriptCalls>> {
    let mut counter = CallCounter::default();
    for_each_line(path, "the transcript", |line| counter.line(line.trim()))?;
    Ok(counter.finish(path))
}

/// Calls `f` with each line of the file at `path`, its line break included; `what` names
/// the file in errors.
fn for_each_line(path: &Path, what: &str, mut f: impl FnMut(&str)) -> Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open {what} {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        f(&line);
    }
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
    fn api_calls_are_the_distinct_message_ids_of_assistant_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transcript.jsonl");
        let assistant = |id: &str, model: &str| {
            format!(
                "{{\"type\":\"assistant\",\"session_id\":\"s1\",\"message\":{{\"id\":\"{id}\",\"model\":\"{model}\",\"content\":[{{\"type\":\"tool_use\"}}]}}}}\n"
            )
        };
        let text = [
            "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s1\"}\n".to_string(),
            // One response asking for two tools: two lines, one id.
            assistant("msg_a", "claude-sonnet-4-6"),
            assistant("msg_a", "claude-sonnet-4-6"),
            "{\"type\":\"user\",\"message\":{\"content\":\"assistant\"}}\n".to_string(),
            assistant("msg_b", "claude-sonnet-4-6"),
            // What the CLI writes itself when it stops (not an API response).
            assistant("6f1c", "<synthetic>"),
            "{\"type\":\"assistant\", broken\n".to_string(),
            "{\"type\":\"result\",\"total_cost_usd\":0.5,\"num_turns\":4}\n".to_string(),
        ]
        .concat();
        std::fs::write(&path, text).unwrap();
        let r = read(&path).unwrap().unwrap();
        assert_eq!(r.num_turns, Some(4));
        let t = r.transcript.unwrap();
        assert_eq!(t.calls, 2);
        assert_eq!(t.assistant_lines, 4);
        assert_eq!(t.not_counted, 1);
        assert!(t.is_of("s1") && !t.is_of("s2"));
        assert_eq!(count_calls(&path).unwrap(), Some(t));

        // A bare result object is not a transcript: no call count.
        let bare = dir.path().join("result.json");
        std::fs::write(
            &bare,
            "{\"type\":\"result\",\"total_cost_usd\":0.5,\"num_turns\":4}",
        )
        .unwrap();
        assert_eq!(read(&bare).unwrap().unwrap().transcript, None);
        assert_eq!(count_calls(&bare).unwrap(), None);
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
