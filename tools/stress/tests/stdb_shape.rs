//! SpacetimeDB chat-app discovery ([`bench_stress::stdb_shape::ChatShape`]) against the
//! in-process SpacetimeDB protocol server: the shape it finds drives the whole flow.

use std::sync::Arc;
use std::time::Duration;

use bench_stress::stdb_shape::{ChatHints, ChatShape};
use stdb_client::test_server::TestServer;
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

async fn next_event(events: &mut UnboundedReceiver<Arc<RowEvent>>) -> Arc<RowEvent> {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a row event within the wait")
        .expect("the event stream is open")
}

#[tokio::test]
async fn a_discovered_chat_shape_drives_the_whole_flow() {
    let server = TestServer::start().await.unwrap();
    let url = server.base_url();
    let schema = Arc::new(fetch_schema(&url, "chat").await.unwrap());
    let shape = ChatShape::discover(&schema, &ChatHints::default()).unwrap();

    let owner = connect(&server, &schema).await;
    let args = shape.set_name_args(&schema, "owner").unwrap().unwrap();
    owner
        .call_reducer(&shape.set_name.as_ref().unwrap().reducer, &args)
        .await
        .unwrap()
        .into_committed()
        .unwrap();
    let args = shape.create_room_args(&schema, "bench room").unwrap();
    owner
        .call_reducer(&shape.create_room.reducer, &args)
        .await
        .unwrap()
        .into_committed()
        .unwrap();
    let found = sql(
        &url,
        "chat",
        None,
        &shape.room_id_query("bench room").unwrap(),
    )
    .await
    .unwrap();
    let room = found.statements[0].rows[0][0].clone();

    // A writer that did not create the room must join before posting.
    let writer = connect(&server, &schema).await;
    let send = shape
        .send_message_args(&schema, &room, "too early")
        .unwrap();
    let outcome = writer
        .call_reducer(&shape.send_message.reducer, &send)
        .await
        .unwrap();
    assert!(
        matches!(outcome.status, ReducerStatus::Failed(ref m) if m.contains("not a member")),
        "{outcome:?}"
    );
    let join = shape.join_room_args(&schema, &room).unwrap().unwrap();
    writer
        .call_reducer(&shape.join_room.as_ref().unwrap().reducer, &join)
        .await
        .unwrap()
        .into_committed()
        .unwrap();

    let listener = connect(&server, &schema).await;
    let mut events = listener.row_events();
    listener
        .subscribe(&[&shape.room_messages_query(&room).unwrap()])
        .await
        .unwrap();
    for i in 0..5 {
        let send = shape
            .send_message_args(&schema, &room, &format!("~m{i}~"))
            .unwrap();
        writer
            .call_reducer(&shape.send_message.reducer, &send)
            .await
            .unwrap()
            .into_committed()
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = next_event(&mut events).await;
        seen.extend(event.inserted_strings().map(str::to_string));
    }
    assert_eq!(seen, ["~m0~", "~m1~", "~m2~", "~m3~", "~m4~"]);
    let (table, filter) = shape.room_filter(&room).unwrap();
    assert_eq!(
        count_rows(&url, "chat", None, &table, Some(&filter))
            .await
            .unwrap(),
        5
    );
}
