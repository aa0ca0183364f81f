//! Probing: confirming a candidate shape against the running app, step by step (create two
//! users, a room, join it over REST, connect two sockets, run the set-up events, send one
//! marked message over the socket or over REST), and writing down the adapter that worked.
//! The candidates come from [`crate::candidates`], the app's source first.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::adapter::{
    AckMode, Adapter, Endpoint, SetupEvent, SocketSpec, Vars, lookup, render, render_path,
};
use crate::backend::Marker;
use crate::candidates::{Candidates, RestCandidate};
use crate::engineio::{self, Packet};
use crate::http::{self, BaseUrl};
use crate::socketio::{CONTROL_ACK_BASE, Conn, SETUP_TIMEOUT};

/// What probing found.
pub struct Probed {
    pub adapter: Adapter,
    pub notes: Vec<String>,
}

const TOKEN_PATHS: [&str; 5] = ["token", "accessToken", "access_token", "jwt", "data.token"];

const ID_PATHS: [&str; 7] = [
    "id", "_id", "user.id", "user._id", "room.id", "room._id", "data.id",
];

/// How long one probe waits for the app's answer.
const PROBE_WAIT: Duration = Duration::from_millis(1500);

/// A probe user: its variables (id, name, token).
#[derive(Clone)]
struct ProbeUser {
    vars: Vars,
}

/// One probing session.
struct Prober<'a> {
    base: &'a BaseUrl,
    run: String,
    cands: Candidates,
    notes: Vec<String>,
    headers: BTreeMap<String, String>,
}

/// Tries the candidate shapes, best first, and returns the adapter that works.
pub async fn probe(base: &BaseUrl, run: &str, cands: Candidates) -> Result<Probed> {
    let mut p = Prober {
        base,
        run: run.to_string(),
        notes: Vec::new(),
        cands,
        headers: BTreeMap::new(),
    };
    let (users, a) = p.first_user().await?;
    let b = p.another_user(&users, &a).await?;
    let (rooms, room_id) = p.room(&a).await?;
    let (a, b) = (p.with_room(a, &room_id), p.with_room(b, &room_id));
    let join = p.rest_join(&[&a, &b]).await?;
    let mut socket = SocketSpec {
        path: "/socket.io/".into(),
        auth: Some(p.auth()),
        query: BTreeMap::new(),
        setup: Vec::new(),
        join_events: Vec::new(),
        join_payload: Value::Null,
        send_event: String::new(),
        send_payload: Value::Null,
        ack: AckMode::Callback,
        broadcast_events: Vec::new(),
    };
    let mut identities = vec![p.cands.identity.clone()];
    if p.cands.identity.is_empty() && !p.cands.identity_fallback.is_empty() {
        identities.push(p.cands.identity_fallback.clone());
    }
    let mut rest_send = None;
    let mut found = false;
    for (attempt, identity) in identities.into_iter().enumerate() {
        if attempt > 0 {
            p.notes.push(
                "no send worked without an identity event: trying register/identify/... first"
                    .into(),
            );
        }
        let mut sender = Conn::open(base, &socket, &a.vars)
            .await
            .context("probing the Socket.IO connection")?;
        let mut listener = Conn::open(base, &socket, &b.vars).await?;
        socket.setup = p.setup_events(&mut listener, &b, identity).await?;
        sender.setup(&socket, &a.vars).await?;
        if p.socket_send(&mut sender, &mut listener, &a, &mut socket)
            .await?
        {
            found = true;
            break;
        }
        if let Some(ep) = p.rest_send(&a, &mut listener).await? {
            rest_send = Some(ep);
            found = true;
            break;
        }
    }
    if !found {
        let events: Vec<&str> = p.cands.sends.iter().map(|s| s.event.as_str()).collect();
        bail!(
            "could not find how this app sends messages (tried socket events {} and REST); found so far:\n  {}\nwrite an adapter file (see tools/stress/adapters/) or pass the app's code with --source",
            events.join(", "),
            p.notes.join("\n  ")
        )
    }
    let adapter = Adapter {
        users,
        rooms,
        join,
        socket,
        rest_send,
        verify: p.cands.verify.clone(),
    };
    if let Some(v) = &adapter.verify {
        p.notes.push(format!(
            "verify: messages in {}.{}{}",
            v.table,
            v.text_column,
            v.room_column
                .as_deref()
                .map(|c| format!(" where {c} is the bench room"))
                .unwrap_or_default()
        ));
    }
    Ok(Probed {
        adapter,
        notes: p.notes,
    })
}

impl Prober<'_> {
    fn user_vars(&self, suffix: &str) -> Vars {
        let mut vars = Vars::new();
        vars.insert("name", Value::String(format!("probe{}{suffix}", self.run)));
        vars
    }

    async fn first_user(&mut self) -> Result<(Endpoint, ProbeUser)> {
        let mut vars = self.user_vars("a");
        let list = self.cands.users.clone();
        let (ep, id, token) = self.create(&list, &vars, "users").await?;
        vars.insert("user_id", id);
        if let Some(t) = token {
            vars.insert("token", t);
            self.headers = [("Authorization".to_string(), "Bearer {{token}}".to_string())].into();
        }
        Ok((ep, ProbeUser { vars }))
    }

    async fn another_user(&mut self, users: &Endpoint, _a: &ProbeUser) -> Result<ProbeUser> {
        let mut vars = self.user_vars("b");
        let (id, token) = crate::socketio::create_with_token(self.base, users, &vars)
            .await
            .context("probing: creating a second user")?;
        vars.insert("user_id", id);
        if let Some(t) = token {
            vars.insert("token", t);
        }
        Ok(ProbeUser { vars })
    }

    async fn room(&mut self, a: &ProbeUser) -> Result<(Endpoint, Value)> {
        let mut vars = a.vars.clone();
        vars.insert("room", Value::String(format!("probe-{}", self.run)));
        let list = self.cands.rooms.clone();
        let (ep, id, _) = self.create(&list, &vars, "rooms").await?;
        Ok((ep, id))
    }

    fn with_room(&self, mut user: ProbeUser, room_id: &Value) -> ProbeUser {
        user.vars.insert("room_id", room_id.clone());
        user.vars
            .insert("room", Value::String(format!("probe-{}", self.run)));
        user
    }

    fn auth(&self) -> Value {
        let mut auth = self.cands.auth.clone();
        if self.headers.is_empty() {
            return auth;
        }
        if let Value::Object(map) = &mut auth
            && !map.values().any(|v| v == "{{token}}")
        {
            map.insert("token".into(), Value::String("{{token}}".into()));
        }
        auth
    }

    fn endpoint(&self, cand: &RestCandidate) -> Endpoint {
        Endpoint {
            method: "POST".into(),
            path: cand.path.clone(),
            body: cand.body.clone(),
            id: "id".into(),
            headers: self.headers.clone(),
            token: None,
        }
    }

    /// POSTs each candidate until one answers 2xx with an id.
    async fn create(
        &mut self,
        list: &[RestCandidate],
        vars: &Vars,
        what: &str,
    ) -> Result<(Endpoint, Value, Option<Value>)> {
        let mut tried = Vec::new();
        let mut missing_paths: Vec<String> = Vec::new();
        for cand in list {
            if missing_paths.contains(&cand.path) {
                continue;
            }
            let ep = self.endpoint(cand);
            let resp = self
                .post(&ep, vars)
                .await
                .with_context(|| format!("probing {what}"))?;
            tried.push(format!(
                "POST {} {} -> {}",
                ep.path,
                render(&ep.body, vars),
                resp.status
            ));
            if resp.status == 404 {
                missing_paths.push(cand.path.clone());
                continue;
            }
            let Some(id_path) = ID_PATHS.iter().find(|p| lookup(&resp.json, p).is_some()) else {
                continue;
            };
            if !resp.ok() {
                continue;
            }
            let id = lookup(&resp.json, id_path).cloned().unwrap_or(Value::Null);
            self.notes.push(format!(
                "{what}: POST {} with {} (id at {id_path:?})",
                ep.path, ep.body
            ));
            let token = TOKEN_PATHS
                .iter()
                .find(|p| lookup(&resp.json, p).is_some_and(Value::is_string))
                .map(|p| p.to_string());
            if let Some(t) = &token {
                self.notes.push(format!(
                    "{what}: the answer carries a session token at {t:?}"
                ));
            }
            let value = token.as_ref().and_then(|t| lookup(&resp.json, t).cloned());
            let ep = Endpoint {
                id: id_path.to_string(),
                token,
                ..ep
            };
            return Ok((ep, id, value));
        }
        bail!(
            "could not find how this app creates {what}; tried:\n  {}\nwrite an adapter file (see tools/stress/adapters/) and pass --adapter",
            tried.join("\n  ")
        )
    }

    async fn post(&self, ep: &Endpoint, vars: &Vars) -> Result<http::Response> {
        http::request(
            self.base,
            &ep.method,
            &render_path(&ep.path, vars),
            Some(&render(&ep.body, vars)),
            &crate::adapter::render_headers(ep, vars),
            SETUP_TIMEOUT,
        )
        .await
    }

    async fn rest_join(&mut self, users: &[&ProbeUser]) -> Result<Option<Endpoint>> {
        for cand in self.cands.joins_rest.clone() {
            let ep = self.endpoint(&cand);
            let mut ok = true;
            for user in users {
                ok &= self.post(&ep, &user.vars).await?.ok();
            }
            if ok {
                self.notes
                    .push(format!("joining: POST {} with {}", ep.path, ep.body));
                return Ok(Some(ep));
            }
        }
        self.notes
            .push("joining: no REST join endpoint found (joining over the socket only)".into());
        Ok(None)
    }

    /// Emits the identity and join candidates on `conn`; each is marked acknowledged or not
    /// by what the app does. Common joins the source did not name are kept only if
    /// acknowledged (all of them when none is).
    async fn setup_events(
        &mut self,
        conn: &mut Conn,
        user: &ProbeUser,
        identity: Vec<SetupEvent>,
    ) -> Result<Vec<SetupEvent>> {
        let identity_count = identity.len();
        let mut events = identity;
        events.extend(self.cands.joins.clone());
        for (k, e) in events.iter().enumerate() {
            let payload = render(&e.payload, &user.vars);
            conn.send_text(engineio::event(
                Some(CONTROL_ACK_BASE + k as u64),
                &e.event,
                &payload,
            ))?;
        }
        let acked = acks_within(conn, events.len(), PROBE_WAIT).await;
        for (k, e) in events.iter_mut().enumerate() {
            e.ack = acked.get(&(k as u64)).is_some_and(|err| err.is_none());
            if let Some(Some(err)) = acked.get(&(k as u64)) {
                self.notes.push(format!(
                    "socket set-up: {:?} answered with an error: {err}",
                    e.event
                ));
            }
        }
        let any_join_acked = events[identity_count..].iter().any(|e| e.ack);
        if !self.cands.joins_known && any_join_acked {
            let mut k = 0;
            events.retain(|e| {
                k += 1;
                k <= identity_count || e.ack
            });
        }
        for e in &events {
            self.notes.push(format!(
                "socket set-up: {:?} with {} ({})",
                e.event,
                e.payload,
                if e.ack {
                    "acknowledged"
                } else {
                    "not acknowledged"
                }
            ));
        }
        Ok(events)
    }

    /// Tries the send events; on success fills in `socket` and returns true.
    async fn socket_send(
        &mut self,
        sender: &mut Conn,
        listener: &mut Conn,
        a: &ProbeUser,
        socket: &mut SocketSpec,
    ) -> Result<bool> {
        let marker = Marker::new(&format!("p{}", self.run));
        let mut content = String::new();
        for (k, cand) in self.cands.sends.clone().iter().enumerate() {
            marker.content(0, k as u64, 0, 0, &mut content);
            let mut v = a.vars.clone();
            v.insert("content", Value::String(content.clone()));
            let payload = render(&cand.payload, &v);
            sender.send_text(engineio::event(Some(k as u64), &cand.event, &payload))?;
            let seen = watch_send(sender, listener, &marker, k as u64).await;
            let event = &cand.event;
            if let Some(Some(err)) = &seen.ack {
                self.notes.push(format!(
                    "send: event {event:?} acknowledged with an error ({err}); trying the next"
                ));
                continue;
            }
            let ack_ok = matches!(seen.ack, Some(None));
            if !ack_ok && !seen.sender_saw && seen.broadcast.is_some() {
                bail!(
                    "the app broadcasts {event:?} to the room's other members but neither calls an ack \
                     callback nor echoes the message to its sender, so a sender cannot tell that its \
                     message was accepted; bench-stress needs one of the two (found so far:\n  {})",
                    self.notes.join("\n  ")
                );
            }
            if !(ack_ok || seen.sender_saw) {
                continue;
            }
            socket.send_event = event.clone();
            socket.send_payload = cand.payload.clone();
            socket.broadcast_events = seen.broadcast.iter().cloned().collect();
            socket.ack = if ack_ok {
                AckMode::Callback
            } else {
                AckMode::Echo
            };
            self.notes.push(format!(
                "send: event {event:?} with {}, ack by {}, broadcast as {}",
                cand.payload,
                if ack_ok {
                    "callback"
                } else {
                    "the echo of the broadcast"
                },
                seen.broadcast
                    .as_deref()
                    .unwrap_or("(not seen by the listener)")
            ));
            return Ok(true);
        }
        Ok(false)
    }

    /// Tries the REST sends: one counts when it answers 2xx and the listener receives the
    /// message (an app that stores it without telling the room is not a chat app).
    async fn rest_send(&mut self, a: &ProbeUser, listener: &mut Conn) -> Result<Option<Endpoint>> {
        let marker = Marker::new(&format!("p{}", self.run));
        let mut content = String::new();
        for (k, cand) in self.cands.rest_sends.clone().iter().enumerate() {
            let seq = 100 + k as u64;
            marker.content(0, seq, 0, 0, &mut content);
            let mut v = a.vars.clone();
            v.insert("content", Value::String(content.clone()));
            let ep = self.endpoint(cand);
            let resp = self.post(&ep, &v).await?;
            if !resp.ok() {
                continue;
            }
            let Some(event) = broadcast_of(listener, &marker, seq).await else {
                self.notes.push(format!(
                    "send: POST {} accepted the message but the room never received it",
                    ep.path
                ));
                continue;
            };
            self.notes.push(format!(
                "send: over REST, POST {} with {} (ack = HTTP 2xx), broadcast as {event}",
                ep.path, ep.body
            ));
            return Ok(Some(ep));
        }
        Ok(None)
    }
}

/// The event the listener receives message `seq` in, if it does within the probe's wait.
async fn broadcast_of(listener: &mut Conn, marker: &Marker, seq: u64) -> Option<String> {
    let deadline = Instant::now() + PROBE_WAIT;
    while Instant::now() < deadline {
        let Ok(Ok(text)) =
            tokio::time::timeout(deadline - Instant::now(), listener.next_raw()).await
        else {
            return None;
        };
        let mut hit = false;
        marker.find_all(&text, |_, s, _| hit |= s == seq);
        if hit {
            return engineio::event_name(&text[2..]).map(str::to_string);
        }
    }
    None
}

/// Acks (control ids) that arrive within `wait`: index → error text if the app refused.
async fn acks_within(
    conn: &mut Conn,
    expected: usize,
    wait: Duration,
) -> BTreeMap<u64, Option<String>> {
    let mut acked = BTreeMap::new();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && acked.len() < expected {
        let Ok(Ok(text)) = tokio::time::timeout(deadline - Instant::now(), conn.next_raw()).await
        else {
            break;
        };
        if let Ok(Packet::Ack { id, data }) = engineio::parse(&text)
            && let Some(k) = id.checked_sub(CONTROL_ACK_BASE)
        {
            acked.insert(k, engineio::ack_error(data));
        }
    }
    acked
}

/// What one probe message did.
struct SendSeen {
    /// `Some(None)`: acknowledged; `Some(Some(err))`: refused.
    ack: Option<Option<String>>,
    broadcast: Option<String>,
    sender_saw: bool,
}

async fn watch_send(sender: &mut Conn, listener: &mut Conn, marker: &Marker, k: u64) -> SendSeen {
    let deadline = Instant::now() + PROBE_WAIT;
    let mut seen = SendSeen {
        ack: None,
        broadcast: None,
        sender_saw: false,
    };
    // An echo may come before the ack callback's answer (apps often broadcast first): after
    // the echo, the ack is still awaited a little while.
    let mut echo_deadline = deadline;
    while Instant::now() < deadline.min(echo_deadline)
        && !(seen.ack.is_some() && seen.broadcast.is_some())
    {
        if seen.sender_saw && seen.broadcast.is_some() && echo_deadline == deadline {
            echo_deadline = Instant::now() + Duration::from_millis(300);
        }
        let left = deadline
            .min(echo_deadline)
            .saturating_duration_since(Instant::now());
        tokio::select! {
            Ok(Ok(text)) = tokio::time::timeout(left, sender.next_raw()) => {
                if let Ok(Packet::Ack { id, data }) = engineio::parse(&text)
                    && id == k {
                        seen.ack = Some(engineio::ack_error(data));
                    }
                if text.as_bytes().starts_with(b"42") {
                    marker.find_all(&text, |_, seq, _| seen.sender_saw |= seq == k);
                }
            }
            Ok(Ok(text)) = tokio::time::timeout(left, listener.next_raw()) => {
                let mut hit = false;
                marker.find_all(&text, |_, seq, _| hit |= seq == k);
                if hit {
                    seen.broadcast = engineio::event_name(&text[2..]).map(str::to_string);
                }
            }
            else => break,
        }
    }
    seen
}
