//! The scripted API over real HTTP: streaming events, per-session turns, side requests.

use std::net::SocketAddr;

use scripted_api::{RequestKind, Script, ScriptedApi};
use serde_json::{Value, json};

const SCRIPT: &str = r#"
[side]
text = "Title"
usage = { input = 9, output = 2 }

[[turn]]
text = "Writing."
usage = { input = 3, output = 50, cache_read = 1000, cache_creation = 200 }
[[turn.tool]]
name = "Write"
input = { file_path = "/app/a.txt", content = "é ✓ \"quoted\"\n" }

[[turn]]
text = "Done. DEPLOY_COMPLETE"
usage = { input = 1, output = 7, cache_read = 1400 }
"#;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn request(session: &str, messages: usize, tools: bool, stream: bool) -> Value {
    let msgs: Vec<Value> = (0..messages)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "x"}))
        .collect();
    let mut body = json!({
        "model": "claude-sonnet-4-6",
        "max_tokens": 1000,
        "stream": stream,
        "messages": msgs,
        "metadata": {"user_id": json!({"device_id": "d", "session_id": session}).to_string()},
    });
    if tools {
        body["tools"] = json!([{"name": "Write", "input_schema": {"type": "object"}}]);
    }
    body
}

/// Parses an SSE body into (event name, data) pairs.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn streams_turns_in_order_per_session_with_side_requests_and_retries() {
    let api = ScriptedApi::start(Some(Script::parse(SCRIPT).unwrap()), any_port())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("{}/v1/messages?beta=true", api.url))
            .json(&body)
            .send()
    };
    // A plain JSON (not streamed) reply.
    let post_json =
        async |body: Value| -> Value { post(body).await.unwrap().json().await.unwrap() };

    // Session A, first turn: a text block then a tool call, streamed.
    let resp = post(request("A", 1, true, true)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let evs = events(&resp.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "content_block_start")
            .count(),
        2
    );
    let start = &evs[0].1["message"]["usage"];
    assert_eq!(start["input_tokens"], 3);
    assert_eq!(start["cache_read_input_tokens"], 1000);
    assert_eq!(start["cache_creation_input_tokens"], 200);
    let text: String = evs
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "Writing.");
    let json_text: String = evs
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    let input: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(input["content"], "é ✓ \"quoted\"\n");
    let delta = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta.1["usage"]["output_tokens"], 50);

    // A side request (no tools) does not move session A on.
    let side = post_json(request("A", 1, false, false)).await;
    assert_eq!(side["content"][0]["text"], "Title");
    assert_eq!(side["usage"]["input_tokens"], 9);

    // Session B starts from the first turn, independently of A (plain JSON this time).
    let b1 = post_json(request("B", 1, true, false)).await;
    assert_eq!(b1["stop_reason"], "tool_use");
    assert_eq!(b1["content"][1]["name"], "Write");

    // A retry of B's request (same message count) gets the same turn again.
    let b1_again = post_json(request("B", 1, true, false)).await;
    assert_eq!(b1_again["content"][1]["input"], b1["content"][1]["input"]);
    assert_eq!(b1_again["content"][0], b1["content"][0]);

    // A's second call gets A's second turn.
    let a2 = post_json(request("A", 3, true, false)).await;
    assert_eq!(a2["stop_reason"], "end_turn");
    assert_eq!(a2["content"][0]["text"], "Done. DEPLOY_COMPLETE");

    // Past the end: a closing text with no tokens.
    let a3 = post_json(request("A", 5, true, false)).await;
    assert_eq!(a3["stop_reason"], "end_turn");
    assert_eq!(a3["usage"]["output_tokens"], 0);

    let kinds: Vec<(Option<String>, RequestKind)> = api
        .requests()
        .into_iter()
        .map(|r| (r.session_id, r.kind))
        .collect();
    let a = Some("A".to_owned());
    let b = Some("B".to_owned());
    assert_eq!(
        kinds,
        vec![
            (a.clone(), RequestKind::Turn),
            (a.clone(), RequestKind::Side),
            (b.clone(), RequestKind::Turn),
            (b.clone(), RequestKind::Retry),
            (a.clone(), RequestKind::Turn),
            (a, RequestKind::Exhausted),
        ]
    );
    let stats = api.conversation("A").unwrap();
    assert_eq!((stats.turns_served, stats.turns_total), (2, 2));
    assert_eq!(stats.exhausted_requests, 1);
    assert_eq!(api.conversation("B").unwrap().turns_served, 1);
    api.shutdown().await;
}

#[tokio::test]
async fn assigned_scripts_unknown_paths_and_count_tokens() {
    // No default script: only sessions given one are served.
    let api = ScriptedApi::start(None, any_port()).await.unwrap();
    let mut own = Script::parse(SCRIPT).unwrap();
    own.turns[1].text = Some("FIX_COMPLETE".to_owned());
    own.turns.remove(0);
    api.assign("mine", own);
    let client = reqwest::Client::new();
    let url = format!("{}/v1/messages", api.url);

    let mine: Value = client
        .post(&url)
        .json(&request("mine", 1, true, false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["content"][0]["text"], "FIX_COMPLETE");

    let other = client
        .post(&url)
        .json(&request("other", 1, true, false))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 400);
    let err: Value = other.json().await.unwrap();
    assert_eq!(err["type"], "error");
    assert!(err["error"]["message"].as_str().unwrap().contains("other"));

    let missing = client
        .get(format!("{}/v1/models", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let err: Value = missing.json().await.unwrap();
    assert_eq!(err["error"]["type"], "not_found_error");

    let probe = client.head(format!("{}/", api.url)).send().await.unwrap();
    assert_eq!(probe.status(), 200);

    let bad = client.post(&url).body("not json").send().await.unwrap();
    assert_eq!(bad.status(), 400);

    // A long conversation: a request body far above common 2 MB server defaults.
    let mut big = request("mine", 1, true, false);
    big["messages"][0]["content"] = Value::String("x".repeat(5 * 1024 * 1024));
    let resp = client.post(&url).json(&big).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let counted: Value = client
        .post(format!("{}/v1/messages/count_tokens", api.url))
        .json(&request("mine", 3, true, false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(counted["input_tokens"].as_u64().unwrap() > 10);
    api.shutdown().await;
}
