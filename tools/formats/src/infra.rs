//! The shared infrastructure's services and their default ports, defined once.
//!
//! `bench-infra` starts them on these ports (unless told otherwise), the OTLP receiver
//! listens on the telemetry ones by default, and content knows each port as a value
//! (`{{pg_port}}`, …) and keeps apps off them. A backend names the services its runs need
//! in `backend.toml` (`services = ["postgres"]`); telemetry is always needed.

/// One service of the infrastructure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Its name in `backend.toml`'s `services`.
    pub name: &'static str,
    /// What it is, for messages.
    pub what: &'static str,
    /// Default port on 127.0.0.1.
    pub port: u16,
    /// The content value holding its port.
    pub port_var: &'static str,
    /// Environment variable that moves it to another port.
    pub port_env: &'static str,
}

pub const OTLP_GRPC: Service = Service {
    name: "otlp-grpc",
    what: "OTLP gRPC",
    port: 4317,
    port_var: "otlp_grpc_port",
    port_env: "BENCH_OTLP_GRPC_PORT",
};

pub const OTLP_HTTP: Service = Service {
    name: "otlp-http",
    what: "OTLP HTTP",
    port: 4318,
    port_var: "otlp_http_port",
    port_env: "BENCH_OTLP_HTTP_PORT",
};

pub const POSTGRES: Service = Service {
    name: "postgres",
    what: "PostgreSQL",
    port: 6432,
    port_var: "pg_port",
    port_env: "BENCH_PG_PORT",
};

pub const MONGODB: Service = Service {
    name: "mongodb",
    what: "MongoDB",
    port: 6437,
    port_var: "mongo_port",
    port_env: "BENCH_MONGO_PORT",
};

/// Every service, telemetry first.
pub const SERVICES: [Service; 4] = [OTLP_GRPC, OTLP_HTTP, POSTGRES, MONGODB];

/// The service a backend may ask for by this name.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

impl Service {
    /// The port from the service's environment variable, else the default (a value that
    /// is not a port is ignored).
    pub fn port_from_env(&self) -> u16 {
        std::env::var(self.port_env)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_values_are_distinct() {
        for (i, a) in SERVICES.iter().enumerate() {
            for b in &SERVICES[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.port, b.port);
                assert_ne!(a.port_var, b.port_var);
            }
            assert_eq!(service(a.name), Some(a));
        }
        assert_eq!(service("sqlite"), None);
    }
}
