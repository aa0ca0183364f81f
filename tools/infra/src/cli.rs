//! Command-line options of `cargo xtask bench-infra`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::{Mode, Ports, ServiceStatus, Status};

/// Start, stop or inspect the telemetry receiver and databases the sessions use.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the OTLP receiver (or collector), PostgreSQL and MongoDB; running ones are reused.
    Up(UpArgs),
    /// Stop what `up` started (as recorded under .bench/infra/).
    Down,
    /// Say what runs where: pids, ports, data folders, reachable or not.
    Status(StatusArgs),
    /// Run the OTLP receiver in the foreground (what `up` starts in the background).
    #[command(hide = true)]
    ServeOtlp(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Use docker compose (docker-compose.otel.yaml); fails without a Docker engine.
    #[arg(long, conflicts_with = "embedded")]
    pub docker: bool,
    /// Use the embedded receiver and native databases even when Docker is available.
    #[arg(long)]
    pub embedded: bool,
    /// PostgreSQL port.
    #[arg(long, env = "BENCH_PG_PORT", default_value_t = Ports::default().postgres)]
    pub pg_port: u16,
    /// OTLP/gRPC port.
    #[arg(long, env = "BENCH_OTLP_GRPC_PORT", default_value_t = Ports::default().otlp_grpc)]
    pub otlp_grpc_port: u16,
    /// OTLP/HTTP port.
    #[arg(long, env = "BENCH_OTLP_HTTP_PORT", default_value_t = Ports::default().otlp_http)]
    pub otlp_http_port: u16,
    /// MongoDB port.
    #[arg(long, env = "BENCH_MONGO_PORT", default_value_t = Ports::default().mongodb)]
    pub mongo_port: u16,
    /// Do not start PostgreSQL (embedded mode).
    #[arg(long)]
    pub no_postgres: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Telemetry folder to write.
    #[arg(long)]
    pub dir: PathBuf,
    #[arg(long, default_value_t = crate::process::loopback(Ports::default().otlp_grpc))]
    pub grpc: SocketAddr,
    #[arg(long, default_value_t = crate::process::loopback(Ports::default().otlp_http))]
    pub http: SocketAddr,
    /// Folder for the pid and state files.
    #[arg(long)]
    pub state_dir: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::ServeOtlp(serve) => {
            crate::embedded::serve_otlp(&serve.dir, serve.grpc, serve.http, &serve.state_dir)
        }
        Command::Up(up) => {
            let root = bench_formats::paths::repo_root()?;
            let mode = if up.docker {
                Mode::Docker
            } else if up.embedded {
                Mode::Embedded
            } else {
                Mode::Auto
            };
            let ports = Ports {
                otlp_grpc: up.otlp_grpc_port,
                otlp_http: up.otlp_http_port,
                postgres: up.pg_port,
                mongodb: up.mongo_port,
            };
            let report = crate::up(&root, mode, &ports, !up.no_postgres)?;
            for note in &report.notes {
                println!("note: {note}");
            }
            if report.infra.started_now.is_empty() {
                println!("already running; nothing started");
            }
            print_status(&crate::status(&root)?);
            if report
                .infra
                .started_now
                .contains(&crate::Component::InProcessReceiver)
            {
                // Only reachable when no executable can host the receiver: keep serving.
                println!("serving in the foreground; Ctrl-C stops the receiver");
                loop {
                    std::thread::park();
                }
            }
            Ok(())
        }
        Command::Down => {
            let root = bench_formats::paths::repo_root()?;
            let report = crate::down(&root)?;
            if report.stopped.is_empty() && report.errors.is_empty() {
                println!(
                    "nothing to stop: bench-infra has nothing running for {}",
                    root.display()
                );
            }
            for line in &report.stopped {
                println!("stopped {line}");
            }
            if !report.errors.is_empty() {
                anyhow::bail!("could not stop everything:\n{}", report.errors.join("\n"));
            }
            Ok(())
        }
        Command::Status(args) => {
            let root = bench_formats::paths::repo_root()?;
            let status = crate::status(&root)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&status);
            }
            Ok(())
        }
    }
}

fn print_status(status: &Status) {
    println!("bench-infra state: {}", status.state_dir.display());
    let docker = match (&status.docker, status.docker_engine) {
        (Some(state), _) => format!(
            "compose project {} from {}",
            state.project,
            state.compose_file.display()
        ),
        (None, true) => "engine available, not used".into(),
        (None, false) => "no engine (embedded services)".into(),
    };
    println!("  {:<14} {docker}", "Docker");
    if let Some(ps) = &status.compose_ps {
        for line in ps.lines() {
            println!("  {:<14} {line}", "");
        }
    }
    print_service("OTLP receiver", &status.otlp);
    print_service("PostgreSQL", &status.postgres);
    print_service("MongoDB", &status.mongodb);
}

fn print_service(name: &str, s: &ServiceStatus) {
    if !s.running {
        println!(
            "  {name:<14} stopped{}",
            s.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
        return;
    }
    let mut line = format!("  {name:<14} running");
    if let Some(pid) = s.pid {
        line.push_str(&format!("  pid {pid}"));
    }
    if !s.endpoints.is_empty() {
        line.push_str(&format!("  {}", s.endpoints.join("  ")));
    }
    line.push_str(if s.reachable {
        "  reachable"
    } else {
        "  NOT reachable"
    });
    println!("{line}");
    if let Some(data) = &s.data {
        println!("  {:<14} data {}", "", data.display());
    }
    if let Some(log) = &s.log {
        println!("  {:<14} log  {}", "", log.display());
    }
    if let Some(note) = &s.note {
        println!("  {:<14} {note}", "");
    }
}
