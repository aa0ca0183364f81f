//! Adapter files: how one Express + Socket.IO app names its endpoints, fields and events.
//!
//! Generated apps differ in shape (`name` vs `username`, `send_message` vs `sendMessage`,
//! an ack callback or only the broadcast, sending over the socket or over REST). An adapter
//! (TOML) states the shape; without one, [`crate::socketio::probe`] tries the common shapes
//! and builds the adapter it found, which is recorded in the result file.
//!
//! Templates are JSON values in which a string that is exactly `"{var}"` becomes the value
//! of `var` (keeping its JSON type, so numeric ids stay numbers) and `{var}` inside a longer
//! string is replaced by its text. Variables: `name` (user name), `room` (room name),
//! `user_id`, `room_id`, `content`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the sender learns that a message was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// The app calls the Socket.IO ack callback (`43<id>[...]`).
    Callback,
    /// No callback: the sender's own message coming back in the room broadcast is the ack.
    Echo,
}

/// One REST call of the set-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    #[serde(default = "default_method")]
    pub method: String,
    /// Path below the app's URL; may contain `{room_id}` or `{user_id}`.
    pub path: String,
    /// JSON body template.
    #[serde(default)]
    pub body: Value,
    /// Where the created object's id is in the answer (`id`, `_id`, `user.id`, ...).
    #[serde(default = "default_id")]
    pub id: String,
    /// Extra request headers (templates), e.g. `Authorization = "Bearer {token}"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// For `users`: where a session token is in the answer (then `{token}` can be used in
    /// later headers, the socket's `auth` and `query`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn default_method() -> String {
    "POST".to_string()
}

fn default_id() -> String {
    "id".to_string()
}

/// The Socket.IO side of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketSpec {
    /// Engine.IO path (`/socket.io/` unless the app changed it).
    #[serde(default = "default_socket_path")]
    pub path: String,
    /// Handshake `auth` payload template (sent with the namespace connect).
    #[serde(default)]
    pub auth: Option<Value>,
    /// Query parameters added to the WebSocket URL (templates allowed).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Events emitted after connecting to enter the room (all of them, in order).
    #[serde(default)]
    pub join_events: Vec<String>,
    #[serde(default)]
    pub join_payload: Value,
    /// Event that sends a message (unused when `rest_send` is set).
    #[serde(default)]
    pub send_event: String,
    #[serde(default)]
    pub send_payload: Value,
    pub ack: AckMode,
    /// Events the app broadcasts messages with (informational: listeners look for the
    /// run's markers in every event).
    #[serde(default)]
    pub broadcast_events: Vec<String>,
}

fn default_socket_path() -> String {
    "/socket.io/".to_string()
}

/// A whole adapter file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adapter {
    pub users: Endpoint,
    pub rooms: Endpoint,
    /// REST call that makes a user a member of the room, if the app has one.
    #[serde(default)]
    pub join: Option<Endpoint>,
    pub socket: SocketSpec,
    /// Send messages with this REST call instead of a socket event (ack = HTTP 2xx).
    #[serde(default)]
    pub rest_send: Option<Endpoint>,
}

impl Adapter {
    pub fn load(path: &Path) -> Result<Adapter> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read adapter file {}", path.display()))?;
        let adapter: Adapter = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid adapter (see tools/stress/adapters/ for examples)",
                path.display()
            )
        })?;
        adapter.check()?;
        Ok(adapter)
    }

    pub fn check(&self) -> Result<()> {
        if self.rest_send.is_none() && self.socket.send_event.is_empty() {
            bail!("adapter: give socket.send_event, or a [rest_send] endpoint");
        }
        if self.rest_send.is_none() && !mentions(&self.socket.send_payload, "content") {
            bail!("adapter: socket.send_payload must contain \"{{content}}\"");
        }
        Ok(())
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).context("cannot encode the adapter as TOML")
    }

    /// The adapter of the project's reference server (and of many generated apps).
    pub fn reference() -> Adapter {
        use serde_json::json;
        Adapter {
            users: Endpoint {
                method: default_method(),
                path: "/api/users".into(),
                body: json!({"username": "{name}"}),
                id: default_id(),
                headers: BTreeMap::new(),
                token: None,
            },
            rooms: Endpoint {
                method: default_method(),
                path: "/api/rooms".into(),
                body: json!({"name": "{room}", "userId": "{user_id}"}),
                id: default_id(),
                headers: BTreeMap::new(),
                token: None,
            },
            join: Some(Endpoint {
                method: default_method(),
                path: "/api/rooms/{room_id}/join".into(),
                body: json!({"userId": "{user_id}"}),
                id: default_id(),
                headers: BTreeMap::new(),
                token: None,
            }),
            socket: SocketSpec {
                path: default_socket_path(),
                auth: Some(json!({"userId": "{user_id}"})),
                query: BTreeMap::new(),
                join_events: vec!["join_room".into()],
                join_payload: json!({"roomId": "{room_id}", "userId": "{user_id}"}),
                send_event: "send_message".into(),
                send_payload: json!({"roomId": "{room_id}", "userId": "{user_id}", "content": "{content}"}),
                ack: AckMode::Callback,
                broadcast_events: vec!["new_message".into()],
            },
            rest_send: None,
        }
    }
}

fn mentions(template: &Value, var: &str) -> bool {
    let needle = format!("{{{var}}}");
    match template {
        Value::String(s) => s.contains(&needle),
        Value::Array(items) => items.iter().any(|v| mentions(v, var)),
        Value::Object(map) => map.values().any(|v| mentions(v, var)),
        _ => false,
    }
}

/// Values of the template variables.
pub type Vars = BTreeMap<&'static str, Value>;

/// Fills a template.
pub fn render(template: &Value, vars: &Vars) -> Value {
    match template {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
                && let Some(v) = vars.get(name)
            {
                return v.clone();
            }
            let mut out = s.clone();
            for (name, value) in vars {
                let needle = format!("{{{name}}}");
                if out.contains(&needle) {
                    let text = match value {
                        Value::String(t) => t.clone(),
                        other => other.to_string(),
                    };
                    out = out.replace(&needle, &text);
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Fills the templates of an endpoint's headers.
pub fn render_headers(ep: &Endpoint, vars: &Vars) -> Vec<(String, String)> {
    ep.headers
        .iter()
        .map(|(k, v)| (k.clone(), render_path(v, vars)))
        .collect()
}

/// Fills `{var}` in a path (ids as plain text).
pub fn render_path(path: &str, vars: &Vars) -> String {
    match render(&Value::String(path.to_string()), vars) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Finds a value by a dotted path (`user.id`).
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_templates_keeping_types() {
        let mut vars = Vars::new();
        vars.insert("room_id", json!(7));
        vars.insert("user_id", json!("u-1"));
        vars.insert("content", json!("hi"));
        let out = render(
            &json!({"roomId": "{room_id}", "by": "{user_id}", "text": "[{content}] in {room_id}", "n": 1}),
            &vars,
        );
        assert_eq!(
            out,
            json!({"roomId": 7, "by": "u-1", "text": "[hi] in 7", "n": 1})
        );
        assert_eq!(
            render_path("/api/rooms/{room_id}/join", &vars),
            "/api/rooms/7/join"
        );
        assert_eq!(
            lookup(&json!({"user": {"_id": "a"}}), "user._id"),
            Some(&json!("a"))
        );
        assert_eq!(lookup(&json!({"id": null}), "id"), None);
    }

    #[test]
    fn the_shipped_adapter_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
        assert_eq!(
            Adapter::load(&dir.join("reference.toml")).unwrap(),
            Adapter::reference()
        );
        let alt = Adapter::load(&dir.join("alt-shape.toml")).unwrap();
        assert_eq!(
            (alt.socket.send_event.as_str(), alt.socket.ack),
            ("sendMessage", AckMode::Echo)
        );
    }

    #[test]
    fn reads_an_adapter_file_and_rejects_incomplete_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.toml");
        std::fs::write(&path, Adapter::reference().to_toml().unwrap()).unwrap();
        assert_eq!(Adapter::load(&path).unwrap(), Adapter::reference());

        std::fs::write(
            &path,
            r#"
[users]
path = "/users"
body = { name = "{name}" }
[rooms]
path = "/rooms"
body = { name = "{room}" }
id = "room._id"
[socket]
join_events = ["joinRoom"]
join_payload = { roomId = "{room_id}" }
send_event = "sendMessage"
send_payload = { roomId = "{room_id}", text = "{content}" }
ack = "echo"
"#,
        )
        .unwrap();
        let a = Adapter::load(&path).unwrap();
        assert_eq!(a.socket.ack, AckMode::Echo);
        assert_eq!(a.socket.path, "/socket.io/");
        assert_eq!(a.rooms.id, "room._id");
        assert_eq!(a.users.method, "POST");

        std::fs::write(&path, "[users]\npath = \"/u\"\n").unwrap();
        let err = format!("{:#}", Adapter::load(&path).unwrap_err());
        assert!(err.contains("not a valid adapter"), "{err}");

        let mut bad = Adapter::reference();
        bad.socket.send_payload = json!({"roomId": "{room_id}"});
        assert!(bad.check().is_err(), "a send without content is refused");
    }
}
