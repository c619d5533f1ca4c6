//! A Redis outage: local subscribers keep getting messages and sends keep being
//! acknowledged; when Redis is back, other replicas receive again, missed messages
//! first (filled from the store), in order.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use natter_chat::Limits;
use natter_core::store::Backend;

use crate::harness::{Cluster, Socket, connect, next, send, subscribe};

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (cargo xtask test checks for it)");
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, port }
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next `message` frame's sequence number, or `None` if none comes within `wait`.
async fn message_within(socket: &mut Socket, wait: Duration) -> Option<i64> {
    tokio::time::timeout(wait, next(socket))
        .await
        .ok()
        .and_then(|frame| frame["seq"].as_i64())
}

#[tokio::test]
async fn a_redis_outage_keeps_local_delivery_and_recovers_fan_out() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let cluster = Cluster::with_redis(Backend::Postgres, Some(&url)).await;
    let limits = Limits {
        sends_per_sec: 1000.0,
        send_burst: 1000.0,
        ..Limits::default()
    };
    let (one, two) = (cluster.replica(limits).await, cluster.replica(limits).await);
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut remote = connect(&two, Some(&bob)).await;
    subscribe(&mut remote, &room, None).await;
    let mut local = connect(&one, Some(&alice)).await;
    subscribe(&mut local, &room, None).await;

    assert_eq!(send(&mut local, &room, "c1", "before").await["seq"], 1);
    assert_eq!(next(&mut local).await["seq"], 1);
    assert_eq!(next(&mut remote).await["seq"], 1);

    let port = redis.stop();
    let ack = send(&mut local, &room, "c2", "during").await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_i64()),
        (Some("ack"), Some(2)),
        "{ack}"
    );
    assert_eq!(
        next(&mut local).await["seq"],
        2,
        "local subscribers still get messages"
    );

    let _redis = Redis::start(port);
    let mut received = Vec::new();
    for attempt in 3..40 {
        send(&mut local, &room, &format!("c{attempt}"), "after").await;
        next(&mut local).await;
        while let Some(seq) = message_within(&mut remote, Duration::from_millis(300)).await {
            received.push(seq);
        }
        if !received.is_empty() {
            break;
        }
    }
    assert!(
        !received.is_empty(),
        "fan-out recovered after Redis came back"
    );
    let expected: Vec<i64> = (2..=*received.last().unwrap()).collect();
    assert_eq!(
        received, expected,
        "the message sent during the outage first, then the rest, in order"
    );
}
