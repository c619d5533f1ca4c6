//! Faults injected at an exact step (a TCP proxy cuts the line to PostgreSQL or Redis):
//! a subscriber never skips a sequence number, messages acknowledged while the broker was
//! down reach other replicas without waiting for the next one, an unavailable deny-list
//! is "retry" and never "invalid token", and a logged-out session's sockets close.

use futures::SinkExt;
use natter_chat::Limits;
use natter_core::store::{Backend, NewMessage, Store};
use natter_core::time::now_ms;
use natter_testkit::Proxy;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::harness::{Cluster, Replica, Socket, User, closed, connect, next, say, send, subscribe};

/// `url` with its `host:port` replaced by the proxy's.
fn through(proxy: &Proxy, url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = host.split('/').next().unwrap();
    url.replace(host, &proxy.addr.to_string())
}

/// Frames until the server closes the socket: the message frames seen, and the close code.
async fn messages_until_closed(socket: &mut Socket) -> (Vec<Value>, u16) {
    let mut messages = Vec::new();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            use futures::StreamExt;
            socket.next().await
        })
        .await
        .expect("a frame or a close within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if value["type"] == "message" {
                    messages.push(value);
                }
            }
            Some(Ok(Message::Close(Some(close)))) => return (messages, close.code.into()),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return (messages, 0),
            Some(Ok(_)) => {}
        }
    }
}

/// Alice on `one` and Bob on `two` in a group room, both subscribed, after one message
/// (seq 1) from Alice that reached Bob (hers is still to be read).
async fn chatting(
    cluster: &Cluster,
    one: &Replica,
    two: &Replica,
) -> (String, User, Socket, User, Socket) {
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut b = connect(two, Some(&bob)).await;
    subscribe(&mut b, &room, None).await;
    let mut a = connect(one, Some(&alice)).await;
    subscribe(&mut a, &room, None).await;
    assert_eq!(send(&mut a, &room, "c1", "first").await["seq"], 1);
    assert_eq!(next(&mut b).await["seq"], 1);
    (room, alice, a, bob, b)
}

/// Stores a message directly, as if its broker frame had been lost.
async fn store_without_fan_out(store: &Store, room: &str, user: &User, client_id: &str) -> i64 {
    let new = NewMessage::text(room, &user.id, client_id, "fanned out to nobody", now_ms());
    store.post_message(new).await.unwrap().message.seq
}

#[tokio::test]
async fn a_gap_the_store_cannot_fill_ends_the_connection_instead_of_skipping() {
    let cluster = Cluster::new(Backend::Postgres).await;
    let proxy = Proxy::start(through_host(&cluster.test_store.url)).await;
    let proxied = Store::connect(&through(&proxy, &cluster.test_store.url), 2)
        .await
        .unwrap();
    let (one, two) = (
        cluster.replica(Limits::default()).await,
        cluster
            .replica_on(proxied, cluster.broker.clone(), Limits::default())
            .await,
    );
    let (room, alice, mut a, bob, mut b) = chatting(&cluster, &one, &two).await;

    assert_eq!(
        store_without_fan_out(&cluster.store, &room, &alice, "lost").await,
        2
    );
    proxy.set_open(false);
    assert_eq!(send(&mut a, &room, "c3", "three").await["seq"], 3);
    let (delivered, code) = messages_until_closed(&mut b).await;
    assert!(
        delivered.is_empty(),
        "seq 3 is not delivered over the hole: {delivered:?}"
    );
    assert_eq!(code, 1013, "try again later: the client resumes");

    proxy.set_open(true);
    let mut b = connect(&two, Some(&bob)).await;
    let subscribed = subscribe(&mut b, &room, Some(1)).await;
    assert_eq!(subscribed["from_seq"], 2, "{subscribed}");
    assert_eq!(next(&mut b).await["seq"], 2);
    assert_eq!(next(&mut b).await["seq"], 3);
}

/// `host:port` of a URL.
fn through_host(url: &str) -> &str {
    let rest = url.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    host.split('/').next().unwrap()
}

/// Two replicas whose broker and deny-list are Redis behind `proxy`.
async fn behind_proxied_redis() -> (Proxy, Cluster) {
    let redis = natter_testkit::redis_url();
    let proxy = Proxy::start(through_host(&redis)).await;
    let cluster = Cluster::with_redis(Backend::Postgres, Some(&through(&proxy, &redis))).await;
    (proxy, cluster)
}

#[tokio::test]
async fn a_message_acked_while_the_broker_is_down_reaches_other_replicas_unprompted() {
    let (redis, cluster) = behind_proxied_redis().await;
    let (one, two) = (
        cluster.replica(Limits::default()).await,
        cluster.replica(Limits::default()).await,
    );
    let (room, _, mut a, _, mut b) = chatting(&cluster, &one, &two).await;
    assert_eq!(next(&mut a).await["seq"], 1);

    redis.set_open(false);
    assert_eq!(send(&mut a, &room, "c2", "during").await["seq"], 2);
    assert_eq!(next(&mut a).await["seq"], 2, "local delivery goes on");
    redis.set_open(true);
    // Nobody sends again: the replica catches up by itself once it is subscribed again.
    assert_eq!(next(&mut b).await["seq"], 2);
    assert_eq!(send(&mut a, &room, "c3", "after").await["seq"], 3);
    assert_eq!(
        next(&mut b).await["seq"],
        3,
        "and goes on in order, no duplicate"
    );
}

#[tokio::test]
async fn a_replica_that_lost_its_subscription_catches_up_when_it_is_back() {
    let cluster = Cluster::new(Backend::Postgres).await;
    let redis = natter_testkit::redis_url();
    let proxy = Proxy::start(through_host(&redis)).await;
    let cut_off = natter_core::broker::RedisBroker::connect(
        &through(&proxy, &redis),
        natter_core::kv::REDIS_TIMEOUT,
    )
    .await
    .unwrap();
    let (one, two) = (
        cluster.replica(Limits::default()).await,
        cluster
            .replica_on(
                cluster.store.clone(),
                std::sync::Arc::new(cut_off),
                Limits::default(),
            )
            .await,
    );
    let (room, _, mut a, _, mut b) = chatting(&cluster, &one, &two).await;

    // Only the second replica loses Redis: the first publishes into a void.
    proxy.set_open(false);
    assert_eq!(send(&mut a, &room, "c2", "unheard").await["seq"], 2);
    proxy.set_open(true);
    assert_eq!(next(&mut b).await["seq"], 2, "caught up from the store");
}

#[tokio::test]
async fn an_unreachable_deny_list_asks_to_retry_and_recovers_on_first_use() {
    let (redis, cluster) = behind_proxied_redis().await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    let open = connect(&replica, Some(&alice)).await;
    drop(open);

    redis.set_open(false);
    let mut socket = connect(&replica, None).await;
    say(&mut socket, json!({"type": "auth", "token": alice.token})).await;
    assert_eq!(closed(&mut socket).await, 1013, "retry, not 4003");

    redis.set_open(true);
    connect(&replica, Some(&alice)).await; // asserts `authenticated`
}

async fn logging_out_closes_the_sessions_open_sockets(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    let other_session = cluster.user("bob").await;
    let room = cluster.room(&alice, &[&other_session]).await;
    let mut socket = connect(&replica, Some(&alice)).await;
    subscribe(&mut socket, &room, None).await;
    let mut bystander = connect(&replica, Some(&other_session)).await;

    cluster.auth.logout(Some(&alice.token), None).await.unwrap();
    assert_eq!(closed(&mut socket).await, 4003);
    say(&mut bystander, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut bystander).await["type"],
        "pong",
        "other sessions stay"
    );
}

async fn invalid_utf8_is_closed_with_1007(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    let mut socket = connect(&replica, Some(&alice)).await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    socket.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(closed(&mut socket).await, 1007);
}

#[tokio::test]
async fn a_client_that_closes_gets_its_close_frame_answered() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let cluster = Cluster::new(Backend::Sqlite).await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    for user in [None, Some(&alice)] {
        let mut socket = connect(&replica, user).await;
        let bye = CloseFrame {
            code: 1000.into(),
            reason: "bye".into(),
        };
        socket.close(Some(bye)).await.unwrap();
        assert_eq!(closed(&mut socket).await, 1000, "authenticated: {user:?}");
    }
}

async fn a_nul_in_a_body_is_invalid_not_unavailable(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let alice = cluster.user("alice").await;
    let room = cluster.room(&alice, &[]).await;
    let mut socket = connect(&replica, Some(&alice)).await;
    let refused = send(&mut socket, &room, "c1", "poison \0 pill").await;
    assert_eq!(refused["code"], "invalid_body", "{refused}");
    assert_eq!(send(&mut socket, &room, "c2", "fine").await["seq"], 1);
}

/// What docs/protocol.md promises: outsiders of a public room are told to join
/// (`forbidden`); outsiders of a group learn nothing (`not_found`).
async fn outsiders_editing_get_forbidden_in_public_rooms_and_not_found_elsewhere(backend: Backend) {
    use natter_core::store::RoomKind;
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let (alice, eve) = (cluster.user("alice").await, cluster.user("eve").await);
    let public = cluster
        .store
        .create_room(RoomKind::Public, &format!("open {}", alice.id), &alice.id)
        .await
        .unwrap()
        .id;
    let group = cluster.room(&alice, &[]).await;
    let mut a = connect(&replica, Some(&alice)).await;
    for room in [&public, &group] {
        assert_eq!(send(&mut a, room, "c1", "mine").await["seq"], 1);
    }
    let mut e = connect(&replica, Some(&eve)).await;
    for (room, code) in [(&public, "forbidden"), (&group, "not_found")] {
        say(
            &mut e,
            json!({"type": "edit", "room_id": room, "seq": 1, "body": "x"}),
        )
        .await;
        assert_eq!(next(&mut e).await["code"], code);
        say(&mut e, json!({"type": "delete", "room_id": room, "seq": 1})).await;
        assert_eq!(next(&mut e).await["code"], code);
    }
}

macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod postgres { $(#[tokio::test] async fn $case() { super::$case(super::Backend::Postgres).await })* }
        mod sqlite { $(#[tokio::test] async fn $case() { super::$case(super::Backend::Sqlite).await })* }
    };
}

per_backend!(
    logging_out_closes_the_sessions_open_sockets,
    invalid_utf8_is_closed_with_1007,
    a_nul_in_a_body_is_invalid_not_unavailable,
    outsiders_editing_get_forbidden_in_public_rooms_and_not_found_elsewhere,
);
