//! The Docker path: `docker compose -f docker-compose.otel.yaml` (OpenTelemetry Collector,
//! PostgreSQL, MongoDB), used when a Docker engine answers.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::Ports;
use crate::layout::Layout;
use crate::process;

/// Compose project name: keeps the containers apart from the user's other projects.
pub const PROJECT: &str = "spacetime-bench";

/// Whether a Docker engine answers (`docker info` succeeds within 15 s).
pub fn engine_available() -> bool {
    process::output_within(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        Duration::from_secs(15),
    )
    .is_some_and(|out| out.status.success())
}

/// What `up --docker` records (`.bench/infra/docker.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DockerState {
    pub compose_file: std::path::PathBuf,
    pub project: String,
    pub ports: Ports,
    pub started_at: String,
}

/// `docker compose` (the plugin) when it answers, else the standalone `docker-compose`.
fn compose_program() -> Result<Command> {
    let plugin = process::output_within(
        Command::new("docker").args(["compose", "version"]),
        Duration::from_secs(15),
    )
    .is_some_and(|out| out.status.success());
    if plugin {
        let mut cmd = Command::new("docker");
        cmd.arg("compose");
        return Ok(cmd);
    }
    let standalone = process::output_within(
        Command::new("docker-compose").arg("version"),
        Duration::from_secs(15),
    )
    .is_some_and(|out| out.status.success());
    if standalone {
        return Ok(Command::new("docker-compose"));
    }
    bail!(
        "neither `docker compose` nor `docker-compose` works: install the compose plugin \
         (`apt-get install docker-compose-plugin`), or use the embedded services (`--embedded`)"
    )
}

fn compose(layout: &Layout, ports: &Ports) -> Result<Command> {
    let mut cmd = compose_program()?;
    cmd.arg("-f")
        .arg(layout.compose_file())
        .arg("--project-directory")
        .arg(&layout.root)
        .args(["-p", PROJECT])
        .current_dir(&layout.root)
        // The compose file reads these; files the collector writes belong to the caller.
        .env("BENCH_UID", current_uid().to_string())
        .env("BENCH_GID", current_gid().to_string())
        .env("BENCH_OTLP_GRPC_PORT", ports.otlp_grpc.to_string())
        .env("BENCH_OTLP_HTTP_PORT", ports.otlp_http.to_string())
        .env("BENCH_PG_PORT", ports.postgres.to_string())
        .env("BENCH_MONGO_PORT", ports.mongodb.to_string());
    Ok(cmd)
}

fn current_uid() -> u32 {
    bench_proc::real_uid()
}

fn current_gid() -> u32 {
    bench_proc::real_gid()
}

pub fn state(layout: &Layout) -> Option<DockerState> {
    bench_formats::read_json(&layout.docker_state()).ok()
}

/// `docker compose up -d --wait`, then record what was started.
pub fn up(layout: &Layout, ports: &Ports) -> Result<DockerState> {
    if !layout.compose_file().is_file() {
        bail!(
            "{} is missing: restore it from the repository (`git checkout -- docker-compose.otel.yaml`)",
            layout.compose_file().display()
        );
    }
    std::fs::create_dir_all(&layout.telemetry)
        .with_context(|| format!("creating {}", layout.telemetry.display()))?;
    let status = compose(layout, ports)?
        .args(["up", "-d", "--wait"])
        .status()
        .context(
            "running `docker compose up` (is the Docker CLI with the compose plugin installed?)",
        )?;
    if !status.success() {
        bail!(
            "`docker compose up` failed ({status}); see its output above. \
             Without Docker, `cargo xtask bench-infra up --embedded` runs the same services natively"
        );
    }
    let state = DockerState {
        compose_file: layout.compose_file(),
        project: PROJECT.into(),
        ports: ports.clone(),
        started_at: chrono::Utc::now().to_rfc3339(),
    };
    bench_formats::write_json(&layout.docker_state(), &state)?;
    Ok(state)
}

/// `docker compose down` for the project `up` started (volumes are kept).
pub fn down(layout: &Layout) -> Result<bool> {
    let Some(state) = state(layout) else {
        return Ok(false);
    };
    let status = compose(layout, &state.ports)?
        .arg("down")
        .status()
        .context("running `docker compose down`")?;
    if !status.success() {
        bail!("`docker compose down` failed ({status}); see its output above");
    }
    let _ = std::fs::remove_file(layout.docker_state());
    Ok(true)
}

/// `docker compose ps` output, for `status`.
pub fn ps(layout: &Layout) -> String {
    let ports = state(layout).map(|s| s.ports).unwrap_or_default();
    let mut cmd = match compose(layout, &ports) {
        Ok(cmd) => cmd,
        Err(err) => return format!("{err:#}"),
    };
    match process::output_within(
        cmd.args([
            "ps",
            "--format",
            "table {{.Service}}\t{{.State}}\t{{.Ports}}",
        ]),
        Duration::from_secs(20),
    ) {
        Some(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
        Some(out) => format!(
            "`docker compose ps` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        None => "`docker compose ps` did not answer".into(),
    }
}
