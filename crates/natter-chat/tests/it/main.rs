//! natter-chat integration tests: real WebSocket clients (tokio-tungstenite) against the
//! service on 127.0.0.1:0, with PostgreSQL + Redis (two replicas where it matters) and
//! SQLite + memory.

mod delivery;
mod fanout;
mod faults;
mod grpc;
mod harness;
mod metrics;
mod notify;
mod outage;
mod presence;
mod session;
