//! An embedded OTLP receiver for the benchmark's agent sessions.
//!
//! It accepts OpenTelemetry logs and metrics over gRPC (default port 4317) and HTTP
//! (default port 4318: `/v1/logs`, `/v1/metrics`; JSON or protobuf bodies, chunked or not,
//! gzip or deflate encoded) and writes what the OpenTelemetry Collector's file exporter
//! writes — `<dir>/logs.jsonl` and `<dir>/metrics.jsonl`, one export request per line in
//! OTLP/JSON — and also each session's records to `<dir>/sessions/<key>/logs.jsonl` and
//! `metrics.jsonl` as they arrive (see [`split`] for how a record's session is found).
//!
//! [`Receiver::start`] runs it in-process on its own threads; [`serve_until_signal`] runs it
//! in the foreground until SIGTERM or Ctrl-C (what `bench-infra` does in its background
//! process).

pub mod json;
pub mod sink;
pub mod split;

mod grpc;
mod http;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context as _, Result, anyhow};
use bench_formats::infra;
use tokio::sync::watch;

pub use sink::{LOGS_FILE, METRICS_FILE, SESSIONS_DIR, session_files};
pub use split::{UNATTRIBUTED, sanitize_key};

/// Largest request accepted (compressed or not), in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Where to listen and where to write.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Telemetry folder (created if missing; existing files are appended to).
    pub dir: PathBuf,
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// HTTP listen address; port 0 picks a free port.
    pub http_addr: SocketAddr,
}

impl ReceiverConfig {
    /// The standard OTLP ports on loopback ([`bench_formats::infra`]: gRPC 4317, HTTP 4318).
    pub fn standard(dir: impl Into<PathBuf>) -> ReceiverConfig {
        ReceiverConfig {
            dir: dir.into(),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], infra::OTLP_GRPC.port)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], infra::OTLP_HTTP.port)),
        }
    }

    /// Free ports on loopback (tests, parallel runs).
    pub fn ephemeral(dir: impl Into<PathBuf>) -> ReceiverConfig {
        ReceiverConfig {
            dir: dir.into(),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Counters since start.
#[derive(Debug, Default)]
pub struct Stats {
    pub log_requests: AtomicU64,
    pub metric_requests: AtomicU64,
    pub log_records: AtomicU64,
    pub metric_points: AtomicU64,
    /// Requests refused as malformed (HTTP 400 / gRPC INVALID_ARGUMENT and the like).
    pub rejected: AtomicU64,
    /// Requests that could not be written to disk.
    pub write_errors: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub log_requests: u64,
    pub metric_requests: u64,
    pub log_records: u64,
    pub metric_points: u64,
    pub rejected: u64,
    pub write_errors: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            log_requests: self.log_requests.load(Ordering::Relaxed),
            metric_requests: self.metric_requests.load(Ordering::Relaxed),
            log_records: self.log_records.load(Ordering::Relaxed),
            metric_points: self.metric_points.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }
}

/// State shared by the gRPC and HTTP front ends.
pub(crate) struct Shared {
    pub(crate) sink: sink::Sink,
    pub(crate) stats: Stats,
}

impl Shared {
    pub(crate) fn ingest_logs(
        &self,
        req: &opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
    ) -> Result<()> {
        self.ingest(
            "logs",
            &self.stats.log_requests,
            &self.stats.log_records,
            || self.sink.write_logs(req),
        )
    }

    pub(crate) fn ingest_metrics(
        &self,
        req: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    ) -> Result<()> {
        self.ingest(
            "metrics",
            &self.stats.metric_requests,
            &self.stats.metric_points,
            || self.sink.write_metrics(req),
        )
    }

    /// Counts a request of `signal`, writes it, and counts what was written or the failure.
    fn ingest(
        &self,
        signal: &str,
        requests: &AtomicU64,
        items: &AtomicU64,
        write: impl FnOnce() -> Result<sink::Written>,
    ) -> Result<()> {
        requests.fetch_add(1, Ordering::Relaxed);
        match write() {
            Ok(written) => {
                items.fetch_add(written.records as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                log(&format!("could not write {signal}: {err:#}"));
                Err(err)
            }
        }
    }

    pub(crate) fn rejected(&self, what: &str, err: &anyhow::Error) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        log(&format!("rejected {what}: {err:#}"));
    }
}

/// One line on stderr with a UTC timestamp (the background process sends stderr to its log).
pub(crate) fn log(message: &str) {
    eprintln!(
        "{} otlp-receiver: {message}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
}

/// The receiver; see [`Receiver::start`].
pub struct Receiver;

impl Receiver {
    /// Bind both ports, then serve on a background thread until the handle is shut down
    /// or dropped. Fails at once when a port is taken.
    pub fn start(config: ReceiverConfig) -> Result<ReceiverHandle> {
        let grpc_listener = bind(config.grpc_addr, "gRPC")?;
        let http_listener = bind(config.http_addr, "HTTP")?;
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        let shared = Arc::new(Shared {
            sink: sink::Sink::open(&config.dir)?,
            stats: Stats::default(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || serve(thread_shared, grpc_listener, http_listener, stop_rx))
            .context("starting the receiver thread")?;
        Ok(ReceiverHandle {
            dir: config.dir,
            grpc_addr,
            http_addr,
            shared,
            stop: stop_tx,
            thread: Some(thread),
        })
    }
}

fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).with_context(|| {
        format!(
            "cannot listen for OTLP/{what} on {addr}: is another collector or receiver running there? \
             (`cargo xtask bench-infra status` shows what the benchmark started; pick another port otherwise)"
        )
    })?;
    listener
        .set_nonblocking(true)
        .context("making the listener non-blocking")?;
    Ok(listener)
}

fn serve(
    shared: Arc<Shared>,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("otlp-receiver-io")
        .enable_all()
        .build()
        .context("starting the receiver's async runtime")?;
    runtime.block_on(async move {
        let grpc_listener = tokio::net::TcpListener::from_std(grpc_listener)?;
        let http_listener = tokio::net::TcpListener::from_std(http_listener)?;
        let grpc = tokio::spawn(grpc::serve(
            Arc::clone(&shared),
            grpc_listener,
            stopped(stop.clone()),
        ));
        let http = tokio::spawn(http::serve(shared, http_listener, stopped(stop)));
        let (grpc, http) = tokio::join!(grpc, http);
        grpc.map_err(|e| anyhow!("gRPC server task failed: {e}"))??;
        http.map_err(|e| anyhow!("HTTP server task failed: {e}"))??;
        Ok(())
    })
}

/// Resolves once the stop flag is raised (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// A running receiver. Dropping it shuts it down gracefully.
pub struct ReceiverHandle {
    dir: PathBuf,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl ReceiverHandle {
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// `http://<grpc addr>`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT` with protocol `grpc`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// `http://<http addr>`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT` with an `http/*`
    /// protocol (exporters append `/v1/logs` and `/v1/metrics`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The telemetry folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Stop accepting connections, finish the requests in flight, and wait for the servers.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop_and_join()
    }

    /// Raise the stop flag and wait for the server thread to end.
    fn stop_and_join(&mut self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow!("the receiver thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for ReceiverHandle {
    fn drop(&mut self) {
        if let Err(err) = self.stop_and_join() {
            log(&format!("shutting down: {err:#}"));
        }
    }
}

/// Run a receiver in the foreground until SIGTERM, SIGINT or SIGHUP, then shut it down
/// gracefully. `on_ready` is called once both ports are bound (e.g. to write a pid file).
pub fn serve_until_signal(
    config: ReceiverConfig,
    on_ready: impl FnOnce(&ReceiverHandle) -> Result<()>,
) -> Result<()> {
    let handle = Receiver::start(config)?;
    log(&format!(
        "listening: gRPC {} HTTP {}, writing {}",
        handle.grpc_addr(),
        handle.http_addr(),
        handle.dir().display()
    ));
    on_ready(&handle)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal watcher")?;
    let signal = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        };
        Ok::<_, std::io::Error>(name)
    })?;
    log(&format!("{signal}: shutting down"));
    let stats = handle.stats();
    handle.shutdown()?;
    log(&format!(
        "stopped after {} log requests ({} records), {} metric requests ({} points), {} rejected, {} write errors",
        stats.log_requests,
        stats.log_records,
        stats.metric_requests,
        stats.metric_points,
        stats.rejected,
        stats.write_errors
    ));
    Ok(())
}
