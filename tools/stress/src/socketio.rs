//! The client for Express + Socket.IO apps: REST set-up, Socket.IO v4 over WebSocket for
//! the traffic, and probing of the common app shapes when no adapter file is given.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream::{FuturesUnordered, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::adapter::{AckMode, Adapter, Endpoint, SocketSpec, Vars, lookup, render, render_path};
use crate::backend::{Backend, Committed, Listener, Marker, Outcome, Writer};
use crate::candidates::Candidates;
use crate::engineio::{self, OpenInfo, Packet};
use crate::http::{self, BaseUrl};

pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ack ids at or above this are set-up requests, never message tags.
pub(crate) const CONTROL_ACK_BASE: u64 = 1 << 40;

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
pub fn spawn_sender<S, M>(mut sink: S) -> mpsc::UnboundedSender<M>
where
    S: futures_util::Sink<M> + Unpin + Send + 'static,
    M: Send + 'static,
{
    let (out, mut rx) = mpsc::unbounded_channel::<M>();
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
        let extra: Vec<(String, String)> = spec
            .query
            .iter()
            .map(|(k, v)| (k.clone(), render_path(v, vars)))
            .collect();
        let pairs = [("EIO", "4"), ("transport", "websocket")]
            .into_iter()
            .chain(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let url = base.ws(&http::with_query(&spec.path, pairs));
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
    pub(crate) async fn next_raw(&mut self) -> Result<tokio_tungstenite::tungstenite::Utf8Bytes> {
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

    /// Emits an event (with a control ack id when one is given) and, if `wait`, waits for
    /// the ack's data.
    async fn emit_control(
        &mut self,
        id: Option<u64>,
        event: &str,
        payload: &Value,
        wait: Option<Duration>,
    ) -> Result<Option<String>> {
        self.send_text(engineio::event(id, event, payload))?;
        let (Some(id), Some(wait)) = (id, wait) else {
            return Ok(None);
        };
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

    /// Emits the adapter's set-up events in order, awaiting the acks the app gives.
    pub async fn setup(&mut self, spec: &SocketSpec, vars: &Vars) -> Result<()> {
        let mut unacknowledged = false;
        for (k, step) in spec.setup.iter().enumerate() {
            let payload = render(&step.payload, vars);
            let event = &step.event;
            if !step.ack {
                unacknowledged = true;
                self.emit_control(None, event, &payload, None).await?;
                continue;
            }
            let id = CONTROL_ACK_BASE + k as u64;
            let data = self
                .emit_control(Some(id), event, &payload, Some(SETUP_TIMEOUT))
                .await?
                .with_context(|| {
                    format!("the app did not acknowledge {event:?} (set `ack = false` for it in the adapter if it never does)")
                })?;
            if let Some(err) = engineio::ack_error(&data) {
                bail!("the app refused {event:?}: {err}");
            }
        }
        if unacknowledged || spec.setup.is_empty() {
            // The app does not acknowledge these (or sets a connection up on its own, maybe
            // after a database query): give it a moment before the first send.
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
    /// Candidate shapes to probe when no adapter is given (the source's first).
    pub candidates: Candidates,
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
        candidates,
    } = setup;
    let (adapter, mut notes) = match adapter {
        Some(a) => (a, Vec::new()),
        None => {
            let found = crate::probe::probe(&base, marker.run(), candidates).await?;
            (found.adapter, found.notes)
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
pub(crate) async fn create_with_token(
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
    call: Arc<http::PreparedCall>,
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
        .context("the send payload has no {{content}}")?;
    Ok((
        text[..at].to_string(),
        text[at + sentinel.len()..].to_string(),
    ))
}

impl Writer for SioWriter {
    fn send(&mut self, tag: u64, content: &str) -> Result<()> {
        if let Some(rest) = &mut self.rest {
            let body = format!("{}{content}{}", rest.before, rest.after);
            let call = rest.call.clone();
            rest.running.push(Box::pin(async move {
                match call.send(body).await {
                    Ok(200..=299) => Outcome::Acked(tag),
                    Ok(429) => Outcome::Failed(tag, "rate_limited".into()),
                    Ok(status) => Outcome::Failed(tag, format!("http_{status}")),
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
        conn.setup(spec, &vars).await?;
        let mut vars_c = vars.clone();
        vars_c.insert("content", Value::String(CONTENT_SENTINEL.to_string()));
        let rest = match &self.adapter.rest_send {
            Some(ep) => {
                let body = render(&ep.body, &vars_c).to_string();
                let (before, after) = split_template(&body)?;
                let call = http::PreparedCall::new(
                    &self.base,
                    &ep.method,
                    &render_path(&ep.path, &vars),
                    &crate::adapter::render_headers(ep, &vars),
                    Duration::from_secs(60),
                )?;
                Some(RestSender {
                    call: Arc::new(call),
                    before,
                    after,
                    running: FuturesUnordered::new(),
                })
            }
            None => None,
        };
        let (before, after) = match rest {
            Some(_) => (String::new(), String::new()),
            None => {
                let payload = render(&spec.send_payload, &vars_c);
                split_template(&engineio::event(None, &spec.send_event, &payload)[2..])?
            }
        };
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
        conn.setup(spec, &vars).await?;
        Ok(Some(SioListener { conn }))
    }

    async fn committed(&self, marker: &Marker) -> Result<Option<Committed>> {
        let Some(url) = &self.db_url else {
            return Ok(None);
        };
        let client = crate::verify::connect(url).await?;
        let counted = match &self.adapter.verify {
            Some(spec) => crate::verify::count_in(&client, spec, marker, &self.room_id).await?,
            None => crate::verify::count_marked(&client, marker).await?,
        };
        Ok(Some(counted))
    }
}
