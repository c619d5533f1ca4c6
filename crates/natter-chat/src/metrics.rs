//! The chat service's Prometheus metrics: connections, subscriptions, messages in and out,
//! slow consumers, the outbox to other replicas. No user or room ids as labels.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters and gauges one chat service updates. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ChatMetrics {
    pub(crate) connections: Gauge,
    pub(crate) subscriptions: Gauge,
    pub(crate) received: Counter,
    pub(crate) duplicates: Counter,
    pub(crate) delivered: Counter,
    pub(crate) slow_consumers: Counter,
    pub(crate) closed: Counter,
}

impl ChatMetrics {
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
    }
}
