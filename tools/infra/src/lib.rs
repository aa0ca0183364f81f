//! Benchmark infrastructure: where agent sessions send telemetry and where the generated
//! apps find their database.
//!
//! Two ways to run it:
//! - **Docker** (when an engine answers and `--docker` or auto-detection picks it):
//!   `docker compose -f docker-compose.otel.yaml` runs the OpenTelemetry Collector (file
//!   exporter into `.bench/telemetry/`), PostgreSQL 15 on 6432 and MongoDB on 6437.
//! - **Embedded** (the default without Docker): the `otlp-receiver` crate as a detached
//!   process on 4317/4318 writing `.bench/telemetry/`, a native PostgreSQL cluster in
//!   `.bench/pg/data` on 6432, and `mongod` on 6437 when it is installed.
//!
//! Everything `up` starts is recorded under `.bench/infra/` (pid and state files) so that
//! `status` can say what runs where and `down` stops exactly that.
//!
//! For `bench-run`: [`ensure_up`] starts what a session needs (reusing what runs) and
//! returns the endpoints; [`preflight::preflight`] checks the machine.

pub mod cli;
pub mod docker;
pub mod embedded;
pub mod layout;
pub mod preflight;
mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};
use bench_formats::infra;
use serde::{Deserialize, Serialize};

pub use layout::Layout;
pub use preflight::{Check, preflight, require};

/// Ports of the services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub otlp_grpc: u16,
    pub otlp_http: u16,
    pub postgres: u16,
    pub mongodb: u16,
}

impl Default for Ports {
    /// The services' default ports ([`bench_formats::infra::SERVICES`]: 4317 / 4318 for
    /// OTLP, 6432 for PostgreSQL, 6437 for MongoDB).
    fn default() -> Self {
        Ports {
            otlp_grpc: infra::OTLP_GRPC.port,
            otlp_http: infra::OTLP_HTTP.port,
            postgres: infra::POSTGRES.port,
            mongodb: infra::MONGODB.port,
        }
    }
}

impl Ports {
    /// Defaults overridden by `BENCH_OTLP_GRPC_PORT`, `BENCH_OTLP_HTTP_PORT`,
    /// `BENCH_PG_PORT`, `BENCH_MONGO_PORT` (unparsable values are ignored).
    pub fn from_env() -> Ports {
        Ports {
            otlp_grpc: infra::OTLP_GRPC.port_from_env(),
            otlp_http: infra::OTLP_HTTP.port_from_env(),
            postgres: infra::POSTGRES.port_from_env(),
            mongodb: infra::MONGODB.port_from_env(),
        }
    }

    /// The ports as the content values that name them (`pg_port` → `6432`, …), to fill a
    /// backend's texts for services on other ports than the defaults.
    pub fn as_values(&self) -> BTreeMap<String, String> {
        [
            (infra::OTLP_GRPC, self.otlp_grpc),
            (infra::OTLP_HTTP, self.otlp_http),
            (infra::POSTGRES, self.postgres),
            (infra::MONGODB, self.mongodb),
        ]
        .into_iter()
        .map(|(service, port)| (service.port_var.to_string(), port.to_string()))
        .collect()
    }
}

/// What a session needs running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub otlp: bool,
    pub postgres: bool,
    pub mongodb: bool,
}

impl Needs {
    /// Telemetry always, and the services the backend's `backend.toml` lists.
    pub fn for_backend(backend: &bench_content::Backend) -> Needs {
        let wants =
            |service: &infra::Service| backend.file.services.iter().any(|s| s == service.name);
        Needs {
            otlp: true,
            postgres: wants(&infra::POSTGRES),
            mongodb: wants(&infra::MONGODB),
        }
    }
}

/// How to run the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Docker when an engine answers, else embedded.
    Auto,
    Docker,
    Embedded,
}

/// Something [`ensure_up`] or `up` started (as opposed to found running).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Component {
    /// The detached receiver process.
    OtlpReceiver {
        pid: u32,
    },
    /// A receiver inside this process (no executable could run the detached one); it
    /// stops when this process exits.
    InProcessReceiver,
    Postgres {
        port: u16,
    },
    MongoDb {
        pid: u32,
    },
    DockerCompose,
}

/// Where the services are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Infra {
    /// `Docker` or `Embedded`.
    pub mode: Mode,
    /// `http://127.0.0.1:4317`: `OTEL_EXPORTER_OTLP_ENDPOINT` for protocol `grpc`.
    pub otlp_grpc_endpoint: String,
    /// `http://127.0.0.1:4318`: `OTEL_EXPORTER_OTLP_ENDPOINT` for `http/json` and `http/protobuf`.
    pub otlp_http_endpoint: String,
    /// Collector layout: `logs.jsonl`, `metrics.jsonl`, `sessions/<key>/…`.
    pub telemetry_dir: PathBuf,
    /// `postgres://spacetime:spacetime@127.0.0.1:<port>/spacetime` when PostgreSQL runs.
    pub pg_url: Option<String>,
    /// `mongodb://127.0.0.1:<port>` when MongoDB runs.
    pub mongo_url: Option<String>,
    pub started_now: Vec<Component>,
}

/// Options of [`ensure_up_with`].
#[derive(Debug, Clone)]
pub struct Options {
    pub ports: Ports,
    pub mode: Mode,
}

impl Default for Options {
    /// Ports from the environment; mode from `BENCH_INFRA_MODE` (`docker`, `embedded`,
    /// `auto`), else auto (Docker when an engine answers, as `up` does).
    fn default() -> Self {
        let mode = match std::env::var("BENCH_INFRA_MODE").ok().as_deref() {
            Some("docker") => Mode::Docker,
            Some("embedded") => Mode::Embedded,
            _ => Mode::Auto,
        };
        Options {
            ports: Ports::from_env(),
            mode,
        }
    }
}

/// Start what `needs` asks for (reusing whatever already runs) with [`Options::default`].
pub fn ensure_up(root: &Path, needs: &Needs) -> Result<Infra> {
    ensure_up_with(root, needs, &Options::default())
}

/// Start what `needs` asks for, reusing services already running for this repository
/// (started by `up` or an earlier call), and say where they are.
///
/// A service already running keeps its port, whatever `options.ports` says.
pub fn ensure_up_with(root: &Path, needs: &Needs, options: &Options) -> Result<Infra> {
    let layout = Layout::new(root);
    std::fs::create_dir_all(&layout.infra)
        .with_context(|| format!("creating {}", layout.infra.display()))?;
    // Parallel runs may all call this at once: the first starts, the others reuse.
    let _lock = process::lock_exclusive(&layout.lock())?;

    // Docker services recorded by `up --docker` serve everyone, unless embedded is forced.
    if options.mode != Mode::Embedded
        && let Some(state) = docker::state(&layout)
    {
        if !process::reachable(process::loopback(state.ports.otlp_http)) {
            bail!(
                "`bench-infra up --docker` recorded the compose services as up, but nothing answers on port {}: \
                 run `cargo xtask bench-infra down`, then `cargo xtask bench-infra up` again",
                state.ports.otlp_http
            );
        }
        return docker_infra(&layout, &state.ports, Vec::new());
    }
    let use_docker = match options.mode {
        Mode::Docker => {
            if !docker::engine_available() {
                bail!(
                    "Docker mode was asked for but no Docker engine answers (`docker info` fails): \
                     start the engine, or use the embedded services (BENCH_INFRA_MODE=embedded / --embedded)"
                );
            }
            true
        }
        Mode::Auto => docker::engine_available(),
        Mode::Embedded => false,
    };
    if use_docker {
        docker::up(&layout, &options.ports)?;
        return docker_infra(&layout, &options.ports, vec![Component::DockerCompose]);
    }

    let mut started_now = Vec::new();
    std::fs::create_dir_all(&layout.telemetry)
        .with_context(|| format!("creating {}", layout.telemetry.display()))?;
    let (grpc, http) = if needs.otlp {
        match embedded::start_receiver(&layout, options.ports.otlp_grpc, options.ports.otlp_http)? {
            Some((state, now)) => {
                if now {
                    started_now.push(Component::OtlpReceiver { pid: state.pid });
                }
                (state.grpc_addr, state.http_addr)
            }
            None => {
                let (grpc, http, now) = in_process_receiver(&layout, &options.ports)?;
                if now {
                    started_now.push(Component::InProcessReceiver);
                }
                (grpc, http)
            }
        }
    } else if let Some(state) = embedded::running_receiver(&layout) {
        (state.grpc_addr, state.http_addr)
    } else {
        (
            process::loopback(options.ports.otlp_grpc),
            process::loopback(options.ports.otlp_http),
        )
    };

    let pg_url = if needs.postgres {
        let (state, now) = embedded::start_postgres(&layout, options.ports.postgres)?;
        if now {
            started_now.push(Component::Postgres { port: state.port });
        }
        Some(state.url)
    } else {
        running_postgres_url(&layout)
    };

    let mongo_url = if needs.mongodb {
        let (state, now) = embedded::start_mongo(&layout, options.ports.mongodb)?;
        if now {
            started_now.push(Component::MongoDb { pid: state.pid });
        }
        Some(state.url)
    } else {
        embedded::running_mongo(&layout).map(|s| s.url)
    };

    Ok(Infra {
        mode: Mode::Embedded,
        otlp_grpc_endpoint: format!("http://{grpc}"),
        otlp_http_endpoint: format!("http://{http}"),
        telemetry_dir: layout.telemetry.clone(),
        pg_url,
        mongo_url,
        started_now,
    })
}

fn docker_infra(layout: &Layout, ports: &Ports, started_now: Vec<Component>) -> Result<Infra> {
    let creds = bench_pg::Credentials::default();
    Ok(Infra {
        mode: Mode::Docker,
        otlp_grpc_endpoint: format!("http://{}", process::loopback(ports.otlp_grpc)),
        otlp_http_endpoint: format!("http://{}", process::loopback(ports.otlp_http)),
        telemetry_dir: layout.telemetry.clone(),
        pg_url: Some(format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            creds.user, creds.password, ports.postgres, creds.database
        )),
        mongo_url: Some(format!("mongodb://127.0.0.1:{}", ports.mongodb)),
        started_now,
    })
}

fn running_postgres_url(layout: &Layout) -> Option<String> {
    bench_pg::PgCluster::running(&layout.pg_data).ok()??;
    let state: embedded::PostgresState = bench_formats::read_json(&layout.pg_state()).ok()?;
    Some(state.url)
}

/// Receivers running inside this process, by telemetry folder.
static IN_PROCESS: Mutex<Vec<otlp_receiver::ReceiverHandle>> = Mutex::new(Vec::new());

fn in_process_receiver(
    layout: &Layout,
    ports: &Ports,
) -> Result<(std::net::SocketAddr, std::net::SocketAddr, bool)> {
    let mut receivers = IN_PROCESS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = receivers.iter().find(|h| h.dir() == layout.telemetry) {
        return Ok((handle.grpc_addr(), handle.http_addr(), false));
    }
    let handle = otlp_receiver::Receiver::start(otlp_receiver::ReceiverConfig {
        dir: layout.telemetry.clone(),
        grpc_addr: process::loopback(ports.otlp_grpc),
        http_addr: process::loopback(ports.otlp_http),
    })?;
    let addrs = (handle.grpc_addr(), handle.http_addr(), true);
    receivers.push(handle);
    Ok(addrs)
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub infra: Infra,
    /// Things worth telling the user (e.g. MongoDB not available).
    pub notes: Vec<String>,
}

/// `bench-infra up`: everything (telemetry, PostgreSQL unless `postgres` is false, MongoDB
/// when it can run), in `mode`.
pub fn up(root: &Path, mode: Mode, ports: &Ports, postgres: bool) -> Result<UpReport> {
    let layout = Layout::new(root);
    let mut notes = Vec::new();
    let mode = match mode {
        Mode::Auto => {
            if docker::engine_available() {
                Mode::Docker
            } else {
                notes.push("no Docker engine answers: running the embedded services".to_string());
                Mode::Embedded
            }
        }
        other => other,
    };
    let mongodb = match mode {
        Mode::Embedded => {
            let available =
                embedded::mongod_on_path().is_some() || embedded::running_mongo(&layout).is_some();
            if !available {
                notes.push(embedded::MONGO_UNAVAILABLE.to_string());
            }
            available
        }
        _ => true,
    };
    let needs = Needs {
        otlp: true,
        postgres,
        mongodb,
    };
    let infra = ensure_up_with(
        root,
        &needs,
        &Options {
            ports: ports.clone(),
            mode,
        },
    )?;
    if infra.started_now.contains(&Component::InProcessReceiver) {
        notes.push(
            "the OTLP receiver runs inside this process and stops with it \
             (run `cargo xtask bench-infra up` to keep one running)"
                .to_string(),
        );
    }
    Ok(UpReport { infra, notes })
}

/// What `down` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    /// One line per service stopped.
    pub stopped: Vec<String>,
    /// Services that could not be stopped, with the reason.
    pub errors: Vec<String>,
}

/// `bench-infra down`: stop what `up` (or [`ensure_up`]) started, as recorded under
/// `.bench/infra/`. A failure with one service does not keep the others running.
pub fn down(root: &Path) -> Result<DownReport> {
    let layout = Layout::new(root);
    if !layout.infra.is_dir() {
        return Ok(DownReport::default());
    }
    let _lock = process::lock_exclusive(&layout.lock())?;
    let mut report = DownReport::default();
    let mut record = |what: &str, result: Result<Option<String>>| match result {
        Ok(Some(line)) => report.stopped.push(line),
        Ok(None) => {}
        Err(err) => report.errors.push(format!("{what}: {err:#}")),
    };
    record(
        "docker compose",
        docker::down(&layout)
            .map(|done| done.then(|| format!("docker compose project {}", docker::PROJECT))),
    );
    record(
        "OTLP receiver",
        embedded::stop_receiver(&layout)
            .map(|pid| pid.map(|pid| format!("OTLP receiver (pid {pid})"))),
    );
    record(
        "PostgreSQL",
        embedded::stop_postgres(&layout).map(|port| {
            port.map(|port| {
                format!(
                    "PostgreSQL (port {port}, data {})",
                    layout.show(&layout.pg_data)
                )
            })
        }),
    );
    record(
        "MongoDB",
        embedded::stop_mongo(&layout).map(|pid| pid.map(|pid| format!("mongod (pid {pid})"))),
    );
    Ok(report)
}

/// One service in [`Status`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub running: bool,
    pub pid: Option<u32>,
    /// Addresses or URLs it serves.
    pub endpoints: Vec<String>,
    /// Whether its port accepts connections right now.
    pub reachable: bool,
    /// Where it keeps or writes data.
    pub data: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub note: Option<String>,
}

/// `bench-infra status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state_dir: PathBuf,
    pub docker_engine: bool,
    /// Set when `up --docker` started the compose project.
    pub docker: Option<docker::DockerState>,
    /// `docker compose ps` when the compose project is up.
    pub compose_ps: Option<String>,
    pub otlp: ServiceStatus,
    pub postgres: ServiceStatus,
    pub mongodb: ServiceStatus,
}

pub fn status(root: &Path) -> Result<Status> {
    let layout = Layout::new(root);
    let docker_state = docker::state(&layout);
    let docker_engine = docker::engine_available();
    if let Some(state) = &docker_state {
        return Ok(docker_status(&layout, state, docker_engine));
    }
    Ok(Status {
        state_dir: layout.state.clone(),
        docker_engine,
        docker: None,
        compose_ps: None,
        otlp: receiver_status(&layout),
        postgres: postgres_status(&layout)?,
        mongodb: mongo_status(&layout),
    })
}

/// The services of the compose project `up --docker` started.
fn docker_status(layout: &Layout, state: &docker::DockerState, docker_engine: bool) -> Status {
    let service = |port: u16, endpoints: Vec<String>, data: Option<PathBuf>| ServiceStatus {
        running: true,
        pid: None,
        endpoints,
        reachable: process::reachable(process::loopback(port)),
        data,
        log: None,
        note: Some(format!("docker compose project {}", state.project)),
    };
    let p = &state.ports;
    Status {
        state_dir: layout.state.clone(),
        docker_engine,
        otlp: service(
            p.otlp_http,
            vec![
                format!("grpc 127.0.0.1:{}", p.otlp_grpc),
                format!("http 127.0.0.1:{}", p.otlp_http),
            ],
            Some(layout.telemetry.clone()),
        ),
        postgres: service(p.postgres, vec![format!("127.0.0.1:{}", p.postgres)], None),
        mongodb: service(p.mongodb, vec![format!("127.0.0.1:{}", p.mongodb)], None),
        compose_ps: Some(docker::ps(layout)),
        docker: Some(state.clone()),
    }
}

fn receiver_status(layout: &Layout) -> ServiceStatus {
    match embedded::running_receiver(layout) {
        Some(state) => ServiceStatus {
            running: true,
            pid: Some(state.pid),
            endpoints: vec![
                format!("grpc {}", state.grpc_addr),
                format!("http {}", state.http_addr),
            ],
            reachable: process::reachable(state.grpc_addr) && process::reachable(state.http_addr),
            data: Some(state.telemetry_dir),
            log: Some(state.log_file),
            note: None,
        },
        None => ServiceStatus {
            data: Some(layout.telemetry.clone()),
            note: Some("not running (start: cargo xtask bench-infra up)".into()),
            ..Default::default()
        },
    }
}

fn postgres_status(layout: &Layout) -> Result<ServiceStatus> {
    Ok(match bench_pg::PgCluster::running(&layout.pg_data)? {
        Some(server) => {
            let url: Option<String> =
                bench_formats::read_json::<embedded::PostgresState>(&layout.pg_state())
                    .ok()
                    .map(|s| s.url);
            ServiceStatus {
                running: true,
                pid: Some(server.pid),
                endpoints: url
                    .into_iter()
                    .chain(std::iter::once(format!("127.0.0.1:{}", server.port)))
                    .collect(),
                reachable: process::reachable(process::loopback(server.port)),
                data: Some(layout.pg_data.clone()),
                log: Some(layout.pg_data.join("bench-pg.log")),
                note: None,
            }
        }
        None => ServiceStatus {
            data: layout
                .pg_data
                .join("PG_VERSION")
                .is_file()
                .then(|| layout.pg_data.clone()),
            note: Some("not running (start: cargo xtask bench-infra up)".into()),
            ..Default::default()
        },
    })
}

fn mongo_status(layout: &Layout) -> ServiceStatus {
    match embedded::running_mongo(layout) {
        Some(state) => ServiceStatus {
            running: true,
            pid: Some(state.pid),
            endpoints: vec![state.url.clone()],
            reachable: process::reachable(process::loopback(state.port)),
            data: Some(state.data_dir),
            log: Some(state.log_file),
            note: None,
        },
        None => ServiceStatus {
            note: Some(if embedded::mongod_on_path().is_some() {
                "not running (start: cargo xtask bench-infra up)".into()
            } else {
                embedded::MONGO_UNAVAILABLE.into()
            }),
            ..Default::default()
        },
    }
}
