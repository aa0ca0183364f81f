//! The client against servers that break the protocol: it must fail clearly, never hang.
// The handshake callback's signature (a large `Err` type) is tokio-tungstenite's.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use spacetimedb_client_api_messages::websocket::v2;
use stdb_client::protocol::{SUBPROTOCOL, encode_server_message};
use stdb_client::{ConnectOptions, Identity, ModuleSchema, ReducerArgs, StdbClient};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

fn schema() -> Arc<ModuleSchema> {
    Arc::new(ModuleSchema::from_raw(stdb_client::test_server::chat_module_def()).unwrap())
}

/// Accepts one WebSocket (answering with `protocol` if given), sends the `first` frames, answers
/// the client's first message with `reply` (if given), then reads until the client goes away.
async fn one_shot_server(
    protocol: Option<&'static str>,
    first: Vec<Vec<u8>>,
    reply: Option<Vec<u8>>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let callback = move |_req: &Request, mut resp: Response| {
            if let Some(p) = protocol {
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
            }
            Ok(resp)
        };
        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
            return;
        };
        for frame in first {
            let _ = ws.send(Message::Binary(frame.into())).await;
        }
        if let Some(reply) = reply {
            let _ = ws.next().await;
            let _ = ws.send(Message::Binary(reply.into())).await;
        }
        while let Some(Ok(_)) = ws.next().await {}
    });
    format!("http://{addr}")
}

fn initial_connection() -> Vec<u8> {
    encode_server_message(&v2::ServerMessage::InitialConnection(
        v2::InitialConnection {
            identity: Identity::from_claims("fake", "server"),
            connection_id: stdb_client::ConnectionId::from_u128(7),
            token: "t".into(),
        },
    ))
    .unwrap()
}

fn opts() -> ConnectOptions {
    ConnectOptions {
        schema: Some(schema()),
        connect_timeout: Duration::from_secs(5),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn a_server_without_the_subprotocol_is_refused_by_name() {
    let url = one_shot_server(None, vec![], None).await;
    let err = format!(
        "{:#}",
        StdbClient::connect_with(&url, "chat", opts())
            .await
            .unwrap_err()
    );
    assert!(
        err.contains(SUBPROTOCOL) && err.contains("not a SpacetimeDB 2.x server"),
        "{err}"
    );
}

#[tokio::test]
async fn a_first_message_other_than_initial_connection_is_an_error() {
    let frame = encode_server_message(&v2::ServerMessage::SubscriptionError(
        v2::SubscriptionError {
            request_id: None,
            query_set_id: v2::QuerySetId::new(1),
            error: "x".into(),
        },
    ))
    .unwrap();
    let url = one_shot_server(Some(SUBPROTOCOL), vec![frame], None).await;
    let err = format!(
        "{:#}",
        StdbClient::connect_with(&url, "chat", opts())
            .await
            .unwrap_err()
    );
    assert!(
        err.contains("expected InitialConnection") && err.contains("SubscriptionError"),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_server_hits_the_connect_timeout() {
    let url = one_shot_server(Some(SUBPROTOCOL), vec![], None).await;
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(200),
        ..opts()
    };
    let err = format!(
        "{:#}",
        StdbClient::connect_with(&url, "chat", options)
            .await
            .unwrap_err()
    );
    assert!(err.contains("took longer than"), "{err}");
}

#[tokio::test]
async fn an_undecodable_frame_fails_waiting_calls_instead_of_hanging_them() {
    // The server answers the first call with bytes that are not a server message.
    let url = one_shot_server(
        Some(SUBPROTOCOL),
        vec![initial_connection()],
        Some(vec![0u8, 250, 1, 2]),
    )
    .await;
    let client = StdbClient::connect_with(&url, "chat", opts())
        .await
        .unwrap();
    assert_eq!(client.identity(), Identity::from_claims("fake", "server"));
    let pending = client
        .send_reducer("send_message", &ReducerArgs::empty())
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("must not hang")
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("undecodable"), "{err}");
    assert_eq!(client.stats().bad_frames, 1);
    let later = client
        .call_reducer("send_message", &ReducerArgs::empty())
        .await
        .unwrap_err();
    assert!(
        format!("{later:#}").contains("connection is closed"),
        "{later:#}"
    );
}
