//! Publish/subscribe between replicas: the interface every service fans out through, and
//! the in-memory implementation used in standalone mode. Besides single topics, a
//! subscriber may hold a changing set of topics on one connection ([`Topics`]): a chat
//! replica listens to the rooms it has subscribers in, and to no other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, mpsc, oneshot};
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

type Channels = Arc<Mutex<HashMap<String, broadcast::Sender<Bytes>>>>;

/// A broker inside one process: one bounded broadcast channel per topic.
#[derive(Debug)]
pub struct MemoryBroker {
    topics: Channels,
    capacity: usize,
}

impl MemoryBroker {
    /// A broker whose subscribers may fall `capacity` payloads behind before lagging.
    pub fn new(capacity: usize) -> Self {
        Self {
            topics: Channels::default(),
            capacity: capacity.max(1),
        }
    }
}

/// `topic`'s deliveries from now on.
fn receive(topics: &Channels, capacity: usize, topic: &str) -> BoxStream<'static, Delivery> {
    let mut topics = topics.lock().unwrap_or_else(|e| e.into_inner());
    let receiver = topics
        .entry(topic.into())
        .or_insert_with(|| broadcast::channel(capacity).0)
        .subscribe();
    let stream = BroadcastStream::new(receiver).map(|item| match item {
        Ok(payload) => Delivery::Message(payload),
        Err(BroadcastStreamRecvError::Lagged(n)) => Delivery::Lagged(n),
    });
    stream.boxed()
}

/// A topic set of the memory broker: one task merges the set's channels.
#[derive(Debug)]
struct MemoryTopics {
    topics: Channels,
    capacity: usize,
    control: mpsc::UnboundedSender<Change>,
}

/// A change to a memory topic set, acknowledged once in effect.
enum Change {
    Add(Arc<str>, BoxStream<'static, Delivery>, oneshot::Sender<()>),
    Remove(Arc<str>, oneshot::Sender<()>),
}

#[async_trait]
impl Topics for MemoryTopics {
    async fn add(&self, topic: &str) -> Result<(), BrokerError> {
        let stream = receive(&self.topics, self.capacity, topic);
        let (done, applied) = oneshot::channel();
        let _ = self
            .control
            .send(Change::Add(Arc::from(topic), stream, done));
        applied
            .await
            .map_err(|_| BrokerError("topic set closed".into()))
    }

    async fn remove(&self, topic: &str) -> Result<(), BrokerError> {
        let (done, applied) = oneshot::channel();
        let _ = self.control.send(Change::Remove(Arc::from(topic), done));
        applied
            .await
            .map_err(|_| BrokerError("topic set closed".into()))
    }
}

/// Applies changes to the set and forwards its deliveries until the stream is dropped.
async fn merge(
    mut control: mpsc::UnboundedReceiver<Change>,
    out: mpsc::Sender<(Arc<str>, Delivery)>,
) {
    let mut set = tokio_stream::StreamMap::new();
    loop {
        tokio::select! {
            change = control.recv() => match change {
                Some(Change::Add(topic, stream, done)) => {
                    set.insert(topic, stream);
                    let _ = done.send(());
                }
                Some(Change::Remove(topic, done)) => {
                    set.remove(&topic);
                    let _ = done.send(());
                }
                None => return,
            },
            Some(delivery) = set.next(), if !set.is_empty() => {
                if out.send(delivery).await.is_err() {
                    return;
                }
            }
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
        Ok(receive(&self.topics, self.capacity, topic))
    }

    async fn subscribe_set(&self) -> Result<(Box<dyn Topics>, TopicStream), BrokerError> {
        let (control, changes) = mpsc::unbounded_channel();
        let (out, deliveries) = mpsc::channel(self.capacity);
        tokio::spawn(merge(changes, out));
        let topics = MemoryTopics {
            topics: self.topics.clone(),
            capacity: self.capacity,
            control,
        };
        let stream = tokio_stream::wrappers::ReceiverStream::new(deliveries);
        Ok((Box::new(topics), stream.boxed()))
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

    async fn subscribe_set(&self) -> Result<(Box<dyn Topics>, TopicStream), BrokerError> {
        let pubsub = tokio::time::timeout(self.timeout * 2, self.client.get_async_pubsub())
            .await
            .map_err(|_| BrokerError("subscribing timed out".into()))?
            .map_err(|e| BrokerError(e.to_string()))?;
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
        tokio::time::timeout(self.timeout * 2, sink.subscribe(topic))
            .await
            .map_err(|_| BrokerError("subscribing timed out".into()))?
            .map_err(|e| BrokerError(e.to_string()))
    }

    async fn remove(&self, topic: &str) -> Result<(), BrokerError> {
        let mut sink = self.sink.clone();
        tokio::time::timeout(self.timeout * 2, sink.unsubscribe(topic))
            .await
            .map_err(|_| BrokerError("unsubscribing timed out".into()))?
            .map_err(|e| BrokerError(e.to_string()))
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
    async fn a_topic_set_receives_what_its_topics_carry_while_they_are_in_it() {
        let broker = MemoryBroker::default();
        let (topics, mut set) = broker.subscribe_set().await.unwrap();
        topics.add("a").await.unwrap();
        topics.add("b").await.unwrap();
        for topic in ["a", "b", "c"] {
            broker.publish(topic, Bytes::from(topic)).await.unwrap();
        }
        let mut seen = vec![set.next().await.unwrap(), set.next().await.unwrap()];
        seen.sort_by(|x, y| x.0.cmp(&y.0));
        let delivery = |t: &'static str| (Arc::from(t), Delivery::Message(Bytes::from(t)));
        assert_eq!(seen, [delivery("a"), delivery("b")]);
        topics.remove("a").await.unwrap();
        broker.publish("a", Bytes::from("a")).await.unwrap();
        broker.publish("b", Bytes::from("b")).await.unwrap();
        assert_eq!(set.next().await.unwrap(), delivery("b"), "a was removed");
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
