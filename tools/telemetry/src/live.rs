//! A running tally of one session's calls and cost, fed as its telemetry file grows.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};

use crate::lines::DEFAULT_MAX_LINE;
use crate::scan::{Collected, LineOutcome, LineProcessor, Target};

/// The tally at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveSnapshot {
    pub api_calls: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub api_errors: u64,
    pub tool_uses: u64,
    /// Time of the latest event of the session (Unix nanoseconds).
    pub last_event_ns: Option<u64>,
    pub malformed_lines: u64,
}

/// Counts one session's API calls and cost from collector JSONL as it arrives.
///
/// Feed it bytes in any chunking ([`LiveTally::feed`]), or let it follow a file
/// ([`LiveTally::poll_file`]). The same attribution rules as [`crate::summarize`] apply
/// (without the time-window fallback: the session is still running). Memory grows with
/// the session's own number of calls, not with the input.
pub struct LiveTally {
    processor: LineProcessor,
    collected: Collected,
    partial: Vec<u8>,
    /// Discarding the rest of an over-long line.
    skipping: bool,
    offset: u64,
    snapshot: LiveSnapshot,
}

impl LiveTally {
    /// A tally for the session with this CLI session id and/or harness run id.
    pub fn new(session_id: Option<&str>, run_id: Option<&str>) -> LiveTally {
        let target = Target {
            session_id: session_id.map(str::to_string),
            run_id: run_id.map(str::to_string),
            window: None,
            use_window: false,
        };
        LiveTally {
            processor: LineProcessor::new(target),
            collected: Collected::default(),
            partial: Vec::new(),
            skipping: false,
            offset: 0,
            snapshot: LiveSnapshot::default(),
        }
    }

    /// Feeds new bytes of the JSONL stream (lines may be split anywhere).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            if self.skipping {
                self.skipping = false;
            } else if self.partial.is_empty() {
                self.line(&bytes[..i]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&bytes[..i]);
                self.line(&line);
                line.clear();
                self.partial = line;
            }
            bytes = &bytes[i + 1..];
        }
        if self.skipping {
            return;
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() > DEFAULT_MAX_LINE {
            self.partial = Vec::new();
            self.skipping = true;
            self.count_malformed();
        }
    }

    /// Processes a line held back because it had no newline yet (call when the writer is
    /// known to be done, e.g. the session ended).
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        self.skipping = false;
    }

    /// Reads what was appended to `path` since the last call and feeds it. A file that got
    /// shorter (rotated or truncated) is read again from its start. Returns the number of
    /// new bytes; a file that does not exist yet gives 0.
    pub fn poll_file(&mut self, path: &Path) -> Result<u64> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        };
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
            self.skipping = false;
        }
        file.seek(SeekFrom::Start(self.offset))
            .with_context(|| format!("cannot seek in {}", path.display()))?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            self.feed(&buf[..n]);
            total += n as u64;
        }
        self.offset += total;
        Ok(total)
    }

    fn count_malformed(&mut self) {
        self.collected.malformed_count += 1;
        self.snapshot.malformed_lines = self.collected.malformed_count;
    }

    fn line(&mut self, line: &[u8]) {
        let calls_before = self.collected.calls.len();
        match self
            .processor
            .process(line, &mut self.collected, None::<&mut std::io::Sink>)
        {
            Ok(LineOutcome::Malformed(_)) => self.count_malformed(),
            Ok(_) => {}
            // Only writing the raw copy can fail, and there is none here.
            Err(_) => self.count_malformed(),
        }
        let s = &mut self.snapshot;
        for call in &self.collected.calls[calls_before..] {
            s.api_calls += 1;
            s.cost_usd += call.cost_usd;
            s.input_tokens += call.input_tokens;
            s.output_tokens += call.output_tokens;
            s.cache_read_tokens += call.cache_read_tokens;
            s.cache_creation_tokens += call.cache_creation_tokens;
        }
        s.api_errors = self.collected.api_errors.len() as u64;
        s.tool_uses = self.collected.tools.results;
        s.last_event_ns = self.collected.last_ns;
    }

    /// The tally so far.
    pub fn snapshot(&self) -> LiveSnapshot {
        self.snapshot
    }

    pub fn api_calls(&self) -> u64 {
        self.snapshot.api_calls
    }

    pub fn cost_usd(&self) -> f64 {
        self.snapshot.cost_usd
    }
}
