//! A command that failed, with what it said before it did.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::text::tail;

/// Lines of a log kept in an error.
const TAIL_LINES: usize = 25;

/// A command that failed (exited with an error, exited too early, or ran out of time),
/// keeping the end of its output so the error says why.
#[derive(Debug, Clone)]
pub struct CommandError {
    /// What was run, in the words of the caller (`install server dependencies`).
    pub what: String,
    /// How it failed, in words (`exited with exit status: 1`, `not ready after 120 s`).
    pub failure: String,
    /// The log file its output went to, if any.
    pub log: Option<PathBuf>,
    /// The last lines of its output.
    pub output_tail: String,
}

impl CommandError {
    /// A failure whose output is in the file `log`.
    pub fn with_log(what: &str, failure: impl Into<String>, log: &Path) -> CommandError {
        CommandError {
            what: what.to_string(),
            failure: failure.into(),
            log: Some(log.to_path_buf()),
            output_tail: tail(log, TAIL_LINES),
        }
    }

    /// A failure whose output was captured in memory.
    pub fn with_output(what: &str, failure: impl Into<String>, output: &[u8]) -> CommandError {
        let text = String::from_utf8_lossy(output);
        let lines: Vec<&str> = text.lines().collect();
        CommandError {
            what: what.to_string(),
            failure: failure.into(),
            log: None,
            output_tail: lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n"),
        }
    }

    /// `exited with …` for an exit status.
    pub fn exited(status: ExitStatus) -> String {
        format!("exited with {status}")
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.what, self.failure)?;
        let output = self.output_tail.trim();
        match (&self.log, output.is_empty()) {
            (Some(log), true) => write!(f, " (its log {} is empty)", log.display()),
            (Some(log), false) => write!(f, "; end of its log {}:\n{output}", log.display()),
            (None, true) => write!(f, " (it printed nothing)"),
            (None, false) => write!(f, "; end of its output:\n{output}"),
        }
    }
}

impl std::error::Error for CommandError {}
