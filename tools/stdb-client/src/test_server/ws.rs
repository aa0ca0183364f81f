//! The WebSocket side: identities, subscriptions, reducer calls and transaction updates.

use super::*;

/// One transaction's changes: table → (inserts, deletes).
pub(super) type Changes = Vec<(String, Vec<ProductValue>, Vec<ProductValue>)>;

pub(super) fn query_set_updates(conn: &Conn, changes: &Changes) -> Vec<QuerySetUpdate> {
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

pub(super) async fn ws_handler(
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

pub(super) fn mint_identity(state: &ServerState) -> (Identity, String) {
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

/// One client connection's side of the server: who it is and where its frames go.
struct Session {
    state: Arc<ServerState>,
    conn_key: u64,
    identity: Identity,
    tx: mpsc::UnboundedSender<Message>,
}

/// A task that writes what the channel receives, flushing once the queue is empty.
fn spawn_writer(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Message>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
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
    })
}

pub(super) async fn connection(
    state: Arc<ServerState>,
    socket: WebSocket,
    (identity, token): (Identity, String),
) {
    let n = state.counters.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let connection_id = ConnectionId::from_u128(u128::from(state.seed) << 64 | u128::from(n));
    let (sink, stream) = socket.split();
    let (tx, rx) = mpsc::unbounded_channel::<Message>();
    let writer = spawn_writer(sink, rx);
    let conn_key = {
        let mut inner = state.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next_conn += 1;
        let key = inner.next_conn;
        let conn = Conn {
            tx: tx.clone(),
            query_sets: Vec::new(),
        };
        inner.conns.insert(key, conn);
        key
    };
    let session = Session {
        state: state.clone(),
        conn_key,
        identity,
        tx,
    };
    session.send(&ServerMessage::InitialConnection(v2::InitialConnection {
        identity,
        connection_id,
        token: token.into(),
    }));
    let mut shutdown = state.shutdown.subscribe();
    let stopped = tokio::select! {
        _ = session.serve(stream) => false,
        _ = shutdown.wait_for(|stop| *stop) => true,
    };
    state
        .inner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .conns
        .remove(&conn_key);
    drop(session);
    if stopped {
        // Server shutdown: drop the socket without a goodbye, like a crashed server.
        writer.abort();
    } else {
        let _ = writer.await;
    }
}

impl Session {
    fn send(&self, msg: &ServerMessage) {
        if let Ok(frame) = encode_server_message(msg) {
            let _ = self.tx.send(Message::Binary(frame.into()));
        }
    }

    /// Reads client messages until the socket closes, a bad frame arrives or the client
    /// stays silent too long.
    async fn serve(&self, mut stream: futures_util::stream::SplitStream<WebSocket>) {
        // Keep-alive as in SpacetimeDB: ping every `ping_interval`; drop a connection from which
        // nothing (not even a pong) arrived for `idle_timeout`.
        let config = &self.state.config;
        let mut pings = tokio::time::interval(config.ping_interval);
        pings.tick().await;
        let mut last_heard = Instant::now();
        loop {
            let frame = tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(frame)) => frame,
                    _ => break,
                },
                _ = pings.tick() => {
                    if last_heard.elapsed() > config.idle_timeout {
                        self.state.counters.idle_disconnects.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    let _ = self.tx.send(Message::Ping(Bytes::new()));
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
            self.dispatch(msg).await;
        }
    }

    async fn dispatch(&self, msg: ClientMessage) {
        match msg {
            ClientMessage::CallReducer(call) => self.call_reducer(call).await,
            ClientMessage::Subscribe(sub) => self.subscribe(sub),
            ClientMessage::Unsubscribe(unsub) => {
                let mut inner = self.state.inner.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(conn) = inner.conns.get_mut(&self.conn_key) {
                    conn.query_sets.retain(|(id, _)| *id != unsub.query_set_id);
                }
                drop(inner);
                self.send(&ServerMessage::UnsubscribeApplied(v2::UnsubscribeApplied {
                    request_id: unsub.request_id,
                    query_set_id: unsub.query_set_id,
                    rows: None,
                }));
            }
            ClientMessage::OneOffQuery(q) => self.one_off_query(q),
            ClientMessage::CallProcedure(p) => {
                self.send(&ServerMessage::ProcedureResult(v2::ProcedureResult {
                    status: v2::ProcedureStatus::InternalError(
                        format!("no procedure `{}` in the chat module", p.procedure).into(),
                    ),
                    timestamp: Timestamp::now(),
                    total_host_execution_duration: Duration::ZERO.into(),
                    request_id: p.request_id,
                }))
            }
        }
    }

    async fn call_reducer(&self, call: v2::CallReducer) {
        let fault = self
            .state
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
        handle_call(&self.state, self.conn_key, self.identity, call, fault);
    }

    fn subscribe(&self, sub: v2::Subscribe) {
        let parsed: Result<Vec<Select>> = sub
            .query_strings
            .iter()
            .map(|q| parse_select(&self.state.schema, q))
            .collect();
        let error = |error: String| {
            ServerMessage::SubscriptionError(v2::SubscriptionError {
                request_id: Some(sub.request_id),
                query_set_id: sub.query_set_id,
                error: error.into(),
            })
        };
        let mut inner = self.state.inner.lock().unwrap_or_else(|e| e.into_inner());
        let answer = match parsed {
            Ok(selects) if selects.iter().all(Select::whole_rows) => {
                let rows = query_rows(&inner, &selects);
                if let Some(conn) = inner.conns.get_mut(&self.conn_key) {
                    conn.query_sets.push((sub.query_set_id, selects));
                }
                ServerMessage::SubscribeApplied(v2::SubscribeApplied {
                    request_id: sub.request_id,
                    query_set_id: sub.query_set_id,
                    rows,
                })
            }
            Ok(_) => error("subscriptions must select whole rows (`SELECT * FROM …`)".into()),
            Err(e) => error(format!("{e:#}")),
        };
        // Sent under the lock, so that no transaction update overtakes the initial rows.
        self.send(&answer);
    }

    fn one_off_query(&self, q: v2::OneOffQuery) {
        let result = match parse_select(&self.state.schema, &q.query_string) {
            Ok(s) if s.whole_rows() => {
                let inner = self.state.inner.lock().unwrap_or_else(|e| e.into_inner());
                Ok(query_rows(&inner, &[s]))
            }
            Ok(_) => Err("one-off queries must select whole rows".into()),
            Err(e) => Err(format!("{e:#}").into()),
        };
        self.send(&ServerMessage::OneOffQueryResult(v2::OneOffQueryResult {
            request_id: q.request_id,
            result,
        }));
    }
}

pub(super) fn handle_call(
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
