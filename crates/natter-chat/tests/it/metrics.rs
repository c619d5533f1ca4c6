//! `/metrics` of a chat replica: valid Prometheus text whose counters and gauges follow
//! connections, subscriptions, sends and deliveries.

use natter_chat::Limits;
use natter_core::store::Backend;

use crate::harness::{Cluster, connect, next, send, subscribe};

/// The value of the sample `name` (without labels), when present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Every line is a comment or `name[{labels}] value`.
fn assert_exposition(text: &str) {
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name in {line}"
        );
    }
}

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
