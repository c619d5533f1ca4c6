//! Errors of the auth domain and their mapping to HTTP bodies and gRPC statuses.

use std::time::Duration;

use http::StatusCode;
use natter_core::http::{ApiError, RETRY_UNAVAILABLE_SECS};
use natter_core::kv::KvError;
use natter_core::store::StoreError;
use natter_core::token::TokenError;

/// What can go wrong in the auth service. Messages are safe to show to clients.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A field failed validation.
    #[error("{message}")]
    Invalid {
        /// Stable code, e.g. `invalid_username`.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// The username is registered already.
    #[error("username is already taken")]
    UsernameTaken,
    /// The email is registered already.
    #[error("email is already registered")]
    EmailTaken,
    /// Wrong login or password; deliberately does not say which.
    #[error("invalid login or password")]
    InvalidCredentials,
    /// Too many login attempts.
    #[error("too many login attempts, retry in {} s", retry_after.as_secs().max(1))]
    RateLimited {
        /// When a new attempt may succeed.
        retry_after: Duration,
    },
    /// The refresh token is unknown, expired or revoked.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The refresh token was used before; its session has been revoked.
    #[error("refresh token reused; the session has been revoked")]
    RefreshTokenReused,
    /// The access token was refused.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// A dependency (database, Redis) is down: retry later.
    #[error("temporarily unavailable, retry")]
    Unavailable(String),
    /// A dependency failed.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error.is_unavailable() {
            true => Self::Unavailable(error.to_string()),
            false => Self::Internal(error.to_string()),
        }
    }
}

impl From<KvError> for AuthError {
    fn from(error: KvError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl AuthError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            Self::Unavailable(_) | Self::Token(TokenError::Unavailable(_)) => {
                Some(RETRY_UNAVAILABLE_SECS)
            }
            _ => None,
        }
    }

    fn log_if_internal(&self) {
        match self {
            Self::Internal(cause) => tracing::error!(error = %cause, "auth internal error"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "dependency unavailable"),
            Self::Token(TokenError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "deny-list unavailable")
            }
            _ => {}
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let error = match error {
            AuthError::Token(token) => return token.into(),
            other => other,
        };
        error.log_if_internal();
        let (status, code) = match &error {
            AuthError::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            AuthError::UsernameTaken => (StatusCode::CONFLICT, "username_taken"),
            AuthError::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
            AuthError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            AuthError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AuthError::InvalidRefreshToken => (StatusCode::UNAUTHORIZED, "invalid_refresh_token"),
            AuthError::RefreshTokenReused => (StatusCode::UNAUTHORIZED, "refresh_token_reused"),
            AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AuthError::Token(_) | AuthError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut api = ApiError::new(status, code, error.to_string());
        api.retry_after = error.retry_after_secs();
        api
    }
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        error.log_if_internal();
        let message = error.to_string();
        let mut status = match &error {
            AuthError::Invalid { .. } => tonic::Status::invalid_argument(message),
            AuthError::UsernameTaken | AuthError::EmailTaken => {
                tonic::Status::already_exists(message)
            }
            AuthError::RateLimited { .. } => tonic::Status::resource_exhausted(message),
            AuthError::Token(TokenError::Unavailable(_)) | AuthError::Unavailable(_) => {
                tonic::Status::unavailable(message)
            }
            AuthError::Internal(_) => tonic::Status::internal(message),
            AuthError::InvalidCredentials
            | AuthError::InvalidRefreshToken
            | AuthError::RefreshTokenReused
            | AuthError::Token(
                TokenError::Invalid
                | TokenError::UnknownKey
                | TokenError::Expired
                | TokenError::Revoked,
            ) => tonic::Status::unauthenticated(message),
        };
        if let Some(seconds) = error.retry_after_secs() {
            status
                .metadata_mut()
                .insert("retry-after", seconds.to_string().parse().expect("digits"));
        }
        status
    }
}
