//! The chat service's Prometheus metrics: connections, subscriptions, messages in and out,
//! slow consumers, the outbox to other replicas. No user or room ids as labels.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Counters and gauges one chat service updates. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ChatMetrics {
    pub(crate) delivery_latency: Histogram,
    pub(crate) connections: Gauge,
    pub(crate) subscriptions: Gauge,
    pub(crate) received: Counter,
    pub(crate) duplicates: Counter,
    pub(crate) delivered: Counter,
    pub(crate) slow_consumers: Counter,
    pub(crate) closed: Counter,
    pub(crate) outbox_depth: Gauge,
    pub(crate) outbox_dropped: Counter,
    pub(crate) broker_lag: Histogram,
    pub(crate) relay_missed: Counter,
    pub(crate) relay_events: Counter,
    pub(crate) listened_rooms: Gauge,
}

impl Default for ChatMetrics {
    fn default() -> Self {
        Self {
            // 0.5 ms … ~16 s.
            delivery_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            connections: Gauge::default(),
            subscriptions: Gauge::default(),
            received: Counter::default(),
            duplicates: Counter::default(),
            delivered: Counter::default(),
            slow_consumers: Counter::default(),
            closed: Counter::default(),
            outbox_depth: Gauge::default(),
            outbox_dropped: Counter::default(),
            broker_lag: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            relay_missed: Counter::default(),
            relay_events: Counter::default(),
            listened_rooms: Gauge::default(),
        }
    }
}

impl ChatMetrics {
    /// Records a live delivery of a message stored at `created_ms`.
    pub(crate) fn observe_delivery(&self, created_ms: i64) {
        let age_ms = natter_core::time::now_ms()
            .saturating_sub(created_ms)
            .max(0);
        self.delivery_latency.observe(age_ms as f64 / 1000.0);
    }

    /// Records the arrival through the broker of another replica's message stored at
    /// `created_ms`.
    pub(crate) fn observe_relay(&self, created_ms: i64) {
        let age_ms = natter_core::time::now_ms()
            .saturating_sub(created_ms)
            .max(0);
        self.broker_lag.observe(age_ms as f64 / 1000.0);
    }

    /// Registers every metric under `natter_chat_`.
    pub fn register(&self, registry: &mut Registry) {
        let chat = registry.sub_registry_with_prefix("chat");
        chat.register(
            "connections",
            "Open WebSocket connections",
            self.connections.clone(),
        );
        chat.register(
            "subscriptions",
            "Live room subscriptions on this replica",
            self.subscriptions.clone(),
        );
        chat.register(
            "messages_received",
            "Sends stored and acknowledged",
            self.received.clone(),
        );
        chat.register(
            "duplicate_sends",
            "Sends acknowledged as duplicates of an earlier try (same client_id)",
            self.duplicates.clone(),
        );
        chat.register(
            "messages_delivered",
            "Message frames written to subscribers",
            self.delivered.clone(),
        );
        chat.register(
            "slow_consumer_disconnects",
            "Connections closed with 4008 because the client did not keep up",
            self.slow_consumers.clone(),
        );
        chat.register(
            "connections_closed",
            "WebSocket connections that ended",
            self.closed.clone(),
        );
        chat.register(
            "delivery_latency_seconds",
            "From a message's storing (just before commit) to its frame written to a subscriber",
            self.delivery_latency.clone(),
        );
        chat.register(
            "outbox_depth",
            "Frames waiting to be published to the other replicas",
            self.outbox_depth.clone(),
        );
        chat.register(
            "outbox_dropped",
            "Frames not published because the outbox was full (remote subscribers catch up from the store)",
            self.outbox_dropped.clone(),
        );
        chat.register(
            "broker_lag_seconds",
            "From another replica storing a message to its arrival here through the broker",
            self.broker_lag.clone(),
        );
        chat.register(
            "relay_missed",
            "Broker messages this replica's relay fell too far behind to receive",
            self.relay_missed.clone(),
        );
        chat.register(
            "relay_events",
            "Room events of other replicas and services received from the broker (only of the rooms this replica listens to)",
            self.relay_events.clone(),
        );
        chat.register(
            "listened_rooms",
            "Rooms whose events this replica receives from the broker (it has subscribers in them)",
            self.listened_rooms.clone(),
        );
    }
}
