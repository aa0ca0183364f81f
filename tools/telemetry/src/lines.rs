//! Reading a file line by line with a bounded buffer.
//!
//! Memory stays flat whatever the file size: a chunk is read, its complete lines are handed
//! out as slices of the buffer, and the incomplete tail is moved to the front for the next
//! read. A line longer than the limit is skipped (and reported) instead of growing the buffer
//! without bound.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use anyhow::{Context, Result};

/// Size of one read.
pub const CHUNK: usize = 1 << 20;

/// Longest line kept by default (an export request is usually a few KiB).
pub const DEFAULT_MAX_LINE: usize = 32 << 20;

/// What the reader hands out for each line.
pub enum Line<'b> {
    /// The line's bytes, without the `\n` (a trailing `\r` is left for the caller).
    Text(&'b [u8]),
    /// A line longer than the limit; only its length is known.
    TooLong(u64),
}

/// Calls `f(line_number, line, is_last_without_newline)` for every line of `path`, and
/// returns the number of bytes read. Errors from `f` stop the reading and are returned.
pub fn for_each_line(
    path: &Path,
    max_line: usize,
    mut f: impl FnMut(u64, Line<'_>, bool) -> Result<()>,
) -> Result<u64> {
    let mut file = File::open(path).with_context(|| {
        format!(
            "cannot open telemetry file {} (check the path given to --logs/--metrics)",
            path.display()
        )
    })?;
    let max_line = max_line.max(CHUNK);
    let mut buf = vec![0u8; CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut line_no = 0u64;
    let mut total = 0u64;
    // Bytes of an over-long line already thrown away.
    let mut skipped: Option<u64> = None;
    loop {
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            if buf.len() < max_line {
                let grown = (buf.len() * 2).min(max_line);
                buf.resize(grown, 0);
            } else {
                *skipped.get_or_insert(0) += end as u64;
                end = 0;
            }
        }
        let n = match file.read(&mut buf[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        if n == 0 {
            if let Some(len) = skipped.take() {
                line_no += 1;
                f(line_no, Line::TooLong(len + end as u64), true)?;
            } else if end > start {
                line_no += 1;
                f(line_no, Line::Text(&buf[start..end]), true)?;
            }
            return Ok(total);
        }
        total += n as u64;
        let mut pos = end;
        end += n;
        while let Some(i) = memchr::memchr(b'\n', &buf[pos..end]) {
            let nl = pos + i;
            line_no += 1;
            if let Some(len) = skipped.take() {
                f(line_no, Line::TooLong(len + (nl - start) as u64), false)?;
            } else {
                f(line_no, Line::Text(&buf[start..nl]), false)?;
            }
            start = nl + 1;
            pos = start;
        }
        // Shrink back after a long line so one outlier does not pin memory.
        if buf.len() > CHUNK && end - start < CHUNK / 2 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            buf.truncate(CHUNK);
            buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &[u8], max: usize) -> Vec<(u64, String, bool)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut out = Vec::new();
        for_each_line(&path, max, |n, line, last| {
            let s = match line {
                Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                Line::TooLong(len) => format!("<too long: {len}>"),
            };
            out.push((n, s, last));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_across_chunk_boundaries_and_a_last_line_without_newline() {
        let long = "x".repeat(CHUNK + 10);
        let text = format!("a\r\n\n{long}\nlast");
        let lines = collect(text.as_bytes(), DEFAULT_MAX_LINE);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], (1, "a\r".to_string(), false));
        assert_eq!(lines[1], (2, String::new(), false));
        assert_eq!(lines[2].1.len(), CHUNK + 10);
        assert_eq!(lines[3], (4, "last".to_string(), true));
    }

    #[test]
    fn over_long_lines_are_skipped_not_buffered() {
        let long = "y".repeat(3 * CHUNK + 5);
        let text = format!("first\n{long}\nafter\n");
        let lines = collect(text.as_bytes(), CHUNK);
        assert_eq!(lines[0].1, "first");
        assert_eq!(lines[1].1, format!("<too long: {}>", 3 * CHUNK + 5));
        assert_eq!(lines[2], (3, "after".to_string(), false));
        assert_eq!(lines.len(), 3);
    }
}
