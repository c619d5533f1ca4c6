//! natter-auth integration tests: every scenario runs against the real server on
//! 127.0.0.1:0, over gRPC (PostgreSQL + Redis, as in cluster mode) and over JSON (SQLite
//! + memory, as in standalone mode).

mod api;
mod scenarios;
mod server;

/// Declares each scenario once per transport.
macro_rules! per_transport {
    ($($scenario:ident),* $(,)?) => {
        mod grpc {
            $(#[tokio::test] async fn $scenario() {
                super::scenarios::$scenario(super::server::Transport::Grpc).await
            })*
        }
        mod json {
            $(#[tokio::test] async fn $scenario() {
                super::scenarios::$scenario(super::server::Transport::Json).await
            })*
        }
    };
}

per_transport!(
    registration_rules_and_duplicates,
    login_by_username_or_email,
    login_failure_does_not_reveal_whether_the_user_exists,
    refresh_rotates_the_pair,
    register_can_open_a_session,
    refresh_token_reuse_revokes_the_whole_session,
    logout_revokes_access_and_refresh_tokens,
    expired_and_tampered_tokens_are_rejected,
    key_rotation_keeps_old_tokens_valid_until_expiry,
    login_is_rate_limited_per_username_and_per_ip,
    published_keys_verify_issued_tokens,
    parameter_change_rehashes_on_next_login,
);
