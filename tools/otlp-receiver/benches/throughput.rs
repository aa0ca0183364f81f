//! Receiver throughput: several concurrent exporters replay the real Claude Code export
//! (tests/fixtures) over HTTP/JSON, HTTP/protobuf and gRPC. Prints requests/s, records/s
//! and latency percentiles. Run: `cargo bench -p otlp-receiver`.

use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use otlp_receiver::{Receiver, ReceiverConfig, json};
use prost::Message as _;

/// Concurrent exporters (parallel agent sessions).
const CLIENTS: usize = 8;
/// Times each client replays the fixture's 23 log requests.
const ROUNDS: usize = 40;

#[derive(Clone, Copy)]
enum Transport {
    HttpJson,
    HttpProtobuf,
    Grpc,
}

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(fixtures.join("claude-code-logs.jsonl"))
        .expect("fixture logs present");
    let requests: Vec<ExportLogsServiceRequest> = text
        .lines()
        .map(|l| json::decode_logs(l.as_bytes()).expect("fixture parses"))
        .collect();
    let records_per_round: usize = requests
        .iter()
        .flat_map(|r| &r.resource_logs)
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "otlp-receiver throughput: {CLIENTS} concurrent clients x {ROUNDS} rounds x {} requests ({} records/round)",
        requests.len(),
        records_per_round
    );
    for (name, transport) in [
        ("HTTP/JSON", Transport::HttpJson),
        ("HTTP/protobuf", Transport::HttpProtobuf),
        ("gRPC", Transport::Grpc),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let receiver = Receiver::start(ReceiverConfig::ephemeral(dir.path())).expect("receiver");
        let http = receiver.http_endpoint();
        let grpc = receiver.grpc_endpoint();
        let started = Instant::now();
        let mut latencies: Vec<Duration> = runtime.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..CLIENTS {
                let requests = requests.clone();
                let (http, grpc) = (http.clone(), grpc.clone());
                tasks.push(tokio::spawn(async move {
                    client(transport, &http, &grpc, &requests).await
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.expect("client task"));
            }
            all
        });
        let elapsed = started.elapsed();
        let stats = receiver.stats();
        receiver.shutdown().expect("shutdown");
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
        let total_requests = latencies.len();
        assert_eq!(stats.log_requests as usize, total_requests);
        assert_eq!(
            stats.log_records as usize,
            CLIENTS * ROUNDS * records_per_round
        );
        let size = std::fs::metadata(dir.path().join("logs.jsonl")).map_or(0, |m| m.len());
        println!(
            "{name:<14} {:>8.0} req/s {:>9.0} records/s  latency p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} MB written to logs.jsonl)",
            total_requests as f64 / elapsed.as_secs_f64(),
            stats.log_records as f64 / elapsed.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3,
            size / 1_000_000
        );
    }
}

async fn client(
    transport: Transport,
    http: &str,
    grpc: &str,
    requests: &[ExportLogsServiceRequest],
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(ROUNDS * requests.len());
    let http_client = reqwest::Client::new();
    let mut grpc_client = match transport {
        Transport::Grpc => Some(
            LogsServiceClient::connect(grpc.to_string())
                .await
                .expect("connect"),
        ),
        _ => None,
    };
    let url = format!("{http}/v1/logs");
    for _ in 0..ROUNDS {
        for request in requests {
            let t = Instant::now();
            match transport {
                Transport::HttpJson => {
                    let resp = http_client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(json::encode_logs(request))
                        .send()
                        .await
                        .expect("post");
                    assert!(resp.status().is_success());
                }
                Transport::HttpProtobuf => {
                    let resp = http_client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(request.encode_to_vec())
                        .send()
                        .await
                        .expect("post");
                    assert!(resp.status().is_success());
                }
                Transport::Grpc => {
                    if let Some(c) = grpc_client.as_mut() {
                        c.export(request.clone()).await.expect("export");
                    }
                }
            }
            latencies.push(t.elapsed());
        }
    }
    latencies
}
