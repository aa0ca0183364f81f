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

/// Splits `http://host:port[/prefix]` (or `ws://…`) into `host:port[/prefix]`. TLS URLs are refused:
/// this crate is built without TLS, for servers on the benchmark machine.
fn host_part(base_url: &str) -> Result<&str> {
    let base = base_url.trim_end_matches('/');
    if let Some(rest) = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("ws://"))
    {
        return Ok(rest);
    }
    if base.starts_with("https://") || base.starts_with("wss://") {
        bail!(
            "`{base_url}`: TLS (https/wss) is not supported: this client is built for local SpacetimeDB \
             servers (e.g. http://127.0.0.1:3000)"
        );
    }
    bail!("SpacetimeDB URL `{base_url}` must start with http:// (e.g. http://127.0.0.1:3000)")
}

/// Turns `http://host:port[/prefix]` into the WebSocket URL of a database's subscribe endpoint.
pub fn subscribe_url(base_url: &str, database: &str) -> Result<String> {
    let host = host_part(base_url)?;
    check_database_name(database)?;
    Ok(format!(
        "ws://{host}/v1/database/{database}/subscribe?compression=None"
    ))
}

/// Turns `http://…` or `ws://…` into the HTTP base used by the REST endpoints.
pub fn http_base(base_url: &str) -> Result<String> {
    Ok(format!("http://{}", host_part(base_url)?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use spacetimedb_client_api_messages::websocket::common::QuerySetId;
    use spacetimedb_lib::{ConnectionId, Identity, Timestamp};

    /// BSATN of a string or byte list: u32 little-endian length, then the bytes.
    fn lp(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }

    #[test]
    fn call_reducer_bytes_match_the_v2_layout_and_decode_with_the_official_type() {
        let msg = ClientMessage::CallReducer(v2::CallReducer {
            request_id: 0x0102_0304,
            flags: v2::CallReducerFlags::Default,
            reducer: "send_message".into(),
            args: vec![7, 0, 0, 0, 0, 0, 0, 0].into(),
        });
        let bytes = encode_client_message(&msg).unwrap();
        // Variant 3 of ClientMessage (Subscribe, Unsubscribe, OneOffQuery, CallReducer, …),
        // then request_id, flags, reducer name, args — in declaration order.
        let mut expected = vec![3u8];
        expected.extend_from_slice(&0x0102_0304u32.to_le_bytes());
        expected.push(0);
        lp(&mut expected, b"send_message");
        lp(&mut expected, &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes, expected);

        let decoded: v2::ClientMessage = bsatn::from_slice(&bytes).unwrap();
        let ClientMessage::CallReducer(call) = decoded else {
            panic!("wrong variant")
        };
        assert_eq!(call.request_id, 0x0102_0304);
        assert_eq!(&*call.reducer, "send_message");
        assert_eq!(call.args.as_ref(), &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert!(call.flags == v2::CallReducerFlags::Default);
    }

    #[test]
    fn subscribe_round_trips_through_the_official_type() {
        let msg = ClientMessage::Subscribe(v2::Subscribe {
            request_id: 9,
            query_set_id: QuerySetId::new(4),
            query_strings: vec!["SELECT * FROM message".into(), "SELECT * FROM room".into()].into(),
        });
        let bytes = encode_client_message(&msg).unwrap();
        assert_eq!(bytes[0], 0, "Subscribe is variant 0");
        let ClientMessage::Subscribe(sub) = decode_client_message(&bytes).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!((sub.request_id, sub.query_set_id.id), (9, 4));
        assert_eq!(&*sub.query_strings[1], "SELECT * FROM room");
        assert!(decode_client_message(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn server_frames_carry_a_compression_byte_and_decode_with_the_official_type() {
        let identity = Identity::from_claims("issuer", "subject");
        let msg = ServerMessage::InitialConnection(v2::InitialConnection {
            identity,
            connection_id: ConnectionId::from_u128(0xabcdef),
            token: "tok".into(),
        });
        let frame = encode_server_message(&msg).unwrap();
        assert_eq!(frame[0], SERVER_MSG_COMPRESSION_TAG_NONE);
        assert_eq!(frame[1], 0, "InitialConnection is variant 0");
        assert_eq!(
            &frame[2..34],
            &identity.to_byte_array(),
            "identity: 32 little-endian bytes"
        );
        assert_eq!(&frame[34..50], &0xabcdefu128.to_le_bytes());
        let official: v2::ServerMessage = bsatn::from_slice(&frame[1..]).unwrap();
        let v2::ServerMessage::InitialConnection(ic) = official else {
            panic!("wrong variant")
        };
        assert_eq!((ic.identity, &*ic.token), (identity, "tok"));

        // A ReducerResult built by hand: variant 6, request id, timestamp (i64 µs), outcome
        // variant 2 (`Err`) with a BSATN string payload.
        let mut frame = vec![0u8, 6];
        frame.extend_from_slice(&77u32.to_le_bytes());
        frame.extend_from_slice(&1_700_000_000_000_000i64.to_le_bytes());
        frame.push(2);
        let mut payload = Vec::new();
        lp(&mut payload, b"nope");
        lp(&mut frame, &payload);
        let ServerMessage::ReducerResult(r) = decode_server_message(&frame).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(r.request_id, 77);
        assert_eq!(
            r.timestamp,
            Timestamp::from_micros_since_unix_epoch(1_700_000_000_000_000)
        );
        let v2::ReducerOutcome::Err(bytes) = r.result else {
            panic!("wrong outcome")
        };
        assert_eq!(bsatn::from_slice::<String>(&bytes).unwrap(), "nope");
    }

    #[test]
    fn bad_server_frames_get_clear_errors() {
        assert!(
            decode_server_message(&[])
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let err = decode_server_message(&[1, 0, 0]).unwrap_err().to_string();
        assert!(
            err.contains("compressed") && err.contains("compression=None"),
            "{err}"
        );
        assert!(
            decode_server_message(&[9])
                .unwrap_err()
                .to_string()
                .contains("0x9")
        );
        assert!(decode_server_message(&[0, 200]).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            subscribe_url("http://127.0.0.1:3000/", "chat").unwrap(),
            "ws://127.0.0.1:3000/v1/database/chat/subscribe?compression=None"
        );
        assert_eq!(
            subscribe_url("ws://h/prefix", "c200").unwrap(),
            "ws://h/prefix/v1/database/c200/subscribe?compression=None"
        );
        assert!(
            subscribe_url("https://h", "c")
                .unwrap_err()
                .to_string()
                .contains("TLS")
        );
        assert!(
            subscribe_url("127.0.0.1:3000", "chat")
                .unwrap_err()
                .to_string()
                .contains("http://")
        );
        assert!(subscribe_url("http://h", "a/b").is_err());
        assert!(subscribe_url("http://h", "").is_err());
        assert_eq!(http_base("ws://h:1").unwrap(), "http://h:1");
        assert_eq!(http_base("http://h:1/").unwrap(), "http://h:1");
    }
}
