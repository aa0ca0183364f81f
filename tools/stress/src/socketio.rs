//! The client for Express + Socket.IO apps: REST set-up, Socket.IO v4 over WebSocket for
//! the traffic, and probing of the common app shapes when no adapter file is given.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream::{FuturesUnordered, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::adapter::{AckMode, Adapter, Endpoint, SocketSpec, Vars, lookup, render, render_path};
use crate::backend::{Backend, Committed, Listener, Marker, Outcome, Writer};
use crate::engineio::{self, OpenInfo, Packet};
use crate::http::{self, BaseUrl};

const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ack ids at or above this are set-up requests, never message tags.
const CONTROL_ACK_BASE: u64 = 1 << 40;

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// WebSocket settings of every connection. tungstenite zero-fills its whole read buffer
/// (128 KiB by default) before each socket read; chat frames are small and arrive one per
/// read at app speeds, so a small buffer saves most of the client's CPU.
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// Hands a WebSocket's write half to a task that writes what the returned channel receives,
/// up to 64 frames per flush, and closes the socket once every sender is gone. Used by the
/// client's connections and by the no-op server alike.
pub fn spawn_sender<S>(mut sink: S) -> mpsc::UnboundedSender<Message>
where
    S: futures_util::Sink<Message> + Unpin + Send + 'static,
{
    let (out, mut rx) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64);
        while rx.recv_many(&mut batch, 64).await > 0 {
            for msg in batch.drain(..) {
                if sink.feed(msg).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    out
}

/// One Socket.IO connection: reads here, writes through a task that batches frames.
pub struct Conn {
    out: mpsc::UnboundedSender<Message>,
    stream: SplitStream<WsStream>,
}

impl Conn {
    /// Opens the WebSocket, reads the open packet and connects to the default namespace.
    pub async fn open(base: &BaseUrl, spec: &SocketSpec, vars: &Vars) -> Result<Conn> {
        let mut query = String::from("?EIO=4&transport=websocket");
        for (k, v) in &spec.query {
            query.push('&');
            query.push_str(k);
            query.push('=');
            query.push_str(&render_path(v, vars));
        }
        let url = base.ws(&format!("{}{}", spec.path, query));
        let (ws, _) = tokio::time::timeout(
            SETUP_TIMEOUT,
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config()), true),
        )
        .await
        .with_context(|| format!("{url}: no WebSocket handshake within {SETUP_TIMEOUT:?}"))?
        .with_context(|| format!("cannot open a Socket.IO WebSocket at {url} (is the app running, is socket.path right?)"))?;
        let (sink, stream) = ws.split();
        let out = spawn_sender(sink);
        let mut conn = Conn { out, stream };
        let open = conn
            .next_frame(SETUP_TIMEOUT)
            .await
            .context("waiting for the Engine.IO open packet")?;
        match engineio::parse(&open)? {
            Packet::Open(json) => {
                let _: OpenInfo =
                    serde_json::from_str(json).context("bad Engine.IO open packet")?;
            }
            _ => bail!(
                "expected the Engine.IO open packet, got {}",
                engineio::truncate(&open, 80)
            ),
        }
        let auth = spec.auth.as_ref().map(|a| render(a, vars));
        conn.send_text(engineio::connect(auth.as_ref()))?;
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            let text = conn
                .next_frame(deadline.saturating_duration_since(Instant::now()))
                .await?;
            match engineio::parse(&text)? {
                Packet::Connect(_) => return Ok(conn),
                Packet::ConnectError(why) => {
                    bail!("the app refused the Socket.IO connection: {why}")
                }
                Packet::Ping(_) => conn.send_text(engineio::PONG.to_string())?,
                _ => {}
            }
        }
    }

    pub fn send_text(&self, text: String) -> Result<()> {
        self.out
            .send(Message::text(text))
            .map_err(|_| anyhow::anyhow!("the connection is closed"))
    }

    /// Next text frame, answering pings. Cancel-safe.
    async fn next_raw(&mut self) -> Result<tokio_tungstenite::tungstenite::Utf8Bytes> {
        loop {
            match self.stream.next().await {
                None => bail!("the app closed the connection"),
                Some(Err(err)) => return Err(err).context("WebSocket error"),
                Some(Ok(Message::Text(text))) => {
                    let b = text.as_bytes();
                    if b.first() == Some(&b'2') {
                        self.send_text(engineio::PONG.to_string())?;
                        continue;
                    }
                    if b == b"1" || b.starts_with(b"41") {
                        bail!("the app closed the Socket.IO session");
                    }
                    return Ok(text);
                }
                Some(Ok(Message::Close(_))) => bail!("the app closed the connection"),
                Some(Ok(_)) => {}
            }
        }
    }

    async fn next_frame(&mut self, timeout: Duration) -> Result<String> {
        let text = tokio::time::timeout(timeout, self.next_raw())
            .await
            .context("the app did not answer in time")??;
        Ok(text.to_string())
    }

    /// Emits an event with a control ack id and, if `wait`, waits for the ack's data.
    async fn emit_control(
        &mut self,
        id: u64,
        event: &str,
        payload: &Value,
        wait: Option<Duration>,
    ) -> Result<Option<String>> {
        self.send_text(engineio::event(Some(id), event, payload))?;
        let Some(wait) = wait else { return Ok(None) };
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let Ok(text) = tokio::time::timeout(left, self.next_raw()).await else {
                return Ok(None);
            };
            let text = text?;
            if let Ok(Packet::Ack { id: got, data }) = engineio::parse(&text)
                && got == id
            {
                return Ok(Some(data.to_string()));
            }
        }
    }

    /// Emits the adapter's join events.
    async fn join(&mut self, spec: &SocketSpec, vars: &Vars, wait_ack: bool) -> Result<()> {
        let payload = render(&spec.join_payload, vars);
        for (k, event) in spec.join_events.iter().enumerate() {
            let wait = wait_ack.then_some(SETUP_TIMEOUT);
            let ack = self
                .emit_control(CONTROL_ACK_BASE + k as u64, event, &payload, wait)
                .await?;
            if wait_ack {
                let data = ack.with_context(|| format!("the app did not acknowledge {event:?}"))?;
                if let Some(err) = engineio::ack_error(&data) {
                    bail!("the app refused {event:?}: {err}");
                }
            }
        }
        if !wait_ack && !spec.join_events.is_empty() {
            // The app does not acknowledge joins; give it a moment to process them.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

/// Set-up result and verification for an Express + Socket.IO app.
pub struct SocketIoBackend {
    base: BaseUrl,
    adapter: Adapter,
    room_id: Value,
    room: String,
    users: Vec<Value>,
    tokens: Vec<Option<Value>>,
    writers: usize,
    marker: Arc<Marker>,
    message_bytes: usize,
    db_url: Option<String>,
    join_ack: bool,
}

/// What set-up did, for the result file.
pub struct Prepared {
    pub backend: SocketIoBackend,
    pub notes: Vec<String>,
}

impl SocketIoBackend {
    pub fn adapter(&self) -> &Adapter {
        &self.adapter
    }

    pub fn room(&self) -> (&str, &Value) {
        (&self.room, &self.room_id)
    }

    fn vars(&self, user: usize) -> Vars {
        let mut vars = Vars::new();
        vars.insert("user_id", self.users[user].clone());
        vars.insert("room_id", self.room_id.clone());
        vars.insert("room", Value::String(self.room.clone()));
        vars.insert("name", Value::String(user_name(self.marker.run(), user)));
        if let Some(token) = &self.tokens[user] {
            vars.insert("token", token.clone());
        }
        vars
    }
}

fn user_name(run: &str, i: usize) -> String {
    format!("bench{run}u{i}")
}

/// Options of [`prepare`].
pub struct Setup<'a> {
    pub base: BaseUrl,
    pub adapter: Option<Adapter>,
    pub writers: usize,
    pub listeners: usize,
    pub marker: Arc<Marker>,
    pub message_bytes: usize,
    pub db_url: Option<&'a str>,
}

/// Creates the users and the room (probing the app's shape first when no adapter is given).
pub async fn prepare(setup: Setup<'_>) -> Result<Prepared> {
    let Setup {
        base,
        adapter,
        writers,
        listeners,
        marker,
        message_bytes,
        db_url,
    } = setup;
    let (adapter, mut notes, join_ack) = match adapter {
        Some(a) => (a, Vec::new(), true),
        None => {
            let found = probe(&base, marker.run()).await?;
            (found.adapter, found.notes, found.join_ack)
        }
    };
    let total = writers + listeners.max(1);
    let mut users = Vec::with_capacity(total);
    let mut tokens = Vec::with_capacity(total);
    for i in 0..total {
        let mut vars = Vars::new();
        vars.insert("name", Value::String(user_name(marker.run(), i)));
        let (id, token) = create_with_token(&base, &adapter.users, &vars)
            .await
            .with_context(|| format!("cannot create bench user {i}"))?;
        users.push(id);
        tokens.push(token);
    }
    let room = format!("bench-{}", marker.run());
    let mut vars = Vars::new();
    vars.insert("room", Value::String(room.clone()));
    vars.insert("name", Value::String(room.clone()));
    vars.insert("user_id", users[0].clone());
    if let Some(token) = &tokens[0] {
        vars.insert("token", token.clone());
    }
    let room_id = create(&base, &adapter.rooms, &vars)
        .await
        .context("cannot create the bench room")?;
    if let Some(join) = &adapter.join {
        for (user, token) in users.iter().zip(&tokens) {
            let mut vars = Vars::new();
            vars.insert("room_id", room_id.clone());
            vars.insert("user_id", user.clone());
            if let Some(token) = token {
                vars.insert("token", token.clone());
            }
            call(&base, join, &vars)
                .await
                .context("cannot join the bench room over REST")?;
        }
    }
    notes.push(format!(
        "created {} users and room {room:?} (id {room_id})",
        users.len()
    ));
    Ok(Prepared {
        backend: SocketIoBackend {
            base,
            adapter,
            room_id,
            room,
            users,
            tokens,
            writers,
            marker,
            message_bytes,
            db_url: db_url.map(str::to_string),
            join_ack,
        },
        notes,
    })
}

async fn call(base: &BaseUrl, ep: &Endpoint, vars: &Vars) -> Result<http::Response> {
    let path = render_path(&ep.path, vars);
    let body = render(&ep.body, vars);
    let headers = crate::adapter::render_headers(ep, vars);
    let resp = http::request(
        base,
        &ep.method,
        &path,
        Some(&body),
        &headers,
        SETUP_TIMEOUT,
    )
    .await?;
    if !resp.ok() {
        bail!(
            "{} {path} answered {}: {}",
            ep.method,
            resp.status,
            engineio::truncate(&resp.text, 200)
        );
    }
    Ok(resp)
}

async fn create(base: &BaseUrl, ep: &Endpoint, vars: &Vars) -> Result<Value> {
    Ok(create_with_token(base, ep, vars).await?.0)
}

/// Creates an object; returns its id and, when the endpoint names one, the session token.
async fn create_with_token(
    base: &BaseUrl,
    ep: &Endpoint,
    vars: &Vars,
) -> Result<(Value, Option<Value>)> {
    let resp = call(base, ep, vars).await?;
    let id = lookup(&resp.json, &ep.id).cloned().with_context(|| {
        format!(
            "the answer of {} has no id at {:?} (set `id` in the adapter): {}",
            ep.path,
            ep.id,
            engineio::truncate(&resp.text, 200)
        )
    })?;
    let token = match &ep.token {
        Some(path) => Some(lookup(&resp.json, path).cloned().with_context(|| {
            format!(
                "the answer of {} has no token at {path:?}: {}",
                ep.path,
                engineio::truncate(&resp.text, 200)
            )
        })?),
        None => None,
    };
    Ok((id, token))
}

/// A writer connection.
pub struct SioWriter {
    conn: Conn,
    mode: AckMode,
    /// The frame around the content: `42[<event>,{...,"content":"` and `"...}]`.
    before: String,
    after: String,
    frame: String,
    index: usize,
    marker: Arc<Marker>,
    pending: VecDeque<Outcome>,
    rest: Option<RestSender>,
}

struct RestSender {
    base: BaseUrl,
    method: String,
    path: String,
    headers: Arc<Vec<(String, String)>>,
    before: String,
    after: String,
    running: FuturesUnordered<Pin<Box<dyn Future<Output = Outcome> + Send>>>,
}

const CONTENT_SENTINEL: &str = "\u{1}BENCH_CONTENT\u{1}";

/// Splits a rendered payload around the content sentinel.
fn split_template(text: &str) -> Result<(String, String)> {
    let sentinel = serde_json::to_string(CONTENT_SENTINEL)?;
    let sentinel = &sentinel[1..sentinel.len() - 1];
    let at = text
        .find(sentinel)
        .context("the send payload has no {content}")?;
    Ok((
        text[..at].to_string(),
        text[at + sentinel.len()..].to_string(),
    ))
}

impl Writer for SioWriter {
    fn send(&mut self, tag: u64, content: &str) -> Result<()> {
        if let Some(rest) = &mut self.rest {
            let body = format!("{}{content}{}", rest.before, rest.after);
            let (base, method, path) = (rest.base.clone(), rest.method.clone(), rest.path.clone());
            let headers = rest.headers.clone();
            rest.running.push(Box::pin(async move {
                let body: Value = match serde_json::from_str(&body) {
                    Ok(v) => v,
                    Err(_) => return Outcome::Failed(tag, "bad_payload".into()),
                };
                match http::request(
                    &base,
                    &method,
                    &path,
                    Some(&body),
                    &headers,
                    Duration::from_secs(60),
                )
                .await
                {
                    Ok(r) if r.ok() => Outcome::Acked(tag),
                    Ok(r) if r.status == 429 => Outcome::Failed(tag, "rate_limited".into()),
                    Ok(r) => Outcome::Failed(tag, format!("http_{}", r.status)),
                    Err(_) => Outcome::Failed(tag, "http_error".into()),
                }
            }));
            return Ok(());
        }
        use std::fmt::Write;
        self.frame.clear();
        self.frame.push_str("42");
        if self.mode == AckMode::Callback {
            let _ = write!(self.frame, "{tag}");
        }
        self.frame.push_str(&self.before);
        self.frame.push_str(content);
        self.frame.push_str(&self.after);
        self.conn.send_text(self.frame.clone())
    }

    async fn next_outcome(&mut self) -> Result<Outcome> {
        loop {
            if let Some(o) = self.pending.pop_front() {
                return Ok(o);
            }
            let text = match &mut self.rest {
                Some(rest) if !rest.running.is_empty() => {
                    tokio::select! {
                        Some(o) = rest.running.next() => return Ok(o),
                        text = self.conn.next_raw() => text?,
                    }
                }
                _ => self.conn.next_raw().await?,
            };
            let b = text.as_bytes();
            if b.starts_with(b"43") {
                let Ok(Packet::Ack { id, data }) = engineio::parse(&text) else {
                    return Ok(Outcome::Error("bad_frame".into()));
                };
                if id >= CONTROL_ACK_BASE {
                    continue;
                }
                return Ok(match engineio::ack_error(data) {
                    None => Outcome::Acked(id),
                    Some(why) => Outcome::Failed(id, Outcome::refusal_kind(&why)),
                });
            }
            if b.starts_with(b"42") {
                let data = &text[2..];
                let name =
                    engineio::event_name(data.trim_start_matches(|c: char| c.is_ascii_digit()))
                        .unwrap_or("");
                if is_error_event(name) {
                    return Ok(Outcome::Error(format!("server_event_{name}")));
                }
                if self.mode == AckMode::Echo {
                    let me = self.index;
                    let pending = &mut self.pending;
                    self.marker.find_all(&text, |w, seq, _| {
                        if w == me {
                            pending.push_back(Outcome::Acked(seq));
                        }
                    });
                }
            }
        }
    }
}

/// `error`, `error_message`, `messageError`, `exception`, `rate_limited`, ... (without
/// allocating: this runs for every broadcast a writer receives).
fn is_error_event(name: &str) -> bool {
    let has = |word: &[u8]| {
        name.as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    has(b"error") || has(b"exception") || has(b"ratelimit") || has(b"rate_limit")
}

/// A listener connection.
pub struct SioListener {
    conn: Conn,
}

impl Listener for SioListener {
    async fn next_text(&mut self) -> Result<(String, Instant)> {
        loop {
            let text = self.conn.next_raw().await?;
            if text.as_bytes().starts_with(b"42") {
                return Ok((text.to_string(), Instant::now()));
            }
        }
    }
}

impl Backend for SocketIoBackend {
    type W = SioWriter;
    type L = SioListener;

    fn client_name(&self) -> &'static str {
        "socketio"
    }

    async fn writer(&self, index: usize) -> Result<SioWriter> {
        let vars = self.vars(index);
        let spec = &self.adapter.socket;
        let mut conn = Conn::open(&self.base, spec, &vars).await?;
        // Writers must join when the app wants it (and always in echo mode, to see acks).
        conn.join(spec, &vars, self.join_ack).await?;
        let mut vars_c = vars.clone();
        vars_c.insert("content", Value::String(CONTENT_SENTINEL.to_string()));
        let rest = match &self.adapter.rest_send {
            Some(ep) => {
                let body = render(&ep.body, &vars_c).to_string();
                let (before, after) = split_template(&body)?;
                Some(RestSender {
                    base: self.base.clone(),
                    method: ep.method.clone(),
                    path: render_path(&ep.path, &vars),
                    headers: Arc::new(crate::adapter::render_headers(ep, &vars)),
                    before,
                    after,
                    running: FuturesUnordered::new(),
                })
            }
            None => None,
        };
        let frame = engineio::event(None, &spec.send_event, &render(&spec.send_payload, &vars_c));
        let (before, after) = split_template(&frame[2..])?;
        Ok(SioWriter {
            conn,
            mode: spec.ack,
            before,
            after,
            frame: String::with_capacity(self.message_bytes + 128),
            index,
            marker: self.marker.clone(),
            pending: VecDeque::new(),
            rest,
        })
    }

    async fn listener(&self, index: usize) -> Result<Option<SioListener>> {
        let vars = self.vars(self.writers + index.min(self.users.len() - self.writers - 1));
        let spec = &self.adapter.socket;
        let mut conn = Conn::open(&self.base, spec, &vars).await?;
        conn.join(spec, &vars, self.join_ack).await?;
        Ok(Some(SioListener { conn }))
    }

    async fn committed(&self, marker: &Marker) -> Result<Option<Committed>> {
        let Some(url) = &self.db_url else {
            return Ok(None);
        };
        let client = crate::verify::connect(url).await?;
        Ok(Some(crate::verify::count_marked(&client, marker).await?))
    }
}

/// What probing found.
pub struct Probed {
    pub adapter: Adapter,
    pub notes: Vec<String>,
    pub join_ack: bool,
}

const TOKEN_PATHS: [&str; 5] = ["token", "accessToken", "access_token", "jwt", "data.token"];

const ID_PATHS: [&str; 7] = [
    "id", "_id", "user.id", "user._id", "room.id", "room._id", "data.id",
];

async fn probe_create(
    base: &BaseUrl,
    paths: &[&str],
    bodies: &[Value],
    vars: &Vars,
    headers: &BTreeMap<String, String>,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<(Endpoint, Value, Option<Value>)> {
    let rendered_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), render_path(v, vars)))
        .collect();
    let mut tried = Vec::new();
    for path in paths {
        for body in bodies {
            let rendered = render(body, vars);
            let resp = match http::request(
                base,
                "POST",
                path,
                Some(&rendered),
                &rendered_headers,
                SETUP_TIMEOUT,
            )
            .await
            {
                Ok(r) => r,
                Err(err) => return Err(err).context(format!("probing {what}")),
            };
            tried.push(format!("POST {path} {rendered} -> {}", resp.status));
            if resp.status == 404 {
                break;
            }
            if !resp.ok() {
                continue;
            }
            if let Some(id_path) = ID_PATHS.iter().find(|p| lookup(&resp.json, p).is_some()) {
                let id = lookup(&resp.json, id_path).cloned().unwrap_or(Value::Null);
                notes.push(format!(
                    "{what}: POST {path} with {body} (id at {id_path:?})"
                ));
                let token = TOKEN_PATHS
                    .iter()
                    .find(|p| lookup(&resp.json, p).is_some_and(Value::is_string))
                    .map(|p| p.to_string());
                if let Some(t) = &token {
                    notes.push(format!(
                        "{what}: the answer carries a session token at {t:?}"
                    ));
                }
                return Ok((
                    Endpoint {
                        method: "POST".into(),
                        path: path.to_string(),
                        body: body.clone(),
                        id: id_path.to_string(),
                        headers: headers.clone(),
                        token: token.clone(),
                    },
                    id,
                    token.and_then(|t| lookup(&resp.json, &t).cloned()),
                ));
            }
        }
    }
    bail!(
        "could not find how this app creates {what}; tried:\n  {}\nwrite an adapter file (see tools/stress/adapters/) and pass --adapter",
        tried.join("\n  ")
    )
}

/// Tries the common shapes of generated apps and returns the adapter that works.
pub async fn probe(base: &BaseUrl, run: &str) -> Result<Probed> {
    let mut notes = Vec::new();
    let mut vars = Vars::new();
    vars.insert("name", Value::String(format!("probe{run}a")));
    let no_headers = BTreeMap::new();
    let (users, user_a, token_a) = probe_create(
        base,
        &[
            "/api/users",
            "/users",
            "/api/auth/register",
            "/api/register",
        ],
        &[
            json!({"username": "{name}"}),
            json!({"name": "{name}"}),
            json!({"username": "{name}", "name": "{name}"}),
        ],
        &vars,
        &no_headers,
        "users",
        &mut notes,
    )
    .await?;
    vars.insert("name", Value::String(format!("probe{run}b")));
    let (user_b, token_b) = create_with_token(base, &users, &vars)
        .await
        .context("probing: creating a second user")?;
    let auth_headers: BTreeMap<String, String> = match &token_a {
        Some(_) => [("Authorization".to_string(), "Bearer {token}".to_string())].into(),
        None => BTreeMap::new(),
    };
    vars.insert("room", Value::String(format!("probe-{run}")));
    vars.insert("user_id", user_a.clone());
    if let Some(t) = &token_a {
        vars.insert("token", t.clone());
    }
    let (rooms, room_id, _) = probe_create(
        base,
        &["/api/rooms", "/rooms"],
        &[
            json!({"name": "{room}", "userId": "{user_id}", "createdBy": "{user_id}"}),
            json!({"name": "{room}"}),
        ],
        &vars,
        &auth_headers,
        "rooms",
        &mut notes,
    )
    .await?;
    vars.insert("room_id", room_id.clone());

    let mut join = None;
    for path in [
        "/api/rooms/{room_id}/join",
        "/rooms/{room_id}/join",
        "/api/rooms/{room_id}/members",
    ] {
        let ep = Endpoint {
            method: "POST".into(),
            path: path.into(),
            body: json!({"userId": "{user_id}"}),
            id: "id".into(),
            headers: auth_headers.clone(),
            token: None,
        };
        let mut ok = true;
        for (user, token) in [(&user_a, &token_a), (&user_b, &token_b)] {
            vars.insert("user_id", user.clone());
            if let Some(t) = token {
                vars.insert("token", t.clone());
            }
            let resp = http::request(
                base,
                "POST",
                &render_path(path, &vars),
                Some(&render(&ep.body, &vars)),
                &crate::adapter::render_headers(&ep, &vars),
                SETUP_TIMEOUT,
            )
            .await?;
            ok &= resp.ok();
        }
        if ok {
            notes.push(format!("joining: POST {path}"));
            join = Some(ep);
            break;
        }
    }
    if join.is_none() {
        notes.push("joining: no REST join endpoint found (joining over the socket only)".into());
    }

    let mut socket = SocketSpec {
        path: "/socket.io/".into(),
        auth: Some(match &token_a {
            Some(_) => json!({"userId": "{user_id}", "token": "{token}"}),
            None => json!({"userId": "{user_id}"}),
        }),
        query: Default::default(),
        join_events: vec!["join_room".into(), "joinRoom".into(), "join".into()],
        join_payload: json!({"roomId": "{room_id}", "userId": "{user_id}"}),
        send_event: String::new(),
        send_payload: json!({"roomId": "{room_id}", "userId": "{user_id}", "content": "{content}"}),
        ack: AckMode::Callback,
        broadcast_events: vec![],
    };
    let mut vars_a = vars.clone();
    vars_a.insert("user_id", user_a.clone());
    let mut vars_b = vars.clone();
    vars_b.insert("user_id", user_b.clone());
    for (v, t) in [(&mut vars_a, &token_a), (&mut vars_b, &token_b)] {
        match t {
            Some(t) => v.insert("token", t.clone()),
            None => v.remove("token"),
        };
    }
    let mut sender = Conn::open(base, &socket, &vars_a)
        .await
        .context("probing the Socket.IO connection")?;
    let mut listener = Conn::open(base, &socket, &vars_b).await?;
    // Emit every join candidate; keep those the app acknowledges.
    let mut acked_joins = Vec::new();
    let payload_b = render(&socket.join_payload, &vars_b);
    for (k, event) in socket.join_events.iter().enumerate() {
        listener.send_text(engineio::event(
            Some(CONTROL_ACK_BASE + k as u64),
            event,
            &payload_b,
        ))?;
    }
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline && acked_joins.len() < socket.join_events.len() {
        let Ok(Ok(text)) =
            tokio::time::timeout(deadline - Instant::now(), listener.next_raw()).await
        else {
            break;
        };
        if let Ok(Packet::Ack { id, data }) = engineio::parse(&text)
            && let Some(event) = id
                .checked_sub(CONTROL_ACK_BASE)
                .and_then(|k| socket.join_events.get(k as usize))
            && engineio::ack_error(data).is_none()
        {
            acked_joins.push(event.clone());
        }
    }
    let join_ack = !acked_joins.is_empty();
    if join_ack {
        notes.push(format!(
            "socket join: {} (acknowledged)",
            acked_joins.join(", ")
        ));
        socket.join_events = acked_joins;
    } else {
        notes.push(
            "socket join: none of join_room/joinRoom/join was acknowledged; all three are sent"
                .into(),
        );
    }
    sender.join(&socket, &vars_a, join_ack).await?;

    let marker = Marker::new(&format!("p{run}"));
    let mut content = String::new();
    let candidates = [
        "send_message",
        "sendMessage",
        "message",
        "chat_message",
        "chatMessage",
        "new_message",
    ];
    for (k, event) in candidates.iter().enumerate() {
        marker.content(0, k as u64, 0, 0, &mut content);
        let mut v = vars_a.clone();
        v.insert("content", Value::String(content.clone()));
        let payload = render(&socket.send_payload, &v);
        sender.send_text(engineio::event(Some(k as u64), event, &payload))?;
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut ack: Option<Option<String>> = None;
        let mut broadcast: Option<String> = None;
        let mut sender_saw = false;
        while Instant::now() < deadline && !((ack.is_some() || sender_saw) && broadcast.is_some()) {
            let left = deadline - Instant::now();
            tokio::select! {
                Ok(Ok(text)) = tokio::time::timeout(left, sender.next_raw()) => {
                    if let Ok(Packet::Ack { id, data }) = engineio::parse(&text)
                        && id == k as u64 {
                            ack = Some(engineio::ack_error(data));
                        }
                    if text.as_bytes().starts_with(b"42") {
                        marker.find_all(&text, |_, seq, _| sender_saw |= seq == k as u64);
                    }
                }
                Ok(Ok(text)) = tokio::time::timeout(left, listener.next_raw()) => {
                    let mut hit = false;
                    marker.find_all(&text, |_, seq, _| hit |= seq == k as u64);
                    if hit {
                        broadcast = engineio::event_name(&text[2..]).map(str::to_string);
                    }
                }
                else => break,
            }
        }
        if let Some(Some(err)) = &ack {
            notes.push(format!(
                "send: event {event:?} acknowledged with an error ({err}); trying the next"
            ));
            continue;
        }
        let ack_ok = matches!(ack, Some(None));
        if !ack_ok && !sender_saw && broadcast.is_some() {
            bail!(
                "the app broadcasts {event:?} to the room's other members but neither calls an ack \
                 callback nor echoes the message to its sender, so a sender cannot tell that its \
                 message was accepted; bench-stress needs one of the two (found so far:\n  {})",
                notes.join("\n  ")
            );
        }
        if ack_ok || sender_saw {
            socket.send_event = event.to_string();
            socket.broadcast_events = broadcast.iter().cloned().collect();
            socket.ack = if ack_ok {
                AckMode::Callback
            } else {
                AckMode::Echo
            };
            notes.push(format!(
                "send: event {event:?}, ack by {}, broadcast as {}",
                if ack_ok {
                    "callback"
                } else {
                    "the echo of the broadcast"
                },
                broadcast.as_deref().unwrap_or("(not seen by the listener)")
            ));
            let adapter = Adapter {
                users,
                rooms,
                join,
                socket,
                rest_send: None,
            };
            return Ok(Probed {
                adapter,
                notes,
                join_ack,
            });
        }
    }
    // No socket event worked: try sending over REST.
    for path in [
        "/api/rooms/{room_id}/messages",
        "/rooms/{room_id}/messages",
        "/api/messages",
    ] {
        marker.content(0, 99, 0, 0, &mut content);
        let mut v = vars_a.clone();
        v.insert("content", Value::String(content.clone()));
        let body = json!({"roomId": "{room_id}", "userId": "{user_id}", "content": "{content}"});
        let resp = http::request(
            base,
            "POST",
            &render_path(path, &v),
            Some(&render(&body, &v)),
            &auth_headers
                .iter()
                .map(|(k, x)| (k.clone(), render_path(x, &v)))
                .collect::<Vec<_>>(),
            SETUP_TIMEOUT,
        )
        .await?;
        if resp.ok() {
            notes.push(format!("send: over REST, POST {path} (ack = HTTP 2xx)"));
            socket.ack = AckMode::Callback;
            let rest_send = Some(Endpoint {
                method: "POST".into(),
                path: path.into(),
                body,
                id: "id".into(),
                headers: auth_headers,
                token: None,
            });
            let adapter = Adapter {
                users,
                rooms,
                join,
                socket,
                rest_send,
            };
            return Ok(Probed {
                adapter,
                notes,
                join_ack,
            });
        }
    }
    bail!(
        "could not find how this app sends messages (tried socket events {} and REST); found so far:\n  {}\nwrite an adapter file (see tools/stress/adapters/) and pass --adapter",
        candidates.join(", "),
        notes.join("\n  ")
    )
}
