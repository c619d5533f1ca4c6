//! One send is one trace: a client's `traceparent` on a `send` frame, the store insert
//! (no access read: the membership is remembered), the broker publish, and on the other replica the relay and the socket write all end
//! up in the same trace (exported to an in-process OTLP collector).

use natter_testkit::telemetry::Traces;
use serde_json::json;

use crate::harness::{Pair, next, say};

// A current-thread runtime: the captured tracing applies to this thread, which runs every
// task of both replicas.
#[tokio::test]
async fn a_send_and_its_deliveries_on_two_replicas_form_one_trace() {
    let mut traces = Traces::capture().await;
    // Bound whole: the replicas stop when it is dropped.
    let pair = Pair::new().await;
    let (room, mut a, mut b) = (pair.room.clone(), pair.a, pair.b);

    let trace = "5e1f0c0ffee0000000000000000c0de1";
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    say(&mut a, json!({"type": "send", "room_id": room, "client_id": "t-1", "body": "traced", "traceparent": traceparent, "tracestate": "natter=t1"})).await;
    while next(&mut b).await["type"] != "message" {}
    let spans = traces.trace(trace, "chat deliver", 2).await;
    let names: Vec<&str> = spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        !names.contains(&"db.room_with_role"),
        "the sender's membership is remembered (read when it authenticated): {names:?}"
    );
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
    let relay = spans.iter().find(|s| s.name == "chat relay").unwrap();
    assert_eq!(
        relay.trace_state, "natter=t1",
        "tracestate crosses the broker"
    );
    let send = spans.iter().find(|s| s.name == "chat send").unwrap();
    assert_eq!(
        send.parent_span_id, "00f067aa0ba902b7",
        "the client's span is the parent"
    );
}
