//! Data formats shared by the benchmark's tools.
//!
//! Every file that more than one tool reads or writes is typed here, once:
//! - [`SessionMetadata`]: `telemetry/<run-id>/metadata.json`, written by `bench-run`,
//!   read by `bench-telemetry` and `bench-report`;
//! - [`CostSummary`]: `telemetry/<run-id>/cost-summary.json`, written by `bench-telemetry`,
//!   read by `bench-report`;
//! - [`AppState`]: `results/chat-app-<ts>/.bench/state.json`, written by `bench-run`;
//! - [`stress::StressResult`]: `runs/<run>/<backend>/stress/*.json`, written by `bench-stress`,
//!   read by `bench-stress --compare` and `bench-report`.
//!
//! The field names of `metadata.json` and `cost-summary.json` are those of the original
//! harness, so files it published deserialize with these same types. Fields this project
//! adds are optional, and unknown fields are kept (`extra`) so that reading and writing a
//! file never drops what another tool put there.
//!
//! It also holds the few rules several tools must apply the same way: the one `{{name}}`
//! placeholder syntax ([`template`]), which agent session an OTLP record belongs to
//! ([`attribution`]), and the infrastructure's services and ports ([`infra`]).

pub mod app_docs;
pub mod app_run;
pub mod attribution;
pub mod cost;
pub mod experiment;
pub mod files;
pub mod grading;
pub mod infra;
pub mod io;
pub mod loop_record;
pub mod metadata;
mod named;
pub mod paths;
pub mod state;
pub mod stress;
pub mod template;

pub use cost::{CostSummary, SourceStatus, Status, SummaryStatus};
pub use experiment::{Rules, Variant};
pub use io::{read_json, write_json};
pub use metadata::{Outcome, Phase, SessionMetadata};
pub use state::AppState;
