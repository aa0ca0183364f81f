//! Engine.IO v4 / Socket.IO v4 packet framing over WebSocket text frames.
//!
//! Only what a chat client needs: the open packet, ping/pong, namespace connect, events
//! (with an optional ack id) and acks. Binary attachments are not used by the apps.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

/// One decoded WebSocket text frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `0{...}`: the handshake, with the session parameters.
    Open(&'a str),
    /// `1`: the server closes the session.
    Close,
    /// `2` (optionally with a payload): the server's heartbeat, to be answered with `3`.
    Ping(&'a str),
    /// `3`.
    Pong,
    /// `6`.
    Noop,
    /// `40{...}`: the namespace accepted the connection.
    Connect(&'a str),
    /// `41`: the namespace closed the connection.
    Disconnect,
    /// `42[...]` or `42<id>[...]`: an event; `data` is the JSON array `["name", args...]`.
    Event { ack: Option<u64>, data: &'a str },
    /// `43<id>[...]`: the answer to an event sent with ack id `id`.
    Ack { id: u64, data: &'a str },
    /// `44{...}`: the namespace refused the connection.
    ConnectError(&'a str),
    /// Any other Engine.IO message (binary events, upgrade probes).
    Other(&'a str),
}

/// The session parameters of the open packet.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    pub sid: String,
    #[serde(default)]
    pub ping_interval: u64,
    #[serde(default)]
    pub ping_timeout: u64,
    #[serde(default)]
    pub max_payload: Option<u64>,
}

/// Decodes one text frame.
pub fn parse(text: &str) -> Result<Packet<'_>> {
    let bytes = text.as_bytes();
    let Some(&kind) = bytes.first() else {
        bail!("empty Engine.IO packet");
    };
    let rest = &text[1..];
    Ok(match kind {
        b'0' => Packet::Open(rest),
        b'1' => Packet::Close,
        b'2' => Packet::Ping(rest),
        b'3' => Packet::Pong,
        b'6' => Packet::Noop,
        b'4' => parse_socketio(rest)?,
        b'5' => Packet::Other(text),
        other => bail!("unknown Engine.IO packet type {:?}", other as char),
    })
}

fn parse_socketio(text: &str) -> Result<Packet<'_>> {
    let Some(&kind) = text.as_bytes().first() else {
        bail!("empty Socket.IO packet");
    };
    let mut rest = &text[1..];
    // Binary packets carry `<n>-` before the namespace; the apps do not send them.
    if matches!(kind, b'5' | b'6') {
        return Ok(Packet::Other(text));
    }
    // A namespace other than "/" comes first, ended by a comma.
    if rest.starts_with('/') {
        let end = rest
            .find(',')
            .context("Socket.IO packet has a namespace without its comma")?;
        rest = &rest[end + 1..];
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        Some(
            rest[..digits]
                .parse::<u64>()
                .context("Socket.IO ack id is not a number")?,
        )
    } else {
        None
    };
    let data = &rest[digits..];
    Ok(match kind {
        b'0' => Packet::Connect(data),
        b'1' => Packet::Disconnect,
        b'2' => Packet::Event { ack: id, data },
        b'3' => Packet::Ack {
            id: id.context("Socket.IO ack without an id")?,
            data,
        },
        b'4' => Packet::ConnectError(data),
        other => bail!("unknown Socket.IO packet type {:?}", other as char),
    })
}

/// `40` or `40{auth}`: connect to the default namespace.
pub fn connect(auth: Option<&Value>) -> String {
    match auth {
        Some(auth) => format!("40{auth}"),
        None => "40".to_string(),
    }
}

/// The answer to a ping.
pub const PONG: &str = "3";

/// `42["event",payload]` or `42<ack>["event",payload]`.
pub fn event(ack: Option<u64>, name: &str, payload: &Value) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("42");
    if let Some(id) = ack {
        out.push_str(&id.to_string());
    }
    out.push('[');
    out.push_str(&Value::String(name.to_string()).to_string());
    out.push(',');
    out.push_str(&payload.to_string());
    out.push(']');
    out
}

/// The name of an event from its `["name", ...]` data, without decoding the arguments.
pub fn event_name(data: &str) -> Option<&str> {
    let rest = data.strip_prefix("[\"")?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

/// Whether an ack's arguments say the request failed: a first argument that is an object
/// with an `error` (non-null, non-false), `ok: false` or `success: false`, or an `Error...`
/// string. An ack without arguments, or with anything else, is a success.
pub fn ack_error(data: &str) -> Option<String> {
    let Ok(Value::Array(args)) = serde_json::from_str::<Value>(data) else {
        return Some(format!("ack is not a JSON array: {}", truncate(data, 120)));
    };
    match args.first() {
        Some(Value::Object(map)) => {
            if let Some(err) = map
                .get("error")
                .filter(|e| !matches!(e, Value::Null | Value::Bool(false)))
            {
                return Some(match err {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
            for key in ["ok", "success"] {
                if map.get(key) == Some(&Value::Bool(false)) {
                    return Some(
                        map.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("request refused")
                            .to_string(),
                    );
                }
            }
            None
        }
        Some(Value::String(s)) if s.to_ascii_lowercase().starts_with("error") => Some(s.clone()),
        _ => None,
    }
}

/// Cuts a text to `max` bytes on a character boundary, for error messages.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_engineio_packets() {
        let open = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let Packet::Open(json) = parse(open).unwrap() else {
            panic!()
        };
        let info: OpenInfo = serde_json::from_str(json).unwrap();
        assert_eq!(info.sid, "abc");
        assert_eq!(info.ping_interval, 25000);
        assert_eq!(parse("2").unwrap(), Packet::Ping(""));
        assert_eq!(parse("3").unwrap(), Packet::Pong);
        assert_eq!(parse("1").unwrap(), Packet::Close);
        assert!(parse("").is_err());
        assert!(parse("9").is_err());
    }

    #[test]
    fn decodes_socketio_packets() {
        assert_eq!(
            parse(r#"40{"sid":"x"}"#).unwrap(),
            Packet::Connect(r#"{"sid":"x"}"#)
        );
        assert_eq!(
            parse(r#"42["new_message",{"id":1}]"#).unwrap(),
            Packet::Event {
                ack: None,
                data: r#"["new_message",{"id":1}]"#
            }
        );
        assert_eq!(
            parse(r#"4217["send",1]"#).unwrap(),
            Packet::Event {
                ack: Some(17),
                data: r#"["send",1]"#
            }
        );
        assert_eq!(
            parse(r#"43123[{"ok":true}]"#).unwrap(),
            Packet::Ack {
                id: 123,
                data: r#"[{"ok":true}]"#
            }
        );
        assert_eq!(
            parse(r#"43/chat,5[]"#).unwrap(),
            Packet::Ack { id: 5, data: "[]" }
        );
        assert_eq!(
            parse(r#"44{"message":"no"}"#).unwrap(),
            Packet::ConnectError(r#"{"message":"no"}"#)
        );
        assert!(parse("43[]").is_err(), "an ack needs an id");
        assert!(parse("4").is_err());
    }

    #[test]
    fn encodes_what_it_decodes() {
        let text = event(
            Some(9),
            "send_message",
            &json!({"roomId": 1, "content": "a\"b"}),
        );
        assert_eq!(text, r#"429["send_message",{"content":"a\"b","roomId":1}]"#);
        let Packet::Event { ack, data } = parse(&text).unwrap() else {
            panic!()
        };
        assert_eq!(ack, Some(9));
        assert_eq!(event_name(data), Some("send_message"));
        assert_eq!(event(None, "x", &json!(null)), r#"42["x",null]"#);
        assert_eq!(connect(None), "40");
        assert_eq!(connect(Some(&json!({"userId": 3}))), r#"40{"userId":3}"#);
    }

    #[test]
    fn tells_failed_acks_from_successful_ones() {
        assert_eq!(ack_error(r#"[{"ok":true,"message":{"id":1}}]"#), None);
        assert_eq!(ack_error("[]"), None);
        assert_eq!(ack_error(r#"[{"error":null}]"#), None);
        assert_eq!(
            ack_error(r#"[{"error":"rate limited"}]"#).as_deref(),
            Some("rate limited")
        );
        assert_eq!(
            ack_error(r#"[{"success":false,"message":"slow down"}]"#).as_deref(),
            Some("slow down")
        );
        assert!(ack_error(r#"["Error: no room"]"#).is_some());
        assert!(ack_error("not json").is_some());
    }
}
