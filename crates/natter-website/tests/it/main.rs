//! natter-website integration tests against the real HTTP server on 127.0.0.1:0, with the
//! auth service issuing real tokens: the authorization matrix, history paging while
//! messages arrive, validation and cascades, on PostgreSQL and on SQLite.

mod harness;
mod matrix;
mod openapi;
mod rooms;

/// Declares each case once per backend.
macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $case() {
                super::$case(natter_core::store::Backend::Postgres).await
            })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $case() {
                super::$case(natter_core::store::Backend::Sqlite).await
            })*
        }
    };
}
pub(crate) use per_backend;
