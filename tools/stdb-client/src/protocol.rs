//! Wire framing of SpacetimeDB's WebSocket protocol, shared by the client and the test server.
//!
//! Both directions use the official `v2` message types of `spacetimedb-client-api-messages`
//! (the protocol the 2.10 Rust SDK speaks), encoded as BSATN:
//! - client → server: one binary frame per [`ClientMessage`], plain BSATN;
//! - server → client: one binary frame per [`ServerMessage`], prefixed by one compression byte
//!   ([`SERVER_MSG_COMPRESSION_TAG_NONE`] = 0, brotli = 1, gzip = 2). This client asks the server for
//!   `compression=None`, so it only accepts tag 0 and says so when it meets anything else.

use anyhow::{Context, Result, bail};
use spacetimedb_client_api_messages::websocket::common::{
    SERVER_MSG_COMPRESSION_TAG_BROTLI, SERVER_MSG_COMPRESSION_TAG_GZIP,
    SERVER_MSG_COMPRESSION_TAG_NONE,
};
use spacetimedb_client_api_messages::websocket::v2;
use spacetimedb_lib::bsatn;

pub use v2::{ClientMessage, ServerMessage};

/// The WebSocket subprotocol this crate speaks (`v2.bsatn.spacetimedb` in 2.10.1).
pub const SUBPROTOCOL: &str = v2::BIN_PROTOCOL;

/// Encodes a client message as the payload of one binary WebSocket frame.
pub fn encode_client_message(msg: &ClientMessage) -> Result<Vec<u8>> {
    bsatn::to_vec(msg).context("encoding a SpacetimeDB client message as BSATN")
}

/// Decodes the payload of one binary frame received by a server.
pub fn decode_client_message(frame: &[u8]) -> Result<ClientMessage> {
    bsatn::from_slice(frame).context("decoding a SpacetimeDB client message (BSATN, protocol v2)")
}

/// Encodes a server message as the payload of one binary frame, uncompressed (tag byte 0).
pub fn encode_server_message(msg: &ServerMessage) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.push(SERVER_MSG_COMPRESSION_TAG_NONE);
    bsatn::to_writer(&mut out, msg).context("encoding a SpacetimeDB server message as BSATN")?;
    Ok(out)
}

/// Decodes the payload of one binary frame received by a client: compression tag, then BSATN.
pub fn decode_server_message(frame: &[u8]) -> Result<ServerMessage> {
    match frame.split_first() {
        None => bail!(
            "empty binary frame from the server: every SpacetimeDB message starts with a compression byte"
        ),
        Some((&SERVER_MSG_COMPRESSION_TAG_NONE, body)) => bsatn::from_slice(body)
            .context("decoding a SpacetimeDB server message (BSATN, protocol v2)"),
        Some((&tag @ (SERVER_MSG_COMPRESSION_TAG_BROTLI | SERVER_MSG_COMPRESSION_TAG_GZIP), _)) => {
            bail!(
                "the server sent a compressed message (tag {tag}) although this client asked for compression=None; \
             check that the URL's query string reaches the server unchanged"
            )
        }
        Some((tag, _)) => bail!("unknown compression tag {tag:#x} on a server message"),
    }
}

/// Turns `http://host:port[/prefix]` into the WebSocket URL of a database's subscribe endpoint.
pub fn subscribe_url(base_url: &str, database: &str) -> Result<String> {
    let base = base_url.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_string()
    } else {
        bail!(
            "SpacetimeDB URL `{base_url}` must start with http://, https://, ws:// or wss:// (e.g. http://127.0.0.1:3000)"
        )
    };
    check_database_name(database)?;
    Ok(format!(
        "{rest}/v1/database/{database}/subscribe?compression=None"
    ))
}

/// Turns `ws(s)://` or `http(s)://` into the HTTP base used by the REST endpoints.
pub fn http_base(base_url: &str) -> Result<String> {
    let base = base_url.trim_end_matches('/');
    if base.starts_with("http://") || base.starts_with("https://") {
        Ok(base.to_string())
    } else if let Some(rest) = base.strip_prefix("ws://") {
        Ok(format!("http://{rest}"))
    } else if let Some(rest) = base.strip_prefix("wss://") {
        Ok(format!("https://{rest}"))
    } else {
        bail!(
            "SpacetimeDB URL `{base_url}` must start with http:// or https:// (e.g. http://127.0.0.1:3000)"
        )
    }
}

/// Database names and identities are path segments: refuse anything that would change the path.
pub fn check_database_name(database: &str) -> Result<()> {
    if database.is_empty() || database.contains(['/', '?', '#', ' ']) {
        bail!(
            "`{database}` is not a database name or identity (it must be one non-empty path segment)"
        );
    }
    Ok(())
}
