//! OTLP over HTTP: `POST /v1/logs` and `POST /v1/metrics`.
//!
//! Bodies are protobuf (`application/x-protobuf`) or JSON (`application/json`), optionally
//! gzip- or deflate-encoded, with a Content-Length or chunked. Replies use the request's
//! encoding: an empty export response on success, a `google.rpc.Status` on failure.

use std::future::Future;
use std::io::Read as _;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message as _;

use crate::{MAX_REQUEST_BYTES, Shared, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// `google.rpc.Status` without details: what OTLP/HTTP servers send with an error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC code INVALID_ARGUMENT, used in the status body of a 400.
const CODE_INVALID_ARGUMENT: i32 = 3;
/// gRPC code UNAVAILABLE, used in the status body of a 503.
const CODE_UNAVAILABLE: i32 = 14;

pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = Router::new()
        .route("/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        // Compressed bodies are limited here, decompressed ones in `decompress`.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("HTTP server failed")
}

/// What differs between the logs and the metrics endpoint.
struct Signal<Req> {
    /// Names a request in errors and in the receiver's log.
    what: &'static str,
    /// The protobuf message a request body holds.
    message: &'static str,
    decode_json: fn(&[u8]) -> Result<Req>,
    /// Writes the request (blocking file I/O).
    ingest: fn(&Shared, &Req) -> Result<()>,
}

const LOGS: Signal<ExportLogsServiceRequest> = Signal {
    what: "an OTLP/HTTP logs request",
    message: "ExportLogsServiceRequest",
    decode_json: json::decode_logs,
    ingest: Shared::ingest_logs,
};

const METRICS: Signal<ExportMetricsServiceRequest> = Signal {
    what: "an OTLP/HTTP metrics request",
    message: "ExportMetricsServiceRequest",
    decode_json: json::decode_metrics,
    ingest: Shared::ingest_metrics,
};

async fn logs(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    export::<_, ExportLogsServiceResponse>(shared, &headers, body, &LOGS).await
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    export::<_, ExportMetricsServiceResponse>(shared, &headers, body, &METRICS).await
}

/// One export request: decoded from protobuf or JSON, written off the async workers,
/// answered with an empty `Resp` in the request's encoding.
async fn export<Req, Resp>(
    shared: Arc<Shared>,
    headers: &HeaderMap,
    body: Bytes,
    signal: &Signal<Req>,
) -> Response
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Default,
{
    let format = match request_format(headers, &body) {
        Ok(format) => format,
        Err(err) => return unsupported(&shared, signal.what, err),
    };
    let request = decompress(headers, body).and_then(|raw| match format {
        Format::Protobuf => Req::decode(raw.as_ref())
            .with_context(|| format!("the body is not a protobuf {}", signal.message)),
        Format::Json => (signal.decode_json)(&raw),
    });
    let request = match request {
        Ok(request) => request,
        Err(err) => return bad_request(&shared, format, signal.what, err),
    };
    // File writes are short appends; keep them off the async workers anyway.
    let worker = Arc::clone(&shared);
    let ingest = signal.ingest;
    let written = tokio::task::spawn_blocking(move || ingest(&worker, &request)).await;
    match written {
        Ok(Ok(())) => success(format, Resp::default().encode_to_vec()),
        Ok(Err(err)) => unavailable(format, err),
        Err(join) => unavailable(format, anyhow::anyhow!("writer task failed: {join}")),
    }
}

fn request_format(headers: &HeaderMap, body: &[u8]) -> Result<Format> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        // No type given: a JSON object starts with '{' (after blanks); protobuf never does
        // for these messages (field 1, wire type 2 starts with 0x0a).
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        return Ok(if first == Some(&b'{') {
            Format::Json
        } else {
            Format::Protobuf
        });
    };
    let text = value.to_str().unwrap_or_default();
    let mime = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => bail!(
            "unsupported Content-Type {text:?}: send application/x-protobuf or application/json"
        ),
    }
}

fn decompress(headers: &HeaderMap, body: Bytes) -> Result<Bytes> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let limit = MAX_REQUEST_BYTES as u64 + 1;
    let mut out = Vec::new();
    match encoding.as_str() {
        "" | "identity" => return Ok(body),
        "gzip" | "x-gzip" => {
            flate2::read::MultiGzDecoder::new(body.as_ref())
                .take(limit)
                .read_to_end(&mut out)
                .context("the gzip body is corrupt")?;
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(body.as_ref())
                .take(limit)
                .read_to_end(&mut out)
                .context("the deflate body is corrupt")?;
        }
        other => bail!("unsupported Content-Encoding {other:?}: send gzip, deflate or none"),
    }
    if out.len() > MAX_REQUEST_BYTES {
        bail!("the decompressed body exceeds {MAX_REQUEST_BYTES} bytes");
    }
    Ok(Bytes::from(out))
}

fn success(format: Format, protobuf: Vec<u8>) -> Response {
    let body = match format {
        Format::Protobuf => protobuf,
        Format::Json => b"{}".to_vec(),
    };
    with_type(StatusCode::OK, format, body)
}

fn status_body(format: Format, code: i32, message: String) -> Vec<u8> {
    match format {
        Format::Protobuf => RpcStatus { code, message }.encode_to_vec(),
        Format::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    }
}

fn bad_request(shared: &Shared, format: Format, what: &str, err: anyhow::Error) -> Response {
    shared.rejected(what, &err);
    let body = status_body(format, CODE_INVALID_ARGUMENT, format!("{err:#}"));
    with_type(StatusCode::BAD_REQUEST, format, body)
}

fn unsupported(shared: &Shared, what: &str, err: anyhow::Error) -> Response {
    shared.rejected(what, &err);
    let body = status_body(Format::Json, CODE_INVALID_ARGUMENT, format!("{err:#}"));
    with_type(StatusCode::UNSUPPORTED_MEDIA_TYPE, Format::Json, body)
}

fn unavailable(format: Format, err: anyhow::Error) -> Response {
    let body = status_body(format, CODE_UNAVAILABLE, format!("{err:#}"));
    let mut response = with_type(StatusCode::SERVICE_UNAVAILABLE, format, body);
    // OTLP exporters retry 503s, waiting this long when told.
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn with_type(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body,
    )
        .into_response()
}
