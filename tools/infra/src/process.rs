//! Process control comes from bench-proc (one implementation for pg, infra, runner and
//! bench-app); this module names the parts this crate uses.

pub use bench_proc::{
    first_line, is_ours, lock_exclusive, loopback, output_within, port_free, reachable, tail,
    terminate,
};

/// Starts a background service in a process group of its own (Ctrl-C on ours does not
/// reach it), stdin from /dev/null, stdout and stderr appended to its log.
pub use bench_proc::spawn_group as spawn_detached;
