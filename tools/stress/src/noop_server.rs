//! A Socket.IO v4 server that does nothing but acknowledge and broadcast: the headroom
//! target. Written in Rust (axum) so that the server, not Node, sets no ceiling below what
//! the client can do; it runs on its own runtime and threads, which the client's CPU meter
//! does not count.
//!
//! It speaks the `classic` adapter ([`crate::adapter::Adapter::reference`]): `POST /api/users`
//! (answering a session token and the user), `POST /api/rooms`, `POST /api/rooms/:id/join`,
//! then `join_room` (acked) and `send_message` (broadcast as `new_message` to the room, then
//! acked).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Peer = (u64, mpsc::UnboundedSender<Message>);

#[derive(Default)]
struct ServerState {
    ids: AtomicU64,
    rooms: Mutex<HashMap<String, Vec<Peer>>>,
}

type Shared = Arc<ServerState>;

/// A running no-op server; stops when dropped.
pub struct NoopServer {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl NoopServer {
    /// Starts on 127.0.0.1 (any free port) with its own runtime of `threads` threads.
    pub fn start(threads: usize) -> Result<NoopServer> {
        NoopServer::start_on(0, threads)
    }

    /// Starts on 127.0.0.1:`port` (0 = any free port).
    pub fn start_on(port: u16, threads: usize) -> Result<NoopServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("bench-noop-server")
            .enable_all()
            .build()
            .context("cannot start the no-op server's runtime")?;
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", port)))
            .with_context(|| format!("cannot listen on 127.0.0.1:{port} (is the port taken?)"))?;
        let addr = listener
            .local_addr()
            .context("the no-op server's socket has no local address")?;
        let app = Router::new()
            .route("/api/users", post(create_user))
            .route("/api/rooms", post(create_room))
            .route("/api/rooms/{id}/join", post(join))
            .route("/socket.io/", any(upgrade))
            .with_state(Shared::default());
        runtime.spawn(async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app).await;
        });
        Ok(NoopServer {
            addr,
            runtime: Some(runtime),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until Ctrl-C (or SIGTERM).
    pub fn wait_for_signal(&self) -> Result<()> {
        let rt = self.runtime.as_ref().context("the server has stopped")?;
        rt.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        })
        .context("cannot wait for Ctrl-C")
    }
}

impl Drop for NoopServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn create_user(State(state): State<Shared>) -> Response {
    let id = state.ids.fetch_add(1, Ordering::Relaxed) + 1;
    json(
        StatusCode::CREATED,
        format!("{{\"token\":\"t{id}\",\"user\":{{\"id\":{id}}}}}"),
    )
}

async fn create_room(State(state): State<Shared>) -> Response {
    let id = state.ids.fetch_add(1, Ordering::Relaxed) + 1;
    json(StatusCode::CREATED, format!("{{\"id\":{id}}}"))
}

async fn join() -> Response {
    json(StatusCode::OK, "{\"ok\":true}".into())
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<Shared>) -> Response {
    // Small frames one per read: a small read buffer, as on the client side.
    ws.read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| serve_socket(socket, state))
}

async fn serve_socket(ws: WebSocket, state: Shared) {
    let me = state.ids.fetch_add(1, Ordering::Relaxed);
    let (sink, mut stream) = ws.split();
    let tx = crate::socketio::spawn_sender(sink);
    let open = format!(
        "0{{\"sid\":\"n{me}\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}}"
    );
    let _ = tx.send(Message::text(open));
    let mut room: Option<String> = None;
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let t = text.as_str();
        if t.starts_with("40") {
            let _ = tx.send(Message::text(format!("40{{\"sid\":\"s{me}\"}}")));
        } else if let Some(rest) = t.strip_prefix("42") {
            event(&state, me, &tx, rest, &mut room);
        }
    }
    if let (Some(room), Ok(mut rooms)) = (room, state.rooms.lock())
        && let Some(peers) = rooms.get_mut(&room)
    {
        peers.retain(|(id, _)| *id != me);
    }
}

/// One `42[...]` event: `join_room` enters a room, `send_message` is broadcast to it.
fn event(
    state: &ServerState,
    me: u64,
    tx: &mpsc::UnboundedSender<Message>,
    rest: &str,
    room: &mut Option<String>,
) {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, data) = rest.split_at(digits);
    let Some(name) = crate::engineio::event_name(data) else {
        return;
    };
    let args = &data[name.len() + 3..];
    match name {
        "join_room" => {
            let room_id = serde_json::from_str::<serde_json::Value>(&format!("[{args}"))
                .ok()
                .and_then(|v| {
                    v.get(0)
                        .and_then(|o| o.get("roomId"))
                        .map(|r| r.to_string())
                })
                .unwrap_or_default();
            if let Ok(mut rooms) = state.rooms.lock() {
                rooms
                    .entry(room_id.clone())
                    .or_default()
                    .push((me, tx.clone()));
            }
            *room = Some(room_id);
        }
        "send_message" => {
            if let Some(room) = room {
                let frame = Message::Text(Utf8Bytes::from(format!("42[\"new_message\",{args}")));
                if let Ok(rooms) = state.rooms.lock() {
                    for (_, peer) in rooms.get(room.as_str()).into_iter().flatten() {
                        let _ = peer.send(frame.clone());
                    }
                }
            }
        }
        _ => return,
    }
    if !id.is_empty() {
        let _ = tx.send(Message::text(format!("43{id}[{{\"ok\":true}}]")));
    }
}
