//! Agent sessions (generate, upgrade, fix) driven through the Claude Code CLI.
//!
//! `cargo xtask bench-run` ([`cli`]) runs one session: it lays out the run folder
//! ([`layout`]), assembles the prompt from the benchmark content, snapshots the app before an
//! upgrade ([`snapshot`]), runs the agent CLI with its telemetry pointed at the embedded OTLP
//! receiver ([`session`]; its leftover processes: [`procs`]), and afterwards — however the
//! agent ended — writes the session's metadata, updates the app's state and computes its
//! cost with `bench-telemetry`. [`run`]'s [`Session`] takes those steps one method at a time
//! (so `bench-loop` can drive and resume them); [`plan`] holds what a session decides before
//! writing anything, [`records`] what it writes and the one place its outcome changes. The
//! harness traces its own steps ([`trace`]). With `--rehearse`, the real agent CLI talks to
//! an in-process scripted API instead of Anthropic's ([`scripted_api`]).

pub mod agent;
pub mod cli;
pub mod costing;
pub mod layout;
pub mod plan;
mod prepare;
pub mod procs;
pub mod records;
pub mod run;
pub mod session;
pub mod snapshot;
pub mod trace;

pub use run::{ModelSource, RunOptions, Session, SessionReport, Task, TelemetrySink, run_session};
pub use session::Cancel;
