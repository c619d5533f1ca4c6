//! Shared plumbing for every Natter service: config, telemetry, secrets, the store, the
//! broker, ephemeral key-value state and access-token verification.

pub mod broker;
pub mod coalesce;
pub mod config;
pub mod cookie;
pub mod email;
pub mod events;
pub mod grpc;
pub mod http;
pub mod kv;
pub mod markdown;
pub mod memberships;
pub mod messaging;
pub mod outbox;
pub mod policy;
pub mod push;
pub mod queue;
pub mod secret;
pub mod secrets;
pub mod shutdown;
pub mod store;
pub mod sweep;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod token;
pub mod vault;
