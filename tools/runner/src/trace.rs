//! The harness's own trace: one OpenTelemetry span per step of a session (preflight, prompt
//! assembly, snapshot, agent session, telemetry), written with `opentelemetry-stdout` as one
//! JSON export per line into `telemetry/<run-id>/harness-trace.jsonl`.

use std::path::Path;

use anyhow::{Context as _, Result};
use opentelemetry::trace::{
    Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Config, Span, TracerProvider};

/// The file the trace is written to, inside the session folder.
pub const TRACE_FILE: &str = "harness-trace.jsonl";

/// A session's trace. Spans are exported as they end (a crash keeps the finished ones).
pub struct HarnessTrace {
    provider: TracerProvider,
    root: Context,
}

/// One step in progress; ends with [`Step::end_ok`] or [`Step::end_err`] (or when dropped).
pub struct Step {
    span: Span,
}

impl HarnessTrace {
    /// Starts the trace with a root span (e.g. `bench-run generate`) carrying the run's
    /// attributes, begun at `started`.
    pub fn start(
        session_dir: &Path,
        name: &str,
        started: std::time::SystemTime,
        attributes: Vec<KeyValue>,
    ) -> Result<Self> {
        let path = session_dir.join(TRACE_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let exporter = opentelemetry_stdout::SpanExporter::builder()
            .with_writer(file)
            .build();
        let mut resource = vec![
            KeyValue::new("service.name", "bench-run"),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ];
        resource.extend(
            attributes
                .iter()
                .filter(|kv| matches!(kv.key.as_str(), "run.id" | "session.id"))
                .cloned(),
        );
        let provider = TracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_config(Config::default().with_resource(Resource::new(resource)))
            .build();
        let tracer = provider.tracer("bench-run");
        let span: Span = tracer
            .span_builder(name.to_owned())
            .with_start_time(started)
            .with_attributes(attributes)
            .start(&tracer);
        let root = Context::new().with_span(span);
        Ok(HarnessTrace { provider, root })
    }

    /// Begins a child step of the session.
    pub fn step(&self, name: &str) -> Step {
        let tracer = opentelemetry::trace::TracerProvider::tracer(&self.provider, "bench-run");
        let span = tracer.start_with_context(name.to_owned(), &self.root);
        Step { span }
    }

    /// Records a step that ran before the trace started (e.g. the preflight, which runs
    /// before the session folder exists), with its real start and end times.
    pub fn record_step(
        &self,
        name: &str,
        start: std::time::SystemTime,
        end: std::time::SystemTime,
        attributes: Vec<KeyValue>,
    ) {
        let tracer = opentelemetry::trace::TracerProvider::tracer(&self.provider, "bench-run");
        let mut span = tracer
            .span_builder(name.to_owned())
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&tracer, &self.root);
        span.set_status(Status::Ok);
        span.end_with_timestamp(end);
    }

    /// Runs `f` as a step; an error marks the span as failed.
    pub fn in_step<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let step = self.step(name);
        let result = f();
        match &result {
            Ok(_) => step.end_ok(),
            Err(e) => step.end_err(&format!("{e:#}")),
        }
        result
    }

    /// Ends the root span (with these final attributes) and flushes the file.
    pub fn finish(self, attributes: Vec<KeyValue>, error: Option<&str>) {
        let span = self.root.span();
        span.set_attributes(attributes);
        if let Some(message) = error {
            span.set_status(Status::error(message.to_owned()));
        } else {
            span.set_status(Status::Ok);
        }
        span.end();
        for result in self.provider.force_flush() {
            if let Err(e) = result {
                eprintln!("warning: cannot write the harness trace: {e}");
            }
        }
        let _ = self.provider.shutdown();
    }
}

impl Step {
    pub fn set(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        self.span.set_attribute(KeyValue::new(key, value));
    }

    pub fn end_ok(mut self) {
        self.span.set_status(Status::Ok);
        self.span.end();
    }

    pub fn end_err(mut self, message: &str) {
        self.span.set_status(Status::error(message.to_owned()));
        self.span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_written_as_json_lines_under_one_trace() {
        let tmp = tempfile::tempdir().unwrap();
        let trace = HarnessTrace::start(
            tmp.path(),
            "bench-run generate",
            std::time::SystemTime::now(),
            vec![
                KeyValue::new("run.id", "postgres-level1-x"),
                KeyValue::new("session.id", "abc"),
            ],
        )
        .unwrap();
        trace.in_step("preflight", || Ok(())).unwrap();
        let failed: Result<()> = trace.in_step("snapshot", || anyhow::bail!("disk full"));
        assert!(failed.is_err());
        trace.finish(vec![KeyValue::new("outcome", "completed")], None);

        let text = std::fs::read_to_string(tmp.path().join(TRACE_FILE)).unwrap();
        let spans: Vec<serde_json::Value> = text
            .lines()
            .flat_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap()
            })
            .collect();
        let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["preflight", "snapshot", "bench-run generate"]);
        let trace_ids: std::collections::BTreeSet<&str> = spans
            .iter()
            .map(|s| s["traceId"].as_str().unwrap())
            .collect();
        assert_eq!(trace_ids.len(), 1, "one trace: {text}");
        assert!(text.contains("disk full"));
        assert!(text.contains("postgres-level1-x"));
    }
}
