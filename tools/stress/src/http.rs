//! The apps' REST set-up calls (reqwest) and where an app listens.
//!
//! Load only ever targets the loopback interface over plain HTTP; set-up makes a few dozen
//! requests through one shared client (no proxy: the app is on this machine).

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

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
    pub fn parse(text: &str) -> Result<BaseUrl> {
        let url = url::Url::parse(text)
            .with_context(|| format!("{text}: give the app's URL as http://127.0.0.1:PORT"))?;
        if url.scheme() != "http" {
            bail!("{text}: give the app's URL as http://127.0.0.1:PORT (plain http)");
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            Some(host) => host.to_string(),
            None => bail!("{text}: the URL has no host"),
        };
        check_loopback(&host).with_context(|| format!("{text} is not a local app"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(BaseUrl {
            authority: format!("{host}:{port}"),
            host,
            port,
            prefix: url.path().trim_end_matches('/').to_string(),
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

/// `path?k=v&...` with the keys and values URL-encoded.
pub fn with_query<'a>(path: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
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

fn client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")?;
    Ok(CLIENT.get_or_init(|| built))
}

/// One REST call made many times with different JSON bodies (REST message sends): the
/// request is built once; an answer is only its status (the body is read and dropped, so
/// that the connection is reused).
pub struct PreparedCall {
    method: reqwest::Method,
    url: String,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
}

impl PreparedCall {
    pub fn new(
        base: &BaseUrl,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<PreparedCall> {
        let mut map = reqwest::header::HeaderMap::new();
        map.insert("content-type", "application/json".parse()?);
        for (name, value) in headers {
            let name: reqwest::header::HeaderName = name
                .parse()
                .with_context(|| format!("{name:?} is not a header name"))?;
            let value = value
                .parse()
                .with_context(|| format!("header {name}: {value:?} is not a header value"))?;
            map.insert(name, value);
        }
        Ok(PreparedCall {
            method: reqwest::Method::from_bytes(method.as_bytes())
                .with_context(|| format!("{method:?} is not an HTTP method"))?,
            url: base.http(path),
            headers: map,
            timeout,
        })
    }

    /// Sends `body` (JSON text); the answer's status.
    pub async fn send(&self, body: String) -> Result<u16> {
        let resp = client()?
            .request(self.method.clone(), &self.url)
            .headers(self.headers.clone())
            .timeout(self.timeout)
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        resp.bytes().await?;
        Ok(status)
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
    let url = base.http(path);
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("{method:?} is not an HTTP method"))?;
    let mut req = client()?
        .request(method.clone(), &url)
        .timeout(timeout)
        .header("accept", "application/json");
    for (name, value) in headers {
        if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
            bail!("header {name:?} contains a line break");
        }
        req = req.header(name.as_str(), value.as_str());
    }
    if body.is_some() || method != reqwest::Method::GET {
        let text = body.map(Value::to_string).unwrap_or_default();
        req = req.header("content-type", "application/json").body(text);
    }
    let resp = req.send().await.map_err(|err| {
        let why = if err.is_timeout() {
            format!("got no answer within {timeout:?}")
        } else if err.is_connect() {
            "cannot connect (is the app running?)".to_string()
        } else {
            "failed (did the app close the connection?)".to_string()
        };
        anyhow::Error::new(err).context(format!("{method} {url} {why}"))
    })?;
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading the answer of {method} {url}"))?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Response { status, json, text })
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
    fn query_strings_are_encoded() {
        assert_eq!(
            with_query("/socket.io/", [("EIO", "4"), ("token", "a b&c=d")]),
            "/socket.io/?EIO=4&token=a+b%26c%3Dd"
        );
        assert_eq!(with_query("/x", []), "/x");
    }
}
