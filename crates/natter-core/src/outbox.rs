//! The outbox: an ordered, bounded queue of payloads for the broker, published by one
//! task that retries through outages, so that a slow or absent broker never delays the
//! caller (an acknowledgement, an HTTP answer) and an outage delays fan-out instead of
//! losing it. A posted message that does not fit is remembered as its room's head and
//! announced once the broker takes payloads again, so other replicas fetch it from the
//! store.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry::Context;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::broker::Broker;
use crate::events::{self, Kind, pb};
use crate::shutdown::Shutdown;

/// Payloads waiting for the broker before new ones are dropped.
pub const CAPACITY: usize = 8192;
/// Longest pause between two attempts to publish a payload the broker refused.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What an outbox publishes through, and the gauges it keeps.
#[derive(Debug, Clone)]
pub struct OutboxParts {
    /// The broker.
    pub broker: Arc<dyn Broker>,
    /// The publishing node, the origin of the heads it announces.
    pub origin: Arc<str>,
    /// Stops retrying on shutdown.
    pub shutdown: Shutdown,
    /// Payloads queued and not yet published.
    pub depth: Gauge,
    /// Payloads dropped because the queue was full.
    pub dropped: Counter,
}

impl OutboxParts {
    /// Parts for a node of `service` (its origin is `service` and a random id), with
    /// gauges of its own.
    pub fn new(broker: Arc<dyn Broker>, service: &str, shutdown: Shutdown) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            broker,
            origin: Arc::from(format!("{service}-{id}")),
            shutdown,
            depth: Gauge::default(),
            dropped: Counter::default(),
        }
    }
}

/// The sending end. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox {
    sender: mpsc::Sender<Outgoing>,
    missed: Missed,
    depth: Gauge,
    dropped: Counter,
    origin: Arc<str>,
}

/// A payload for the broker: topic, bytes, and the sampled trace it belongs to.
type Outgoing = (Cow<'static, str>, Bytes, Option<Context>);

/// The newest sequence number per room whose message could not be queued.
#[derive(Debug, Clone, Default)]
struct Missed(Arc<Mutex<HashMap<Arc<str>, i64>>>);

impl Missed {
    fn record(&self, room: &str, seq: i64) {
        let mut missed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let newest = missed.entry(Arc::from(room)).or_insert(seq);
        *newest = (*newest).max(seq);
    }

    fn take(&self) -> HashMap<Arc<str>, i64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Outbox {
    /// An outbox whose publishing task runs until every sender is gone.
    pub fn start(parts: OutboxParts) -> Self {
        let (sender, pending) = mpsc::channel(CAPACITY);
        let outbox = Self {
            sender,
            missed: Missed::default(),
            depth: parts.depth.clone(),
            dropped: parts.dropped.clone(),
            origin: parts.origin.clone(),
        };
        tokio::spawn(forward(parts, pending, outbox.missed.clone()));
        outbox
    }

    /// The node this outbox publishes for.
    pub fn origin(&self) -> &Arc<str> {
        &self.origin
    }

    /// Queues an event of `kind` in `room` from this node (with the trace it belongs to)
    /// on the room's topic. A posted message that does not fit becomes its room's
    /// head, announced later.
    pub fn publish(&self, room: &str, kind: Kind, trace: Option<&Context>) {
        let mut event = events::event(&self.origin, room, kind);
        if let Some((parent, state)) = trace.and_then(crate::telemetry::w3c_of) {
            event.traceparent = parent;
            event.tracestate = state;
        }
        let posted = match &event.kind {
            Some(Kind::Posted(message)) => Some(message.seq),
            _ => None,
        };
        let topic = Cow::Owned(events::room_topic(room));
        let queued = self.queue(topic, events::encode(&event), trace.cloned());
        if let (false, Some(seq)) = (queued, posted) {
            self.missed.record(&event.room_id, seq);
        }
    }

    /// Queues an event of `kind` in `room` on `user`'s own topic
    /// ([`events::user_topic`]): for the replicas serving that user's event stream.
    pub fn publish_for(&self, user: &str, room: &str, kind: Kind) {
        let event = events::event(&self.origin, room, kind);
        let topic = Cow::Owned(events::user_topic(user));
        self.queue(topic, events::encode(&event), None);
    }

    /// Queues a payload for `topic`; false when the queue was full and it was dropped.
    pub fn enqueue(&self, topic: &'static str, payload: Bytes, trace: Option<Context>) -> bool {
        self.queue(Cow::Borrowed(topic), payload, trace)
    }

    fn queue(&self, topic: Cow<'static, str>, payload: Bytes, trace: Option<Context>) -> bool {
        self.depth.inc();
        if self.sender.try_send((topic, payload, trace)).is_err() {
            self.depth.dec();
            self.dropped.inc();
            tracing::debug!("broker outbox full; the room's head is announced later");
            return false;
        }
        true
    }
}

/// Publishes queued payloads in order, each until it is published or shutdown comes;
/// after each, the heads of rooms whose messages were dropped. Logs once when the
/// broker fails and once when it works again.
async fn forward(parts: OutboxParts, mut pending: mpsc::Receiver<Outgoing>, missed: Missed) {
    let mut failing = false;
    while let Some((topic, payload, trace)) = pending.recv().await {
        parts.depth.dec();
        if !publish_until_sent(&parts, &topic, &payload, trace, &mut failing).await {
            return;
        }
        for (room, seq) in missed.take() {
            let head = events::event(&parts.origin, &room, Kind::Head(pb::Head { seq }));
            let (topic, payload) = (events::room_topic(&room), events::encode(&head));
            if !publish_until_sent(&parts, &topic, &payload, None, &mut failing).await {
                return;
            }
        }
    }
}

/// Publishes one payload, retrying with backoff; false when shutdown came first.
async fn publish_until_sent(
    parts: &OutboxParts,
    topic: &str,
    payload: &Bytes,
    trace: Option<Context>,
    failing: &mut bool,
) -> bool {
    let mut pause = Duration::from_millis(100);
    loop {
        let publish = parts.broker.publish(topic, payload.clone());
        let published = match &trace {
            Some(context) => {
                let span = tracing::info_span!(
                    "publish",
                    otel.name = "chat publish",
                    otel.kind = "producer",
                    messaging.system = "redis",
                    messaging.operation.type = "publish",
                );
                let _ = span.set_parent(context.clone());
                publish.instrument(span).await
            }
            None => publish.await,
        };
        match published {
            Ok(()) => {
                if std::mem::take(failing) {
                    tracing::info!("publishing to the broker again");
                }
                return true;
            }
            Err(error) => {
                if !std::mem::replace(failing, true) {
                    tracing::warn!(%error, "broker unavailable: other replicas get the events when it returns");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = parts.shutdown.clone().wait() => return false,
        }
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}
