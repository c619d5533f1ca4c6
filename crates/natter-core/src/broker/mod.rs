//! Publish/subscribe between replicas: the interface every service fans out through, and
//! the in-memory implementation used in standalone mode. Besides single topics, a
//! subscriber may hold a changing set of topics on one connection ([`Topics`]): a chat
//! replica listens to the rooms it has subscribers in, and to no other.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

mod memory;

pub use memory::MemoryBroker;

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
    /// An empty set of topics, and the stream of what its topics receive (with the
    /// topic); the stream ends when the connection behind it is lost.
    async fn subscribe_set(&self) -> Result<(Box<dyn Topics>, TopicStream), BrokerError>;
}

/// What the topics of a set receive: the topic and the delivery.
pub type TopicStream = BoxStream<'static, (Arc<str>, Delivery)>;

/// A changing set of topics received on one stream.
#[async_trait]
pub trait Topics: Send + Sync + std::fmt::Debug {
    /// Starts receiving `topic`: resolves once the broker delivers what is published on
    /// it from then on.
    async fn add(&self, topic: &str) -> Result<(), BrokerError>;
    /// Stops receiving `topic`.
    async fn remove(&self, topic: &str) -> Result<(), BrokerError>;
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
        let pubsub = bounded(self.timeout, "subscribing", subscribed).await?;
        let stream = pubsub
            .into_on_message()
            .map(|message| Delivery::Message(Bytes::copy_from_slice(message.get_payload_bytes())));
        Ok(stream.boxed())
    }

    async fn subscribe_set(&self) -> Result<(Box<dyn Topics>, TopicStream), BrokerError> {
        let pubsub = bounded(self.timeout, "subscribing", self.client.get_async_pubsub()).await?;
        let (sink, stream) = pubsub.split();
        let stream = stream.map(|message| {
            let topic = Arc::from(message.get_channel_name());
            let payload = Bytes::copy_from_slice(message.get_payload_bytes());
            (topic, Delivery::Message(payload))
        });
        let topics = RedisTopics {
            sink,
            timeout: self.timeout,
        };
        Ok((Box::new(topics), stream.boxed()))
    }
}

/// A topic set on one Redis pub/sub connection (SUBSCRIBE and UNSUBSCRIBE as it changes).
struct RedisTopics {
    sink: redis::aio::PubSubSink,
    timeout: Duration,
}

impl std::fmt::Debug for RedisTopics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTopics").finish_non_exhaustive()
    }
}

#[async_trait]
impl Topics for RedisTopics {
    async fn add(&self, topic: &str) -> Result<(), BrokerError> {
        let mut sink = self.sink.clone();
        bounded(self.timeout, "subscribing", sink.subscribe(topic)).await
    }

    async fn remove(&self, topic: &str) -> Result<(), BrokerError> {
        let mut sink = self.sink.clone();
        bounded(self.timeout, "unsubscribing", sink.unsubscribe(topic)).await
    }
}

/// `call` (`what`, for the error), given twice `timeout`: the bound of every Redis broker
/// call.
async fn bounded<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, BrokerError> {
    tokio::time::timeout(timeout * 2, call)
        .await
        .map_err(|_| BrokerError(format!("{what} timed out")))?
        .map_err(|e| BrokerError(e.to_string()))
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
