//! The receiver over real sockets, with real gRPC and HTTP clients.

use std::io::Write as _;
use std::path::Path;

use futures_util::stream;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otlp_receiver::{Receiver, ReceiverConfig, json, session_files};
use prost::Message as _;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

fn resource(run: &str, session: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("run.id", run),
            kv("session.id", session),
            kv("service.name", "claude-code"),
        ],
        ..Default::default()
    })
}

/// A batch as the CLI sends it: several events of one session under its resource.
fn logs_batch(
    run: &str,
    session: &str,
    first_seq: i64,
    events: &[&str],
) -> ExportLogsServiceRequest {
    let records = events
        .iter()
        .enumerate()
        .map(|(i, event)| LogRecord {
            time_unix_nano: 1_795_509_494_000_000_000 + i as u64,
            observed_time_unix_nano: 1_795_509_494_000_000_000 + i as u64,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "claude_code.{event}"
                ))),
            }),
            attributes: vec![
                kv("session.id", session),
                kv("event.name", event),
                KeyValue {
                    key: "event.sequence".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(first_seq + i as i64)),
                    }),
                },
            ],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(run, session),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "com.anthropic.claude_code.events".into(),
                    version: "2.1.197".into(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn cost_metric(run: &str, session: &str, usd: f64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(run, session),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "com.anthropic.claude_code".into(),
                    ..Default::default()
                }),
                metrics: vec![Metric {
                    name: "claude_code.cost.usage".into(),
                    unit: "USD".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("session.id", session)],
                            time_unix_nano: 1_795_509_496_153_000_000,
                            value: Some(number_data_point::Value::AsDouble(usd)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 1,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn read_logs(path: &Path) -> Vec<ExportLogsServiceRequest> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| json::decode_logs(line.as_bytes()).unwrap())
        .collect()
}

fn read_metrics(path: &Path) -> Vec<ExportMetricsServiceRequest> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| json::decode_metrics(line.as_bytes()).unwrap())
        .collect()
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

/// (session.id, body) of every log record, in file order.
fn log_events(requests: &[ExportLogsServiceRequest]) -> Vec<(String, String)> {
    requests
        .iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| {
            let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (
                string_attr(&r.attributes, "session.id").unwrap_or_default(),
                body,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_keeps_two_interleaved_sessions_apart() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(ReceiverConfig::ephemeral(dir.path())).unwrap();
    let mut logs = LogsServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let mut metrics = MetricsServiceClient::connect(receiver.grpc_endpoint())
        .await
        .unwrap();

    // Alternate between two sessions, several records per batch.
    for round in 0..3 {
        logs.export(logs_batch(
            "spacetime-level1",
            "sess-a",
            round * 3,
            &["api_request", "tool_decision", "tool_result"],
        ))
        .await
        .unwrap();
        logs.export(logs_batch(
            "postgres-level1",
            "sess-b",
            round * 2,
            &["api_request", "tool_result"],
        ))
        .await
        .unwrap();
    }
    metrics
        .export(cost_metric("spacetime-level1", "sess-a", 0.25))
        .await
        .unwrap();
    metrics
        .export(cost_metric("postgres-level1", "sess-b", 0.5))
        .await
        .unwrap();

    // Written when the call returns: no need to shut down first.
    let combined = read_logs(&dir.path().join("logs.jsonl"));
    assert_eq!(combined.len(), 6, "one line per export request");
    let events = log_events(&combined);
    assert_eq!(events.len(), 15);

    let (a_logs, a_metrics) = session_files(dir.path(), "sess-a");
    let (b_logs, b_metrics) = session_files(dir.path(), "sess-b");
    let a = log_events(&read_logs(&a_logs));
    let b = log_events(&read_logs(&b_logs));
    assert_eq!(a.len(), 9);
    assert_eq!(b.len(), 6);
    assert!(a.iter().all(|(s, _)| s == "sess-a"));
    assert!(b.iter().all(|(s, _)| s == "sess-b"));
    assert_eq!(a[0].1, "claude_code.api_request");
    assert_eq!(b[1].1, "claude_code.tool_result");
    // Session lines keep the resource they came with.
    let a_first = &read_logs(&a_logs)[0];
    assert_eq!(
        string_attr(
            &a_first.resource_logs[0]
                .resource
                .as_ref()
                .unwrap()
                .attributes,
            "run.id"
        )
        .as_deref(),
        Some("spacetime-level1")
    );

    assert_eq!(read_metrics(&dir.path().join("metrics.jsonl")).len(), 2);
    assert_eq!(
        read_metrics(&a_metrics),
        vec![cost_metric("spacetime-level1", "sess-a", 0.25)]
    );
    assert_eq!(
        read_metrics(&b_metrics),
        vec![cost_metric("postgres-level1", "sess-b", 0.5)]
    );

    let stats = receiver.stats();
    assert_eq!((stats.log_requests, stats.log_records), (6, 15));
    assert_eq!((stats.metric_requests, stats.metric_points), (2, 2));
    let grpc_addr = receiver.grpc_addr();
    receiver.shutdown().unwrap();
    assert!(
        std::net::TcpStream::connect(grpc_addr).is_err(),
        "port closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_takes_protobuf_json_gzip_and_chunked_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(ReceiverConfig::ephemeral(dir.path())).unwrap();
    let client = reqwest::Client::new();
    let logs_url = format!("{}/v1/logs", receiver.http_endpoint());
    let metrics_url = format!("{}/v1/metrics", receiver.http_endpoint());

    // 1. protobuf with a Content-Length.
    let batch1 = logs_batch("r1", "s1", 0, &["api_request"]);
    let resp = client
        .post(&logs_url)
        .header("content-type", "application/x-protobuf")
        .body(batch1.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    assert!(
        resp.bytes().await.unwrap().is_empty(),
        "empty ExportLogsServiceResponse"
    );

    // 2. JSON, chunked (a streamed body has no Content-Length), other session.
    let batch2 = logs_batch("r2", "s2", 0, &["api_request", "tool_result"]);
    let text = json::encode_logs(&batch2).into_bytes();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        text.chunks(7).map(|c| Ok(c.to_vec())).collect();
    let resp = client
        .post(&logs_url)
        .header("content-type", "application/json; charset=utf-8")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "{}");

    // 3. gzip-compressed protobuf, chunked.
    let batch3 = logs_batch("r1", "s1", 1, &["tool_decision", "tool_result"]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&batch3.encode_to_vec()).unwrap();
    let compressed = gz.finish().unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        compressed.chunks(5).map(|c| Ok(c.to_vec())).collect();
    let resp = client
        .post(&logs_url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // 4. gzip JSON metrics.
    let m = cost_metric("r2", "s2", 1.5);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json::encode_metrics(&m).as_bytes()).unwrap();
    let resp = client
        .post(&metrics_url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    assert_eq!(
        read_logs(&dir.path().join("logs.jsonl")),
        vec![batch1.clone(), batch2.clone(), batch3.clone()]
    );
    let (s1_logs, _) = session_files(dir.path(), "s1");
    let (s2_logs, s2_metrics) = session_files(dir.path(), "s2");
    assert_eq!(read_logs(&s1_logs), vec![batch1, batch3]);
    assert_eq!(read_logs(&s2_logs), vec![batch2]);
    assert_eq!(read_metrics(&s2_metrics), vec![m]);
    assert!(
        !session_files(dir.path(), "s1").1.exists(),
        "s1 sent no metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_the_receiver_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(ReceiverConfig::ephemeral(dir.path())).unwrap();
    let client = reqwest::Client::new();
    let logs_url = format!("{}/v1/logs", receiver.http_endpoint());

    let resp = client
        .post(&logs_url)
        .header("content-type", "application/json")
        .body(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"later"}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let status: serde_json::Value = resp.json_body().await;
    assert_eq!(status["code"], 3);
    assert!(
        status["message"].as_str().unwrap().contains("timeUnixNano"),
        "{status}"
    );

    let resp = client
        .post(&logs_url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let resp = client
        .post(&logs_url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(b"not gzip at all".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let resp = client
        .post(&logs_url)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    let resp = client.get(&logs_url).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let resp = client
        .post(format!("{}/v1/nothing", receiver.http_endpoint()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Nothing was written, and a good request still goes through.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("logs.jsonl")).unwrap(),
        ""
    );
    let good = logs_batch("r", "s", 0, &["api_request"]);
    let resp = client
        .post(&logs_url)
        .header("content-type", "application/x-protobuf")
        .body(good.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(read_logs(&dir.path().join("logs.jsonl")), vec![good]);
    assert_eq!(receiver.stats().rejected, 4);
}

/// `reqwest` without its `json` feature: parse the body ourselves.
trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_export_reposted_as_json_reads_back_the_same() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let logs_lines = std::fs::read_to_string(fixtures.join("claude-code-logs.jsonl")).unwrap();
    let metrics_lines =
        std::fs::read_to_string(fixtures.join("claude-code-metrics.jsonl")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(ReceiverConfig::ephemeral(dir.path())).unwrap();
    let client = reqwest::Client::new();
    for (lines, path) in [(&logs_lines, "/v1/logs"), (&metrics_lines, "/v1/metrics")] {
        for line in lines.lines() {
            let resp = client
                .post(format!("{}{path}", receiver.http_endpoint()))
                .header("content-type", "application/json")
                .body(line.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
    }

    // The combined files hold the same requests, line for line.
    let sent_logs: Vec<_> = logs_lines
        .lines()
        .map(|l| json::decode_logs(l.as_bytes()).unwrap())
        .collect();
    let sent_metrics: Vec<_> = metrics_lines
        .lines()
        .map(|l| json::decode_metrics(l.as_bytes()).unwrap())
        .collect();
    assert_eq!(sent_logs.len(), 23);
    assert_eq!(read_logs(&dir.path().join("logs.jsonl")), sent_logs);
    assert_eq!(
        read_metrics(&dir.path().join("metrics.jsonl")),
        sent_metrics
    );
    // ... and as generic JSON too: nothing lost or renamed; only members holding their
    // default value are left out, as the collector does.
    for (sent_lines, file) in [
        (&logs_lines, "logs.jsonl"),
        (&metrics_lines, "metrics.jsonl"),
    ] {
        let written = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(written.lines().count(), sent_lines.lines().count());
        for (sent, got) in sent_lines.lines().zip(written.lines()) {
            let sent = without_defaults(serde_json::from_str(sent).unwrap());
            let got: serde_json::Value = serde_json::from_str(got).unwrap();
            assert_eq!(got, sent);
        }
    }

    // Per session: each record lands in its own session's file, none elsewhere.
    for (session, log_count) in [
        ("20cf6aec-c3e5-48f2-8f34-a807525285e9", 10),
        ("94d4ea57-e5dd-4b37-a5cf-303380ffbfd2", 13),
    ] {
        let expected: Vec<(String, String)> = log_events(&sent_logs)
            .into_iter()
            .filter(|(s, _)| s == session)
            .collect();
        let (logs_path, metrics_path) = session_files(dir.path(), session);
        let got_logs = read_logs(&logs_path);
        assert_eq!(
            got_logs.len(),
            log_count,
            "one line per request that carried the session"
        );
        assert_eq!(log_events(&got_logs), expected);
        let expected_metrics: Vec<_> = sent_metrics
            .iter()
            .filter(|r| {
                string_attr(
                    &r.resource_metrics[0].resource.as_ref().unwrap().attributes,
                    "session.id",
                )
                .as_deref()
                    == Some(session)
            })
            .cloned()
            .collect();
        assert_eq!(read_metrics(&metrics_path), expected_metrics);
    }
    let sessions: Vec<_> = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .collect();
    assert_eq!(sessions.len(), 2);
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = Receiver::start(ReceiverConfig::ephemeral(dir.path())).unwrap();
    let mut config = ReceiverConfig::ephemeral(dir.path());
    config.http_addr = first.http_addr();
    let err = match Receiver::start(config) {
        Ok(_) => panic!("second receiver on the same port started"),
        Err(err) => format!("{err:#}"),
    };
    assert!(err.contains(&first.http_addr().to_string()), "{err}");
    assert!(err.contains("bench-infra status"), "{err}");
}

#[test]
fn records_without_a_session_go_to_run_or_unattributed() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(ReceiverConfig::ephemeral(dir.path())).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = LogsServiceClient::connect(receiver.grpc_endpoint())
            .await
            .unwrap();
        let mut only_run = logs_batch("run/with slash", "x", 0, &["api_request"]);
        only_run.resource_logs[0].resource = Some(Resource {
            attributes: vec![kv("run.id", "run/with slash")],
            ..Default::default()
        });
        only_run.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .clear();
        client.export(only_run).await.unwrap();
        let mut nothing = logs_batch("", "", 0, &["api_request"]);
        nothing.resource_logs[0].resource = None;
        nothing.resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .clear();
        client.export(nothing).await.unwrap();
    });
    assert_eq!(
        read_logs(&session_files(dir.path(), "run_with_slash").0).len(),
        1
    );
    assert_eq!(
        read_logs(&session_files(dir.path(), "unattributed").0).len(),
        1
    );
    // The raw key maps to the same sanitized folder.
    assert_eq!(
        session_files(dir.path(), "run/with slash"),
        session_files(dir.path(), "run_with_slash")
    );
}

/// Drop object members that hold a proto3 default (0, "", false, []), except the members
/// of a oneof, which are meaningful even when zero.
fn without_defaults(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const ONEOF: &[&str] = &[
        "stringValue",
        "intValue",
        "doubleValue",
        "boolValue",
        "asDouble",
        "asInt",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, v)| {
                    ONEOF.contains(&k.as_str())
                        || !(v == &Value::from(0)
                            || v == &Value::from("")
                            || v == &Value::from(false)
                            || v.as_array().is_some_and(|a| a.is_empty()))
                })
                .map(|(k, v)| (k, without_defaults(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_defaults).collect()),
        other => other,
    }
}
