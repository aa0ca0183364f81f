//! Adapter files: how one Express + Socket.IO app names its endpoints, fields and events.
//!
//! Generated apps differ in shape (`name` vs `username`, `send_message` vs `sendMessage`,
//! an identity event before joining, joins with or without an ack callback, sending over
//! the socket or over REST). An adapter (TOML) states the shape; without one, discovery
//! ([`crate::source`] reads the app's code, [`crate::probe`] confirms it against the
//! running app) builds the adapter it found, which is recorded in the result file and can
//! be saved with `--save-adapter`: whatever is saved runs identically with `--adapter`.
//!
//! Templates are JSON values with `{{var}}` placeholders ([`bench_formats::template`]): a
//! string that is exactly `"{{var}}"` becomes the value of `var` (keeping its JSON type, so
//! numeric ids stay numbers) and `{{var}}` inside a longer string is replaced by its text.
//! Variables: `name` (user name), `room` (room name), `user_id`, `room_id`, `content`,
//! `token`. Files in the older single-brace spelling (`"{room_id}"`) are still read.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use bench_formats::template;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The template variables an adapter may use.
pub const VARIABLES: [&str; 6] = ["name", "room", "user_id", "room_id", "content", "token"];

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
    /// Path below the app's URL; may contain `{{room_id}}` or `{{user_id}}`.
    pub path: String,
    /// JSON body template.
    #[serde(default)]
    pub body: Value,
    /// Where the created object's id is in the answer (`id`, `_id`, `user.id`, ...).
    #[serde(default = "default_id")]
    pub id: String,
    /// Extra request headers (templates), e.g. `Authorization = "Bearer {{token}}"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// For `users`: where a session token is in the answer (then `{{token}}` can be used in
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

fn yes() -> bool {
    true
}

/// One event a connection emits after connecting and before sending: an identity event
/// (`register`, `identify`, ...) or a join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupEvent {
    pub event: String,
    /// Payload template: an object, or a bare value such as `"{{room_id}}"`.
    #[serde(default)]
    pub payload: Value,
    /// Whether the app calls the ack callback (then it is awaited, and an error answer
    /// stops the run); fire-and-forget events are followed by a short pause instead.
    #[serde(default = "yes")]
    pub ack: bool,
}

/// The Socket.IO side of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketSpec {
    /// Engine.IO path (`/socket.io/` unless the app changed it).
    #[serde(default = "default_socket_path")]
    pub path: String,
    /// Handshake `auth` payload template (sent with the namespace connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Value>,
    /// Query parameters added to the WebSocket URL (templates allowed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Events emitted after connecting, in order (identity, then joins).
    #[serde(default)]
    pub setup: Vec<SetupEvent>,
    /// Older spelling of `setup`: events that all take `join_payload` and are acknowledged.
    #[serde(default, skip_serializing)]
    pub join_events: Vec<String>,
    #[serde(default, skip_serializing)]
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

/// Where the app stores messages, for verification (found in its schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySpec {
    /// The message table (`messages`, or `schema.table`).
    pub table: String,
    /// Its text column.
    pub text_column: String,
    /// Its room column, to count only the bench room's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_column: Option<String>,
}

/// A whole adapter file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adapter {
    pub users: Endpoint,
    pub rooms: Endpoint,
    /// REST call that makes a user a member of the room, if the app has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<Endpoint>,
    pub socket: SocketSpec,
    /// Send messages with this REST call instead of a socket event (ack = HTTP 2xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_send: Option<Endpoint>,
    /// Where committed messages are counted (without it: every text column of the tables
    /// whose name mentions messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySpec>,
}

impl Adapter {
    pub fn load(path: &Path) -> Result<Adapter> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read adapter file {}", path.display()))?;
        let mut adapter: Adapter = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid adapter (see tools/stress/adapters/ for examples)",
                path.display()
            )
        })?;
        adapter.modernize();
        adapter
            .check()
            .with_context(|| format!("adapter file {}", path.display()))?;
        Ok(adapter)
    }

    /// Rewrites the older spellings (single-brace placeholders, `join_events`) as today's.
    fn modernize(&mut self) {
        let s = &mut self.socket;
        if s.setup.is_empty() {
            s.setup = s
                .join_events
                .iter()
                .map(|event| SetupEvent {
                    event: event.clone(),
                    payload: s.join_payload.clone(),
                    ack: true,
                })
                .collect();
        }
        s.join_events.clear();
        s.join_payload = Value::Null;
        let mut endpoints: Vec<&mut Endpoint> = vec![&mut self.users, &mut self.rooms];
        endpoints.extend(self.join.as_mut());
        endpoints.extend(self.rest_send.as_mut());
        for ep in endpoints {
            ep.path = modern_text(&ep.path);
            ep.body = modern_json(&ep.body);
            for v in ep.headers.values_mut() {
                *v = modern_text(v);
            }
        }
        let s = &mut self.socket;
        s.auth = s.auth.as_ref().map(modern_json);
        for v in s.query.values_mut() {
            *v = modern_text(v);
        }
        for e in &mut s.setup {
            e.payload = modern_json(&e.payload);
        }
        s.send_payload = modern_json(&s.send_payload);
    }

    pub fn check(&self) -> Result<()> {
        if self.rest_send.is_none() && self.socket.send_event.is_empty() {
            bail!("adapter: give socket.send_event, or a [rest_send] endpoint");
        }
        let send = match &self.rest_send {
            Some(ep) => &ep.body,
            None => &self.socket.send_payload,
        };
        if !mentions(send, "content") {
            bail!("adapter: the send payload must contain \"{{{{content}}}}\"");
        }
        Ok(())
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).context("cannot encode the adapter as TOML")
    }

    /// The `classic` shape (of the Rust no-op server, of the reference app's `classic`,
    /// `limited` and `noop` stress shapes, and of many generated apps): users and rooms over
    /// REST with the reference app's session tokens, an acknowledged `join_room`,
    /// `send_message` with an ack callback, broadcast as `new_message`.
    pub fn reference() -> Adapter {
        let mut a = Adapter::reference_app();
        a.rooms.body = json!({"name": "{{room}}", "userId": "{{user_id}}"});
        if let Some(join) = &mut a.join {
            join.body = json!({"userId": "{{user_id}}"});
        }
        let s = &mut a.socket;
        s.auth = Some(json!({"userId": "{{user_id}}", "token": "{{token}}"}));
        s.setup = vec![SetupEvent {
            event: "join_room".into(),
            payload: json!({"roomId": "{{room_id}}", "userId": "{{user_id}}"}),
            ack: true,
        }];
        s.send_payload =
            json!({"roomId": "{{room_id}}", "userId": "{{user_id}}", "content": "{{content}}"});
        s.broadcast_events = vec!["new_message".into()];
        a
    }

    /// The reference app's own shape (`reference-app/`): a session token from
    /// `POST /api/users`, bearer tokens on REST and in the handshake's `auth`, rooms joined
    /// over REST (the server subscribes the user's sockets), `send_message` with an ack
    /// callback, broadcast as `message`.
    pub fn reference_app() -> Adapter {
        let bearer: BTreeMap<String, String> =
            [("Authorization".to_string(), "Bearer {{token}}".to_string())].into();
        let ep = |path: &str, body: Value| Endpoint {
            method: default_method(),
            path: path.into(),
            body,
            id: default_id(),
            headers: bearer.clone(),
            token: None,
        };
        let users = Endpoint {
            id: "user.id".into(),
            token: Some("token".into()),
            headers: BTreeMap::new(),
            ..ep("/api/users", json!({"name": "{{name}}"}))
        };
        Adapter {
            users,
            rooms: ep("/api/rooms", json!({"name": "{{room}}"})),
            join: Some(ep("/api/rooms/{{room_id}}/join", json!({}))),
            socket: SocketSpec {
                path: default_socket_path(),
                auth: Some(json!({"token": "{{token}}"})),
                query: BTreeMap::new(),
                setup: Vec::new(),
                join_events: Vec::new(),
                join_payload: Value::Null,
                send_event: "send_message".into(),
                send_payload: json!({"roomId": "{{room_id}}", "content": "{{content}}"}),
                ack: AckMode::Callback,
                broadcast_events: vec!["message".into()],
            },
            rest_send: None,
            verify: Some(VerifySpec {
                table: "messages".into(),
                text_column: "content".into(),
                room_column: Some("room_id".into()),
            }),
        }
    }
}

/// `{var}` (a known variable, single braces) written as `{{var}}`.
fn modern_text(text: &str) -> String {
    if text.contains("{{") {
        return text.to_string();
    }
    let mut out = text.to_string();
    for name in VARIABLES {
        out = out.replace(&format!("{{{name}}}"), &template::spelled(name));
    }
    out
}

fn modern_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(modern_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(modern_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), modern_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn mentions(value: &Value, var: &str) -> bool {
    let mut names = std::collections::BTreeSet::new();
    template::json_placeholders(value, &mut names);
    names.contains(var)
}

/// Values of the template variables.
pub type Vars = BTreeMap<&'static str, Value>;

/// Fills a template.
pub fn render(value: &Value, vars: &Vars) -> Value {
    template::fill_json(value, &mut |name| vars.get(name).cloned())
}

/// Fills the templates of an endpoint's headers.
pub fn render_headers(ep: &Endpoint, vars: &Vars) -> Vec<(String, String)> {
    ep.headers
        .iter()
        .map(|(k, v)| (k.clone(), render_path(v, vars)))
        .collect()
}

/// Fills `{{var}}` in a path or header (ids as plain text).
pub fn render_path(path: &str, vars: &Vars) -> String {
    template::fill_with(path, |name| {
        vars.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    })
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

    #[test]
    fn fills_templates_keeping_types() {
        let mut vars = Vars::new();
        vars.insert("room_id", json!(7));
        vars.insert("user_id", json!("u-1"));
        vars.insert("content", json!("hi"));
        let out = render(
            &json!({"roomId": "{{room_id}}", "by": "{{user_id}}", "text": "[{{content}}] in {{room_id}}", "n": 1}),
            &vars,
        );
        assert_eq!(
            out,
            json!({"roomId": 7, "by": "u-1", "text": "[hi] in 7", "n": 1})
        );
        assert_eq!(render(&json!("{{room_id}}"), &vars), json!(7));
        assert_eq!(
            render_path("/api/rooms/{{room_id}}/join", &vars),
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
        let published = Adapter::load(&dir.join("register-echo.toml")).unwrap();
        let acks: Vec<bool> = published.socket.setup.iter().map(|e| e.ack).collect();
        assert_eq!(acks, [false, false]);
    }

    #[test]
    fn reads_the_older_spelling_and_rejects_incomplete_files() {
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
        assert_eq!(a.users.body, json!({"name": "{{name}}"}));
        assert_eq!(
            a.socket.setup,
            vec![SetupEvent {
                event: "joinRoom".into(),
                payload: json!({"roomId": "{{room_id}}"}),
                ack: true
            }]
        );
        assert!(!a.to_toml().unwrap().contains("join_events"));

        std::fs::write(&path, "[users]\npath = \"/u\"\n").unwrap();
        let err = format!("{:#}", Adapter::load(&path).unwrap_err());
        assert!(err.contains("not a valid adapter"), "{err}");

        let mut bad = Adapter::reference();
        bad.socket.send_payload = json!({"roomId": "{{room_id}}"});
        assert!(bad.check().is_err(), "a send without content is refused");
    }
}
