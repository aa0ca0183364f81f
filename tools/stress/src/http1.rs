//! REST message sends over plain HTTP/1.1 keep-alive connections, one request at a time
//! per connection (each writer keeps as many as it has requests in flight).
//!
//! A send is one `write` of a request whose head was rendered once, and the answer is read
//! by the writer's own task: only the status counts, the body is read (to keep the
//! connection usable) and dropped. Compared with a general client there is no per-request
//! URL parsing, header map, pool lock or connection task to hand the request to and the
//! answer back from.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::BaseUrl;

/// The largest answer head read.
const MAX_HEAD: usize = 64 * 1024;
/// An idle connection older than this is not reused: Node closes idle keep-alive
/// connections after 5 s, and a request must never race that close.
const MAX_IDLE: Duration = Duration::from_secs(3);

/// One request made many times with different JSON bodies.
pub struct PreparedRequest {
    authority: String,
    /// Everything before `Content-Length`: request line, `Host`, content type, headers.
    head: String,
}

impl PreparedRequest {
    pub fn new(
        base: &BaseUrl,
        method: &str,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<PreparedRequest> {
        let checked = |text: &str, what: &str| {
            if text.is_empty() || text.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                bail!("{what} {text:?} cannot go in an HTTP request");
            }
            Ok(())
        };
        checked(method, "the method")?;
        if method.contains(' ') || path.contains(' ') {
            bail!("{method} {path}: a method or path with a space cannot go in an HTTP request");
        }
        checked(path, "the path")?;
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
            base.prefix, base.authority
        );
        for (name, value) in headers {
            checked(name, "the header name")?;
            checked(value, "the header value")?;
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        Ok(PreparedRequest {
            authority: base.authority.clone(),
            head,
        })
    }

    /// The whole request with this body.
    fn render(&self, body: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body.as_bytes());
    }

    /// Opens a connection for this request's server.
    pub async fn connect(&self) -> Result<Http1Conn> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("cannot connect to {}", self.authority))?;
        stream.set_nodelay(true)?;
        Ok(Http1Conn {
            stream,
            buf: vec![0; 4096],
            start: 0,
            end: 0,
            out: Vec::with_capacity(512),
            idle_since: Instant::now(),
            reusable: true,
        })
    }
}

/// One keep-alive connection.
pub struct Http1Conn {
    stream: TcpStream,
    /// Received bytes: `buf[start..end]` are not consumed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    idle_since: Instant,
    reusable: bool,
}

/// How an answer's body ends.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The body framing of an answer (RFC 9112 section 6.3); clears `reusable` when the
/// connection ends with it.
fn framing(status: u16, headers: &[httparse::Header<'_>], reusable: &mut bool) -> Result<Body> {
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    if value("connection").is_some_and(|v| v.contains("close")) {
        *reusable = false;
    }
    if status == 204 || status == 304 {
        return Ok(Body::Length(0));
    }
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok(Body::Chunked);
    }
    match value("content-length") {
        Some(n) => Ok(Body::Length(
            n.trim()
                .parse()
                .context("the answer's Content-Length is not a number")?,
        )),
        None => {
            *reusable = false;
            Ok(Body::UntilClose)
        }
    }
}

impl Http1Conn {
    /// Whether the connection can carry another request: the last answer left it open, it
    /// has not been idle long, and the server has not closed it.
    pub fn usable(&self) -> bool {
        if !self.reusable || self.idle_since.elapsed() > MAX_IDLE {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Sends `body` with `req` and reads the answer; its status.
    pub async fn send(&mut self, req: &PreparedRequest, body: &str) -> Result<u16> {
        req.render(body, &mut self.out);
        self.stream
            .write_all(&self.out)
            .await
            .context("sending the request")?;
        (self.start, self.end) = (0, 0);
        let (status, body) = self.read_head().await?;
        match body {
            Body::Length(n) => self.skip(n).await?,
            Body::Chunked => self.skip_chunked().await?,
            Body::UntilClose => loop {
                (self.start, self.end) = (0, 0);
                if self.stream.read(&mut self.buf).await? == 0 {
                    break;
                }
            },
        }
        if self.start != self.end {
            // Bytes after the answer: nothing was asked for them.
            self.reusable = false;
        }
        self.idle_since = Instant::now();
        Ok(status)
    }

    /// Reads more bytes into the buffer; an error at the end of the stream.
    async fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            bail!("the app closed the connection before its answer was complete");
        }
        self.end += n;
        Ok(())
    }

    /// Reads the answer's head (skipping interim 1xx answers): status and body framing.
    async fn read_head(&mut self) -> Result<(u16, Body)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            let parsed = resp
                .parse(&self.buf[self.start..self.end])
                .context("the answer is not HTTP/1.1")?;
            let httparse::Status::Complete(len) = parsed else {
                if self.end - self.start >= MAX_HEAD {
                    bail!("the answer's head is over 64 KiB");
                }
                self.fill().await?;
                continue;
            };
            let status = resp.code.unwrap_or(0);
            if (100..200).contains(&status) {
                self.start += len;
                continue;
            }
            let body = framing(status, resp.headers, &mut self.reusable)?;
            self.start += len;
            return Ok((status, body));
        }
    }

    /// Consumes `n` body bytes.
    async fn skip(&mut self, mut n: usize) -> Result<()> {
        while n > 0 {
            if self.start == self.end {
                self.fill().await?;
            }
            let k = n.min(self.end - self.start);
            self.start += k;
            n -= k;
        }
        Ok(())
    }

    /// Consumes one line (without its CRLF) and returns it.
    async fn line(&mut self) -> Result<String> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(at) = pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&pending[..at]).into_owned();
                self.start += at + 2;
                return Ok(line);
            }
            if pending.len() >= MAX_HEAD {
                bail!("a chunk line of the answer is over 64 KiB");
            }
            self.fill().await?;
        }
    }

    /// Consumes a chunked body and its trailers.
    async fn skip_chunked(&mut self) -> Result<()> {
        loop {
            let line = self.line().await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .with_context(|| format!("bad chunk size {size:?} in the answer"))?;
            if size == 0 {
                while !self.line().await?.is_empty() {}
                return Ok(());
            }
            self.skip(size).await?;
            if !self.line().await?.is_empty() {
                bail!("a chunk of the answer does not end with CRLF");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request (read up to its blank line and body) with the
    /// next canned answer, and returns the requests it read.
    async fn serve(listener: TcpListener, answers: Vec<&'static str>) -> Vec<String> {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut requests = Vec::new();
        for answer in answers {
            let mut req = Vec::new();
            let mut byte = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).await.unwrap();
                req.push(byte[0]);
            }
            let text = String::from_utf8(req).unwrap();
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            let mut body = vec![0; len];
            s.read_exact(&mut body).await.unwrap();
            requests.push(text + &String::from_utf8(body).unwrap());
            s.write_all(answer.as_bytes()).await.unwrap();
        }
        requests
    }

    #[tokio::test]
    async fn reads_every_body_framing_on_one_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(serve(
            listener,
            vec![
                "HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\n{\"id\":12}",
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nabcd\r\n0\r\nT: 1\r\n\r\n",
                "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n",
                "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            ],
        ));
        let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}/app")).unwrap();
        let headers = [("Authorization".to_string(), "Bearer t".to_string())];
        let req = PreparedRequest::new(&base, "POST", "/api/rooms/7/messages", &headers).unwrap();
        let mut conn = req.connect().await.unwrap();
        assert_eq!(conn.send(&req, "{\"content\":\"a\"}").await.unwrap(), 201);
        assert!(conn.usable());
        assert_eq!(conn.send(&req, "{}").await.unwrap(), 200);
        assert_eq!(conn.send(&req, "{}").await.unwrap(), 429);
        assert!(conn.usable());
        assert_eq!(conn.send(&req, "{}").await.unwrap(), 204);
        assert!(!conn.usable(), "the app said it closes the connection");
        let requests = server.await.unwrap();
        assert_eq!(
            requests[0],
            format!(
                "POST /app/api/rooms/7/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
                 Content-Type: application/json\r\nAuthorization: Bearer t\r\n\
                 Content-Length: 15\r\n\r\n{{\"content\":\"a\"}}"
            )
        );
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_app_is_not_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(serve(
            listener,
            vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        ));
        let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let req = PreparedRequest::new(&base, "POST", "/m", &[]).unwrap();
        let mut conn = req.connect().await.unwrap();
        assert_eq!(conn.send(&req, "{}").await.unwrap(), 200);
        server.await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!conn.usable(), "the server closed it");
        assert!(conn.send(&req, "{}").await.is_err());
    }

    #[test]
    fn requests_that_cannot_be_written_are_refused() {
        let base = BaseUrl::parse("http://127.0.0.1:1").unwrap();
        let bad = |name: &str, value: &str| {
            PreparedRequest::new(&base, "POST", "/m", &[(name.into(), value.into())]).is_err()
        };
        assert!(bad("X-A", "a\r\nInjected: 1"));
        assert!(bad("", "a"));
        assert!(PreparedRequest::new(&base, "POST", "/a b", &[]).is_err());
        assert!(!bad("X-A", "a\tb"));
    }
}
