//! `bench-loop`: the whole benchmark in one resumable command, and `bench-clean`.
//!
//! Per app ([`driver`]): generate → start on a fresh database and grade levels 1..current →
//! while points are lost and fixes < K: fix, restart, regrade → upgrade → … → final grade →
//! stop. The next step is always decided from what the app's `.bench/state.json` says
//! happened ([`machine`]), and every step is recorded there before and after it runs
//! ([`record`]), so a loop killed anywhere continues at the exact step. [`fleet`] drives
//! several apps (backends × repetitions) at once with a progress line each; [`summary`]
//! prints the table and runs bench-report at the end. [`clean`] is `bench-clean`.

pub mod clean;
pub mod cli;
pub mod driver;
pub mod env;
pub mod fleet;
pub mod grading;
pub mod machine;
pub mod perf;
pub mod record;
pub mod resume;
pub mod summary;
