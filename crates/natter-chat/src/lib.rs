//! The chat service: one WebSocket per client at `/ws` (docs/protocol.md), messages stored
//! before they are acknowledged, delivered in order once per subscription, resumed after
//! reconnects, and fanned out across replicas through the broker.

mod connection;
mod error;
mod grpc;
mod hub;
mod listen;
mod local;
mod metrics;
mod presence;
pub mod protocol;
mod reads;
mod relay;
mod service;
mod trace;
mod wire;
mod ws;

pub use error::ChatError;
pub use grpc::{ChatGrpc, grpc_service};
pub use hub::{Event, Hub};
pub use presence::{Announcement, Presence};
pub use relay::PRESENCE_TOPIC;
pub use service::{Chat, Limits, REPLAY_LIMIT};
pub use ws::{Sockets, routes};
