//! The Redis key-value store behaves like the in-memory one: flags expire, counters count
//! per window.

use std::time::Duration;

use natter_testkit::redis_kv;

fn unique(prefix: &str) -> String {
    format!("test:{prefix}:{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn redis_flags_are_set_and_found() {
    let kv = redis_kv().await;
    let key = unique("flag");
    assert!(!kv.any_exists(std::slice::from_ref(&key)).await.unwrap());
    kv.set_flag(&key, Duration::from_secs(30)).await.unwrap();
    assert!(kv.any_exists(&[unique("other"), key]).await.unwrap());
    kv.ping().await.unwrap();
}

#[tokio::test]
async fn redis_answers_for_each_key_in_its_order() {
    let kv = redis_kv().await;
    let (set, unset) = (unique("set"), unique("unset"));
    kv.set_flag(&set, Duration::from_secs(30)).await.unwrap();
    let keys = [unset.clone(), set.clone(), unset, set];
    let found = kv.exist_each(&keys).await.unwrap();
    assert_eq!(found, [false, true, false, true]);
    assert!(kv.exist_each(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn redis_flags_expire() {
    let kv = redis_kv().await;
    let key = unique("short");
    kv.set_flag(&key, Duration::from_millis(1)).await.unwrap();
    // Redis expires keys on its own clock: poll it for up to two seconds.
    let mut gone = false;
    for _ in 0..400 {
        if !kv.any_exists(std::slice::from_ref(&key)).await.unwrap() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(gone, "a 1 ms flag must expire");
}

#[tokio::test]
async fn redis_counter_counts_within_its_window() {
    let kv = redis_kv().await;
    let key = unique("counter");
    let window = Duration::from_secs(60);
    let first = kv.hit(&key, window).await.unwrap();
    let second = kv.hit(&key, window).await.unwrap();
    assert_eq!((first.count, second.count), (1, 2));
    assert!(second.resets_in <= window && second.resets_in > Duration::from_secs(50));
}

#[tokio::test]
async fn redis_broker_delivers_in_publish_order_across_connections() {
    use futures::StreamExt;
    use natter_core::broker::{Broker, Delivery, RedisBroker};
    let url = natter_testkit::redis_url();
    let publisher = RedisBroker::connect(&url, natter_core::kv::REDIS_TIMEOUT)
        .await
        .unwrap();
    let subscriber = RedisBroker::connect(&url, natter_core::kv::REDIS_TIMEOUT)
        .await
        .unwrap();
    let topic = unique("topic");
    let mut stream = subscriber.subscribe(&topic).await.unwrap();
    for i in 0..20u8 {
        publisher
            .publish(&topic, bytes::Bytes::from(vec![i]))
            .await
            .unwrap();
    }
    for i in 0..20u8 {
        assert_eq!(
            stream.next().await,
            Some(Delivery::Message(bytes::Bytes::from(vec![i])))
        );
    }
}

#[tokio::test]
async fn redis_calls_fail_while_the_line_is_cut_and_the_first_one_after_works() {
    use bytes::Bytes;
    use natter_core::broker::{Broker, RedisBroker};
    use natter_core::kv::{Kv, REDIS_TIMEOUT, RedisKv};
    let redis = natter_testkit::redis_url();
    let target = redis.trim_start_matches("redis://").trim_end_matches('/');
    let proxy = natter_testkit::Proxy::start(target).await;
    let url = format!("redis://{}", proxy.addr);
    let kv = RedisKv::connect(&url, REDIS_TIMEOUT).await.unwrap();
    let broker = RedisBroker::connect(&url, REDIS_TIMEOUT).await.unwrap();
    let key = unique("cut");
    kv.set_flag(&key, Duration::from_secs(30)).await.unwrap();
    broker.publish("t", Bytes::from_static(b"x")).await.unwrap();

    proxy.set_open(false);
    assert!(kv.any_exists(std::slice::from_ref(&key)).await.is_err());
    assert!(broker.publish("t", Bytes::from_static(b"x")).await.is_err());
    proxy.set_open(true);
    assert!(
        kv.any_exists(std::slice::from_ref(&key)).await.unwrap(),
        "the first call after the outage is answered"
    );
    broker
        .publish("t", Bytes::from_static(b"x"))
        .await
        .expect("the first publish after the outage goes out");
}
