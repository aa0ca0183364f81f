//! An in-process server that speaks SpacetimeDB's protocol (v2 BSATN over WebSocket, schema and
//! SQL over HTTP) with the same official types as the client, hosting a small chat module in memory.
//! For tests of crates that drive SpacetimeDB apps; no SpacetimeDB binary needed.
//!
//! The module (database name from [`TestServerConfig::database`], `chat` by default):
//! - tables `user(identity: Identity, name: Option<String>, online: bool)`,
//!   `room(id: u64, name: String, created_by: Identity)`,
//!   `room_member(id: u64, room_id: u64, identity: Identity)`,
//!   `message(id: u64, room_id: u64, sender: Identity, text: String, sent: Timestamp)`;
//! - reducers `set_name(name: String)`, `create_room(name: String)` (the creator joins it),
//!   `join_room(room_id: u64)` (idempotent), `send_message(room_id: u64, text: String)` (sender must
//!   be a member); each returns an error for empty names/texts and unknown rooms.
//!
//! SQL (HTTP) understands `SELECT (* | COUNT(*) [AS name] | col, …) FROM <table>
//! [WHERE <col> = <literal> [AND …]] [LIMIT n]`, statements separated by `;`; subscriptions and
//! one-off queries take the whole-row form (`SELECT * … [WHERE …]`). Literals are numbers,
//! `'strings'` (`''` escapes a quote), `true`/`false` and `0x…` identities; `"col"` quotes a name.
//! Only `=` conditions joined by `AND` (SpacetimeDB also has `OR`, `<`, `>`, `!=`); neither has
//! `LIKE`. Faults ([`Fault`]) make a reducer fail (always or every n-th call), panic or wait.
//! Reducers run one at a time under one lock, as in SpacetimeDB, so every subscriber sees
//! transactions in commit order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value as Json;
use spacetimedb_client_api_messages::http::{SqlStmtResult, SqlStmtStats};
use spacetimedb_client_api_messages::websocket::common::{BsatnRowList, QuerySetId, RowSizeHint};
use spacetimedb_client_api_messages::websocket::v2::{
    self, ClientMessage, PersistentTableRows, QueryRows, QuerySetUpdate, ReducerOk, ReducerOutcome,
    ServerMessage, SingleTableRows, TableUpdate, TableUpdateRows,
};
use spacetimedb_lib::db::raw_def::v9::{RawModuleDefV9, RawModuleDefV9Builder};
use spacetimedb_lib::{
    AlgebraicType, AlgebraicValue, ConnectionId, Identity, ProductType, ProductTypeElement,
    ProductValue, Timestamp, bsatn,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::protocol::{SUBPROTOCOL, decode_client_message, encode_server_message};
use crate::schema::{ModuleSchema, TableSchema, json_to_value};

mod http;
mod module;
mod sql;
mod ws;

use http::*;
use module::*;
use sql::*;
use ws::*;

/// What to do instead of (or before) running a reducer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Return this error from the reducer (the client sees `ReducerStatus::Failed`).
    Fail(String),
    /// Panic with this message (the client sees `ReducerStatus::InternalError`).
    Panic(String),
    /// Wait this long, then run normally (only the calling connection waits).
    Delay(Duration),
    /// Fail every `every`-th call (the `every`-th, `2·every`-th, …) with this error; run the others.
    FailEvery { every: u64, message: String },
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct TestServerConfig {
    /// The database name the server answers to (any other name gets 404).
    pub database: String,
    /// How often the server pings each connection (SpacetimeDB: 15 s).
    pub ping_interval: Duration,
    /// A connection from which nothing arrived for this long is dropped (SpacetimeDB: 30 s).
    pub idle_timeout: Duration,
    /// Where to listen; port 0 picks a free port. Loopback only by default.
    pub bind: SocketAddr,
}

impl Default for TestServerConfig {
    fn default() -> Self {
        Self {
            database: "chat".to_string(),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(30),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// A running test server; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        self.state.shutdown.send_replace(true);
    }
}

/// Counters of the server's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub connections: u64,
    pub reducer_calls: u64,
    pub committed: u64,
    pub failed: u64,
    pub transaction_updates_sent: u64,
    /// Connections dropped for silence (no pong within the idle timeout).
    pub idle_disconnects: u64,
}

impl TestServer {
    /// Starts a server for database `chat` on 127.0.0.1 with a free port.
    pub async fn start() -> Result<TestServer> {
        Self::start_with(TestServerConfig::default()).await
    }

    pub async fn start_with(config: TestServerConfig) -> Result<TestServer> {
        let raw = chat_module_def();
        let schema =
            ModuleSchema::from_raw(raw.clone()).context("resolving the test chat module")?;
        let state = Arc::new(ServerState {
            database: config.database.clone(),
            config,
            raw_def: raw,
            schema,
            inner: Mutex::new(Inner::default()),
            faults: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            counters: Default::default(),
            shutdown: tokio::sync::watch::channel(false).0,
            seed: std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                Instant::now(),
            ),
        });
        let app = Router::new()
            .route("/v1/database/{db}/subscribe", get(ws_handler))
            .route("/v1/database/{db}/schema", get(schema_handler))
            .route("/v1/database/{db}/sql", post(sql_handler))
            .with_state(state.clone());
        let bind = state.config.bind;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding the test server to {bind}: is the port in use?"))?;
        let addr = listener
            .local_addr()
            .context("reading the test server's address")?;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestServer { addr, state, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn database(&self) -> &str {
        &self.state.database
    }

    /// Sets (`Some`) or clears (`None`) the fault of a reducer.
    pub fn set_fault(&self, reducer: &str, fault: Option<Fault>) {
        let mut faults = self.state.faults.lock().unwrap_or_else(|e| e.into_inner());
        match fault {
            Some(f) => faults.insert(reducer.to_string(), (f, 0)),
            None => faults.remove(reducer),
        };
    }

    pub fn stats(&self) -> ServerStats {
        let c = &self.state.counters;
        ServerStats {
            connections: c.connections.load(Ordering::Relaxed),
            reducer_calls: c.reducer_calls.load(Ordering::Relaxed),
            committed: c.committed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            transaction_updates_sent: c.transaction_updates_sent.load(Ordering::Relaxed),
            idle_disconnects: c.idle_disconnects.load(Ordering::Relaxed),
        }
    }

    /// Rows currently in a table (for assertions).
    pub fn row_count(&self, table: &str) -> usize {
        let inner = self.state.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tables.get(table).map_or(0, Vec::len)
    }
}

/// The chat module's definition, built with the official builder.
pub fn chat_module_def() -> RawModuleDefV9 {
    let mut b = RawModuleDefV9Builder::new();
    let named = |cols: &[(&'static str, AlgebraicType)]| {
        ProductType::from(
            cols.iter()
                .map(|(n, t)| ProductTypeElement::new_named(t.clone(), *n))
                .collect::<Box<[_]>>(),
        )
    };
    let tables: [(&str, ProductType, u16); 4] = [
        (
            "user",
            named(&[
                ("identity", AlgebraicType::identity()),
                ("name", AlgebraicType::option(AlgebraicType::String)),
                ("online", AlgebraicType::Bool),
            ]),
            0,
        ),
        (
            "room",
            named(&[
                ("id", AlgebraicType::U64),
                ("name", AlgebraicType::String),
                ("created_by", AlgebraicType::identity()),
            ]),
            0,
        ),
        (
            "room_member",
            named(&[
                ("id", AlgebraicType::U64),
                ("room_id", AlgebraicType::U64),
                ("identity", AlgebraicType::identity()),
            ]),
            0,
        ),
        (
            "message",
            named(&[
                ("id", AlgebraicType::U64),
                ("room_id", AlgebraicType::U64),
                ("sender", AlgebraicType::identity()),
                ("text", AlgebraicType::String),
                ("sent", AlgebraicType::timestamp()),
            ]),
            0,
        ),
    ];
    for (name, ty, pk) in tables {
        b.build_table_with_new_type(name, ty, true)
            .with_primary_key(pk)
            .finish();
    }
    b.add_reducer("set_name", named(&[("name", AlgebraicType::String)]), None);
    b.add_reducer(
        "create_room",
        named(&[("name", AlgebraicType::String)]),
        None,
    );
    b.add_reducer("join_room", named(&[("room_id", AlgebraicType::U64)]), None);
    b.add_reducer(
        "send_message",
        named(&[
            ("room_id", AlgebraicType::U64),
            ("text", AlgebraicType::String),
        ]),
        None,
    );
    b.finish()
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    reducer_calls: AtomicU64,
    committed: AtomicU64,
    failed: AtomicU64,
    transaction_updates_sent: AtomicU64,
    idle_disconnects: AtomicU64,
    /// Identities minted so far (each gets a distinct subject).
    minted: AtomicU64,
}

struct ServerState {
    database: String,
    config: TestServerConfig,
    raw_def: RawModuleDefV9,
    schema: ModuleSchema,
    inner: Mutex<Inner>,
    /// Fault per reducer, with the number of calls it has seen.
    faults: Mutex<HashMap<String, (Fault, u64)>>,
    tokens: Mutex<HashMap<String, Identity>>,
    counters: Counters,
    seed: u64,
    /// Set to `true` when the [`TestServer`] is dropped: every connection ends.
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// The database and the connections subscribed to it, under one lock.
#[derive(Default)]
struct Inner {
    tables: HashMap<String, Vec<ProductValue>>,
    next_id: u64,
    next_conn: u64,
    conns: HashMap<u64, Conn>,
}

struct Conn {
    tx: mpsc::UnboundedSender<Message>,
    query_sets: Vec<(QuerySetId, Vec<Select>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ModuleSchema {
        ModuleSchema::from_raw(chat_module_def()).unwrap()
    }

    #[test]
    fn selects_parse_with_quotes_keywords_and_limits() {
        let s = schema();
        let q = parse_select(&s, "select text, \"room_id\" from message where text = 'a AND b; it''s' and room_id = 3 limit 5;").unwrap();
        assert!(matches!(q.projection, Projection::Columns(ref c) if c == &[3, 1]));
        assert_eq!(
            q.filters,
            vec![
                (3, AlgebraicValue::String("a AND b; it's".into())),
                (1, AlgebraicValue::U64(3))
            ]
        );
        assert_eq!(q.limit, Some(5));
        assert!(!q.whole_rows());

        let q = parse_select(
            &s,
            "SELECT COUNT(*) FROM user WHERE name = 'ann' AND online = true",
        )
        .unwrap();
        assert!(matches!(q.projection, Projection::Count(ref a) if a == "count"));
        assert_eq!(
            q.filters[0].1,
            AlgebraicValue::OptionSome(AlgebraicValue::String("ann".into()))
        );
        assert_eq!(q.filters[1].1, AlgebraicValue::Bool(true));

        let id = Identity::from_claims("a", "b");
        let q = parse_select(
            &s,
            &format!("SELECT * FROM message WHERE sender = 0x{}", id.to_hex()),
        )
        .unwrap();
        assert_eq!(q.filters[0].1, identity_value(id));
        assert!(q.whole_rows());

        for (bad, why) in [
            (
                "SELECT * FROM message WHERE text LIKE 'x%'",
                "only `col = literal`",
            ),
            (
                "SELECT * FROM message WHERE room_id = 1 OR room_id = 2",
                "unsupported SQL",
            ),
            ("SELECT * FROM nope", "no table `nope`"),
            ("SELECT nope FROM message", "no column `nope`"),
            ("DELETE FROM message", "expected SELECT"),
            (
                "SELECT * FROM message WHERE room_id = 'x'",
                "expected a u64",
            ),
            ("SELECT * FROM message WHERE text = 'open", "unterminated"),
        ] {
            let err = format!("{:#}", parse_select(&s, bad).unwrap_err());
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn statements_split_outside_quotes() {
        assert_eq!(
            split_statements("SELECT 1; SELECT ';' ;; SELECT \"a;b\" "),
            ["SELECT 1", "SELECT ';'", "SELECT \"a;b\""]
        );
    }
}
