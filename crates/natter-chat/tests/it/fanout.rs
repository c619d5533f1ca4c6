//! Fan-out that scales out: a replica receives from the broker the events of the rooms it
//! has subscribers in and no others, starts receiving a room's events before its first
//! subscriber reads the store (nothing committed in between is missed), and stops when
//! the last one leaves.

use natter_chat::Limits;
use natter_core::store::Backend;
use natter_testkit::telemetry::sample;

use crate::harness::{Cluster, Replica, connect, next, send, subscribe};

/// Room events of other replicas this replica received.
fn relayed(replica: &Replica) -> f64 {
    let text = replica.metrics.encode();
    sample(&text, "natter_chat_relay_events_total").unwrap_or(0.0)
}

fn listened(replica: &Replica) -> f64 {
    sample(&replica.metrics.encode(), "natter_chat_listened_rooms").unwrap_or(0.0)
}

async fn replicas_receive_only_the_rooms_they_serve(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (one, two) = (
        cluster.replica(Limits::default()).await,
        cluster.replica(Limits::default()).await,
    );
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let (here, there) = (
        cluster.room(&alice, &[&bob]).await,
        cluster.room(&bob, &[&alice]).await,
    );
    let mut on_one = connect(&one, Some(&alice)).await;
    let mut on_two = connect(&two, Some(&bob)).await;
    subscribe(&mut on_one, &here, None).await;
    subscribe(&mut on_two, &there, None).await;
    for i in 0..5 {
        send(&mut on_one, &here, &format!("h{i}"), "here").await;
        send(&mut on_two, &there, &format!("t{i}"), "there").await;
    }
    // A message into the other replica's room after them: once it arrived, anything
    // relayed before it would have been counted.
    let frame = serde_json::json!({"type": "subscribe", "room_id": here});
    crate::harness::say(&mut on_two, frame).await;
    // (Its own messages in the other room may still be on their way.)
    while next(&mut on_two).await["type"] != "subscribed" {}
    assert_eq!(listened(&two), 2.0);
    send(&mut on_one, &here, "late", "to both").await;
    loop {
        let frame = next(&mut on_two).await;
        if frame["type"] == "message" && frame["client_id"] == "late" {
            break;
        }
    }
    assert_eq!(
        relayed(&two),
        1.0,
        "only the message sent after it listened"
    );
    assert_eq!(relayed(&one), 0.0, "nobody on one is in the other room");
    say_unsubscribe(&mut on_two, &here).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while listened(&two) != 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "still listening");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    send(&mut on_one, &here, "after", "to one only").await;
    send(&mut on_two, &there, "ping", "round trip").await;
    assert_eq!(
        relayed(&two),
        1.0,
        "no longer listening to the room it left"
    );
}

async fn say_unsubscribe(socket: &mut crate::harness::Socket, room: &str) {
    let frame = serde_json::json!({"type": "unsubscribe", "room_id": room});
    crate::harness::say(socket, frame).await;
    while next(socket).await["type"] != "unsubscribed" {}
}

mod postgres {
    #[tokio::test]
    async fn replicas_receive_only_the_rooms_they_serve() {
        super::replicas_receive_only_the_rooms_they_serve(super::Backend::Postgres).await
    }
}

mod sqlite {
    #[tokio::test]
    async fn replicas_receive_only_the_rooms_they_serve() {
        super::replicas_receive_only_the_rooms_they_serve(super::Backend::Sqlite).await
    }
}
