//! `/metrics` of a chat replica: valid Prometheus text whose counters and gauges follow
//! connections, subscriptions, sends and deliveries.

use natter_chat::Limits;
use natter_core::store::Backend;

use natter_testkit::telemetry::{assert_exposition, sample};

use crate::harness::{Cluster, Pair, connect, next, send, subscribe};

#[tokio::test]
async fn counters_follow_connections_sends_and_deliveries() {
    let cluster = Cluster::new(Backend::Sqlite).await;
    let replica = cluster.replica(Limits::default()).await;
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut a = connect(&replica, Some(&alice)).await;
    let mut b = connect(&replica, Some(&bob)).await;
    subscribe(&mut a, &room, None).await;
    subscribe(&mut b, &room, None).await;
    let text = replica.metrics.encode();
    assert_exposition(&text);
    assert_eq!(sample(&text, "natter_chat_connections"), Some(2.0));
    assert_eq!(sample(&text, "natter_chat_subscriptions"), Some(2.0));

    send(&mut a, &room, "m-1", "hello").await;
    while next(&mut b).await["type"] != "message" {}
    let retry = send(&mut a, &room, "m-1", "hello").await;
    assert_eq!(retry["duplicate"], true, "{retry}");
    let text = replica.metrics.encode();
    assert_eq!(
        sample(&text, "natter_chat_messages_received_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "natter_chat_duplicate_sends_total"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "natter_chat_messages_delivered_total"),
        Some(2.0),
        "to alice and bob"
    );
    assert_eq!(
        sample(&text, "natter_chat_delivery_latency_seconds_count"),
        Some(2.0)
    );

    drop(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sample(&replica.metrics.encode(), "natter_chat_connections") != Some(1.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed connection is counted out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = replica.metrics.encode();
    assert_eq!(sample(&text, "natter_chat_subscriptions"), Some(1.0));
    assert_eq!(
        sample(&text, "natter_chat_connections_closed_total"),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_receiving_replica_measures_broker_lag() {
    // Bound whole: the replicas stop when it is dropped.
    let pair = Pair::new().await;
    let (one, two, room, mut a, mut b) = (&pair.one, &pair.two, &pair.room, pair.a, pair.b);
    send(&mut a, room, "m-1", "across").await;
    while next(&mut b).await["type"] != "message" {}
    let (sent, received) = (one.metrics.encode(), two.metrics.encode());
    assert_exposition(&sent);
    assert_eq!(
        sample(&received, "natter_chat_broker_lag_seconds_count"),
        Some(1.0),
        "{received}"
    );
    assert_eq!(
        sample(&sent, "natter_chat_broker_lag_seconds_count"),
        Some(0.0),
        "a replica skips its own messages"
    );
    assert_eq!(
        sample(&received, "natter_chat_relay_missed_total"),
        Some(0.0)
    );
    for text in [&sent, &received] {
        assert_eq!(sample(text, "natter_chat_outbox_dropped_total"), Some(0.0));
        assert_eq!(sample(text, "natter_chat_queued_events"), Some(0.0));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sample(&one.metrics.encode(), "natter_chat_outbox_depth") != Some(0.0) {
        assert!(std::time::Instant::now() < deadline, "the outbox drains");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
