//! Throughput and latency benchmark of the generated chat apps.
//!
//! One load generator drives every backend through the same [`backend::Backend`]
//! interface, so the scenarios ([`scenario`]), the metrics ([`metrics`]) and the
//! verification are shared: Express + Socket.IO apps ([`socketio`]), and the PostgreSQL
//! ceiling ([`ceiling`]). Results are written in the format of
//! [`bench_formats::stress`].

pub mod adapter;
pub mod app;
pub mod backend;
pub mod candidates;
pub mod ceiling;
pub mod cli;
pub mod engineio;
pub mod headroom;
pub mod http;
pub mod metrics;
pub mod noop_server;
pub mod probe;
pub mod reference;
pub mod report;
pub mod scenario;
pub mod socketio;
pub mod source;
pub mod stdb;
pub mod stdb_shape;
pub mod verify;
