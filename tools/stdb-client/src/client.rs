//! The WebSocket client: one connection, one identity, many reducer calls in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use spacetimedb_client_api_messages::websocket::common::{BsatnRowList, QuerySetId};
use spacetimedb_client_api_messages::websocket::v2::{
    self, CallReducerFlags, ClientMessage, ReducerOutcome as WireOutcome, ServerMessage,
    TableUpdateRows,
};
use spacetimedb_lib::{AlgebraicValue, ConnectionId, Identity, ProductValue, Timestamp, bsatn};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::http::fetch_schema;
use crate::protocol::{SUBPROTOCOL, decode_server_message, encode_client_message, subscribe_url};
use crate::schema::{ModuleSchema, ReducerArgs, TableSchema};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a reducer call ended, as the server reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReducerStatus {
    /// The reducer returned successfully and its transaction committed.
    Committed,
    /// The reducer returned an error (e.g. `Err("room not found")`); nothing was committed.
    Failed(String),
    /// The reducer panicked, ran out of energy, or the host failed to run it (unknown reducer,
    /// arguments that do not match its signature, …); nothing was committed. Protocol v2 folds
    /// "out of energy" into this case, with the server's message.
    InternalError(String),
}

/// The server's answer to one reducer call.
#[derive(Debug, Clone)]
pub struct ReducerOutcome {
    /// The request id this client put on the call (unique per connection).
    pub request_id: u32,
    pub status: ReducerStatus,
    /// When the reducer started, by the server's clock.
    pub server_timestamp: Timestamp,
    /// When the call was handed to the connection's writer.
    pub sent_at: Instant,
    /// When the frame carrying the outcome was read from the socket (before decoding).
    pub received_at: Instant,
}

impl ReducerOutcome {
    pub fn is_committed(&self) -> bool {
        self.status == ReducerStatus::Committed
    }

    /// Acknowledgement latency: `received_at - sent_at`.
    pub fn latency(&self) -> Duration {
        self.received_at.saturating_duration_since(self.sent_at)
    }

    /// `Ok(self)` when committed, otherwise an error carrying the server's message.
    pub fn into_committed(self) -> Result<Self> {
        match &self.status {
            ReducerStatus::Committed => Ok(self),
            ReducerStatus::Failed(m) => bail!("reducer call {} failed: {m}", self.request_id),
            ReducerStatus::InternalError(m) => {
                bail!("reducer call {} hit a host error: {m}", self.request_id)
            }
        }
    }
}

/// A reducer call on its way: a future of its [`ReducerOutcome`], created by
/// [`StdbClient::send_reducer`]. Dropping it does not cancel the call (the server still runs it);
/// the outcome is then discarded.
pub struct PendingCall {
    rx: oneshot::Receiver<ReducerOutcome>,
    request_id: u32,
    sent_at: Instant,
    reducer: Box<str>,
    shared: Arc<Shared>,
}

impl PendingCall {
    /// The request id put on the call (the outcome carries the same id).
    pub fn request_id(&self) -> u32 {
        self.request_id
    }

    /// When the call was handed to the connection's writer.
    pub fn sent_at(&self) -> Instant {
        self.sent_at
    }
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("reducer", &self.reducer)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl Future for PendingCall {
    type Output = Result<ReducerOutcome>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.map_err(|_| {
                let reason = lock(&self.shared.waiters)
                    .closed
                    .clone()
                    .unwrap_or_else(|| "connection dropped".into());
                anyhow!(
                    "reducer call `{}` (request {}) got no answer: {reason}",
                    self.reducer,
                    self.request_id
                )
            })
        })
    }
}

/// Rows of one table changed by one transaction, as seen through one of this client's subscriptions.
#[derive(Debug, Clone)]
pub struct RowEvent {
    pub table: Arc<str>,
    /// The table's schema, `None` when the server sent rows of a table the schema does not list
    /// (e.g. a view); such rows cannot be decoded and are counted in [`ClientStats::undecoded_rows`].
    pub schema: Option<Arc<TableSchema>>,
    pub inserts: Vec<ProductValue>,
    pub deletes: Vec<ProductValue>,
    pub query_set_id: u32,
    /// `Some(request_id)` when the transaction was this client's own reducer call.
    pub caller_request_id: Option<u32>,
    /// When the frame was read from the socket (before decoding): use it for fan-out latency.
    pub received_at: Instant,
}

impl RowEvent {
    /// Every string value of the inserted rows (top-level `String` columns and string payloads of
    /// `Option`/enum columns), e.g. to search message texts for markers without knowing column names.
    pub fn inserted_strings(&self) -> impl Iterator<Item = &str> {
        self.inserts.iter().flat_map(|row| {
            row.elements.iter().filter_map(|v| match v {
                AlgebraicValue::String(s) => Some(&**s),
                AlgebraicValue::Sum(sum) => match &*sum.value {
                    AlgebraicValue::String(s) => Some(&**s),
                    _ => None,
                },
                _ => None,
            })
        })
    }

    /// The value of `column` in `row` as plain JSON (see [`crate::schema::value_to_json`]).
    pub fn column_json(&self, row: &ProductValue, column: &str) -> Result<serde_json::Value> {
        let schema = self
            .schema
            .as_ref()
            .with_context(|| format!("table `{}` is not in the schema", self.table))?;
        let i = schema.column_index(column)?;
        let value = row
            .elements
            .get(i)
            .with_context(|| format!("row of `{}` is shorter than its schema", self.table))?;
        Ok(crate::schema::value_to_json(value, &schema.columns[i].ty))
    }
}

/// The initial rows of a subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub query_set_id: u32,
    /// Initial matching rows per table.
    pub initial_rows: Vec<(Arc<str>, Vec<ProductValue>)>,
    pub applied_at: Instant,
}

impl Subscription {
    pub fn initial_row_count(&self) -> usize {
        self.initial_rows.iter().map(|(_, r)| r.len()).sum()
    }
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub frames_received: u64,
    pub bytes_received: u64,
    /// Frames that did not decode as a server message (the first one ends the connection, since
    /// it may have carried any call's answer).
    pub bad_frames: u64,
    /// Reducer results or subscription answers whose request id this client was not waiting for.
    pub unmatched_replies: u64,
    /// Rows that could not be decoded with the schema.
    pub undecoded_rows: u64,
    /// Row events published to the [`StdbClient::row_events`] receivers.
    pub row_events: u64,
    /// Live query sets the server dropped after applying them (`SubscriptionError` without a
    /// request id): their rows stop arriving.
    pub broken_subscriptions: u64,
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// A token from an earlier connection (same identity); `None` asks the server for a new identity.
    pub token: Option<String>,
    /// The module schema, to share one fetch between many connections; `None` fetches it.
    pub schema: Option<Arc<ModuleSchema>>,
    /// Limit on the WebSocket handshake plus the server's first message.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            token: None,
            schema: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Default)]
struct Waiters {
    calls: HashMap<u32, (Instant, oneshot::Sender<ReducerOutcome>)>,
    subscriptions: HashMap<u32, oneshot::Sender<Result<Subscription>>>,
    /// Set once the connection is gone; no waiter is registered after that.
    closed: Option<String>,
}

#[derive(Default)]
struct Counters {
    frames_received: AtomicU64,
    bytes_received: AtomicU64,
    bad_frames: AtomicU64,
    unmatched_replies: AtomicU64,
    undecoded_rows: AtomicU64,
    row_events: AtomicU64,
    broken_subscriptions: AtomicU64,
}

/// State shared by the handle and the reader task.
struct Shared {
    schema: Arc<ModuleSchema>,
    waiters: Mutex<Waiters>,
    /// One unbounded channel per [`StdbClient::row_events`] receiver; closed ones are pruned.
    rows: Mutex<Vec<mpsc::UnboundedSender<Arc<RowEvent>>>>,
    counters: Counters,
}

struct Inner {
    identity: Identity,
    connection_id: ConnectionId,
    token: String,
    database: String,
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Message>,
    next_request_id: AtomicU32,
    next_query_set_id: AtomicU32,
    reader: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer ends by itself (with a Close frame) once `outgoing` is dropped.
        self.reader.abort();
        // Calls sent with `send_reducer` may still be awaited: end them instead of leaving them hanging.
        close_waiters(&self.shared, "the client was dropped".to_string());
    }
}

/// A connection to one SpacetimeDB database with one identity. Clone it freely: clones share the
/// connection; it closes when the last clone is dropped (or on [`StdbClient::close`]).
#[derive(Clone)]
pub struct StdbClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StdbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdbClient")
            .field("database", &self.inner.database)
            .field("identity", &self.inner.identity.to_hex())
            .finish()
    }
}

fn lock(m: &Mutex<Waiters>) -> std::sync::MutexGuard<'_, Waiters> {
    // A panic while holding this lock cannot leave the maps inconsistent: recover the guard.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StdbClient {
    /// Connects to `database` (name or identity) on the server at `base_url` (`http://127.0.0.1:3000`),
    /// fetching the module schema first. `token: None` gets a fresh identity from the server.
    pub async fn connect(
        base_url: &str,
        database: &str,
        token: Option<&str>,
    ) -> Result<StdbClient> {
        Self::connect_with(
            base_url,
            database,
            ConnectOptions {
                token: token.map(str::to_string),
                ..ConnectOptions::default()
            },
        )
        .await
    }

    /// Connects with explicit options (token, shared schema, connect timeout).
    pub async fn connect_with(
        base_url: &str,
        database: &str,
        options: ConnectOptions,
    ) -> Result<StdbClient> {
        let schema = match options.schema {
            Some(s) => s,
            None => Arc::new(fetch_schema(base_url, database).await?),
        };
        let url = subscribe_url(base_url, database)?;
        let (socket, initial) =
            tokio::time::timeout(options.connect_timeout, handshake(&url, database, options.token.as_deref()))
                .await
                .map_err(|_| {
                    anyhow!(
                        "connecting to {url} took longer than {:?}: is the SpacetimeDB server overloaded or not answering?",
                        options.connect_timeout
                    )
                })??;
        let (sink, stream) = socket.split();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            schema,
            waiters: Mutex::new(Waiters::default()),
            rows: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        tokio::spawn(writer(sink, out_rx, shared.clone()));
        let reader = tokio::spawn(reader(stream, shared.clone()));
        Ok(StdbClient {
            inner: Arc::new(Inner {
                identity: initial.identity,
                connection_id: initial.connection_id,
                token: initial.token.into(),
                database: database.to_string(),
                shared,
                outgoing: out_tx,
                next_request_id: AtomicU32::new(1),
                next_query_set_id: AtomicU32::new(1),
                reader,
            }),
        })
    }

    /// The identity the server assigned (or recognised from the token).
    pub fn identity(&self) -> Identity {
        self.inner.identity
    }

    pub fn connection_id(&self) -> ConnectionId {
        self.inner.connection_id
    }

    /// The token to reconnect as the same identity.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    pub fn schema(&self) -> &Arc<ModuleSchema> {
        &self.inner.shared.schema
    }

    /// Why the connection ended, once it has.
    pub fn closed_reason(&self) -> Option<String> {
        lock(&self.inner.shared.waiters).closed.clone()
    }

    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.shared.counters;
        ClientStats {
            frames_received: c.frames_received.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            bad_frames: c.bad_frames.load(Ordering::Relaxed),
            unmatched_replies: c.unmatched_replies.load(Ordering::Relaxed),
            undecoded_rows: c.undecoded_rows.load(Ordering::Relaxed),
            row_events: c.row_events.load(Ordering::Relaxed),
            broken_subscriptions: c.broken_subscriptions.load(Ordering::Relaxed),
        }
    }

    fn next_request_id(&self) -> u32 {
        self.inner.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Calls a reducer by name and waits for the server's outcome. Any number of calls may be in
    /// flight on one connection; each resolves with its own outcome. An `Err` means the call's fate
    /// is unknown (connection lost before the answer); a reducer that ran and failed is an `Ok`
    /// whose status is not `Committed`.
    pub async fn call_reducer(&self, name: &str, args: &ReducerArgs) -> Result<ReducerOutcome> {
        self.send_reducer(name, args)?.await
    }

    /// Sends a reducer call now and returns a future of its outcome (for open-loop senders that
    /// must not wait before the next send).
    pub fn send_reducer(&self, name: &str, args: &ReducerArgs) -> Result<PendingCall> {
        let request_id = self.next_request_id();
        let frame = encode_client_message(&ClientMessage::CallReducer(v2::CallReducer {
            request_id,
            flags: CallReducerFlags::Default,
            reducer: name.into(),
            args: args.0.clone(),
        }))?;
        let (tx, rx) = oneshot::channel();
        let sent_at = Instant::now();
        {
            let mut w = lock(&self.inner.shared.waiters);
            if let Some(reason) = &w.closed {
                bail!("cannot call reducer `{name}`: the connection is closed ({reason})");
            }
            w.calls.insert(request_id, (sent_at, tx));
        }
        if self
            .inner
            .outgoing
            .send(Message::Binary(frame.into()))
            .is_err()
        {
            lock(&self.inner.shared.waiters).calls.remove(&request_id);
            bail!("cannot call reducer `{name}`: the connection's writer has stopped");
        }
        Ok(PendingCall {
            rx,
            request_id,
            sent_at,
            reducer: name.into(),
            shared: self.inner.shared.clone(),
        })
    }

    /// Subscribes to SQL queries (e.g. `SELECT * FROM message`) as one query set and waits for the
    /// initial rows. Later changes arrive as [`RowEvent`]s on [`StdbClient::row_events`].
    pub async fn subscribe(&self, queries: &[&str]) -> Result<Subscription> {
        let request_id = self.next_request_id();
        let query_set_id = self.inner.next_query_set_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_client_message(&ClientMessage::Subscribe(v2::Subscribe {
            request_id,
            query_set_id: QuerySetId::new(query_set_id),
            query_strings: queries.iter().map(|q| Box::<str>::from(*q)).collect(),
        }))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut w = lock(&self.inner.shared.waiters);
            if let Some(reason) = &w.closed {
                bail!("cannot subscribe: the connection is closed ({reason})");
            }
            w.subscriptions.insert(request_id, tx);
        }
        if self
            .inner
            .outgoing
            .send(Message::Binary(frame.into()))
            .is_err()
        {
            lock(&self.inner.shared.waiters)
                .subscriptions
                .remove(&request_id);
            bail!("cannot subscribe: the connection's writer has stopped");
        }
        let reply = rx.await.map_err(|_| {
            let reason = self
                .closed_reason()
                .unwrap_or_else(|| "connection dropped".into());
            anyhow!("subscription to {queries:?} got no answer: {reason}")
        })?;
        reply.with_context(|| format!("subscribing to {queries:?}"))
    }

    /// A new receiver of the row changes seen through this client's subscriptions (own calls
    /// included), from now on. Each receiver gets every event: the channel is unbounded, so a slow
    /// consumer costs memory, never events. Rows are decoded only while a receiver exists.
    pub fn row_events(&self) -> mpsc::UnboundedReceiver<Arc<RowEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .shared
            .rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Closes the connection (a Close frame is sent); calls still waiting fail at once, and so
    /// does any later call.
    pub fn close(&self) {
        close_waiters(&self.inner.shared, "closed by the client".to_string());
        let _ = self.inner.outgoing.send(Message::Close(None));
    }
}

async fn handshake(
    url: &str,
    database: &str,
    token: Option<&str>,
) -> Result<(Socket, v2::InitialConnection)> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("building the WebSocket request for {url}"))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token contains characters that cannot go in an HTTP header")?;
        request.headers_mut().insert("Authorization", value);
    }
    // A small read buffer: tungstenite zero-fills the whole buffer before each socket read,
    // which at the default 128 KiB cost a measurable share of the client's CPU per message.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .max_message_size(None)
        .max_frame_size(None);
    let (mut socket, response) = match tokio_tungstenite::connect_async_with_config(
        request,
        Some(config),
        true,
    )
    .await
    {
        Ok(ok) => ok,
        Err(WsError::Http(resp)) => {
            let status = resp.status();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            let hint = if status.as_u16() == 404 {
                format!(
                    " (is database `{database}` published on this server? `spacetime list` shows the names)"
                )
            } else {
                String::new()
            };
            bail!(
                "SpacetimeDB refused the WebSocket connection to {url}: HTTP {status} {body}{hint}"
            );
        }
        Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(e))) => bail!(
            "the server at {url} did not accept the WebSocket subprotocol `{SUBPROTOCOL}` ({e}): \
             it is not a SpacetimeDB 2.x server, or an incompatible version"
        ),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("opening the WebSocket {url}: is the SpacetimeDB server running?")
            });
        }
    };
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    if chosen != Some(SUBPROTOCOL) {
        bail!(
            "the server at {url} accepted the WebSocket with subprotocol {chosen:?} instead of `{SUBPROTOCOL}`: \
             it does not speak SpacetimeDB 2.x's protocol"
        );
    }
    loop {
        let frame = socket
            .next()
            .await
            .with_context(|| format!("{url} closed the connection before sending the identity"))?
            .with_context(|| format!("reading the first message from {url}"))?;
        match frame {
            Message::Binary(bytes) => {
                return match decode_server_message(&bytes)? {
                    ServerMessage::InitialConnection(ic) => Ok((socket, ic)),
                    other => bail!(
                        "expected InitialConnection as the server's first message, got {}",
                        message_kind(&other)
                    ),
                };
            }
            Message::Close(close) => {
                bail!("{url} closed the connection during the handshake: {close:?}")
            }
            Message::Text(t) => {
                bail!("{url} sent a text frame ({t}) where the binary protocol was expected")
            }
            _ => continue,
        }
    }
}

fn message_kind(msg: &ServerMessage) -> &'static str {
    match msg {
        ServerMessage::InitialConnection(_) => "InitialConnection",
        ServerMessage::SubscribeApplied(_) => "SubscribeApplied",
        ServerMessage::UnsubscribeApplied(_) => "UnsubscribeApplied",
        ServerMessage::SubscriptionError(_) => "SubscriptionError",
        ServerMessage::TransactionUpdate(_) => "TransactionUpdate",
        ServerMessage::OneOffQueryResult(_) => "OneOffQueryResult",
        ServerMessage::ReducerResult(_) => "ReducerResult",
        ServerMessage::ProcedureResult(_) => "ProcedureResult",
    }
}

async fn writer(
    mut sink: futures_util::stream::SplitSink<Socket, Message>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
) {
    let result: Result<(), WsError> = async {
        while let Some(first) = rx.recv().await {
            let closing = matches!(first, Message::Close(_));
            sink.feed(first).await?;
            if closing {
                return sink.flush().await;
            }
            // Batch whatever else is queued into one flush.
            let mut batch = 0;
            while batch < 256 {
                match rx.try_recv() {
                    Ok(msg) => {
                        let closing = matches!(msg, Message::Close(_));
                        sink.feed(msg).await?;
                        if closing {
                            return sink.flush().await;
                        }
                        batch += 1;
                    }
                    Err(_) => break,
                }
            }
            sink.flush().await?;
        }
        // Every handle is gone: say goodbye.
        sink.send(Message::Close(None)).await
    }
    .await;
    if let Err(e) = result {
        close_waiters(&shared, format!("writing to the WebSocket failed: {e}"));
    }
}

fn close_waiters(shared: &Shared, reason: String) {
    let (calls, subs) = {
        let mut w = lock(&shared.waiters);
        if w.closed.is_none() {
            w.closed = Some(reason.clone());
        }
        (
            std::mem::take(&mut w.calls),
            std::mem::take(&mut w.subscriptions),
        )
    };
    // Dropping the senders wakes every waiter with an error that quotes `closed`.
    drop(calls);
    for (_, tx) in subs {
        let _ = tx.send(Err(anyhow!("connection closed: {reason}")));
    }
}

async fn reader(mut stream: futures_util::stream::SplitStream<Socket>, shared: Arc<Shared>) {
    let reason = loop {
        match stream.next().await {
            None => break "the server closed the connection".to_string(),
            Some(Err(e)) => break format!("reading from the WebSocket failed: {e}"),
            Some(Ok(Message::Binary(bytes))) => {
                let received_at = Instant::now();
                shared
                    .counters
                    .frames_received
                    .fetch_add(1, Ordering::Relaxed);
                shared
                    .counters
                    .bytes_received
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                match decode_server_message(&bytes) {
                    Ok(msg) => dispatch(&shared, msg, received_at),
                    Err(e) => {
                        // The frame may have carried any call's answer: waiting on would hang
                        // that call forever, so end the connection and fail every waiter.
                        shared.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                        break format!("the server sent an undecodable message: {e:#}");
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => format!(
                        "the server closed the connection ({}: {})",
                        f.code, f.reason
                    ),
                    None => "the server closed the connection".to_string(),
                };
            }
            Some(Ok(Message::Text(_))) => {
                shared.counters.bad_frames.fetch_add(1, Ordering::Relaxed);
                break "the server sent a text frame on the binary protocol".to_string();
            }
            Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
        }
    };
    close_waiters(&shared, reason);
}

fn dispatch(shared: &Shared, msg: ServerMessage, received_at: Instant) {
    match msg {
        ServerMessage::ReducerResult(result) => {
            let waiter = lock(&shared.waiters).calls.remove(&result.request_id);
            let status = match result.result {
                WireOutcome::Ok(ok) => {
                    publish_update(
                        shared,
                        &ok.transaction_update,
                        Some(result.request_id),
                        received_at,
                    );
                    ReducerStatus::Committed
                }
                WireOutcome::OkEmpty => ReducerStatus::Committed,
                WireOutcome::Err(bytes) => ReducerStatus::Failed(error_payload_text(&bytes)),
                WireOutcome::InternalError(msg) => ReducerStatus::InternalError(msg.into()),
            };
            match waiter {
                Some((sent_at, tx)) => {
                    let _ = tx.send(ReducerOutcome {
                        request_id: result.request_id,
                        status,
                        server_timestamp: result.timestamp,
                        sent_at,
                        received_at,
                    });
                }
                None => {
                    shared
                        .counters
                        .unmatched_replies
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        ServerMessage::TransactionUpdate(update) => {
            publish_update(shared, &update, None, received_at)
        }
        ServerMessage::SubscribeApplied(applied) => {
            let initial_rows = applied
                .rows
                .tables
                .iter()
                .map(|t| {
                    let name: Arc<str> = Arc::from(&*t.table);
                    let rows = decode_rows(shared, &name, &t.rows).1;
                    (name, rows)
                })
                .collect();
            answer_subscription(
                shared,
                applied.request_id,
                Ok(Subscription {
                    query_set_id: applied.query_set_id.id,
                    initial_rows,
                    applied_at: received_at,
                }),
            );
        }
        ServerMessage::SubscriptionError(err) => match err.request_id {
            Some(id) => answer_subscription(
                shared,
                id,
                Err(anyhow!(
                    "the server rejected the subscription: {}",
                    err.error
                )),
            ),
            None => {
                // A live query set broke; there is nobody to tell but the stats.
                shared
                    .counters
                    .broken_subscriptions
                    .fetch_add(1, Ordering::Relaxed);
            }
        },
        ServerMessage::InitialConnection(_)
        | ServerMessage::UnsubscribeApplied(_)
        | ServerMessage::OneOffQueryResult(_)
        | ServerMessage::ProcedureResult(_) => {
            shared
                .counters
                .unmatched_replies
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn answer_subscription(shared: &Shared, request_id: u32, reply: Result<Subscription>) {
    match lock(&shared.waiters).subscriptions.remove(&request_id) {
        Some(tx) => {
            let _ = tx.send(reply);
        }
        None => {
            shared
                .counters
                .unmatched_replies
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A reducer's structured error is the BSATN of its error type, a `String` for `Result<(), String>`.
fn error_payload_text(bytes: &Bytes) -> String {
    match bsatn::from_slice::<String>(bytes) {
        Ok(s) => s,
        Err(_) => format!(
            "(error value of {} BSATN bytes: {:02x?})",
            bytes.len(),
            &bytes[..bytes.len().min(32)]
        ),
    }
}

fn decode_rows(
    shared: &Shared,
    table: &str,
    list: &BsatnRowList,
) -> (Option<Arc<TableSchema>>, Vec<ProductValue>) {
    let schema = shared
        .schema
        .tables
        .iter()
        .find(|t| t.name == table)
        .cloned();
    let mut rows = Vec::new();
    let mut bad = 0u64;
    match &schema {
        Some(s) => {
            for bytes in list {
                match s.decode_row(&bytes) {
                    Ok(row) => rows.push(row),
                    Err(_) => bad += 1,
                }
            }
        }
        None => bad = list.into_iter().count() as u64,
    }
    if bad > 0 {
        shared
            .counters
            .undecoded_rows
            .fetch_add(bad, Ordering::Relaxed);
    }
    (schema, rows)
}

fn publish_update(
    shared: &Shared,
    update: &v2::TransactionUpdate,
    caller: Option<u32>,
    received_at: Instant,
) {
    let receivers: Vec<mpsc::UnboundedSender<Arc<RowEvent>>> = {
        let mut rows = shared.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.retain(|tx| !tx.is_closed());
        rows.clone()
    };
    if receivers.is_empty() {
        return; // nobody listens: skip the decoding work
    }
    for set in update.query_sets.iter() {
        for table in set.tables.iter() {
            let name: Arc<str> = Arc::from(&*table.table_name);
            let mut schema = None;
            let mut inserts = Vec::new();
            let mut deletes = Vec::new();
            for rows in table.rows.iter() {
                match rows {
                    TableUpdateRows::PersistentTable(p) => {
                        let (s, ins) = decode_rows(shared, &name, &p.inserts);
                        let (_, del) = decode_rows(shared, &name, &p.deletes);
                        schema = s;
                        inserts.extend(ins);
                        deletes.extend(del);
                    }
                    TableUpdateRows::EventTable(e) => {
                        let (s, ins) = decode_rows(shared, &name, &e.events);
                        schema = s;
                        inserts.extend(ins);
                    }
                }
            }
            if schema.is_none() {
                schema = shared
                    .schema
                    .tables
                    .iter()
                    .find(|t| *t.name == *name)
                    .cloned();
            }
            let event = RowEvent {
                table: name,
                schema,
                inserts,
                deletes,
                query_set_id: set.query_set_id.id,
                caller_request_id: caller,
                received_at,
            };
            shared.counters.row_events.fetch_add(1, Ordering::Relaxed);
            let event = Arc::new(event);
            for tx in &receivers {
                let _ = tx.send(event.clone());
            }
        }
    }
}

/// A [`PendingCall`] labelled with the caller's tag.
struct TaggedCall {
    tag: u64,
    call: PendingCall,
}

impl Future for TaggedCall {
    type Output = (u64, Result<ReducerOutcome>);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let tag = self.tag;
        std::pin::Pin::new(&mut self.call)
            .poll(cx)
            .map(|r| (tag, r))
    }
}

/// Many reducer calls in flight on one connection, each labelled with a caller-chosen tag, whose
/// outcomes are taken in completion order: the shape of a load generator's writer.
pub struct TaggedCalls {
    client: StdbClient,
    pending: futures_util::stream::FuturesUnordered<TaggedCall>,
}

impl TaggedCalls {
    pub fn new(client: StdbClient) -> Self {
        Self {
            client,
            pending: futures_util::stream::FuturesUnordered::new(),
        }
    }

    pub fn client(&self) -> &StdbClient {
        &self.client
    }

    /// Sends a call now; its outcome comes out of [`TaggedCalls::next`] with `tag`.
    pub fn send(&mut self, tag: u64, reducer: &str, args: &ReducerArgs) -> Result<()> {
        let call = self.client.send_reducer(reducer, args)?;
        self.pending.push(TaggedCall { tag, call });
        Ok(())
    }

    /// Calls sent whose outcome has not been taken yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The next outcome to arrive, with its tag; `None` when nothing is in flight. Cancel-safe:
    /// dropping the future loses no outcome.
    pub async fn next(&mut self) -> Option<(u64, Result<ReducerOutcome>)> {
        self.pending.next().await
    }
}
