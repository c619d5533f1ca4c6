//! natter-core integration tests: the store conformance suite (run against PostgreSQL
//! and SQLite), the Redis key-value store and the Vault secret source.

/// Declares each case once per backend, so a failure names both.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $case() { super::$case(natter_core::store::Backend::Postgres).await })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(natter_core::store::Backend::Sqlite).await })*
        }
    };
}

/// A registered user's id.
async fn user(store: &natter_core::store::Store, name: &str) -> String {
    let new = natter_core::store::NewUser {
        username: name,
        email: None,
        password_hash: "$argon2id$x",
    };
    store.create_user(new).await.unwrap().id
}

mod credentials;
mod dynamic;
mod email;
mod heard;
mod kv;
mod notify;
mod push;
mod reactions;
mod remembered;
mod rich;
mod rooms;
mod sending;
mod store;
mod threads;
mod vault;
