//! Process control for the benchmark's tools, in one place: bench-pg, bench-infra, the
//! runner and bench-app all start servers, wait for them, and stop them again.
//!
//! - [`spawn_group`]: start a command in a process group of its own, output appended to a
//!   log file; [`in_new_group`] for callers that set up stdio themselves.
//! - [`alive`] (a zombie counts as dead), [`stat`], [`cmdline`], [`is_ours`].
//! - [`terminate`] one process, [`stop_group`] a whole group plus the leader's descendants
//!   that left it: SIGTERM, a grace period, then SIGKILL.
//! - Ports: [`free_port`], [`port_free`], [`port_accepts`], [`port_holders`] (which
//!   process listens on a port, from `/proc`), [`wait_for_port`], [`http_ready`],
//!   [`wait_ready`] (fails early with the log tail when the process exits).
//! - Text: [`tail`], [`first_line`]; [`output_within`] runs a short command with a limit;
//!   [`CommandError`] keeps a failed command's status and the end of its output.
//! - [`lock_exclusive`]: one process at a time on a lock file.
//!
//! Built on `nix` (signals, users) and `procfs` (`/proc` tables): no `unsafe` here.

mod error;
mod net;
pub mod npm;
mod process;
mod text;

pub use error::CommandError;
pub use net::{
    Holder, Ready, free_port, http_ready, loopback, port_accepts, port_free, port_holders,
    reachable, wait_for_port, wait_ready,
};
pub use process::{
    OsUser, ProcStat, alive, cmdline, descendants, effective_uid_is_root, group_alive,
    group_members, in_new_group, is_ours, os_user, real_gid, real_uid, reap, spawn_group, stat,
    stop_group, terminate,
};
pub use text::{first_line, lock_exclusive, output_within, tail};
