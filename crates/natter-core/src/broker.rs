//! Publish/subscribe between replicas: the interface every service fans out through, and
//! the in-memory implementation used in standalone mode.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// A broker failure.
#[derive(Debug, thiserror::Error)]
#[error("broker: {0}")]
pub struct BrokerError(pub String);

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// One published payload, in publish order per topic.
    Message(Bytes),
    /// The subscriber fell behind and `n` payloads were dropped; it must resynchronise
    /// from the store.
    Lagged(u64),
}

/// Topic-based publish/subscribe.
#[async_trait]
pub trait Broker: Send + Sync + std::fmt::Debug {
    /// Sends `payload` to every current subscriber of `topic`.
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BrokerError>;
    /// Receives what is published on `topic` from now on.
    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, Delivery>, BrokerError>;
}

/// A broker inside one process: one bounded broadcast channel per topic.
#[derive(Debug)]
pub struct MemoryBroker {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
    capacity: usize,
}

impl MemoryBroker {
    /// A broker whose subscribers may fall `capacity` payloads behind before lagging.
    pub fn new(capacity: usize) -> Self {
        Self {
            topics: Mutex::default(),
            capacity: capacity.max(1),
        }
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new(1024)
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BrokerError> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = topics.get(topic) else {
            return Ok(());
        };
        if sender.send(payload).is_err() {
            topics.remove(topic);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, Delivery>, BrokerError> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = topics
            .entry(topic.into())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe();
        let stream = BroadcastStream::new(receiver).map(|item| match item {
            Ok(payload) => Delivery::Message(payload),
            Err(BroadcastStreamRecvError::Lagged(n)) => Delivery::Lagged(n),
        });
        Ok(stream.boxed())
    }
}

/// Redis pub/sub: fan-out across replicas. Publishes share the key-value connection
/// pattern (one multiplexed connection); each subscription has a connection of its own.
#[derive(Clone)]
pub struct RedisBroker {
    client: redis::Client,
    publisher: redis::aio::ConnectionManager,
    timeout: Duration,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker").finish_non_exhaustive()
    }
}

impl RedisBroker {
    /// Connects to `url` (redis://…); every call is bounded by about twice `timeout`.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, BrokerError> {
        let client = crate::kv::redis_client(url).map_err(|e| BrokerError(e.to_string()))?;
        let publisher = crate::kv::managed(client.clone(), timeout)
            .await
            .map_err(|e| BrokerError(e.to_string()))?;
        Ok(Self {
            client,
            publisher,
            timeout,
        })
    }
}

#[async_trait]
impl Broker for RedisBroker {
    #[tracing::instrument(name = "redis PUBLISH", skip_all, fields(messaging.system = "redis"))]
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BrokerError> {
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(topic).arg(payload.as_ref());
        let publish = &publish;
        crate::kv::retrying(&self.publisher, |mut conn| async move {
            publish.query_async::<()>(&mut conn).await
        })
        .await
        .map_err(|e| BrokerError(e.to_string()))
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, Delivery>, BrokerError> {
        let subscribed = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(topic).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(self.timeout * 2, subscribed)
            .await
            .map_err(|_| BrokerError("subscribing timed out".into()))?
            .map_err(|e| BrokerError(e.to_string()))?;
        let stream = pubsub
            .into_on_message()
            .map(|message| Delivery::Message(Bytes::copy_from_slice(message.get_payload_bytes())));
        Ok(stream.boxed())
    }
}

/// The broker the config selects: Redis when `redis_url` is set (each call bounded by
/// `timeout`), else memory.
pub async fn connect(
    redis_url: Option<&str>,
    timeout: Duration,
) -> Result<std::sync::Arc<dyn Broker>, BrokerError> {
    Ok(match redis_url {
        Some(url) => std::sync::Arc::new(RedisBroker::connect(url, timeout).await?),
        None => std::sync::Arc::new(MemoryBroker::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_their_topic_in_order() {
        let broker = MemoryBroker::default();
        let mut room = broker.subscribe("room:1").await.unwrap();
        let mut other = broker.subscribe("room:2").await.unwrap();
        for i in 0..3u8 {
            broker
                .publish("room:1", Bytes::from(vec![i]))
                .await
                .unwrap();
        }
        broker
            .publish("room:2", Bytes::from_static(b"x"))
            .await
            .unwrap();
        for i in 0..3u8 {
            assert_eq!(
                room.next().await,
                Some(Delivery::Message(Bytes::from(vec![i])))
            );
        }
        assert_eq!(
            other.next().await,
            Some(Delivery::Message(Bytes::from_static(b"x")))
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let broker = MemoryBroker::new(2);
        let mut slow = broker.subscribe("t").await.unwrap();
        for i in 0..5u8 {
            broker.publish("t", Bytes::from(vec![i])).await.unwrap();
        }
        assert_eq!(slow.next().await, Some(Delivery::Lagged(3)));
        assert_eq!(
            slow.next().await,
            Some(Delivery::Message(Bytes::from(vec![3])))
        );
    }
}
