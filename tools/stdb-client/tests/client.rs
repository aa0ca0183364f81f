//! The client against the in-process protocol server, over real WebSocket and HTTP on 127.0.0.1.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stdb_client::test_server::{Fault, TestServer};
use stdb_client::{
    ConnectOptions, ModuleSchema, ReducerStatus, RowEvent, StdbClient, count_rows, fetch_schema,
    sql,
};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer, schema: &Arc<ModuleSchema>) -> StdbClient {
    let opts = ConnectOptions {
        schema: Some(schema.clone()),
        ..ConnectOptions::default()
    };
    StdbClient::connect_with(&server.base_url(), server.database(), opts)
        .await
        .expect("connect")
}

/// The next row event, failing the test if none comes within [`WAIT`].
async fn next_event(events: &mut UnboundedReceiver<Arc<RowEvent>>) -> Arc<RowEvent> {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a row event within the wait")
        .expect("the event stream is open")
}

/// Calls `reducer` with named arguments and expects it to commit.
async fn call_committed(
    client: &StdbClient,
    schema: &ModuleSchema,
    reducer: &str,
    args: &[(&str, serde_json::Value)],
) {
    let args = schema.reducer_args(reducer, args).unwrap();
    client
        .call_reducer(reducer, &args)
        .await
        .unwrap()
        .into_committed()
        .unwrap();
}

/// A client with a name, a fresh room it created, and the room id.
async fn user_with_room(
    server: &TestServer,
    schema: &Arc<ModuleSchema>,
    name: &str,
) -> (StdbClient, u64) {
    let client = connect(server, schema).await;
    call_committed(&client, schema, "set_name", &[("name", json!(name))]).await;
    call_committed(
        &client,
        schema,
        "create_room",
        &[("name", json!(format!("{name}'s room")))],
    )
    .await;
    let rooms = sql(
        &server.base_url(),
        server.database(),
        None,
        &format!("SELECT * FROM room WHERE name = '{name}''s room'"),
    )
    .await
    .unwrap();
    let room_id = rooms.statements[0].rows[0][0]
        .as_u64()
        .expect("room id is a number");
    (client, room_id)
}

#[tokio::test]
async fn each_connection_gets_its_own_identity_and_a_token_that_reconnects_as_it() {
    let server = TestServer::start().await.unwrap();
    let url = server.base_url();
    let a = StdbClient::connect(&url, "chat", None).await.unwrap();
    let b = StdbClient::connect(&url, "chat", None).await.unwrap();
    assert_ne!(a.identity(), b.identity());
    assert_ne!(a.connection_id(), b.connection_id());
    assert!(!a.token().is_empty());

    let again = StdbClient::connect(&url, "chat", Some(a.token()))
        .await
        .unwrap();
    assert_eq!(again.identity(), a.identity());

    let err = StdbClient::connect(&url, "chat", Some("not-a-token"))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("401"), "{err:#}");
}

#[tokio::test]
async fn unknown_database_is_reported_with_a_hint() {
    let server = TestServer::start().await.unwrap();
    let err = StdbClient::connect(&server.base_url(), "no-such-db", None)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("404") && msg.contains("spacetime list"),
        "{msg}"
    );
}

#[tokio::test]
async fn many_calls_in_flight_on_one_connection_resolve_to_their_own_request_ids() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "alice").await;

    // 200 sends queued before any answer is awaited; every third one is made to fail
    // (empty text), so outcomes differ and a mix-up of request ids would show.
    let mut pending = Vec::new();
    for i in 0..200u32 {
        let text = if i % 3 == 0 {
            String::new()
        } else {
            format!("msg {i}")
        };
        let args = schema
            .reducer_args(
                "send_message",
                &[("room_id", json!(room)), ("text", json!(text))],
            )
            .unwrap();
        pending.push((i, client.send_reducer("send_message", &args).unwrap()));
    }
    let mut ids = HashSet::new();
    let mut committed = 0;
    for (i, fut) in pending {
        let outcome = tokio::time::timeout(WAIT, fut).await.unwrap().unwrap();
        assert!(
            ids.insert(outcome.request_id),
            "request id {} answered twice",
            outcome.request_id
        );
        if i % 3 == 0 {
            assert_eq!(
                outcome.status,
                ReducerStatus::Failed("message text must not be empty".into())
            );
        } else {
            assert_eq!(outcome.status, ReducerStatus::Committed, "call {i}");
            committed += 1;
        }
        assert!(outcome.received_at >= outcome.sent_at);
    }
    assert_eq!(committed, 133);
    // The database holds exactly the committed messages.
    let count = count_rows(
        &server.base_url(),
        "chat",
        None,
        "message",
        Some(&format!("room_id = {room}")),
    )
    .await
    .unwrap();
    assert_eq!(count, committed);
    assert_eq!(client.stats().unmatched_replies, 0);
}

#[tokio::test]
async fn concurrent_tasks_share_one_client() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "bob").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let client = client.clone();
        let schema = schema.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                call_committed(
                    &client,
                    &schema,
                    "send_message",
                    &[
                        ("room_id", json!(room)),
                        ("text", json!(format!("t{t} m{i}"))),
                    ],
                )
                .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let count = count_rows(&server.base_url(), "chat", None, "message", None)
        .await
        .unwrap();
    assert_eq!(count, 200);
    assert_eq!(server.stats().committed, 2 + 200);
}

#[tokio::test]
async fn a_subscriber_receives_the_inserts_of_another_client() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (writer, room) = user_with_room(&server, &schema, "carol").await;
    // An earlier message is part of the listener's initial rows, not of its events.
    call_committed(
        &writer,
        &schema,
        "send_message",
        &[("room_id", json!(room)), ("text", json!("before"))],
    )
    .await;

    let listener = connect(&server, &schema).await;
    let mut events = listener.row_events();
    let sub = listener
        .subscribe(&[&format!("SELECT * FROM message WHERE room_id = {room}")])
        .await
        .unwrap();
    assert_eq!(sub.initial_row_count(), 1);
    assert_eq!(sub.initial_rows[0].0.as_ref(), "message");

    for i in 0..20 {
        call_committed(
            &writer,
            &schema,
            "send_message",
            &[
                ("room_id", json!(room)),
                ("text", json!(format!("live {i}"))),
            ],
        )
        .await;
    }
    for i in 0..20 {
        let event = next_event(&mut events).await;
        assert_eq!(event.table.as_ref(), "message");
        assert_eq!(event.query_set_id, sub.query_set_id);
        assert_eq!(
            event.caller_request_id, None,
            "the listener did not cause this insert"
        );
        assert_eq!(event.inserts.len(), 1);
        assert!(event.deletes.is_empty());
        let row = &event.inserts[0];
        assert_eq!(
            event.column_json(row, "text").unwrap(),
            json!(format!("live {i}"))
        );
        assert_eq!(event.column_json(row, "room_id").unwrap(), json!(room));
        assert_eq!(
            event.column_json(row, "sender").unwrap(),
            json!(writer.identity().to_hex().to_string())
        );
    }
    // A message to another room does not match the listener's filter.
    let (other, other_room) = user_with_room(&server, &schema, "dave").await;
    call_committed(
        &other,
        &schema,
        "send_message",
        &[("room_id", json!(other_room)), ("text", json!("elsewhere"))],
    )
    .await;
    call_committed(
        &writer,
        &schema,
        "send_message",
        &[("room_id", json!(room)), ("text", json!("last"))],
    )
    .await;
    let event = next_event(&mut events).await;
    assert_eq!(
        event.column_json(&event.inserts[0], "text").unwrap(),
        json!("last")
    );
}

#[tokio::test]
async fn the_caller_sees_its_own_subscribed_rows_in_the_reducer_result() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "erin").await;
    let mut events = client.row_events();
    client.subscribe(&["SELECT * FROM message"]).await.unwrap();
    let args = schema
        .reducer_args(
            "send_message",
            &[("room_id", json!(room)), ("text", json!("mine"))],
        )
        .unwrap();
    let outcome = client.call_reducer("send_message", &args).await.unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(event.caller_request_id, Some(outcome.request_id));
    assert_eq!(
        event.column_json(&event.inserts[0], "text").unwrap(),
        json!("mine")
    );
}

#[tokio::test]
async fn schema_drives_argument_building_and_explains_mismatches() {
    let server = TestServer::start().await.unwrap();
    let schema = fetch_schema(&server.base_url(), "chat").await.unwrap();
    let names: Vec<&str> = schema.reducers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["set_name", "create_room", "join_room", "send_message"]
    );
    assert_eq!(
        schema.reducer("send_message").unwrap().describe(),
        "send_message(room_id: u64, text: String)"
    );
    assert_eq!(
        schema.table("message").unwrap().describe(),
        "message(id: u64, room_id: u64, sender: Identity, text: String, sent: Timestamp)"
    );
    assert_eq!(
        schema.table("user").unwrap().describe(),
        "user(identity: Identity, name: Option<String>, online: bool)"
    );

    // `register` does not exist here; `set_name` does.
    assert_eq!(
        schema.pick_reducer(&["register", "set_name"]).unwrap().name,
        "set_name"
    );
    let err = schema
        .reducer_args("register", &[("name", json!("x"))])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no reducer `register`") && err.contains("set_name(name: String)"),
        "{err}"
    );
    let err = schema
        .pick_reducer(&["register", "signup"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`register`, `signup`")
            && err.contains("send_message(room_id: u64, text: String)"),
        "{err}"
    );

    let err = schema
        .reducer_args("send_message", &[("room", json!(1)), ("text", json!("x"))])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no parameter `room`") && err.contains("room_id: u64"),
        "{err}"
    );
    let err = schema
        .reducer_args("send_message", &[("text", json!("x"))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs argument `room_id`"), "{err}");
    let err = format!(
        "{:#}",
        schema
            .reducer_args(
                "send_message",
                &[("room_id", json!("seven")), ("text", json!("x"))]
            )
            .unwrap_err()
    );
    assert!(err.contains("expected a u64"), "{err}");
    let err = format!(
        "{:#}",
        schema
            .reducer_args(
                "send_message",
                &[("room_id", json!(-1)), ("text", json!("x"))]
            )
            .unwrap_err()
    );
    assert!(err.contains("expected a u64"), "{err}");

    // The bytes are the BSATN product of the parameters, in declaration order.
    let args = schema
        .reducer_args(
            "send_message",
            &[("text", json!("hi")), ("room_id", json!(7))],
        )
        .unwrap();
    let mut expected = 7u64.to_le_bytes().to_vec();
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(b"hi");
    assert_eq!(args.0.as_ref(), expected.as_slice());
    let decoded = schema
        .reducer("send_message")
        .unwrap()
        .decode_args(&args.0)
        .unwrap();
    assert_eq!(decoded.elements.len(), 2);
}

#[tokio::test]
async fn failing_panicking_and_delayed_reducers_report_their_outcome() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "frank").await;
    let args = schema
        .reducer_args(
            "send_message",
            &[("room_id", json!(room)), ("text", json!("x"))],
        )
        .unwrap();

    server.set_fault("send_message", Some(Fault::Fail("rate limited".into())));
    let outcome = client.call_reducer("send_message", &args).await.unwrap();
    assert_eq!(outcome.status, ReducerStatus::Failed("rate limited".into()));
    assert!(
        outcome
            .clone()
            .into_committed()
            .unwrap_err()
            .to_string()
            .contains("rate limited")
    );

    server.set_fault("send_message", Some(Fault::Panic("boom".into())));
    let outcome = client.call_reducer("send_message", &args).await.unwrap();
    assert!(
        matches!(&outcome.status, ReducerStatus::InternalError(m) if m.contains("boom")),
        "{outcome:?}"
    );

    server.set_fault(
        "send_message",
        Some(Fault::Delay(Duration::from_millis(150))),
    );
    let outcome = client.call_reducer("send_message", &args).await.unwrap();
    assert!(outcome.is_committed());
    assert!(
        outcome.latency() >= Duration::from_millis(150),
        "{:?}",
        outcome.latency()
    );

    // One call in three fails, deterministically.
    server.set_fault(
        "send_message",
        Some(Fault::FailEvery {
            every: 3,
            message: "every third".into(),
        }),
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            client
                .call_reducer("send_message", &args)
                .await
                .unwrap()
                .status,
        );
    }
    let failed: Vec<usize> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != ReducerStatus::Committed)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, [2, 5]);
    assert_eq!(statuses[2], ReducerStatus::Failed("every third".into()));

    server.set_fault("send_message", None);
    // The module's own errors: unknown room.
    let bad_room = schema
        .reducer_args(
            "send_message",
            &[("room_id", json!(room + 1000)), ("text", json!("x"))],
        )
        .unwrap();
    let outcome = client
        .call_reducer("send_message", &bad_room)
        .await
        .unwrap();
    assert_eq!(
        outcome.status,
        ReducerStatus::Failed(format!("room {} not found", room + 1000))
    );
    // A reducer the server does not know is a host error, not a hang.
    let outcome = client.call_reducer("no_such_reducer", &args).await.unwrap();
    assert!(
        matches!(&outcome.status, ReducerStatus::InternalError(m) if m.contains("no such reducer")),
        "{outcome:?}"
    );

    // The delayed call and four of the six "every third" calls committed a message.
    let count = count_rows(&server.base_url(), "chat", None, "message", None)
        .await
        .unwrap();
    assert_eq!(count, 5);
}

#[tokio::test]
async fn sql_errors_and_bad_subscriptions_are_reported() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let err = sql(&server.base_url(), "chat", None, "SELECT * FROM nope")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("400"), "{err:#}");
    let client = connect(&server, &schema).await;
    let err = client.subscribe(&["SELECT * FROM nope"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("no table `nope`"), "{err:#}");
    // The connection survives a rejected subscription.
    client.subscribe(&["SELECT * FROM message"]).await.unwrap();
}

#[tokio::test]
async fn calls_waiting_when_the_server_goes_away_fail_instead_of_hanging() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "gina").await;
    server.set_fault("send_message", Some(Fault::Delay(Duration::from_secs(30))));
    let args = schema
        .reducer_args(
            "send_message",
            &[("room_id", json!(room)), ("text", json!("x"))],
        )
        .unwrap();
    let pending = client.send_reducer("send_message", &args).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(server);
    let err = tokio::time::timeout(WAIT, pending)
        .await
        .expect("the call must not hang")
        .unwrap_err();
    assert!(format!("{err:#}").contains("no answer"), "{err:#}");
    assert!(client.closed_reason().is_some());
    assert!(client.call_reducer("send_message", &args).await.is_err());
}

#[tokio::test]
async fn sql_returns_projections_counts_and_several_statements() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "hana").await;
    for text in ["one", "two; with semicolon", "three"] {
        call_committed(
            &client,
            &schema,
            "send_message",
            &[("room_id", json!(room)), ("text", json!(text))],
        )
        .await;
    }
    let result = sql(
        &server.base_url(),
        "chat",
        Some(client.token()),
        &format!("SELECT text, room_id FROM message WHERE room_id = {room} LIMIT 2; SELECT COUNT(*) AS total FROM message"),
    )
    .await
    .unwrap();
    assert_eq!(result.statements.len(), 2);
    let texts = &result.statements[0];
    assert_eq!(texts.columns, ["text", "room_id"]);
    assert_eq!(
        texts.rows,
        vec![
            vec![json!("one"), json!(room)],
            vec![json!("two; with semicolon"), json!(room)]
        ]
    );
    assert_eq!(result.statements[1].columns, ["total"]);
    assert_eq!(result.statements[1].rows, vec![vec![json!(3)]]);
    assert!(
        result
            .count()
            .unwrap_err()
            .to_string()
            .contains("one SQL statement")
    );
    let only_count = sql(
        &server.base_url(),
        "chat",
        None,
        "SELECT COUNT(*) AS n FROM message WHERE text = 'three'",
    )
    .await
    .unwrap();
    assert_eq!(only_count.count().unwrap(), 1);
}

#[tokio::test]
async fn an_idle_listener_answers_pings_and_stays_connected() {
    use stdb_client::test_server::TestServerConfig;
    let server = TestServer::start_with(TestServerConfig {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..TestServerConfig::default()
    })
    .await
    .unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let listener = connect(&server, &schema).await;
    let mut events = listener.row_events();
    listener
        .subscribe(&["SELECT * FROM message"])
        .await
        .unwrap();
    // A raw socket that never reads never answers the pings: the server must drop it, which
    // shows that the idle check is live.
    let url = format!(
        "ws://{}/v1/database/chat/subscribe?compression=None",
        server.addr()
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v2.bsatn.spacetimedb".parse().unwrap(),
    );
    let (_mute, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // Silent for several idle timeouts: only the automatic pongs keep the listener alive.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        server.stats().idle_disconnects,
        1,
        "only the mute socket is dropped"
    );
    assert_eq!(listener.closed_reason(), None);
    let (writer, room) = user_with_room(&server, &schema, "ivan").await;
    call_committed(
        &writer,
        &schema,
        "send_message",
        &[("room_id", json!(room)), ("text", json!("still here"))],
    )
    .await;
    let event = next_event(&mut events).await;
    assert_eq!(event.inserted_strings().collect::<Vec<_>>(), ["still here"]);
}

#[tokio::test]
async fn close_ends_waiting_and_later_calls() {
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "jack").await;
    server.set_fault("send_message", Some(Fault::Delay(Duration::from_secs(30))));
    let args = schema
        .reducer_args(
            "send_message",
            &[("room_id", json!(room)), ("text", json!("x"))],
        )
        .unwrap();
    let pending = client.send_reducer("send_message", &args).unwrap();
    client.close();
    let err = tokio::time::timeout(WAIT, pending)
        .await
        .expect("must not hang")
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("closed by the client"),
        "{err:#}"
    );
    assert_eq!(
        client.closed_reason().as_deref(),
        Some("closed by the client")
    );
    let err = client
        .call_reducer("send_message", &args)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("connection is closed"),
        "{err:#}"
    );
}

#[tokio::test]
async fn tagged_calls_come_back_with_their_tags_in_completion_order() {
    use stdb_client::TaggedCalls;
    let server = TestServer::start().await.unwrap();
    let schema = Arc::new(fetch_schema(&server.base_url(), "chat").await.unwrap());
    let (client, room) = user_with_room(&server, &schema, "kim").await;
    let mut calls = TaggedCalls::new(client);
    assert!(calls.next().await.is_none(), "nothing in flight");
    for tag in 1000..1050u64 {
        let text = if tag % 10 == 0 {
            String::new()
        } else {
            format!("tag {tag}")
        };
        let args = schema
            .reducer_args(
                "send_message",
                &[("room_id", json!(room)), ("text", json!(text))],
            )
            .unwrap();
        calls.send(tag, "send_message", &args).unwrap();
    }
    assert_eq!(calls.in_flight(), 50);
    let mut seen = HashSet::new();
    // Cancelling `next` (a timeout that may fire before anything is ready) loses nothing.
    let mut outcomes = Vec::new();
    if let Ok(Some(first)) = tokio::time::timeout(Duration::ZERO, calls.next()).await {
        outcomes.push(first);
    }
    while let Some(item) = calls.next().await {
        outcomes.push(item);
    }
    for (tag, outcome) in outcomes {
        let outcome = outcome.unwrap();
        assert_eq!(outcome.is_committed(), tag % 10 != 0, "tag {tag}");
        assert!(seen.insert(tag));
    }
    assert_eq!(seen.len(), 50, "every tag came back exactly once");
    assert_eq!(calls.in_flight(), 0);
}
