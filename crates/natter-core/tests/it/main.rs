//! natter-core integration tests: the store conformance suite (run against PostgreSQL
//! and SQLite) and the Redis key-value store.

mod kv;
mod store;
