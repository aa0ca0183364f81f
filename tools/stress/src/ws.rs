//! A lean WebSocket client connection (RFC 6455, text frames, no extensions) for the load's
//! hot path.
//!
//! Under load every message an app broadcasts reaches each of the room's connections, so
//! the client reads about (writers + listeners) frames per message. This connection reads
//! straight into one buffer that it owns (several frames per read when several are waiting,
//! no zero-filling, no allocation per frame), hands out text frames as slices of it, and is
//! read and written by the task that owns it (no split halves, no lock, no writer task).
//! Reads go through tokio's `AsyncRead`, which takes a short read as proof that the socket
//! is drained, so a frame costs one `recv` and no second one that would block.

use std::io::ErrorKind;

use anyhow::{Context, Result, bail};
use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

use crate::http::BaseUrl;

/// Bytes read per `recv` at most (the buffer grows for a larger message).
const READ_CHUNK: usize = 32 * 1024;
/// The largest message accepted (the apps' Socket.IO limit is 1 MB).
const MAX_MESSAGE: usize = 16 << 20;
/// The largest HTTP answer to the upgrade request.
const MAX_HANDSHAKE: usize = 16 * 1024;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The header of one frame from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    fin: bool,
    opcode: u8,
    /// Header bytes (2, 4 or 10: servers do not mask).
    size: usize,
    len: usize,
}

/// Decodes a server frame's header; `None` while it is incomplete.
fn parse_head(b: &[u8]) -> Result<Option<Head>> {
    let [b0, b1, ..] = *b else { return Ok(None) };
    if b0 & 0x70 != 0 {
        bail!("the app sent a WebSocket frame with extension bits (none were negotiated)");
    }
    if b1 & 0x80 != 0 {
        bail!("the app sent a masked WebSocket frame (servers must not mask)");
    }
    let (size, len) = match b1 & 0x7F {
        126 => match b.get(2..4) {
            Some(l) => (4, u64::from(u16::from_be_bytes([l[0], l[1]]))),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(l) => (10, u64::from_be_bytes(l.try_into()?)),
            None => return Ok(None),
        },
        n => (2, u64::from(n)),
    };
    let len = usize::try_from(len).ok().filter(|&l| l <= MAX_MESSAGE);
    let len = len.context("the app sent a WebSocket frame over 16 MiB")?;
    Ok(Some(Head {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        size,
        len,
    }))
}

/// Appends a masked client frame (FIN set) to `out`.
fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let from = out.len();
    out.extend_from_slice(payload);
    for (i, byte) in out[from..].iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Where a complete text message is.
#[derive(Clone, Copy)]
enum Loc {
    Buf(usize, usize),
    Fragments,
}

/// One client WebSocket connection.
pub struct WsConn {
    stream: TcpStream,
    /// Received bytes: `buf[start..end]` is not parsed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A fragmented message being assembled (`Some(is_text)` while one is open).
    frag: Vec<u8>,
    frag_kind: Option<bool>,
    /// The last message handed out was `frag` (cleared on the next read).
    frag_out: bool,
    /// The message handed out last.
    current: Option<Loc>,
    /// Frames not yet written.
    out: Vec<u8>,
    masks: SplitMix64,
}

impl WsConn {
    /// Connects to `base`, upgrades `path_and_query` (below the app's prefix) to WebSocket.
    pub async fn connect(base: &BaseUrl, path_and_query: &str) -> Result<WsConn> {
        let stream = TcpStream::connect(&base.authority)
            .await
            .with_context(|| format!("cannot connect to {}", base.authority))?;
        stream.set_nodelay(true)?;
        let key = generate_key();
        let request = format!(
            "GET {}{path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n",
            base.prefix, base.authority
        );
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(stream.local_addr()?.port()).rotate_left(40);
        let mut conn = WsConn {
            stream,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            frag: Vec::new(),
            frag_kind: None,
            frag_out: false,
            current: None,
            out: Vec::new(),
            masks: SplitMix64::seed_from_u64(seed),
        };
        conn.stream
            .write_all(request.as_bytes())
            .await
            .context("sending the WebSocket upgrade request")?;
        conn.read_upgrade(&key).await?;
        Ok(conn)
    }

    /// Reads the answer to the upgrade request; what follows it stays in the buffer.
    async fn read_upgrade(&mut self, key: &str) -> Result<()> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            let parsed = resp
                .parse(&self.buf[..self.end])
                .context("the app's answer to the WebSocket upgrade is not HTTP")?;
            if let httparse::Status::Complete(n) = parsed {
                let code = resp.code.unwrap_or(0);
                if code != 101 {
                    let body = String::from_utf8_lossy(&self.buf[n..self.end]);
                    bail!(
                        "the app answered the WebSocket upgrade with HTTP {code}: {}",
                        crate::engineio::truncate(&body, 200)
                    );
                }
                let accept = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"));
                if accept.map(|h| h.value) != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
                    bail!("the app's WebSocket upgrade has no valid Sec-WebSocket-Accept");
                }
                self.start = n;
                return Ok(());
            }
            if self.end >= MAX_HANDSHAKE {
                bail!("the app's answer to the WebSocket upgrade is over 16 KiB");
            }
            let n = self
                .stream
                .read(&mut self.buf[self.end..MAX_HANDSHAKE])
                .await?;
            if n == 0 {
                bail!("the app closed the connection during the WebSocket upgrade");
            }
            self.end += n;
        }
    }

    /// Queues a text frame; it is written by the next [`WsConn::flush`] or read.
    pub fn queue_text(&mut self, text: &str) {
        let mask = self.masks.next_u32().to_ne_bytes();
        encode(&mut self.out, OP_TEXT, text.as_bytes(), mask);
    }

    /// Queues a text frame and writes what the socket takes now (the rest is written while
    /// reading).
    pub fn send_text(&mut self, text: &str) -> Result<()> {
        self.queue_text(text);
        self.flush()
    }

    /// Writes as much of the queued frames as the socket takes without waiting.
    pub fn flush(&mut self) -> Result<()> {
        while !self.out.is_empty() {
            match self.stream.try_write(&self.out) {
                Ok(0) => bail!("the app closed the connection"),
                Ok(n) => drop(self.out.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("writing to the app"),
            }
        }
        Ok(())
    }

    /// Moves to the next text message (pings are answered, binary messages skipped); read
    /// it with [`WsConn::bytes`] or [`WsConn::text`]. Cancel-safe: a dropped call loses
    /// nothing.
    pub async fn advance(&mut self) -> Result<()> {
        self.current = None;
        if self.frag_out {
            self.frag.clear();
            self.frag_out = false;
        }
        self.flush()?;
        loop {
            if let Some(loc) = self.next_message()? {
                self.frag_out = matches!(loc, Loc::Fragments);
                self.current = Some(loc);
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// The current message's bytes (empty before the first [`WsConn::advance`]).
    pub fn bytes(&self) -> &[u8] {
        match self.current {
            Some(Loc::Buf(a, b)) => &self.buf[a..b],
            Some(Loc::Fragments) => &self.frag,
            None => &[],
        }
    }

    /// The current message.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(self.bytes()).context("the app sent a text message that is not UTF-8")
    }

    /// Parses buffered frames until a text message is complete.
    fn next_message(&mut self) -> Result<Option<Loc>> {
        loop {
            let Some(head) = parse_head(&self.buf[self.start..self.end])? else {
                return Ok(None);
            };
            let (a, b) = (self.start + head.size, self.start + head.size + head.len);
            if b > self.end {
                self.reserve(b - self.start);
                return Ok(None);
            }
            self.start = b;
            match (head.opcode, self.frag_kind) {
                (OP_TEXT, None) if head.fin => return Ok(Some(Loc::Buf(a, b))),
                (OP_TEXT | OP_BINARY, None) if !head.fin => {
                    self.frag_kind = Some(head.opcode == OP_TEXT);
                    self.frag.extend_from_slice(&self.buf[a..b]);
                }
                (OP_BINARY, None) => {}
                (OP_CONTINUATION, Some(text)) => {
                    if self.frag.len() + head.len > MAX_MESSAGE {
                        bail!("the app sent a WebSocket message over 16 MiB");
                    }
                    self.frag.extend_from_slice(&self.buf[a..b]);
                    if head.fin {
                        self.frag_kind = None;
                        if text {
                            return Ok(Some(Loc::Fragments));
                        }
                        self.frag.clear();
                    }
                }
                (OP_PING, _) => {
                    let mask = self.masks.next_u32().to_ne_bytes();
                    encode(&mut self.out, OP_PONG, &self.buf[a..b], mask);
                    self.flush()?;
                }
                (OP_PONG, _) => {}
                (OP_CLOSE, _) => bail!("the app closed the connection"),
                (op, _) => bail!("the app sent an unexpected WebSocket frame (opcode {op})"),
            }
        }
    }

    /// Makes room for a frame of `total` bytes starting at `start`.
    fn reserve(&mut self, total: usize) {
        if total > self.buf.len() - self.start {
            self.compact();
            if total > self.buf.len() {
                self.buf.resize(total.next_power_of_two(), 0);
            }
        }
    }

    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// Reads more bytes (writing queued frames while the socket takes them).
    async fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.reserve(self.buf.len() - self.start + 1);
        }
        loop {
            let (mut rd, mut wr) = self.stream.split();
            let space = &mut self.buf[self.end..];
            let step = if self.out.is_empty() {
                Step::Read(rd.read(space).await)
            } else {
                tokio::select! {
                    r = rd.read(space) => Step::Read(r),
                    w = wr.write(&self.out) => Step::Wrote(w),
                }
            };
            let n = match step {
                Step::Read(r) => r.context("reading from the app")?,
                Step::Wrote(w) => match w.context("writing to the app")? {
                    0 => bail!("the app closed the connection"),
                    n => {
                        self.out.drain(..n);
                        continue;
                    }
                },
            };
            if n == 0 {
                bail!("the app closed the connection");
            }
            self.end += n;
            return Ok(());
        }
    }
}

enum Step {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
}

impl Drop for WsConn {
    /// Says goodbye with a close frame (code 1000) when the socket takes it right away.
    fn drop(&mut self) {
        let mut frame = Vec::with_capacity(8);
        encode(
            &mut frame,
            OP_CLOSE,
            &1000u16.to_be_bytes(),
            [0x5A, 0x17, 0xC3, 0x9E],
        );
        let _ = self.stream.try_write(&frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server frame (unmasked).
    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, opcode, payload, [0; 4]);
        out[0] = if fin { 0x80 | opcode } else { opcode };
        out[1] &= 0x7F;
        let mask_at = match out[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        out.drain(mask_at..mask_at + 4);
        out
    }

    /// Unmasks one client frame at the start of `b`: (opcode, payload, bytes used).
    fn client_frame(b: &[u8]) -> (u8, Vec<u8>, usize) {
        assert!(b[1] & 0x80 != 0, "client frames are masked");
        let head = parse_head(&[b[0], b[1] & 0x7F, b.get(2).copied().unwrap_or(0)])
            .unwrap()
            .unwrap();
        assert!(head.size == 2, "small frames in these tests");
        let mask = &b[2..6];
        let payload: Vec<u8> = b[6..6 + head.len]
            .iter()
            .enumerate()
            .map(|(i, x)| x ^ mask[i & 3])
            .collect();
        (head.opcode, payload, 6 + head.len)
    }

    #[test]
    fn headers_of_every_length_form() {
        assert_eq!(parse_head(&[0x81]).unwrap(), None);
        let h = parse_head(&[0x81, 5]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, h.size, h.len), (true, 1, 2, 5));
        assert_eq!(parse_head(&[0x01, 126, 1]).unwrap(), None);
        let h = parse_head(&[0x01, 126, 1, 0]).unwrap().unwrap();
        assert_eq!((h.fin, h.size, h.len), (false, 4, 256));
        let h = parse_head(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.opcode, h.size, h.len), (2, 10, 65536));
        assert!(parse_head(&[0x81, 0x85]).is_err(), "masked server frame");
        assert!(parse_head(&[0xC1, 1]).is_err(), "compressed frame");
        assert!(
            parse_head(&[0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]).is_err(),
            "too large"
        );
    }

    #[test]
    fn client_frames_are_masked_and_sized() {
        for len in [0, 125, 126, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = Vec::new();
            encode(&mut out, OP_TEXT, &payload, [1, 2, 3, 4]);
            let size = match len {
                0..126 => 2,
                126..65536 => 4,
                _ => 10,
            };
            assert_eq!(out.len(), size + 4 + len);
            let unmasked: Vec<u8> = out[size + 4..]
                .iter()
                .enumerate()
                .map(|(i, x)| x ^ [1, 2, 3, 4][i & 3])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }

    /// A fake server: the upgrade answer, then `frames` in one write; returns what the
    /// client wrote after its request.
    async fn serve(frames: Vec<u8>, listener: TcpListener) -> Vec<u8> {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut req = vec![0; 4096];
        let mut got = 0;
        while !req[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            got += s.read(&mut req[got..]).await.unwrap();
        }
        let text = String::from_utf8_lossy(&req[..got]).to_string();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let mut answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        answer.extend(frames);
        s.write_all(&answer).await.unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        rest
    }

    async fn next(conn: &mut WsConn) -> Result<String> {
        conn.advance().await?;
        Ok(conn.text()?.to_string())
    }

    #[tokio::test]
    async fn reads_frames_fragments_and_pings_and_writes_masked_frames() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let big = "y".repeat(40_000);
        let mut frames = server_frame(true, OP_TEXT, b"0{\"sid\":\"a\"}");
        frames.extend(server_frame(false, OP_TEXT, b"42[\"a\","));
        frames.extend(server_frame(true, OP_PING, b"hi"));
        frames.extend(server_frame(true, OP_CONTINUATION, b"1]"));
        frames.extend(server_frame(true, OP_BINARY, b"\x00\x01"));
        frames.extend(server_frame(true, OP_TEXT, big.as_bytes()));
        frames.extend(server_frame(true, OP_TEXT, "é".as_bytes()));
        frames.extend(server_frame(true, OP_CLOSE, &[3, 232]));
        let server = tokio::spawn(serve(frames, listener));
        let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut conn = WsConn::connect(&base, "/socket.io/?EIO=4").await.unwrap();
        assert_eq!(next(&mut conn).await.unwrap(), "0{\"sid\":\"a\"}");
        assert_eq!(next(&mut conn).await.unwrap(), "42[\"a\",1]");
        conn.send_text("40").unwrap();
        assert_eq!(next(&mut conn).await.unwrap(), big);
        assert_eq!(next(&mut conn).await.unwrap(), "é");
        let err = next(&mut conn).await.unwrap_err();
        assert!(format!("{err:#}").contains("closed"), "{err:#}");
        drop(conn);
        let written = server.await.unwrap();
        let (op, payload, used) = client_frame(&written);
        assert_eq!((op, payload.as_slice()), (OP_PONG, &b"hi"[..]));
        let (op, payload, used2) = client_frame(&written[used..]);
        assert_eq!((op, payload.as_slice()), (OP_TEXT, &b"40"[..]));
        let (op, payload, _) = client_frame(&written[used + used2..]);
        assert_eq!((op, payload.as_slice()), (OP_CLOSE, &[3, 232][..]));
    }

    #[tokio::test]
    async fn a_refused_upgrade_says_what_the_app_answered() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = vec![0; 4096];
            let _ = s.read(&mut req).await;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nbad request")
                .await;
        });
        let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = WsConn::connect(&base, "/socket.io/").await.err().unwrap();
        assert!(
            format!("{err:#}").contains("HTTP 400: bad request"),
            "{err:#}"
        );
    }
}
