//! The one interface every client (Socket.IO app, SpacetimeDB app, PostgreSQL ceiling)
//! implements, so that scenarios, metrics and verification are shared.

use std::future::Future;
use std::time::Instant;

use anyhow::Result;
use memchr::memmem;

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The app accepted message `tag`.
    Acked(u64),
    /// The app refused message `tag`; `kind` names the error class (`rejected`,
    /// `rate_limited`, `http_500`, ...).
    Failed(u64, String),
    /// Something that is not about one message (an error event, a bad frame).
    Error(String),
}

impl Outcome {
    /// The error class of a refusal from the reason the app gave: `rate_limited` when it
    /// reads like a rate limit ("rate", "too many", "slow down"), `rejected` otherwise.
    pub fn refusal_kind(why: &str) -> String {
        let w = why.to_ascii_lowercase();
        if w.contains("rate") || w.contains("too many") || w.contains("slow down") {
            "rate_limited".into()
        } else {
            "rejected".into()
        }
    }
}

/// A connection that sends messages. Many may be in flight; outcomes may come back in
/// any order.
pub trait Writer: Send + 'static {
    /// Starts sending message `tag` with this text (does not wait for the answer).
    fn send(&mut self, tag: u64, content: &str) -> Result<()>;
    /// Waits for the next answer. Must be cancel-safe: dropping the future loses nothing.
    fn next_outcome(&mut self) -> impl Future<Output = Result<Outcome>> + Send;
}

/// A connection that receives the room's messages.
pub trait Listener: Send + 'static {
    /// Waits for the next received payload (a frame, rows) and hands the text in which
    /// message markers are searched, with the instant it was read from the socket (the end
    /// of the fan-out latency). Must be cancel-safe.
    fn next_text(&mut self) -> impl Future<Output = Result<(String, Instant)>> + Send;
}

/// What verification found in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// `postgres-sql`, `spacetimedb-sql`, ...
    pub method: String,
    pub count: u64,
    /// Where they were counted (table and column), for the report.
    pub detail: String,
}

/// One kind of target.
pub trait Backend: Send + Sync + 'static {
    type W: Writer;
    type L: Listener;
    /// `socketio`, `spacetimedb` or `postgres-insert`.
    fn client_name(&self) -> &'static str;
    /// Opens writer number `index` (set-up already done: its user exists and joined).
    fn writer(&self, index: usize) -> impl Future<Output = Result<Self::W>> + Send;
    /// Opens listener number `index`; `None` when this target has no broadcast.
    fn listener(&self, index: usize) -> impl Future<Output = Result<Option<Self::L>>> + Send;
    /// Counts the run's messages in the database (`None`: no way to verify was given).
    fn committed(&self, marker: &Marker) -> impl Future<Output = Result<Option<Committed>>> + Send;
}

/// The text each message carries, so that listeners and verification recognise this
/// run's messages wherever the app puts them: `~b<run>:<writer>:<seq>:<t_us>~` then
/// padding. `t_us` is the (intended) send time in microseconds since the run started.
pub struct Marker {
    run: String,
    prefix: String,
    finder: memmem::Finder<'static>,
}

impl Marker {
    pub fn new(run: &str) -> Marker {
        let prefix = format!("~b{run}:");
        let finder = memmem::Finder::new(prefix.as_bytes()).into_owned();
        Marker {
            run: run.to_string(),
            prefix,
            finder,
        }
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    /// What every message of this run starts with (for SQL `LIKE 'prefix%'`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The content of one message, padded with `x` to `bytes` (at least the marker).
    pub fn content(&self, writer: usize, seq: u64, t_us: u64, bytes: usize, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        let _ = write!(out, "{}{writer}:{seq}:{t_us}~", self.prefix);
        while out.len() < bytes {
            out.push('x');
        }
    }

    /// Every `(writer, seq, t_us)` marked in a text.
    pub fn find_all(&self, text: &str, mut each: impl FnMut(usize, u64, u64)) {
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(pos) = self.finder.find(&bytes[from..]) {
            let start = from + pos + self.prefix.len();
            from = start;
            if let Some((w, s, t)) = parse_fields(&bytes[start..]) {
                each(w as usize, s, t);
            }
        }
    }
}

fn parse_fields(bytes: &[u8]) -> Option<(u64, u64, u64)> {
    let mut fields = [0u64; 3];
    let mut i = 0;
    for (n, field) in fields.iter_mut().enumerate() {
        let begin = i;
        while let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
            *field = field.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            i += 1;
        }
        let sep = if n == 2 { b'~' } else { b':' };
        if i == begin || bytes.get(i) != Some(&sep) {
            return None;
        }
        i += 1;
    }
    Some((fields[0], fields[1], fields[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_through_any_json() {
        let m = Marker::new("ab12");
        let mut c = String::new();
        m.content(3, 42, 123456, 40, &mut c);
        assert!(c.starts_with("~bab12:3:42:123456~"));
        assert_eq!(c.len(), 40);
        let frame = format!(r#"42["new_message",{{"id":9,"content":"{c}","echo":"{c}"}}]"#);
        let mut seen = vec![];
        m.find_all(&frame, |w, s, t| seen.push((w, s, t)));
        assert_eq!(seen, vec![(3, 42, 123456), (3, 42, 123456)]);
        let mut none = 0;
        Marker::new("other").find_all(&frame, |_, _, _| none += 1);
        m.find_all("~bab12:1:2~ ~bab12:x:1:2~ ~bab12:1:2:3", |_, _, _| {
            none += 1
        });
        assert_eq!(none, 0, "other runs and broken markers are ignored");
    }

    #[test]
    fn refusals_are_classed_by_their_reason() {
        assert_eq!(Outcome::refusal_kind("Rate limit exceeded"), "rate_limited");
        assert_eq!(Outcome::refusal_kind("Too many messages"), "rate_limited");
        assert_eq!(Outcome::refusal_kind("slow down"), "rate_limited");
        assert_eq!(
            Outcome::refusal_kind("not a member of this room"),
            "rejected"
        );
    }
}
