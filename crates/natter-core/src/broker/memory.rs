//! The broker inside one process (standalone mode): each subscriber, of one topic or of a
//! set, has one bounded queue, and a publish puts the payload in the queue of every
//! subscriber of its topic. A topic costs its subscribers' handles, not a buffer: one
//! broadcast channel per topic kept ~57 KiB of slots for every room and every user's
//! event stream a replica listened to.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::{Broker, BrokerError, Delivery, TopicStream, Topics};
use crate::queue::{Policy, Queue};

/// Subscribers by topic, with the topic's name to queue their payloads under (found in
/// the same lookup as the subscribers).
type Subscribers = Arc<Mutex<HashMap<Arc<str>, (Arc<str>, Vec<Arc<TopicQueue>>)>>>;

/// One subscriber's undelivered payloads, of all its topics.
type TopicQueue = Queue<Lagging>;

/// A broker inside one process.
#[derive(Debug)]
pub struct MemoryBroker {
    topics: Subscribers,
    capacity: usize,
}

/// A subscriber's policy: a payload that does not fit is dropped and counted against its
/// topic, which delivers nothing more until the receiver has taken the count (its
/// `Lagged` marker, queued in the payload's place).
#[derive(Debug, Default)]
struct Lagging {
    /// Topics whose payloads are being dropped, with how many so far.
    dropped: HashMap<Arc<str>, u64>,
}

#[derive(Debug)]
enum Item {
    Payload(Bytes),
    /// Payloads of the topic were dropped from here on, until this is taken.
    Lagged,
}

impl Policy for Lagging {
    type Item = (Arc<str>, Item);
    type Offer = (Arc<str>, Bytes);
    type Taken = (Arc<str>, Delivery);
    const KEPT_SLOTS: usize = 64;

    fn offer(
        &mut self,
        items: &mut VecDeque<Self::Item>,
        capacity: usize,
        offer: Self::Offer,
    ) -> bool {
        let (topic, payload) = offer;
        if let Some(dropped) = self.dropped.get_mut(&topic) {
            *dropped += 1;
            return false;
        }
        if items.len() >= capacity {
            self.dropped.insert(topic.clone(), 1);
            items.push_back((topic, Item::Lagged));
        } else {
            items.push_back((topic, Item::Payload(payload)));
        }
        true
    }

    fn take(&mut self, items: &mut VecDeque<Self::Item>) -> Option<Self::Taken> {
        let (topic, item) = items.pop_front()?;
        let delivery = match item {
            Item::Payload(payload) => Delivery::Message(payload),
            Item::Lagged => Delivery::Lagged(self.dropped.remove(&topic).unwrap_or(0)),
        };
        Some((topic, delivery))
    }
}

impl MemoryBroker {
    /// A broker whose subscribers may fall `capacity` payloads behind (over all their
    /// topics) before lagging.
    pub fn new(capacity: usize) -> Self {
        Self {
            topics: Subscribers::default(),
            capacity: capacity.max(1),
        }
    }

    /// A new queue, receiving `topic` if one is given.
    fn queue(&self, topic: Option<&str>) -> Arc<TopicQueue> {
        let queue = Arc::new(Queue::new(self.capacity));
        if let Some(topic) = topic {
            enter(&self.topics, topic, &queue);
        }
        queue
    }
}

impl Default for MemoryBroker {
    /// Subscribers may fall 4,096 payloads behind: a queue grows only as far as it is
    /// filled.
    fn default() -> Self {
        Self::new(4096)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `queue` receives `topic` from now on.
fn enter(topics: &Subscribers, topic: &str, queue: &Arc<TopicQueue>) {
    let mut topics = lock(topics);
    match topics.get_mut(topic) {
        Some((_, queues)) if queues.iter().any(|q| Arc::ptr_eq(q, queue)) => {}
        Some((_, queues)) => queues.push(queue.clone()),
        None => {
            let name = Arc::<str>::from(topic);
            topics.insert(name.clone(), (name, vec![queue.clone()]));
        }
    }
}

/// `queue` no longer receives `topic`.
fn leave(topics: &Subscribers, topic: &str, queue: &Arc<TopicQueue>) {
    let mut topics = lock(topics);
    if let Some((_, queues)) = topics.get_mut(topic) {
        queues.retain(|q| !Arc::ptr_eq(q, queue));
        if queues.is_empty() {
            topics.remove(topic);
        }
    }
}

/// The subscriber's end of a queue: gone with its stream, and then refused by publishers.
struct Receiving(Arc<TopicQueue>);

impl Drop for Receiving {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What `queue` receives, as a stream.
fn stream(queue: Arc<TopicQueue>) -> TopicStream {
    futures::stream::unfold(Receiving(queue), |receiving| async move {
        let next = receiving.0.take().await;
        Some((next, receiving))
    })
    .boxed()
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BrokerError> {
        let mut topics = lock(&self.topics);
        let Some((name, queues)) = topics.get_mut(topic) else {
            return Ok(());
        };
        queues.retain(|queue| queue.offer((name.clone(), payload.clone())));
        if queues.is_empty() {
            topics.remove(topic);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, Delivery>, BrokerError> {
        let deliveries = stream(self.queue(Some(topic)));
        Ok(deliveries.map(|(_, delivery)| delivery).boxed())
    }

    async fn subscribe_set(&self) -> Result<(Box<dyn Topics>, TopicStream), BrokerError> {
        let queue = self.queue(None);
        let topics = MemoryTopics {
            topics: self.topics.clone(),
            queue: queue.clone(),
        };
        Ok((Box::new(topics), stream(queue)))
    }
}

/// A topic set of the memory broker: its topics deliver into one queue.
#[derive(Debug)]
struct MemoryTopics {
    topics: Subscribers,
    queue: Arc<TopicQueue>,
}

#[async_trait]
impl Topics for MemoryTopics {
    async fn add(&self, topic: &str) -> Result<(), BrokerError> {
        if self.queue.is_closed() {
            return Err(BrokerError("topic set closed".into()));
        }
        enter(&self.topics, topic, &self.queue);
        Ok(())
    }

    async fn remove(&self, topic: &str) -> Result<(), BrokerError> {
        leave(&self.topics, topic, &self.queue);
        Ok(())
    }
}

impl Drop for MemoryTopics {
    /// The set's topics stop delivering into its queue (its stream may outlive it).
    fn drop(&mut self) {
        lock(&self.topics).retain(|_, (_, queues)| {
            queues.retain(|q| !Arc::ptr_eq(q, &self.queue));
            !queues.is_empty()
        });
    }
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
            let payload = Bytes::from(vec![i]);
            broker.publish("room:1", payload).await.unwrap();
        }
        let x = Bytes::from_static(b"x");
        broker.publish("room:2", x.clone()).await.unwrap();
        for i in 0..3u8 {
            let expected = Delivery::Message(Bytes::from(vec![i]));
            assert_eq!(room.next().await, Some(expected));
        }
        assert_eq!(other.next().await, Some(Delivery::Message(x)));
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
        let delivery = |t: &'static str| (Arc::from(t), Delivery::Message(Bytes::from(t)));
        assert_eq!(set.next().await.unwrap(), delivery("a"));
        assert_eq!(set.next().await.unwrap(), delivery("b"));
        topics.remove("a").await.unwrap();
        broker.publish("a", Bytes::from("a")).await.unwrap();
        broker.publish("b", Bytes::from("b")).await.unwrap();
        assert_eq!(set.next().await.unwrap(), delivery("b"), "a was removed");
    }

    #[tokio::test]
    async fn a_slow_subscriber_gets_what_fitted_then_how_many_it_missed() {
        let broker = MemoryBroker::new(2);
        let (topics, mut set) = broker.subscribe_set().await.unwrap();
        topics.add("t").await.unwrap();
        topics.add("u").await.unwrap();
        for i in 0..5u8 {
            broker.publish("t", Bytes::from(vec![i])).await.unwrap();
        }
        broker.publish("u", Bytes::from_static(b"u")).await.unwrap();
        let message = |t: &str, i: u8| (Arc::from(t), Delivery::Message(Bytes::from(vec![i])));
        assert_eq!(set.next().await.unwrap(), message("t", 0));
        assert_eq!(set.next().await.unwrap(), message("t", 1));
        assert_eq!(
            set.next().await.unwrap(),
            (Arc::from("t"), Delivery::Lagged(3))
        );
        assert_eq!(
            set.next().await.unwrap(),
            (Arc::from("u"), Delivery::Lagged(1))
        );
        broker.publish("t", Bytes::from(vec![5])).await.unwrap();
        assert_eq!(
            set.next().await.unwrap(),
            message("t", 5),
            "t delivers again"
        );
        assert_eq!(lock(&broker.topics).len(), 2);
    }

    #[tokio::test]
    async fn a_gone_subscriber_is_forgotten_and_its_topics_cost_nothing() {
        let broker = MemoryBroker::default();
        let single = broker.subscribe("a").await.unwrap();
        let (topics, set) = broker.subscribe_set().await.unwrap();
        topics.add("a").await.unwrap();
        topics.add("b").await.unwrap();
        drop((single, set));
        broker.publish("a", Bytes::from("a")).await.unwrap();
        assert_eq!(
            lock(&broker.topics).len(),
            1,
            "only b is left, until published"
        );
        assert!(topics.add("c").await.is_err(), "the set's stream is gone");
        drop(topics);
        assert!(lock(&broker.topics).is_empty());
    }
}
