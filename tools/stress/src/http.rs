//! A minimal HTTP/1.1 JSON client for the apps' REST set-up calls.
//!
//! The load only ever targets the loopback interface over plain HTTP, and set-up makes a
//! few dozen requests, so one connection per request (`Connection: close`) is enough.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where an app listens: `http://127.0.0.1:3000[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `host:port`.
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash (usually empty).
    pub prefix: String,
}

impl BaseUrl {
    /// Parses an `http://` URL whose host is on the loopback interface.
    pub fn parse(url: &str) -> Result<BaseUrl> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: give the app's URL as http://127.0.0.1:PORT"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .with_context(|| format!("{url}: the port is not a number"))?,
            ),
            None => (authority, 80),
        };
        check_loopback(host).with_context(|| format!("{url} is not a local app"))?;
        Ok(BaseUrl {
            authority: format!("{host}:{port}"),
            host: host.to_string(),
            port,
            prefix: prefix.to_string(),
        })
    }

    /// The WebSocket URL of a path on this server.
    pub fn ws(&self, path_and_query: &str) -> String {
        format!("ws://{}{}{}", self.authority, self.prefix, path_and_query)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}{}", self.authority, self.prefix, path)
    }
}

/// Load is only ever sent to this machine.
pub fn check_loopback(host: &str) -> Result<()> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" {
        return Ok(());
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => Ok(()),
        _ => bail!("bench-stress only loads 127.0.0.1 (got host {host:?}): run the app locally"),
    }
}

/// An HTTP answer: status and JSON body (`Null` when the body is empty or not JSON;
/// the raw text is kept for error messages).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub json: Value,
    pub text: String,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends `method path` with an optional JSON body and reads the whole answer.
pub async fn request(
    base: &BaseUrl,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<Response> {
    tokio::time::timeout(timeout, request_inner(base, method, path, body, headers))
        .await
        .with_context(|| {
            format!(
                "{method} {} got no answer within {timeout:?}",
                base.http(path)
            )
        })?
}

async fn request_inner(
    base: &BaseUrl,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(String, String)],
) -> Result<Response> {
    let mut stream = TcpStream::connect(&base.authority)
        .await
        .with_context(|| format!("cannot connect to {} (is the app running?)", base.http("")))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
        base.prefix, base.authority
    );
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    for (name, value) in headers {
        if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
            bail!("header {name:?} contains a line break");
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let sent = format!(
        "sending {method} {path} to {} (did the app close the connection?)",
        base.http("")
    );
    stream
        .write_all(head.as_bytes())
        .await
        .context(sent.clone())?;
    stream.write_all(body.as_bytes()).await.context(sent)?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .with_context(|| format!("reading the answer of {method} {path}"))?;
    parse_response(&raw).with_context(|| format!("bad HTTP answer to {method} {path}"))
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).context("headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body)?;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Response { status, json, text })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line not ended")?;
        let size_text = std::str::from_utf8(&data[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            bail!("chunk shorter than announced");
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_urls_and_refuses_remote_ones() {
        let url = BaseUrl::parse("http://127.0.0.1:3001/app/").unwrap();
        assert_eq!(url.authority, "127.0.0.1:3001");
        assert_eq!(url.prefix, "/app");
        assert_eq!(
            url.ws("/socket.io/?EIO=4"),
            "ws://127.0.0.1:3001/app/socket.io/?EIO=4"
        );
        assert!(BaseUrl::parse("http://localhost:80").is_ok());
        assert!(BaseUrl::parse("http://[::1]:80").is_ok());
        let err = BaseUrl::parse("http://example.com:80").unwrap_err();
        assert!(format!("{err:#}").contains("127.0.0.1"), "{err:#}");
        assert!(BaseUrl::parse("https://127.0.0.1").is_err());
    }

    #[test]
    fn reads_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 201 Created\r\nContent-Length: 8\r\n\r\n{\"id\":1}";
        let r = parse_response(plain).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.json["id"], 1);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:2}\r\n0\r\n\r\n";
        let r = parse_response(chunked).unwrap();
        assert_eq!(r.json["a"], 2);
        assert!(parse_response(b"garbage").is_err());
    }
}
