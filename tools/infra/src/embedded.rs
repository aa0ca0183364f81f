//! The native infrastructure: the OTLP receiver as a detached process, PostgreSQL through
//! bench-pg, and MongoDB when `mongod` is installed.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bench_pg::{Credentials, PgCluster};
use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::process;

/// Word in the receiver's command line that identifies it before it is signalled.
pub(crate) const RECEIVER_MARKER: &str = "serve-otlp";
/// How long a starting receiver may take to bind its ports.
const RECEIVER_START_LIMIT: Duration = Duration::from_secs(20);
/// How long a starting mongod may take to accept connections.
const MONGOD_START_LIMIT: Duration = Duration::from_secs(60);

/// What the detached receiver writes once it listens (`.bench/infra/otlp-receiver.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiverState {
    pub pid: u32,
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub telemetry_dir: PathBuf,
    pub log_file: PathBuf,
    pub started_at: String,
}

/// The detached receiver of this repository, if it runs.
pub fn running_receiver(layout: &Layout) -> Option<ReceiverState> {
    let state: ReceiverState = bench_formats::read_json(&layout.otlp_state()).ok()?;
    process::is_ours(state.pid, RECEIVER_MARKER).then_some(state)
}

/// The program that runs `bench-infra serve-otlp`: `$BENCH_INFRA_EXE`, else this process's
/// executable when it is `xtask` or `bench-infra`.
pub fn daemon_exe() -> Option<PathBuf> {
    if let Some(exe) = std::env::var_os("BENCH_INFRA_EXE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(exe));
    }
    let exe = std::env::current_exe().ok()?;
    let stem = exe.file_stem()?.to_str()?;
    matches!(stem, "xtask" | "bench-infra").then_some(exe)
}

/// Start the detached receiver unless it runs already; `Ok(None)` when no executable can
/// run it (see [`daemon_exe`]).
pub fn start_receiver(
    layout: &Layout,
    grpc_port: u16,
    http_port: u16,
) -> Result<Option<(ReceiverState, bool)>> {
    if let Some(state) = running_receiver(layout) {
        return Ok(Some((state, false)));
    }
    let Some(exe) = daemon_exe() else {
        return Ok(None);
    };
    remove_receiver_files(layout, None);
    check_free(grpc_port, "OTLP gRPC", "--otlp-grpc-port")?;
    check_free(http_port, "OTLP HTTP", "--otlp-http-port")?;
    fs::create_dir_all(&layout.infra)
        .with_context(|| format!("creating {}", layout.infra.display()))?;
    let log = layout.otlp_log();
    let mut cmd = Command::new(&exe);
    cmd.args(["bench-infra", RECEIVER_MARKER, "--dir"])
        .arg(&layout.telemetry)
        .arg("--grpc")
        .arg(process::loopback(grpc_port).to_string())
        .arg("--http")
        .arg(process::loopback(http_port).to_string())
        .arg("--state-dir")
        .arg(&layout.infra)
        .current_dir(&layout.root);
    let mut child = process::spawn_detached(&mut cmd, &log)?;
    let pid = child.id();
    let deadline = Instant::now() + RECEIVER_START_LIMIT;
    loop {
        if let Ok(state) = bench_formats::read_json::<ReceiverState>(&layout.otlp_state())
            && state.pid == pid
        {
            return Ok(Some((state, true)));
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "the OTLP receiver exited at start ({status}); its log {}:\n{}",
                log.display(),
                process::tail(&log, 15)
            );
        }
        if Instant::now() > deadline {
            let _ = process::terminate(pid, Duration::from_secs(2));
            bail!(
                "the OTLP receiver did not report ready within {}s; its log {}:\n{}",
                RECEIVER_START_LIMIT.as_secs(),
                log.display(),
                process::tail(&log, 15)
            );
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn check_free(port: u16, what: &str, flag: &str) -> Result<()> {
    if !process::port_free(port) {
        bail!(
            "port {port} ({what}) is already in use by a process bench-infra did not start \
             (another collector?): stop it (`ss -ltnp 'sport = :{port}'` shows it) or choose another port with {flag}"
        );
    }
    Ok(())
}

/// Remove the receiver's pid and state files (only if they name `pid`, when given).
fn remove_receiver_files(layout: &Layout, pid: Option<u32>) {
    if let Some(pid) = pid {
        let current: Option<ReceiverState> = bench_formats::read_json(&layout.otlp_state()).ok();
        if current.is_some_and(|s| s.pid != pid) {
            return;
        }
    }
    let _ = fs::remove_file(layout.otlp_state());
    let _ = fs::remove_file(layout.otlp_pid());
}

/// Body of the hidden `serve-otlp` command: run the receiver in the foreground until a
/// signal, with pid and state files in `state_dir` while it listens.
pub fn serve_otlp(dir: &Path, grpc: SocketAddr, http: SocketAddr, state_dir: &Path) -> Result<()> {
    let layout_like = StateFiles::new(state_dir);
    let config = otlp_receiver::ReceiverConfig {
        dir: dir.to_path_buf(),
        grpc_addr: grpc,
        http_addr: http,
    };
    let pid = std::process::id();
    let result = otlp_receiver::serve_until_signal(config, |handle| {
        let state = ReceiverState {
            pid,
            grpc_addr: handle.grpc_addr(),
            http_addr: handle.http_addr(),
            telemetry_dir: dir.to_path_buf(),
            log_file: state_dir.join("otlp-receiver.log"),
            started_at: chrono::Utc::now().to_rfc3339(),
        };
        bench_formats::io::write_atomic(&layout_like.pid, format!("{pid}\n").as_bytes())?;
        bench_formats::write_json(&layout_like.state, &state)
    });
    let current: Option<ReceiverState> = bench_formats::read_json(&layout_like.state).ok();
    if current.is_some_and(|s| s.pid == pid) {
        let _ = fs::remove_file(&layout_like.state);
        let _ = fs::remove_file(&layout_like.pid);
    }
    result
}

struct StateFiles {
    state: PathBuf,
    pid: PathBuf,
}

impl StateFiles {
    fn new(state_dir: &Path) -> StateFiles {
        StateFiles {
            state: state_dir.join("otlp-receiver.json"),
            pid: state_dir.join("otlp-receiver.pid"),
        }
    }
}

/// Stop the detached receiver if it runs. Returns its pid when one was stopped.
pub fn stop_receiver(layout: &Layout) -> Result<Option<u32>> {
    let Some(state) = running_receiver(layout) else {
        remove_receiver_files(layout, None);
        return Ok(None);
    };
    process::terminate(state.pid, Duration::from_secs(10))?;
    remove_receiver_files(layout, Some(state.pid));
    Ok(Some(state.pid))
}

/// Marker of the native PostgreSQL cluster (`.bench/infra/postgres.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PostgresState {
    pub data_dir: PathBuf,
    pub port: u16,
    pub url: String,
    pub log_file: PathBuf,
    pub started_at: String,
}

/// Start (or attach to) the native cluster in `.bench/pg/data`. A cluster already running
/// there keeps its port.
pub fn start_postgres(layout: &Layout, port: u16) -> Result<(PostgresState, bool)> {
    let running = PgCluster::running(&layout.pg_data)?;
    let port = running.as_ref().map_or(port, |r| r.port);
    if running.is_none() && !process::port_free(port) {
        bail!(
            "port {port} (PostgreSQL) is already in use by a process bench-infra did not start: \
             stop it or choose another port with --pg-port"
        );
    }
    let cluster = PgCluster::start_persistent(&layout.pg_data, port, &Credentials::default())
        .context("starting the native PostgreSQL cluster")?;
    let state = PostgresState {
        data_dir: layout.pg_data.clone(),
        port: cluster.port(),
        url: cluster.url(&cluster.credentials().database),
        log_file: cluster.log_file(),
        started_at: chrono::Utc::now().to_rfc3339(),
    };
    let started_now = running.is_none();
    if started_now || !layout.pg_state().is_file() {
        bench_formats::write_json(&layout.pg_state(), &state)?;
    }
    Ok((state, started_now))
}

/// Stop the native cluster if it runs. Returns the port it ran on.
pub fn stop_postgres(layout: &Layout) -> Result<Option<u16>> {
    let running = PgCluster::running(&layout.pg_data)?;
    let stopped = match running {
        Some(server) => {
            PgCluster::stop_data_dir(&layout.pg_data)?;
            Some(server.port)
        }
        None => None,
    };
    let _ = fs::remove_file(layout.pg_state());
    Ok(stopped)
}

/// What bench-infra records about the mongod it started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MongoState {
    pub pid: u32,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    pub url: String,
    pub started_at: String,
}

pub fn mongod_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("mongod"))
        .find(|candidate| candidate.is_file())
}

pub(crate) const MONGO_UNAVAILABLE: &str = "MongoDB is not available natively: no `mongod` on PATH. \
     Install MongoDB 7 (https://www.mongodb.com/docs/manual/administration/install-on-linux/) and run `up` again, \
     or use Docker: `cargo xtask bench-infra up --docker`";

pub fn running_mongo(layout: &Layout) -> Option<MongoState> {
    let state: MongoState = bench_formats::read_json(&layout.mongo_state()).ok()?;
    process::is_ours(state.pid, "mongod").then_some(state)
}

/// Start mongod on `port` with its data in `.bench/mongo/data`, unless it runs already.
pub fn start_mongo(layout: &Layout, port: u16) -> Result<(MongoState, bool)> {
    if let Some(state) = running_mongo(layout) {
        return Ok((state, false));
    }
    let Some(mongod) = mongod_on_path() else {
        bail!("{MONGO_UNAVAILABLE}");
    };
    check_free(port, "MongoDB", "--mongo-port")?;
    fs::create_dir_all(&layout.mongo_data)
        .with_context(|| format!("creating {}", layout.mongo_data.display()))?;
    let log = layout.mongo_log();
    let mut cmd = Command::new(&mongod);
    cmd.arg("--dbpath").arg(&layout.mongo_data).args([
        "--bind_ip",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
    let mut child = process::spawn_detached(&mut cmd, &log)?;
    let pid = child.id();
    let deadline = Instant::now() + MONGOD_START_LIMIT;
    while !process::reachable(process::loopback(port)) {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "mongod exited at start ({status}); its log {}:\n{}",
                log.display(),
                process::tail(&log, 15)
            );
        }
        if Instant::now() > deadline {
            let _ = process::terminate(pid, Duration::from_secs(5));
            bail!(
                "mongod did not accept connections on port {port} within {}s; its log {}:\n{}",
                MONGOD_START_LIMIT.as_secs(),
                log.display(),
                process::tail(&log, 15)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let state = MongoState {
        pid,
        port,
        data_dir: layout.mongo_data.clone(),
        log_file: log,
        url: format!("mongodb://127.0.0.1:{port}"),
        started_at: chrono::Utc::now().to_rfc3339(),
    };
    bench_formats::io::write_atomic(&layout.mongo_pid(), format!("{pid}\n").as_bytes())?;
    bench_formats::write_json(&layout.mongo_state(), &state)?;
    Ok((state, true))
}

pub fn stop_mongo(layout: &Layout) -> Result<Option<u32>> {
    let stopped = match running_mongo(layout) {
        Some(state) => {
            process::terminate(state.pid, Duration::from_secs(30))?;
            Some(state.pid)
        }
        None => None,
    };
    let _ = fs::remove_file(layout.mongo_state());
    let _ = fs::remove_file(layout.mongo_pid());
    Ok(stopped)
}
