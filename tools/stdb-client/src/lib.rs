//! A SpacetimeDB client for load generation, wire-correct by construction: every message is an
//! official type of `spacetimedb-client-api-messages` / `spacetimedb-lib` `=2.10.1`, encoded with
//! their BSATN codec, over the WebSocket subprotocol `v2.bsatn.spacetimedb` (the one the 2.10 SDK speaks).
//!
//! # Protocol facts (2.10.1)
//! - WebSocket: `ws://host:port/v1/database/<name-or-identity>/subscribe?compression=None`, header
//!   `Sec-WebSocket-Protocol: v2.bsatn.spacetimedb`, optional `Authorization: Bearer <token>`.
//!   Without a token the server mints an identity; either way its first message is
//!   `InitialConnection { identity, connection_id, token }`. One identity per connection.
//! - Client → server frames: BSATN of `v2::ClientMessage` (`CallReducer { request_id, flags, reducer, args }`
//!   where `args` is the BSATN of the reducer's parameter product; `Subscribe { request_id, query_set_id, query_strings }`).
//! - Server → client frames: one compression byte (0 none, 1 brotli, 2 gzip) then BSATN of
//!   `v2::ServerMessage`. The caller of a reducer gets `ReducerResult { request_id, timestamp, result }`
//!   (`Ok` with its own subscribed row changes, `OkEmpty`, `Err(bsatn error value)`, `InternalError(msg)`);
//!   other subscribers get `TransactionUpdate` with the rows matching their query sets.
//! - HTTP: `GET /v1/database/<db>/schema?version=9` (a `RawModuleDefV9` as SATS-JSON) and
//!   `POST /v1/database/<db>/sql` (body = SQL text; answer = JSON list of `SqlStmtResult`).
//!
//! # Use
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use serde_json::json;
//! use stdb_client::{ConnectOptions, StdbClient, count_rows, fetch_schema};
//!
//! let url = "http://127.0.0.1:3000";
//! let schema = Arc::new(fetch_schema(url, "chat").await?);
//! // Reducer names differ between generated apps: pick the first that exists (clear error otherwise).
//! let set_name = schema.pick_reducer(&["set_name", "register"])?.name.clone();
//! let args = schema.reducer_args(&set_name, &[("name", json!("alice"))])?;
//!
//! let opts = ConnectOptions { schema: Some(schema.clone()), ..ConnectOptions::default() };
//! let client = StdbClient::connect_with(url, "chat", opts).await?;
//! client.call_reducer(&set_name, &args).await?.into_committed()?;
//!
//! // A listener: subscribe, then read row events (each carries the frame's receive instant).
//! let listener = StdbClient::connect_with(url, "chat", ConnectOptions { schema: Some(schema.clone()), ..Default::default() }).await?;
//! let mut events = listener.row_events();
//! listener.subscribe(&["SELECT * FROM message WHERE room_id = 1"]).await?;
//!
//! // Many calls in flight on one connection: `send_reducer` returns at once with a future.
//! let send = schema.reducer_args("send_message", &[("room_id", json!(1)), ("text", json!("hi #1"))])?;
//! let pending = client.send_reducer("send_message", &send)?;
//! let outcome = pending.await?; // status Committed / Failed(msg) / InternalError(msg), latency()
//! let event = events.recv().await.expect("open"); // Arc<RowEvent>: table, inserts (ProductValue), received_at
//! let text = event.column_json(&event.inserts[0], "text")?;
//! # let _ = (outcome, text);
//! let committed = count_rows(url, "chat", None, "message", Some("room_id = 1")).await?;
//! # let _ = committed;
//! # Ok(()) }
//! ```
//!
//! Finding a generated chat app's reducers and tables in its schema (`ChatShape`) is
//! bench-stress's business (`bench_stress::stdb_shape`). SpacetimeDB SQL has no `LIKE`: count a
//! room's messages with `room_id = N`, or fetch `SELECT text FROM message WHERE room_id = N` and
//! match markers.
//!
//! # Notes for load generators
//! - [`StdbClient`] is `Clone` (an `Arc`); all clones share one socket, one writer task (which
//!   batches queued frames into one flush) and one reader task. TCP_NODELAY is on.
//! - [`StdbClient::send_reducer`] queues the call and returns a [`PendingCall`] (a named future,
//!   storable in a `FuturesUnordered`); [`ReducerOutcome::sent_at`]/[`ReducerOutcome::received_at`]
//!   give the acknowledgement latency. A call whose connection dies resolves to `Err` (fate unknown),
//!   never hangs. [`TaggedCalls`] wraps a client as a load generator's writer: `send(tag, reducer,
//!   args)` and a cancel-safe `next()` yielding `(tag, outcome)` in completion order.
//! - SpacetimeDB drops a connection with more than 16384 unprocessed incoming messages and one
//!   that stays silent for 30 s (it pings every 15 s; this client's reader answers automatically):
//!   keep the per-connection in-flight limit far below 16384.
//! - Protocol v2 reports no server execution time or energy per call: the outcome carries the
//!   server's reducer start [`Timestamp`]; "out of energy" arrives as [`ReducerStatus::InternalError`].
//! - Row events are decoded only while some receiver exists; [`RowEvent::inserted_strings`] yields
//!   every string of the inserted rows (to find message markers without knowing column names).
//!   Receivers are unbounded `mpsc` channels: a slow consumer costs memory, never events.
//! - `cargo bench -p stdb-client` prints calls/s, client CPU per call and ack latency against the
//!   test server (client on its own thread, CPU read from `/proc/thread-self/schedstat`).
//!
//! # Test server
//! With the `test-server` feature, `test_server::TestServer` runs an in-process server that speaks
//! the same protocol with the same types and hosts a small chat module (tables `user`, `room`,
//! `room_member`, `message`; reducers `set_name`, `create_room`, `join_room`, `send_message`),
//! with injectable faults, SQL and schema endpoints and SpacetimeDB's ping/idle behaviour. Other
//! crates enable it for their tests:
//! `[dev-dependencies] stdb-client = { path = "../stdb-client", features = ["test-server"] }`.
//! `cargo run -p stdb-client --features test-server --example test-server -- --port 3000` runs
//! it standalone.

mod client;
mod http;
pub mod protocol;
pub mod schema;
#[cfg(feature = "test-server")]
pub mod test_server;

pub use client::{
    ClientStats, ConnectOptions, PendingCall, ReducerOutcome, ReducerStatus, RowEvent, StdbClient,
    Subscription, TaggedCalls,
};
pub use http::{SqlResult, SqlStatement, count_rows, fetch_schema, sql};
pub use schema::{
    Column, ModuleSchema, ReducerArgs, ReducerSchema, TableSchema, json_to_value, type_name,
    value_to_json,
};
pub use spacetimedb_lib::{
    AlgebraicType, AlgebraicValue, ConnectionId, Identity, ProductValue, Timestamp,
};
