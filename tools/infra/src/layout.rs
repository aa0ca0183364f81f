//! Where the infrastructure keeps its state inside the repository's ignored `.bench/` folder.

use std::path::{Path, PathBuf};

/// Paths under `<root>/.bench/`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    /// `.bench/`
    pub state: PathBuf,
    /// `.bench/infra/`: pid files, state files, logs of what `up` started.
    pub infra: PathBuf,
    /// `.bench/telemetry/`: the OTLP receiver's (or collector's) output.
    pub telemetry: PathBuf,
    /// `.bench/pg/data`: the native PostgreSQL cluster.
    pub pg_data: PathBuf,
    /// `.bench/mongo/data`: the native MongoDB data folder (when `mongod` is installed).
    pub mongo_data: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        let state = bench_formats::paths::state_dir(root);
        Layout {
            root: root.to_path_buf(),
            infra: state.join("infra"),
            telemetry: state.join("telemetry"),
            pg_data: state.join("pg").join("data"),
            mongo_data: state.join("mongo").join("data"),
            state,
        }
    }

    /// Held while services are started or stopped.
    pub fn lock(&self) -> PathBuf {
        self.infra.join(".lock")
    }

    /// State of the detached OTLP receiver, written by the receiver once it listens.
    pub fn otlp_state(&self) -> PathBuf {
        self.infra.join("otlp-receiver.json")
    }

    pub fn otlp_pid(&self) -> PathBuf {
        self.infra.join("otlp-receiver.pid")
    }

    pub fn otlp_log(&self) -> PathBuf {
        self.infra.join("otlp-receiver.log")
    }

    /// Marker: the native PostgreSQL cluster was started by bench-infra.
    pub fn pg_state(&self) -> PathBuf {
        self.infra.join("postgres.json")
    }

    pub fn mongo_pid(&self) -> PathBuf {
        self.infra.join("mongod.pid")
    }

    pub fn mongo_log(&self) -> PathBuf {
        self.infra.join("mongod.log")
    }

    pub fn mongo_state(&self) -> PathBuf {
        self.infra.join("mongod.json")
    }

    /// Marker: `docker compose up` was run by bench-infra.
    pub fn docker_state(&self) -> PathBuf {
        self.infra.join("docker.json")
    }

    pub fn compose_file(&self) -> PathBuf {
        self.root.join("docker-compose.otel.yaml")
    }

    /// Show a path relative to the repository root when it is inside it.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string())
    }
}
