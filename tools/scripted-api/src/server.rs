//! The HTTP server and its per-conversation bookkeeping.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};

use crate::script::{Script, Turn, Usage};

/// What a request was, as the server understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// A conversation request answered with the next scripted turn.
    Turn,
    /// A repeat of the previous conversation request, answered with the same turn.
    Retry,
    /// A conversation request after the last turn: answered with a closing text, no tokens.
    Exhausted,
    /// A request outside the conversation (no tools offered): the side answer.
    Side,
    CountTokens,
    /// `HEAD /` or `GET /`: the CLI's reachability check at start-up.
    Probe,
    /// No script applies to this session.
    NoScript,
    NotFound,
    BadRequest,
}

/// One request the server received.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub session_id: Option<String>,
    pub kind: RequestKind,
    /// Index (0-based) of the turn served, for `Turn`/`Retry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    pub model: Option<String>,
    pub stream: bool,
    pub messages: usize,
    pub tools: usize,
}

/// How far one conversation got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConversationStats {
    /// Distinct scripted turns served.
    pub turns_served: usize,
    /// Turns the script has.
    pub turns_total: usize,
    /// Requests answered for this conversation (turns, retries, side answers).
    pub requests: usize,
    /// Requests that came after the script's last turn.
    pub exhausted_requests: usize,
}

struct Conversation {
    script: Arc<Script>,
    next: usize,
    last: Option<(usize, usize)>, // (message count, turn index) of the last turn served
    stats: ConversationStats,
}

#[derive(Default)]
struct Inner {
    default_script: Option<Arc<Script>>,
    assigned: HashMap<String, Arc<Script>>,
    conversations: HashMap<String, Conversation>,
    records: Vec<RequestRecord>,
    log: Option<(PathBuf, std::fs::File)>,
    message_counter: u64,
}

type Shared = Arc<Mutex<Inner>>;

/// Largest request body accepted (the Messages API itself accepts up to 32 MB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts scripted API servers.
pub struct ScriptedApi;

impl ScriptedApi {
    /// Serves `script` (to every session not given its own with
    /// [`ScriptedApiHandle::assign`]) on `addr`; port 0 picks a free port. Must be called
    /// inside a tokio runtime.
    pub async fn start(script: Option<Script>, addr: SocketAddr) -> Result<ScriptedApiHandle> {
        let shared: Shared = Arc::new(Mutex::new(Inner {
            default_script: script.map(Arc::new),
            ..Inner::default()
        }));
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for the scripted API (is the port taken? use port 0)")
        })?;
        let local = listener
            .local_addr()
            .context("scripted API listener has no address")?;
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .route("/", axum::routing::get(probe).head(probe))
            .fallback(not_found)
            // A long conversation's requests carry its whole history: far above axum's
            // default 2 MB body limit.
            .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(ScriptedApiHandle {
            url: format!("http://{local}"),
            addr: local,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// A running scripted API. Dropping it stops the server.
pub struct ScriptedApiHandle {
    /// Base URL for `ANTHROPIC_BASE_URL`, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub addr: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ScriptedApiHandle {
    /// Gives one session its own script (e.g. rendered with that session's paths and ports).
    pub fn assign(&self, session_id: &str, script: Script) {
        lock(&self.shared)
            .assigned
            .insert(session_id.to_owned(), Arc::new(script));
    }

    /// Appends every request, as one JSON line, to `path` from now on.
    pub fn log_requests_to(&self, path: &Path) -> Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open request log {}", path.display()))?;
        lock(&self.shared).log = Some((path.to_owned(), file));
        Ok(())
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared).records.clone()
    }

    /// How far a session's conversation got; `None` if it never called.
    pub fn conversation(&self, session_id: &str) -> Option<ConversationStats> {
        lock(&self.shared)
            .conversations
            .get(session_id)
            .map(|c| c.stats.clone())
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ScriptedApiHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn record(inner: &mut Inner, rec: RequestRecord) {
    if let Some((_, file)) = &mut inner.log
        && let Ok(line) = serde_json::to_string(&rec)
    {
        let _ = writeln!(file, "{line}");
    }
    inner.records.push(rec);
}

fn session_of(headers: &HeaderMap, body: &Value) -> Option<String> {
    if let Some(id) = headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
    {
        return Some(id.to_owned());
    }
    let user_id = body.pointer("/metadata/user_id")?.as_str()?;
    let parsed: Value = serde_json::from_str(user_id).ok()?;
    parsed
        .get("session_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn api_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

async fn probe(State(shared): State<Shared>, method: Method) -> StatusCode {
    let mut inner = lock(&shared);
    record(
        &mut inner,
        RequestRecord {
            method: method.to_string(),
            path: "/".to_owned(),
            session_id: None,
            kind: RequestKind::Probe,
            turn: None,
            model: None,
            stream: false,
            messages: 0,
            tools: 0,
        },
    );
    StatusCode::OK
}

async fn not_found(State(shared): State<Shared>, method: Method, uri: Uri) -> Response {
    let mut inner = lock(&shared);
    record(
        &mut inner,
        RequestRecord {
            method: method.to_string(),
            path: uri.to_string(),
            session_id: None,
            kind: RequestKind::NotFound,
            turn: None,
            model: None,
            stream: false,
            messages: 0,
            tools: 0,
        },
    );
    api_error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        &format!("the scripted API does not serve {}", uri.path()),
    )
}

async fn count_tokens(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut inner = lock(&shared);
    record(
        &mut inner,
        RequestRecord {
            method: "POST".to_owned(),
            path: "/v1/messages/count_tokens".to_owned(),
            session_id: session_of(&headers, &parsed),
            kind: RequestKind::CountTokens,
            turn: None,
            model: parsed
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            stream: false,
            messages: count(&parsed, "messages"),
            tools: count(&parsed, "tools"),
        },
    );
    // Roughly four bytes per token, as a rule of thumb for English and code.
    axum::Json(json!({"input_tokens": body.len().div_ceil(4)})).into_response()
}

fn count(body: &Value, key: &str) -> usize {
    body.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

/// What to answer, decided under the lock; the answer is written after it is released.
struct Plan {
    turn: Turn,
    message_id: String,
    tool_id_prefix: String,
}

async fn messages(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_body(&shared, &uri),
    };
    let model = parsed
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("claude-sonnet-4-6")
        .to_owned();
    let stream = parsed
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let rec = RequestRecord {
        method: "POST".to_owned(),
        path: uri.to_string(),
        session_id: session_of(&headers, &parsed),
        kind: RequestKind::Turn,
        turn: None,
        model: Some(model.clone()),
        stream,
        messages: count(&parsed, "messages"),
        tools: count(&parsed, "tools"),
    };
    let plan = match plan_answer(&shared, rec) {
        Ok(plan) => plan,
        Err(response) => return *response,
    };
    if let Some(ms) = plan.turn.delay_ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if stream {
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            sse_body(&plan, &model),
        )
            .into_response()
    } else {
        axum::Json(message_json(&plan, &model)).into_response()
    }
}

/// A body that is not a JSON object: recorded, and answered as the API would.
fn bad_body(shared: &Shared, uri: &Uri) -> Response {
    let mut inner = lock(shared);
    record(
        &mut inner,
        RequestRecord {
            method: "POST".to_owned(),
            path: uri.to_string(),
            session_id: None,
            kind: RequestKind::BadRequest,
            turn: None,
            model: None,
            stream: false,
            messages: 0,
            tools: 0,
        },
    );
    api_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "the request body is not a JSON object",
    )
}

/// Decides the answer to a request under the lock, and records the request.
fn plan_answer(shared: &Shared, mut rec: RequestRecord) -> Result<Plan, Box<Response>> {
    let key = rec
        .session_id
        .clone()
        .unwrap_or_else(|| "anonymous".to_owned());
    let mut inner = lock(shared);
    inner.message_counter += 1;
    let counter = inner.message_counter;
    if !inner.start_conversation(&key) {
        rec.kind = RequestKind::NoScript;
        record(&mut inner, rec);
        return Err(Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("the scripted API has no script for session {key}"),
        )));
    }
    let Some(conv) = inner.conversations.get_mut(&key) else {
        return Err(Box::new(api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "conversation vanished",
        )));
    };
    let turn = conv.next_turn(&mut rec);
    record(&mut inner, rec);
    Ok(Plan {
        turn,
        message_id: format!("msg_scripted_{counter:06}"),
        tool_id_prefix: format!("toolu_scripted_{counter:06}"),
    })
}

impl Inner {
    /// Makes sure the session has a conversation: its assigned script, else the default
    /// one. `false` when there is neither.
    fn start_conversation(&mut self, key: &str) -> bool {
        if self.conversations.contains_key(key) {
            return true;
        }
        let Some(script) = self
            .assigned
            .get(key)
            .or(self.default_script.as_ref())
            .cloned()
        else {
            return false;
        };
        let turns_total = script.turns.len();
        self.conversations.insert(
            key.to_owned(),
            Conversation {
                script,
                next: 0,
                last: None,
                stats: ConversationStats {
                    turns_total,
                    ..ConversationStats::default()
                },
            },
        );
        true
    }
}

impl Conversation {
    /// The turn that answers a request: the side answer when it offers no tools, the same
    /// turn again for a retry (same message count), else the next turn; noted in `rec`.
    fn next_turn(&mut self, rec: &mut RequestRecord) -> Turn {
        self.stats.requests += 1;
        if rec.tools == 0 {
            rec.kind = RequestKind::Side;
            return Turn {
                text: Some(self.script.side.text.clone()),
                usage: self.script.side.usage,
                ..Turn::default()
            };
        }
        if let Some((_, index)) = self.last.filter(|(n, _)| *n == rec.messages) {
            rec.kind = RequestKind::Retry;
            rec.turn = Some(index);
            return self.script.turns[index].clone();
        }
        if self.next < self.script.turns.len() {
            let index = self.next;
            self.next += 1;
            self.last = Some((rec.messages, index));
            self.stats.turns_served += 1;
            rec.turn = Some(index);
            return self.script.turns[index].clone();
        }
        rec.kind = RequestKind::Exhausted;
        self.stats.exhausted_requests += 1;
        Turn {
            text: Some("The rehearsal script has no more turns.".to_owned()),
            ..Turn::default()
        }
    }
}

fn content_blocks(plan: &Plan) -> Vec<Value> {
    let mut blocks = Vec::new();
    if let Some(text) = &plan.turn.text {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for (i, tool) in plan.turn.tools.iter().enumerate() {
        blocks.push(json!({
            "type": "tool_use",
            "id": format!("{}_{i}", plan.tool_id_prefix),
            "name": tool.name,
            "input": tool.input,
        }));
    }
    blocks
}

fn usage_json(usage: &Usage, output: u64) -> Value {
    json!({
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.cache_creation,
        "cache_read_input_tokens": usage.cache_read,
        "output_tokens": output,
    })
}

fn message_json(plan: &Plan, model: &str) -> Value {
    json!({
        "id": plan.message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content_blocks(plan),
        "stop_reason": plan.turn.stop_reason(),
        "stop_sequence": null,
        "usage": usage_json(&plan.turn.usage, plan.turn.usage.output),
    })
}

fn push_event(out: &mut String, name: &str, data: &Value) {
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

/// Splits a string in up to `parts` pieces on character boundaries.
fn chunks(s: &str, parts: usize) -> Vec<&str> {
    let len = s.len();
    if len == 0 {
        return vec![s];
    }
    let step = len.div_ceil(parts.max(1));
    let mut out = Vec::new();
    let mut start = 0;
    while start < len {
        let mut end = (start + step).min(len);
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push(&s[start..end]);
        start = end;
    }
    out
}

fn sse_body(plan: &Plan, model: &str) -> String {
    let usage = &plan.turn.usage;
    let mut out = String::new();
    push_event(
        &mut out,
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": plan.message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": usage_json(usage, 0),
        }}),
    );
    for (index, block) in content_blocks(plan).into_iter().enumerate() {
        let start_block = if block["type"] == "text" {
            json!({"type": "text", "text": ""})
        } else {
            json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}})
        };
        push_event(
            &mut out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start_block}),
        );
        if block["type"] == "text" {
            let text = block["text"].as_str().unwrap_or_default();
            for piece in chunks(text, 3) {
                push_event(
                    &mut out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": piece}}),
                );
            }
        } else {
            let input = block["input"].to_string();
            for piece in chunks(&input, 2) {
                push_event(
                    &mut out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": piece}}),
                );
            }
        }
        push_event(
            &mut out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }
    push_event(
        &mut out,
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": plan.turn.stop_reason(), "stop_sequence": null},
                "usage": usage_json(usage, usage.output)}),
    );
    push_event(&mut out, "message_stop", &json!({"type": "message_stop"}));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_string_on_char_boundaries() {
        let s = "héllo wörld ✓";
        let parts = chunks(s, 3);
        assert!(parts.len() >= 2);
        assert_eq!(parts.concat(), s);
        assert_eq!(chunks("", 3), vec![""]);
    }

    #[test]
    fn session_comes_from_header_then_metadata() {
        let body = json!({"metadata": {"user_id": "{\"device_id\":\"d\",\"session_id\":\"abc\"}"}});
        assert_eq!(session_of(&HeaderMap::new(), &body).as_deref(), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.insert("x-claude-code-session-id", "hdr".parse().unwrap());
        assert_eq!(session_of(&headers, &body).as_deref(), Some("hdr"));
        assert_eq!(session_of(&HeaderMap::new(), &json!({})), None);
    }
}
