//! The delivery guarantees: ack after commit, order, exactly once per subscription,
//! idempotent retries, resume (with and without truncation), cross-replica fan-out, room
//! deletion.

use natter_chat::{Limits, REPLAY_LIMIT};
use natter_core::store::{Backend, HistoryOrder, NewMessage};
use serde_json::json;

use crate::harness::{Cluster, connect, next, say, send, subscribe};

fn generous() -> Limits {
    Limits {
        sends_per_sec: 10_000.0,
        send_burst: 10_000.0,
        ..Limits::default()
    }
}

async fn acks_follow_the_commit_and_subscribers_get_every_message_in_order(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(generous()).await;
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut reader = connect(&replica, Some(&bob)).await;
    let subscribed = subscribe(&mut reader, &room, None).await;
    assert_eq!(
        subscribed,
        json!({"type": "subscribed", "room_id": room, "from_seq": 1, "truncated": false})
    );
    let mut writer = connect(&replica, Some(&alice)).await;
    for i in 1..=20 {
        let ack = send(&mut writer, &room, &format!("c{i}"), &format!("hello {i}")).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let seq = ack["seq"].as_i64().unwrap();
        assert_eq!(seq, i);
        let stored = cluster
            .store
            .history(&room, HistoryOrder::NewestFirst, None, None, 1)
            .await
            .unwrap();
        assert_eq!(stored[0].seq, seq, "acknowledged only once stored");
    }
    for i in 1..=20 {
        let message = next(&mut reader).await;
        assert_eq!(
            (message["type"].as_str(), message["seq"].as_i64()),
            (Some("message"), Some(i))
        );
        assert_eq!(message["body"], format!("hello {i}"));
    }
}

async fn retries_are_acknowledged_but_never_stored_or_delivered_twice(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(generous()).await;
    let alice = cluster.user("alice").await;
    let room = cluster.room(&alice, &[]).await;
    let mut socket = connect(&replica, Some(&alice)).await;
    subscribe(&mut socket, &room, None).await;
    let first = send(&mut socket, &room, "same", "once").await;
    let message = next(&mut socket).await;
    assert_eq!(message["seq"], 1);
    let retry = send(&mut socket, &room, "same", "once").await;
    assert_eq!(
        (first["seq"].clone(), first["duplicate"].clone()),
        (json!(1), json!(false))
    );
    assert_eq!(
        (retry["seq"].clone(), retry["duplicate"].clone()),
        (json!(1), json!(true))
    );
    let after = send(&mut socket, &room, "other", "twice").await;
    assert_eq!(after["seq"], 2);
    assert_eq!(
        next(&mut socket).await["seq"],
        2,
        "the retry was not delivered again"
    );
}

async fn resume_replays_what_was_missed_then_goes_live_without_a_seam(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(generous()).await;
    let alice = cluster.user("alice").await;
    let room = cluster.room(&alice, &[]).await;
    let mut writer = connect(&replica, Some(&alice)).await;
    for i in 1..=5 {
        send(&mut writer, &room, &format!("c{i}"), "before").await;
    }
    let mut reader = connect(&replica, Some(&alice)).await;
    let subscribed = subscribe(&mut reader, &room, Some(2)).await;
    assert_eq!(
        (
            subscribed["from_seq"].clone(),
            subscribed["truncated"].clone()
        ),
        (json!(3), json!(false))
    );
    send(&mut writer, &room, "c6", "live").await;
    let mut got = Vec::new();
    for _ in 3..=6 {
        got.push(next(&mut reader).await["seq"].as_i64().unwrap());
    }
    assert_eq!(got, [3, 4, 5, 6], "replay, then live, nothing twice");
}

async fn a_gap_larger_than_the_bound_is_flagged(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(generous()).await;
    let alice = cluster.user("alice").await;
    let room = cluster.room(&alice, &[]).await;
    let total = i64::from(REPLAY_LIMIT) + 30;
    for i in 0..total {
        let client_id = format!("c{i}");
        let new = NewMessage::text(&room, &alice.id, &client_id, "x", 1);
        cluster.store.post_message(new).await.unwrap();
    }
    let mut reader = connect(&replica, Some(&alice)).await;
    let subscribed = subscribe(&mut reader, &room, Some(0)).await;
    let from = total - i64::from(REPLAY_LIMIT) + 1;
    assert_eq!(
        (
            subscribed["from_seq"].clone(),
            subscribed["truncated"].clone()
        ),
        (json!(from), json!(true))
    );
    assert_eq!(next(&mut reader).await["seq"], from);
}

async fn replicas_deliver_each_others_messages_in_order(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (one, two) = (
        cluster.replica(generous()).await,
        cluster.replica(generous()).await,
    );
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut on_two = connect(&two, Some(&bob)).await;
    subscribe(&mut on_two, &room, None).await;
    let mut on_one = connect(&one, Some(&alice)).await;
    let mut also_two = connect(&two, Some(&alice)).await;
    for i in 1..=10 {
        let socket = if i % 2 == 0 {
            &mut on_one
        } else {
            &mut also_two
        };
        assert_eq!(send(socket, &room, &format!("c{i}"), "x").await["seq"], i);
    }
    for i in 1..=10 {
        assert_eq!(next(&mut on_two).await["seq"], i);
    }
}

async fn deleting_the_room_ends_its_subscriptions(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(generous()).await;
    let alice = cluster.user("alice").await;
    let room = cluster.room(&alice, &[]).await;
    let mut socket = connect(&replica, Some(&alice)).await;
    subscribe(&mut socket, &room, None).await;
    cluster.store.delete_room(&room).await.unwrap();
    // As the previous release's website announced it: replicas of two releases run side
    // by side during a rolling upgrade.
    let event = format!(r#"{{"type":"room_deleted","room_id":"{room}"}}"#);
    cluster
        .broker
        .publish(natter_core::events::LEGACY_ROOMS_TOPIC, event.into())
        .await
        .unwrap();
    let frame = next(&mut socket).await;
    assert_eq!(
        frame,
        json!({"type": "unsubscribed", "room_id": room, "reason": "room_deleted"})
    );
    say(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
}

async fn edits_deletes_typing_and_read_markers(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(generous()).await;
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut a = connect(&replica, Some(&alice)).await;
    let mut b = connect(&replica, Some(&bob)).await;
    subscribe(&mut a, &room, None).await;
    subscribe(&mut b, &room, None).await;
    send(&mut a, &room, "m1", "helo").await;
    next(&mut a).await;
    assert_eq!(next(&mut b).await["body"], "helo");
    say(
        &mut a,
        json!({"type": "edit", "room_id": room, "seq": 1, "body": "hello"}),
    )
    .await;
    let updated = next(&mut b).await;
    assert_eq!(
        (
            updated["type"].as_str(),
            updated["body"].as_str(),
            updated["deleted"].as_bool()
        ),
        (Some("message_updated"), Some("hello"), Some(false))
    );
    assert_eq!(next(&mut a).await["body"], "hello");
    say(
        &mut b,
        json!({"type": "edit", "room_id": room, "seq": 1, "body": "hijacked"}),
    )
    .await;
    assert_eq!(
        next(&mut b).await["code"],
        "not_found",
        "only the sender edits"
    );
    say(&mut a, json!({"type": "delete", "room_id": room, "seq": 1})).await;
    let deleted = next(&mut b).await;
    assert_eq!(
        (deleted["deleted"].as_bool(), deleted["body"].as_str()),
        (Some(true), Some(""))
    );
    next(&mut a).await;
    say(&mut b, json!({"type": "typing", "room_id": room})).await;
    assert_eq!(
        next(&mut a).await,
        json!({"type": "typing", "room_id": room, "user_id": bob.id})
    );
    next(&mut b).await;
    say(&mut b, json!({"type": "typing", "room_id": room})).await;
    say(&mut b, json!({"type": "ping"})).await;
    say(&mut a, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut a).await["type"],
        "pong",
        "a second typing within 3 s is not relayed"
    );
    assert_eq!(next(&mut b).await["type"], "pong");
    say(&mut b, json!({"type": "read", "room_id": room, "seq": 99})).await;
    assert_eq!(
        next(&mut b).await,
        json!({"type": "read_marker", "room_id": room, "seq": 1})
    );
}

async fn a_client_that_stops_reading_is_closed_and_others_keep_going(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let limits = Limits {
        queue: 16,
        write_stall: std::time::Duration::from_millis(500),
        ..generous()
    };
    let replica = cluster.replica(limits).await;
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut stuck = crate::harness::connect_small_window(&replica, &bob).await;
    subscribe(&mut stuck, &room, None).await;
    let mut healthy = connect(&replica, Some(&alice)).await;
    subscribe(&mut healthy, &room, None).await;
    let body = "y".repeat(2000);
    let mut sent = 0;
    while replica.sockets.open() == 2 && sent < 8000 {
        sent += 1;
        assert_eq!(
            send(&mut healthy, &room, &format!("c{sent}"), &body).await["type"],
            "ack"
        );
        for _ in 0..1 {
            assert_eq!(
                next(&mut healthy).await["seq"],
                sent,
                "the reading client gets everything"
            );
        }
    }
    assert_eq!(
        replica.sockets.open(),
        1,
        "the stuck client was closed after {sent} messages"
    );
}

/// A long multi-byte message (a 16-bit frame length, larger than a socket write may
/// take at once) reaches a real client whole, and the frame after it is intact.
async fn a_long_message_arrives_whole_and_what_follows_intact(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(generous()).await;
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut reader = connect(&replica, Some(&bob)).await;
    subscribe(&mut reader, &room, None).await;
    let mut writer = connect(&replica, Some(&alice)).await;
    let long = "Grüße, 世界! ".repeat(300);
    assert!(long.len() > 3 * 1024 && long.chars().count() <= 4000);
    for (client_id, body) in [("long", long.as_str()), ("short", "after it")] {
        let ack = send(&mut writer, &room, client_id, body).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let first = next(&mut reader).await;
    assert_eq!(
        (first["seq"].as_i64(), first["body"].as_str()),
        (Some(1), Some(long.as_str()))
    );
    let second = next(&mut reader).await;
    assert_eq!(
        (second["seq"].as_i64(), second["body"].as_str()),
        (Some(2), Some("after it"))
    );
}

macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod postgres { $(#[tokio::test] async fn $case() { super::$case(super::Backend::Postgres).await })* }
        mod sqlite { $(#[tokio::test] async fn $case() { super::$case(super::Backend::Sqlite).await })* }
    };
}

per_backend!(
    acks_follow_the_commit_and_subscribers_get_every_message_in_order,
    retries_are_acknowledged_but_never_stored_or_delivered_twice,
    resume_replays_what_was_missed_then_goes_live_without_a_seam,
    a_gap_larger_than_the_bound_is_flagged,
    replicas_deliver_each_others_messages_in_order,
    deleting_the_room_ends_its_subscriptions,
    edits_deletes_typing_and_read_markers,
    a_client_that_stops_reading_is_closed_and_others_keep_going,
    a_long_message_arrives_whole_and_what_follows_intact,
);
