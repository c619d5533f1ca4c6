//! One send is one trace: a client's `traceparent` on a `send` frame, the store insert,
//! the broker publish, and on the other replica the relay and the socket write all end
//! up in the same trace (exported to an in-process OTLP collector).

use std::time::Duration;

use fake_opentelemetry_collector::{FakeCollectorServer, setup_tracer_provider};
use natter_chat::Limits;
use natter_core::store::Backend;
use opentelemetry::trace::TracerProvider;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

use crate::harness::{Cluster, connect, next, say, subscribe};

// A current-thread runtime: the tracing subscriber set below applies to this thread,
// which runs every task of both replicas.
#[tokio::test]
async fn a_send_and_its_deliveries_on_two_replicas_form_one_trace() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let provider = setup_tracer_provider(&collector).await;
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("natter-test"));
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(layer),
    );

    let cluster = Cluster::new(Backend::Postgres).await;
    let one = cluster.replica(Limits::default()).await;
    let two = cluster.replica(Limits::default()).await;
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut a = connect(&one, Some(&alice)).await;
    let mut b = connect(&two, Some(&bob)).await;
    subscribe(&mut a, &room, None).await;
    subscribe(&mut b, &room, None).await;

    let trace = "5e1f0c0ffee0000000000000000c0de1";
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    say(&mut a, json!({"type": "send", "room_id": room, "client_id": "t-1", "body": "traced", "traceparent": traceparent})).await;
    while next(&mut b).await["type"] != "message" {}
    tokio::time::sleep(Duration::from_millis(200)).await; // let the spans close
    // Flushing blocks its thread until the export is done: not on the runtime's one thread.
    let flushing = provider.clone();
    let _ = tokio::task::spawn_blocking(move || flushing.force_flush()).await;

    let spans = collector.exported_spans(1, Duration::from_secs(5)).await;
    let names: Vec<&str> = spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .map(|s| s.name.as_str())
        .collect();
    for expected in [
        "chat send",
        "db.post_message",
        "chat publish",
        "redis PUBLISH",
        "chat relay",
        "chat deliver",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from the trace: {names:?}"
        );
    }
    let deliveries = names.iter().filter(|n| **n == "chat deliver").count();
    assert_eq!(
        deliveries, 2,
        "one per subscriber, on each replica: {names:?}"
    );
    let send = spans.iter().find(|s| s.name == "chat send").unwrap();
    assert_eq!(
        send.parent_span_id, "00f067aa0ba902b7",
        "the client's span is the parent"
    );
}
