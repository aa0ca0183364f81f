//! The driver's output: one JSON object per line (`tools/grade/driver/PROTOCOL.md`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use bench_formats::grading::Severity;
use serde::Deserialize;

/// One line of the driver's stdout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Ready {
        #[serde(default)]
        browser_version: String,
        #[serde(default)]
        warmup_ms: f64,
    },
    FeatureStart {
        feature: u32,
    },
    Action {
        feature: u32,
        step: u32,
        #[serde(default)]
        item: u32,
        #[serde(default)]
        user: String,
        #[serde(default)]
        what: String,
        ok: bool,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        ms: f64,
    },
    Check(Box<CheckEvent>),
    ConsoleError {
        feature: u32,
        #[serde(default)]
        step: Option<u32>,
        #[serde(default)]
        user: String,
        text: String,
        #[serde(default)]
        url: Option<String>,
    },
    Artifacts {
        feature: u32,
        step: u32,
        #[serde(default)]
        screenshots: BTreeMap<String, String>,
        #[serde(default)]
        trace: Option<String>,
    },
    FeatureEnd {
        feature: u32,
    },
    Done {},
    Fatal {
        error: String,
    },
}

/// A `check` event: one expectation's outcome.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckEvent {
    pub feature: u32,
    pub step: u32,
    #[serde(default)]
    pub item: u32,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub what: String,
    #[serde(default)]
    pub expect: String,
    pub passed: bool,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub within_s: Option<f64>,
    #[serde(default)]
    pub observed: serde_json::Value,
    #[serde(default)]
    pub severity: Severity,
    /// The expectation failed live but held after a reload.
    #[serde(default)]
    pub after_refresh: bool,
    /// The feature the expectation counts for, when the script names another.
    #[serde(default)]
    pub counts_for: Option<u32>,
}

impl CheckEvent {
    /// `observed` as text (the driver may send a string or any JSON value).
    pub fn observed_text(&self) -> String {
        match &self.observed {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// Reads one stdout line; an empty line is `None`. Anything that is not an event of the
/// protocol is an error naming the line (a harness failure, not an app bug).
pub fn parse_line(line: &str) -> Result<Option<Event>> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(line)
        .map(Some)
        .with_context(|| format!("the grading driver printed a line outside its protocol: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_of_the_protocol_is_read() {
        let lines = [
            r#"{"event":"ready","browser_version":"HeadlessChrome/140","warmup_ms":812}"#,
            r#"{"event":"feature_start","feature":1}"#,
            r#"{"event":"action","feature":1,"step":1,"item":0,"user":"alice","what":"fill","ok":true,"ms":12}"#,
            r#"{"event":"check","feature":1,"step":1,"item":2,"user":"bob","what":"Hello","expect":"appears","passed":false,"latency_ms":1500,"within_s":1,"observed":"not shown","severity":"minor"}"#,
            r#"{"event":"console_error","feature":1,"step":1,"user":"bob","text":"boom"}"#,
            r#"{"event":"artifacts","feature":1,"step":1,"screenshots":{"alice":"a.png"},"trace":"t.zip"}"#,
            r#"{"event":"feature_end","feature":1}"#,
            r#"{"event":"done"}"#,
            r#"{"event":"fatal","error":"browser missing"}"#,
        ];
        let events: Vec<Event> = lines
            .iter()
            .map(|l| parse_line(l).unwrap().unwrap())
            .collect();
        let Event::Check(check) = &events[3] else {
            panic!("not a check: {:?}", events[3]);
        };
        assert_eq!(check.severity, Severity::Minor);
        assert_eq!(check.latency_ms, Some(1500.0));
        assert_eq!(check.observed_text(), "not shown");
        assert_eq!(events[7], Event::Done {});
        assert!(matches!(&events[8], Event::Fatal { error } if error == "browser missing"));
        assert_eq!(parse_line("  ").unwrap(), None);
    }

    #[test]
    fn a_line_outside_the_protocol_is_an_error_quoting_it() {
        let e = parse_line("npm WARN something").unwrap_err().to_string();
        assert!(e.contains("npm WARN something"), "{e}");
        assert!(parse_line(r#"{"event":"nonsense"}"#).is_err());
    }
}
