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

/// What a `SELECT` returns.
#[derive(Debug, Clone)]
enum Projection {
    /// `*`: whole rows.
    All,
    /// `COUNT(*) [AS alias]`.
    Count(String),
    /// `a, b, c`: these columns.
    Columns(Vec<usize>),
}

/// A parsed `SELECT` (the subset this server understands).
#[derive(Debug, Clone)]
struct Select {
    table: Arc<TableSchema>,
    projection: Projection,
    filters: Vec<(usize, AlgebraicValue)>,
    limit: Option<usize>,
}

impl Select {
    fn matches(&self, row: &ProductValue) -> bool {
        self.filters
            .iter()
            .all(|(col, v)| row.elements.get(*col) == Some(v))
    }

    /// Subscriptions and one-off queries must return whole rows.
    fn whole_rows(&self) -> bool {
        matches!(self.projection, Projection::All) && self.limit.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare or double-quoted identifier (bare ones may be keywords).
    Ident {
        text: String,
        quoted: bool,
    },
    Number(String),
    Str(String),
    Symbol(char),
}

fn tokenize(sql: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' || c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c => {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            text.push(c);
                        } else {
                            break;
                        }
                    }
                    Some(other) => text.push(other),
                    None => bail!("unterminated {c}…{c} in `{sql}`"),
                }
            }
            tokens.push(if c == '\'' {
                Token::Str(text)
            } else {
                Token::Ident { text, quoted: true }
            });
        } else if c.is_ascii_digit() || c == '-' {
            let mut text = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '-' || d == '.' {
                    text.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Number(text));
        } else if c.is_alphabetic() || c == '_' {
            let mut text = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    text.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Ident {
                text,
                quoted: false,
            });
        } else if "*=(),;".contains(c) {
            tokens.push(Token::Symbol(c));
            chars.next();
        } else {
            bail!(
                "unexpected `{c}` in `{sql}` (this server understands SELECT with `col = literal` filters)"
            );
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    sql: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Result<Token> {
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| anyhow!("`{}` ends too early", self.sql))?;
        self.pos += 1;
        Ok(t)
    }

    fn keyword(&mut self, kw: &str) -> bool {
        let hit = matches!(self.peek(), Some(Token::Ident { text, quoted: false }) if text.eq_ignore_ascii_case(kw));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<()> {
        if self.keyword(kw) {
            Ok(())
        } else {
            bail!("expected {kw} in `{}`", self.sql)
        }
    }

    fn symbol(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Token::Symbol(c));
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_symbol(&mut self, c: char) -> Result<()> {
        if self.symbol(c) {
            Ok(())
        } else {
            bail!("expected `{c}` in `{}`", self.sql)
        }
    }

    fn ident(&mut self) -> Result<String> {
        match self.next()? {
            Token::Ident { text, .. } => Ok(text),
            other => bail!("expected a name, found {other:?} in `{}`", self.sql),
        }
    }
}

/// Parses `SELECT (* | COUNT(*) [AS a] | col, …) FROM t [WHERE col = literal [AND …]] [LIMIT n]`.
fn parse_select(schema: &ModuleSchema, sql: &str) -> Result<Select> {
    enum Proj {
        All,
        Count(String),
        Names(Vec<String>),
    }
    let mut p = Parser {
        tokens: tokenize(sql)?,
        pos: 0,
        sql,
    };
    p.expect_keyword("SELECT")?;
    let proj = if p.symbol('*') {
        Proj::All
    } else if p.keyword("COUNT") {
        p.expect_symbol('(')?;
        p.expect_symbol('*')?;
        p.expect_symbol(')')?;
        Proj::Count(if p.keyword("AS") {
            p.ident()?
        } else {
            "count".to_string()
        })
    } else {
        let mut names = vec![p.ident()?];
        while p.symbol(',') {
            names.push(p.ident()?);
        }
        Proj::Names(names)
    };
    p.expect_keyword("FROM")?;
    let table = schema.table(&p.ident()?)?.clone();
    let projection = match proj {
        Proj::All => Projection::All,
        Proj::Count(alias) => Projection::Count(alias),
        Proj::Names(names) => Projection::Columns(
            names
                .iter()
                .map(|n| table.column_index(n))
                .collect::<Result<_>>()?,
        ),
    };
    let mut filters = Vec::new();
    if p.keyword("WHERE") {
        loop {
            let col = table.column_index(&p.ident()?)?;
            p.expect_symbol('=')
                .map_err(|_| anyhow!("only `col = literal` conditions are supported in `{sql}`"))?;
            let json = match p.next()? {
                Token::Str(s) => Json::String(s),
                Token::Number(n) if n.starts_with("0x") || n.starts_with("0X") => Json::String(n),
                Token::Number(n) => serde_json::from_str::<Json>(&n)
                    .map_err(|_| anyhow!("cannot read the number `{n}`"))?,
                Token::Ident {
                    text,
                    quoted: false,
                } if text.eq_ignore_ascii_case("true") => Json::Bool(true),
                Token::Ident {
                    text,
                    quoted: false,
                } if text.eq_ignore_ascii_case("false") => Json::Bool(false),
                other => bail!("expected a literal, found {other:?} in `{sql}`"),
            };
            let ty = &table.columns[col].ty;
            let value = match ty.as_option() {
                Some(inner) => AlgebraicValue::OptionSome(json_to_value(&json, inner)?),
                None => json_to_value(&json, ty)?,
            };
            filters.push((col, value));
            if !p.keyword("AND") {
                break;
            }
        }
    }
    let limit = if p.keyword("LIMIT") {
        match p.next()? {
            Token::Number(n) => Some(n.parse().map_err(|_| anyhow!("bad LIMIT `{n}`"))?),
            other => bail!("expected a number after LIMIT, found {other:?}"),
        }
    } else {
        None
    };
    p.symbol(';');
    if let Some(extra) = p.peek() {
        bail!(
            "unsupported SQL at {extra:?} in `{sql}` (this server understands \
             SELECT … FROM t [WHERE col = literal [AND …]] [LIMIT n])"
        );
    }
    Ok(Select {
        table,
        projection,
        filters,
        limit,
    })
}

fn row_list(rows: &[&ProductValue]) -> BsatnRowList {
    let mut data = Vec::new();
    let mut offsets = Vec::with_capacity(rows.len());
    for row in rows {
        offsets.push(data.len() as u64);
        // Encoding into a Vec cannot fail.
        let _ = bsatn::to_writer(&mut data, *row);
    }
    BsatnRowList::new(RowSizeHint::RowOffsets(offsets.into()), data.into())
}

fn query_rows(inner: &Inner, selects: &[Select]) -> QueryRows {
    let tables = selects
        .iter()
        .map(|s| {
            let rows: Vec<&ProductValue> = inner
                .tables
                .get(&s.table.name)
                .map(|rows| rows.iter().filter(|r| s.matches(r)).collect())
                .unwrap_or_default();
            SingleTableRows {
                table: s.table.name.clone().into(),
                rows: row_list(&rows),
            }
        })
        .collect();
    QueryRows { tables }
}

/// One transaction's changes: table → (inserts, deletes).
type Changes = Vec<(String, Vec<ProductValue>, Vec<ProductValue>)>;

fn query_set_updates(conn: &Conn, changes: &Changes) -> Vec<QuerySetUpdate> {
    let mut out = Vec::new();
    for (id, selects) in &conn.query_sets {
        let mut tables = Vec::new();
        for (table, inserts, deletes) in changes {
            for s in selects.iter().filter(|s| &s.table.name == table) {
                let ins: Vec<&ProductValue> = inserts.iter().filter(|r| s.matches(r)).collect();
                let del: Vec<&ProductValue> = deletes.iter().filter(|r| s.matches(r)).collect();
                if ins.is_empty() && del.is_empty() {
                    continue;
                }
                tables.push(TableUpdate {
                    table_name: table.clone().into(),
                    rows: [TableUpdateRows::PersistentTable(PersistentTableRows {
                        inserts: row_list(&ins),
                        deletes: row_list(&del),
                    })]
                    .into(),
                });
            }
        }
        if !tables.is_empty() {
            out.push(QuerySetUpdate {
                query_set_id: *id,
                tables: tables.into(),
            });
        }
    }
    out
}

fn identity_value(id: Identity) -> AlgebraicValue {
    AlgebraicValue::product([AlgebraicValue::U256(Box::new(id.to_u256()))])
}

fn as_u64(v: &AlgebraicValue) -> Option<u64> {
    match v {
        AlgebraicValue::U64(x) => Some(*x),
        _ => None,
    }
}

fn as_str(v: &AlgebraicValue) -> Option<&str> {
    match v {
        AlgebraicValue::String(s) => Some(s),
        _ => None,
    }
}

/// Runs a chat reducer against the tables; `Err(msg)` means the reducer returned an error.
impl Inner {
    /// The next row id (ids are shared by every table).
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a row to `table` and records the insertion among `changes`.
    fn insert(&mut self, table: &str, row: Vec<AlgebraicValue>, changes: &mut Changes) {
        let row = ProductValue::from(row);
        self.tables
            .entry(table.into())
            .or_default()
            .push(row.clone());
        changes.push((table.into(), vec![row], vec![]));
    }

    /// Makes `member` a member of room `room_id`.
    fn add_member(&mut self, room_id: u64, member: AlgebraicValue, changes: &mut Changes) {
        let id = self.new_id();
        self.insert(
            "room_member",
            vec![
                AlgebraicValue::U64(id),
                AlgebraicValue::U64(room_id),
                member,
            ],
            changes,
        );
    }

    fn check_room(&self, room_id: u64) -> Result<(), String> {
        let exists = self.tables.get("room").is_some_and(|rooms| {
            rooms
                .iter()
                .any(|r| as_u64(&r.elements[0]) == Some(room_id))
        });
        if exists {
            Ok(())
        } else {
            Err(format!("room {room_id} not found"))
        }
    }

    fn is_member(&self, room_id: u64, who: &AlgebraicValue) -> bool {
        self.tables.get("room_member").is_some_and(|members| {
            members
                .iter()
                .any(|m| as_u64(&m.elements[1]) == Some(room_id) && m.elements[2] == *who)
        })
    }
}

fn run_reducer(
    inner: &mut Inner,
    caller: Identity,
    reducer: &str,
    args: &ProductValue,
) -> Result<Changes, String> {
    let arg = |i: usize| {
        args.elements
            .get(i)
            .ok_or_else(|| format!("missing argument {i}"))
    };
    let me = identity_value(caller);
    let mut changes: Changes = Vec::new();
    match reducer {
        "set_name" => {
            let name = as_str(arg(0)?)
                .ok_or("name must be a string")?
                .trim()
                .to_string();
            if name.is_empty() {
                return Err("name must not be empty".into());
            }
            let users = inner.tables.entry("user".into()).or_default();
            let old = users
                .iter()
                .position(|r| r.elements[0] == me)
                .map(|i| users.remove(i));
            let row = ProductValue::from(vec![
                me.clone(),
                AlgebraicValue::OptionSome(AlgebraicValue::String(name.into())),
                AlgebraicValue::Bool(true),
            ]);
            users.push(row.clone());
            changes.push(("user".into(), vec![row], old.into_iter().collect()));
        }
        "create_room" => {
            let name = as_str(arg(0)?)
                .ok_or("name must be a string")?
                .trim()
                .to_string();
            if name.is_empty() {
                return Err("room name must not be empty".into());
            }
            let room_id = inner.new_id();
            inner.insert(
                "room",
                vec![
                    AlgebraicValue::U64(room_id),
                    AlgebraicValue::String(name.into()),
                    me.clone(),
                ],
                &mut changes,
            );
            inner.add_member(room_id, me, &mut changes);
        }
        "join_room" => {
            let room_id = as_u64(arg(0)?).ok_or("room_id must be a u64")?;
            inner.check_room(room_id)?;
            if !inner.is_member(room_id, &me) {
                inner.add_member(room_id, me, &mut changes);
            }
        }
        "send_message" => {
            let room_id = as_u64(arg(0)?).ok_or("room_id must be a u64")?;
            let text = as_str(arg(1)?).ok_or("text must be a string")?.to_string();
            if text.trim().is_empty() {
                return Err("message text must not be empty".into());
            }
            inner.check_room(room_id)?;
            if !inner.is_member(room_id, &me) {
                return Err(format!("not a member of room {room_id}"));
            }
            let id = inner.new_id();
            inner.insert(
                "message",
                vec![
                    AlgebraicValue::U64(id),
                    AlgebraicValue::U64(room_id),
                    me,
                    AlgebraicValue::String(text.into()),
                    AlgebraicValue::product([AlgebraicValue::I64(
                        Timestamp::now().to_micros_since_unix_epoch(),
                    )]),
                ],
                &mut changes,
            );
        }
        other => return Err(format!("no reducer `{other}` in the chat module")),
    }
    Ok(changes)
}

fn error_response(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

/// `Some(404 response)` when `db` is not this server's database.
fn check_db(state: &ServerState, db: &str) -> Option<Response> {
    (db != state.database).then(|| error_response(StatusCode::NOT_FOUND, "No such database."))
}

async fn schema_handler(
    State(state): State<Arc<ServerState>>,
    Path(db): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = check_db(&state, &db) {
        return r;
    }
    if q.get("version").map(String::as_str) != Some("9") {
        return error_response(
            StatusCode::BAD_REQUEST,
            "Failed to deserialize query string: missing or unknown `version` (only 9)",
        );
    }
    match serde_json::to_string(&spacetimedb_lib::ser::serde::SerializeWrapper::new(
        &state.raw_def,
    )) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn sql_handler(
    State(state): State<Arc<ServerState>>,
    Path(db): Path<String>,
    body: String,
) -> Response {
    if let Some(r) = check_db(&state, &db) {
        return r;
    }
    let started = Instant::now();
    let mut results: Vec<SqlStmtResult<ProductValue>> = Vec::new();
    for stmt in split_statements(&body) {
        let select = match parse_select(&state.schema, stmt) {
            Ok(s) => s,
            Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("{e:#}")),
        };
        let inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
        let matching: Vec<&ProductValue> = inner
            .tables
            .get(&select.table.name)
            .map(|r| r.iter().filter(|r| select.matches(r)).collect())
            .unwrap_or_default();
        let (schema, mut rows) = match &select.projection {
            Projection::Count(alias) => (
                ProductType::from([ProductTypeElement::new_named(
                    AlgebraicType::U64,
                    alias.clone(),
                )]),
                vec![ProductValue::from(vec![AlgebraicValue::U64(
                    matching.len() as u64,
                )])],
            ),
            Projection::All => (
                select.table.row_type.clone(),
                matching.into_iter().cloned().collect(),
            ),
            Projection::Columns(cols) => (
                ProductType::from(
                    cols.iter()
                        .map(|&c| select.table.row_type.elements[c].clone())
                        .collect::<Box<[_]>>(),
                ),
                matching
                    .into_iter()
                    .map(|r| {
                        ProductValue::from(
                            cols.iter()
                                .map(|&c| r.elements[c].clone())
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect(),
            ),
        };
        if let Some(limit) = select.limit {
            rows.truncate(limit);
        }
        results.push(SqlStmtResult {
            schema,
            rows,
            total_duration_micros: started.elapsed().as_micros() as u64,
            stats: SqlStmtStats::default(),
        });
    }
    match serde_json::to_string(&results) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Splits SQL text at `;` outside quotes, dropping empty statements.
fn split_statements(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ';') => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&body[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

async fn ws_handler(
    State(state): State<Arc<ServerState>>,
    Path(db): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(r) = check_db(&state, &db) {
        return r;
    }
    let offered = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim))
        .any(|p| p == SUBPROTOCOL);
    if !offered {
        return error_response(
            StatusCode::BAD_REQUEST,
            format!("unsupported WebSocket subprotocol: expected {SUBPROTOCOL}"),
        );
    }
    let identity = match headers
        .get("authorization")
        .map(|v| v.to_str().unwrap_or(""))
    {
        Some(auth) => {
            let Some(token) = auth.strip_prefix("Bearer ") else {
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    "Authorization header must be `Bearer <token>`",
                );
            };
            match state
                .tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(token)
            {
                Some(id) => (*id, token.to_string()),
                None => return error_response(StatusCode::UNAUTHORIZED, "invalid token"),
            }
        }
        None => mint_identity(&state),
    };
    ws.protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| connection(state, socket, identity))
}

fn mint_identity(state: &ServerState) -> (Identity, String) {
    let n = state.counters.minted.fetch_add(1, Ordering::Relaxed);
    let subject = format!("{:016x}-{n}", state.seed);
    let identity = Identity::from_claims("stdb-client-test-server", &subject);
    let token = format!("test-token.{}.{:016x}", identity.to_hex(), state.seed ^ n);
    state
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), identity);
    (identity, token)
}

async fn connection(
    state: Arc<ServerState>,
    socket: WebSocket,
    (identity, token): (Identity, String),
) {
    let n = state.counters.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let connection_id = ConnectionId::from_u128(u128::from(state.seed) << 64 | u128::from(n));
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            if sink.feed(first).await.is_err() {
                return;
            }
            while let Ok(more) = rx.try_recv() {
                if sink.feed(more).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let send = |tx: &mpsc::UnboundedSender<Message>, msg: &ServerMessage| {
        if let Ok(frame) = encode_server_message(msg) {
            let _ = tx.send(Message::Binary(frame.into()));
        }
    };
    send(
        &tx,
        &ServerMessage::InitialConnection(v2::InitialConnection {
            identity,
            connection_id,
            token: token.into(),
        }),
    );
    let conn_key = {
        let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next_conn += 1;
        let key = inner.next_conn;
        inner.conns.insert(
            key,
            Conn {
                tx: tx.clone(),
                query_sets: Vec::new(),
            },
        );
        key
    };
    let mut shutdown = state.shutdown.subscribe();
    let serve = async {
        // Keep-alive as in SpacetimeDB: ping every `ping_interval`; drop a connection from which
        // nothing (not even a pong) arrived for `idle_timeout`.
        let mut pings = tokio::time::interval(state.config.ping_interval);
        pings.tick().await;
        let mut last_heard = Instant::now();
        loop {
            let frame = tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(frame)) => frame,
                    _ => break,
                },
                _ = pings.tick() => {
                    if last_heard.elapsed() > state.config.idle_timeout {
                        state.counters.idle_disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    let _ = tx.send(Message::Ping(Bytes::new()));
                    continue;
                }
            };
            last_heard = Instant::now();
            let bytes = match frame {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                Message::Text(_) => break, // the binary protocol has no text frames
                _ => continue,
            };
            let Ok(msg) = decode_client_message(&bytes) else {
                break; // SpacetimeDB drops clients that send undecodable messages
            };
            match msg {
                ClientMessage::CallReducer(call) => {
                    let fault = state
                        .faults
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(&*call.reducer)
                        .and_then(|(fault, calls)| {
                            *calls += 1;
                            match fault {
                                Fault::FailEvery { every, message } => (*calls)
                                    .is_multiple_of((*every).max(1))
                                    .then(|| Fault::Fail(message.clone())),
                                other => Some(other.clone()),
                            }
                        });
                    if let Some(Fault::Delay(d)) = &fault {
                        tokio::time::sleep(*d).await;
                    }
                    handle_call(&state, conn_key, identity, call, fault);
                }
                ClientMessage::Subscribe(sub) => {
                    let parsed: Result<Vec<Select>> = sub
                        .query_strings
                        .iter()
                        .map(|q| parse_select(&state.schema, q))
                        .collect();
                    let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
                    match parsed {
                        Ok(selects) if selects.iter().all(Select::whole_rows) => {
                            let rows = query_rows(&inner, &selects);
                            if let Some(conn) = inner.conns.get_mut(&conn_key) {
                                conn.query_sets.push((sub.query_set_id, selects));
                            }
                            send(
                                &tx,
                                &ServerMessage::SubscribeApplied(v2::SubscribeApplied {
                                    request_id: sub.request_id,
                                    query_set_id: sub.query_set_id,
                                    rows,
                                }),
                            );
                        }
                        Ok(_) => send(
                            &tx,
                            &ServerMessage::SubscriptionError(v2::SubscriptionError {
                                request_id: Some(sub.request_id),
                                query_set_id: sub.query_set_id,
                                error: "subscriptions must select whole rows (`SELECT * FROM …`)"
                                    .into(),
                            }),
                        ),
                        Err(e) => send(
                            &tx,
                            &ServerMessage::SubscriptionError(v2::SubscriptionError {
                                request_id: Some(sub.request_id),
                                query_set_id: sub.query_set_id,
                                error: format!("{e:#}").into(),
                            }),
                        ),
                    }
                }
                ClientMessage::Unsubscribe(unsub) => {
                    let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(conn) = inner.conns.get_mut(&conn_key) {
                        conn.query_sets.retain(|(id, _)| *id != unsub.query_set_id);
                    }
                    send(
                        &tx,
                        &ServerMessage::UnsubscribeApplied(v2::UnsubscribeApplied {
                            request_id: unsub.request_id,
                            query_set_id: unsub.query_set_id,
                            rows: None,
                        }),
                    );
                }
                ClientMessage::OneOffQuery(q) => {
                    let result = match parse_select(&state.schema, &q.query_string) {
                        Ok(s) if s.whole_rows() => {
                            let inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
                            Ok(query_rows(&inner, &[s]))
                        }
                        Ok(_) => Err("one-off queries must select whole rows".into()),
                        Err(e) => Err(format!("{e:#}").into()),
                    };
                    send(
                        &tx,
                        &ServerMessage::OneOffQueryResult(v2::OneOffQueryResult {
                            request_id: q.request_id,
                            result,
                        }),
                    );
                }
                ClientMessage::CallProcedure(p) => send(
                    &tx,
                    &ServerMessage::ProcedureResult(v2::ProcedureResult {
                        status: v2::ProcedureStatus::InternalError(
                            format!("no procedure `{}` in the chat module", p.procedure).into(),
                        ),
                        timestamp: Timestamp::now(),
                        total_host_execution_duration: Duration::ZERO.into(),
                        request_id: p.request_id,
                    }),
                ),
            }
        }
    };
    let stopped = tokio::select! {
        _ = serve => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    };
    state
        .inner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .conns
        .remove(&conn_key);
    drop(tx);
    if stopped {
        // Server shutdown: drop the socket without a goodbye, like a crashed server.
        writer.abort();
    } else {
        let _ = writer.await;
    }
}

fn handle_call(
    state: &ServerState,
    conn_key: u64,
    caller: Identity,
    call: v2::CallReducer,
    fault: Option<Fault>,
) {
    state.counters.reducer_calls.fetch_add(1, Ordering::Relaxed);
    let timestamp = Timestamp::now();
    let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
    let outcome: Result<Changes, ReducerOutcome> =
        match (state.schema.reducer(&call.reducer), fault) {
            (Err(_), _) => Err(ReducerOutcome::InternalError(
                format!("no such reducer `{}`", call.reducer).into(),
            )),
            (Ok(_), Some(Fault::Fail(msg))) => Err(ReducerOutcome::Err(
                bsatn::to_vec(&msg).unwrap_or_default().into(),
            )),
            (Ok(_), Some(Fault::Panic(msg))) => Err(ReducerOutcome::InternalError(
                format!("reducer panicked: {msg}").into(),
            )),
            (Ok(r), _) => match r.decode_args(&call.args) {
                Err(e) => Err(ReducerOutcome::InternalError(
                    format!("invalid arguments: {e:#}").into(),
                )),
                Ok(args) => run_reducer(&mut inner, caller, &call.reducer, &args).map_err(|msg| {
                    ReducerOutcome::Err(bsatn::to_vec(&msg).unwrap_or_default().into())
                }),
            },
        };
    let result = match outcome {
        Err(o) => {
            state.counters.failed.fetch_add(1, Ordering::Relaxed);
            o
        }
        Ok(changes) => {
            state.counters.committed.fetch_add(1, Ordering::Relaxed);
            let mut own = None;
            for (key, conn) in &inner.conns {
                let sets = query_set_updates(conn, &changes);
                if *key == conn_key {
                    own = Some(sets);
                } else if !sets.is_empty() {
                    state
                        .counters
                        .transaction_updates_sent
                        .fetch_add(1, Ordering::Relaxed);
                    if let Ok(frame) = encode_server_message(&ServerMessage::TransactionUpdate(
                        v2::TransactionUpdate {
                            query_sets: sets.into(),
                        },
                    )) {
                        let _ = conn.tx.send(Message::Binary(frame.into()));
                    }
                }
            }
            match own {
                Some(sets) if !sets.is_empty() => ReducerOutcome::Ok(ReducerOk {
                    ret_value: Bytes::new(),
                    transaction_update: v2::TransactionUpdate {
                        query_sets: sets.into(),
                    },
                }),
                _ => ReducerOutcome::OkEmpty,
            }
        }
    };
    let reply = encode_server_message(&ServerMessage::ReducerResult(v2::ReducerResult {
        request_id: call.request_id,
        timestamp,
        result,
    }));
    if let (Some(conn), Ok(frame)) = (inner.conns.get(&conn_key), reply) {
        let _ = conn.tx.send(Message::Binary(frame.into()));
    }
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
