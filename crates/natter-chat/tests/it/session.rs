//! Connection life: authentication (timeout, bad and expired tokens), authorization,
//! limits, and the restart close code.

use natter_chat::Limits;
use natter_core::store::Backend;
use natter_core::time::now_secs;
use natter_core::token::TokenSigner;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Cluster, closed, connect, next, say, send, subscribe};

async fn an_unauthenticated_socket_is_closed_after_the_deadline(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster
        .replica(Limits {
            auth_timeout_secs: 1,
            ..Limits::default()
        })
        .await;
    let mut socket = connect(&replica, None).await;
    say(&mut socket, json!({"type": "subscribe", "room_id": "r"})).await;
    assert_eq!(next(&mut socket).await["code"], "unauthenticated");
    assert_eq!(closed(&mut socket).await, 4001);
}

async fn a_bad_token_closes_and_an_expired_one_ends_the_session(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let mut socket = connect(&replica, None).await;
    say(&mut socket, json!({"type": "auth", "token": "not-a-token"})).await;
    assert_eq!(closed(&mut socket).await, 4003);

    let alice = cluster.user("alice").await;
    let signer = TokenSigner::new(&cluster.keys, "natter", "natter", 10).unwrap();
    let short = signer.sign(&alice.id, "alice", "s", now_secs() - 9);
    let mut socket = connect(&replica, None).await;
    say(&mut socket, json!({"type": "auth", "token": short.token})).await;
    assert_eq!(next(&mut socket).await["type"], "authenticated");
    assert_eq!(closed(&mut socket).await, 4004);
}

async fn re_authenticating_keeps_the_session_past_the_first_expiry(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    let signer = TokenSigner::new(&cluster.keys, "natter", "natter", 10).unwrap();
    let short = signer.sign(&alice.id, "alice", "s", now_secs() - 9);
    let mut socket = connect(&replica, None).await;
    say(&mut socket, json!({"type": "auth", "token": short.token})).await;
    assert_eq!(next(&mut socket).await["type"], "authenticated");
    say(&mut socket, json!({"type": "auth", "token": alice.token})).await;
    let renewed = next(&mut socket).await;
    assert_eq!(renewed["type"], "authenticated");
    assert!(renewed["expires_at"].as_i64().unwrap() > now_secs() + 60);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    say(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut socket).await["type"],
        "pong",
        "still open after the first token expired"
    );
    let stranger = cluster.user("mallory").await;
    say(
        &mut socket,
        json!({"type": "auth", "token": stranger.token}),
    )
    .await;
    assert_eq!(closed(&mut socket).await, 4003, "one connection, one user");
}

async fn non_members_learn_nothing_and_cannot_send(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let (alice, mallory) = (cluster.user("alice").await, cluster.user("mallory").await);
    let room = cluster.room(&alice, &[]).await;
    let mut socket = connect(&replica, Some(&mallory)).await;
    let refused = subscribe(&mut socket, &room, None).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("not_found"))
    );
    let missing = subscribe(&mut socket, "no-such-room", None).await;
    assert_eq!(
        missing["code"], refused["code"],
        "a hidden room looks like a missing one"
    );
    assert_eq!(
        send(&mut socket, &room, "c1", "hi").await["code"],
        "not_found"
    );
    let history = cluster
        .store
        .history(
            &room,
            natter_core::store::HistoryOrder::NewestFirst,
            None,
            None,
            10,
        )
        .await
        .unwrap();
    assert!(history.is_empty());
}

async fn limits_answer_with_errors_and_close_only_for_abuse(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let limits = Limits {
        sends_per_sec: 0.001,
        send_burst: 3.0,
        abuse_after: 5,
        ..Limits::default()
    };
    let replica = cluster.replica(limits).await;
    let alice = cluster.user("alice").await;
    let room = cluster.room(&alice, &[]).await;
    let mut socket = connect(&replica, Some(&alice)).await;
    let long = "x".repeat(4001);
    assert_eq!(
        send(&mut socket, &room, "c0", &long).await["code"],
        "invalid_body"
    );
    for i in 1..3 {
        assert_eq!(
            send(&mut socket, &room, &format!("c{i}"), "ok").await["type"],
            "ack"
        );
    }
    let limited = send(&mut socket, &room, "c3", "too fast").await;
    assert_eq!(
        (limited["code"].as_str(), limited["about"].as_str()),
        (Some("rate_limited"), Some("c3"))
    );
    for i in 4..=8 {
        say(
            &mut socket,
            json!({"type": "send", "room_id": room, "client_id": format!("c{i}"), "body": "x"}),
        )
        .await;
    }
    assert_eq!(closed(&mut socket).await, 4029);

    let mut socket = connect(&replica, Some(&alice)).await;
    let huge =
        json!({"type": "send", "room_id": room, "client_id": "big", "body": "x".repeat(70_000)});
    socket.send_text(huge.to_string()).await;
    assert_eq!(
        closed(&mut socket).await,
        1009,
        "frames over 64 KiB are refused"
    );
}

async fn subscriptions_per_connection_are_bounded(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster
        .replica(Limits {
            max_subscriptions: 1,
            ..Limits::default()
        })
        .await;
    let alice = cluster.user("alice").await;
    let (first, second) = (
        cluster.room(&alice, &[]).await,
        cluster.room(&alice, &[]).await,
    );
    let mut socket = connect(&replica, Some(&alice)).await;
    assert_eq!(
        subscribe(&mut socket, &first, None).await["type"],
        "subscribed"
    );
    let refused = subscribe(&mut socket, &second, None).await;
    assert_eq!(
        (refused["code"].as_str(), refused["about"].as_str()),
        (Some("too_many_subscriptions"), Some(second.as_str()))
    );
    assert_eq!(
        subscribe(&mut socket, &first, Some(0)).await["type"],
        "subscribed",
        "re-subscribing is fine"
    );
}

async fn with_the_database_gone_sends_fail_retryably_and_nothing_is_acknowledged(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    let room = cluster.room(&alice, &[]).await;
    let mut socket = connect(&replica, Some(&alice)).await;
    assert_eq!(
        send(&mut socket, &room, "c1", "stored").await["type"],
        "ack"
    );
    // Closing the pool stands in for PostgreSQL going away: every query now fails.
    cluster.store.close().await;
    let refused = send(&mut socket, &room, "c2", "not stored").await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("unavailable")),
        "{refused}"
    );
    assert_eq!(
        refused["about"], "c2",
        "the client knows which send to retry"
    );
    say(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut socket).await["type"],
        "pong",
        "the connection stays open"
    );
}

async fn shutdown_closes_sockets_with_service_restart(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    let mut socket = connect(&replica, Some(&alice)).await;
    assert_eq!(replica.sockets.open(), 1);
    replica.stop.trigger();
    assert_eq!(closed(&mut socket).await, 1012);
    replica
        .sockets
        .drained(std::time::Duration::from_secs(5))
        .await;
    assert_eq!(replica.sockets.open(), 0);
}

trait SendText {
    async fn send_text(&mut self, text: String);
}

impl SendText for crate::harness::Socket {
    async fn send_text(&mut self, text: String) {
        use futures::SinkExt;
        let _ = self.send(Message::Text(text.into())).await;
    }
}

macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod postgres { $(#[tokio::test] async fn $case() { super::$case(super::Backend::Postgres).await })* }
        mod sqlite { $(#[tokio::test] async fn $case() { super::$case(super::Backend::Sqlite).await })* }
    };
}

per_backend!(
    an_unauthenticated_socket_is_closed_after_the_deadline,
    a_bad_token_closes_and_an_expired_one_ends_the_session,
    non_members_learn_nothing_and_cannot_send,
    re_authenticating_keeps_the_session_past_the_first_expiry,
    limits_answer_with_errors_and_close_only_for_abuse,
    shutdown_closes_sockets_with_service_restart,
    subscriptions_per_connection_are_bounded,
    with_the_database_gone_sends_fail_retryably_and_nothing_is_acknowledged,
);
