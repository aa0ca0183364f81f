//! A Socket.IO v4 server that does nothing but acknowledge and broadcast: the headroom
//! target. Written in Rust so that the server, not Node, sets no ceiling below what the
//! client can do; it runs on its own runtime and threads, which the client's CPU meter
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
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Peer = (u64, mpsc::UnboundedSender<Message>);

#[derive(Default)]
struct State {
    ids: AtomicU64,
    rooms: Mutex<HashMap<String, Vec<Peer>>>,
}

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
        let state = Arc::new(State::default());
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, state.clone()));
            }
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

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    // Look at the request head without consuming it: WebSocket upgrades go to tungstenite.
    let mut buf = [0u8; 4096];
    let mut head = String::new();
    for _ in 0..1000 {
        let Ok(n) = stream.peek(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        head = String::from_utf8_lossy(&buf[..n]).into_owned();
        if head.contains("\r\n\r\n") || n == buf.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if head.to_ascii_lowercase().contains("upgrade: websocket") {
        if let Ok(ws) =
            tokio_tungstenite::accept_async_with_config(stream, Some(crate::socketio::ws_config()))
                .await
        {
            socket(ws, state).await;
        }
    } else {
        let _ = rest(&mut stream, &state).await;
    }
}

async fn rest(stream: &mut TcpStream, state: &State) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&data);
    let line = text.lines().next().unwrap_or("");
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let id = state.ids.fetch_add(1, Ordering::Relaxed) + 1;
    let (status, body) = if line.starts_with("POST ") && path == "/api/users" {
        (
            "201 Created",
            format!("{{\"token\":\"t{id}\",\"user\":{{\"id\":{id}}}}}"),
        )
    } else if line.starts_with("POST ") && path == "/api/rooms" {
        ("201 Created", format!("{{\"id\":{id}}}"))
    } else if line.starts_with("POST ")
        && path.starts_with("/api/rooms/")
        && path.ends_with("/join")
    {
        ("200 OK", "{\"ok\":true}".to_string())
    } else {
        ("404 Not Found", "{\"error\":\"not found\"}".to_string())
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

async fn socket(ws: tokio_tungstenite::WebSocketStream<TcpStream>, state: Arc<State>) {
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
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (id, data) = rest.split_at(digits);
            let Some(name) = crate::engineio::event_name(data) else {
                continue;
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
                    room = Some(room_id);
                    if !id.is_empty() {
                        let _ = tx.send(Message::text(format!("43{id}[{{\"ok\":true}}]")));
                    }
                }
                "send_message" => {
                    if let Some(room) = &room {
                        let frame =
                            Message::Text(Utf8Bytes::from(format!("42[\"new_message\",{args}")));
                        if let Ok(rooms) = state.rooms.lock() {
                            for (_, peer) in rooms.get(room).into_iter().flatten() {
                                let _ = peer.send(frame.clone());
                            }
                        }
                    }
                    if !id.is_empty() {
                        let _ = tx.send(Message::text(format!("43{id}[{{\"ok\":true}}]")));
                    }
                }
                _ => {}
            }
        } else if t == "3" {
            // pong
        }
    }
    if let (Some(room), Ok(mut rooms)) = (room, state.rooms.lock())
        && let Some(peers) = rooms.get_mut(&room)
    {
        peers.retain(|(id, _)| *id != me);
    }
}
