//! Errors of the website domain and their HTTP form.

use http::StatusCode;
use natter_core::http::ApiError;
use natter_core::messaging::MessageError;
use natter_core::store::StoreError;

use crate::policy::Denial;

/// What can go wrong in the website service. Messages are safe to show to clients.
#[derive(Debug, thiserror::Error)]
pub enum WebsiteError {
    /// Not signed in.
    #[error("sign in first")]
    Unauthenticated,
    /// Signed in but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such room or user, or the caller may not know of it.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field failed validation.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// The name or membership already exists.
    #[error("{0}")]
    Conflict(&'static str),
    /// The body names a user the room's state rules out (no such user, not a member):
    /// HTTP 409 with `code`, gRPC `FAILED_PRECONDITION`.
    #[error("{message}")]
    Unmet {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: &'static str,
    },
    /// Too many writes; retry after the given seconds.
    #[error("too many requests, retry in {0} s")]
    RateLimited(u64),
    /// A dependency (database, Redis) is down: retry later.
    #[error("temporarily unavailable, retry")]
    Unavailable(String),
    /// A dependency failed.
    #[error("internal error")]
    Internal(String),
}

impl WebsiteError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// The refusal for a policy denial about a room.
    pub(crate) fn denied(denial: Denial) -> Self {
        match denial {
            Denial::Unauthenticated => Self::Unauthenticated,
            Denial::Forbidden => Self::Forbidden("not allowed in this room"),
            Denial::NotFound => Self::NotFound("room"),
        }
    }
}

impl From<MessageError> for WebsiteError {
    fn from(error: MessageError) -> Self {
        match error {
            MessageError::Invalid { code, message } => Self::invalid(code, message),
            MessageError::RoomNotFound => Self::NotFound("room"),
            MessageError::MessageNotFound | MessageError::NoSuchMessage => {
                Self::NotFound("message")
            }
            MessageError::Unmet { code, message } => Self::Unmet { code, message },
            MessageError::RateLimited(seconds) => Self::RateLimited(seconds),
            MessageError::Forbidden(message) => Self::Forbidden(message),
            MessageError::Unavailable(cause) => Self::Unavailable(cause),
            MessageError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<StoreError> for WebsiteError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidCursor => Self::invalid("invalid_cursor", "invalid cursor"),
            other if other.is_unavailable() => Self::Unavailable(other.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<WebsiteError> for ApiError {
    fn from(error: WebsiteError) -> Self {
        let (status, code) = match &error {
            WebsiteError::Unauthenticated => (StatusCode::UNAUTHORIZED, "missing_token"),
            WebsiteError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            WebsiteError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            WebsiteError::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            WebsiteError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            WebsiteError::Unmet { code, .. } => (StatusCode::CONFLICT, *code),
            WebsiteError::RateLimited(seconds) => {
                let mut api = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    error.to_string(),
                );
                api.retry_after = Some(*seconds);
                return api;
            }
            WebsiteError::Unavailable(cause) => return ApiError::unavailable(cause),
            WebsiteError::Internal(cause) => return ApiError::internal(cause),
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<WebsiteError> for tonic::Status {
    fn from(error: WebsiteError) -> Self {
        let message = error.to_string();
        match error {
            WebsiteError::Unauthenticated => Self::unauthenticated(message),
            WebsiteError::Forbidden(_) => Self::permission_denied(message),
            WebsiteError::NotFound(_) => Self::not_found(message),
            WebsiteError::Invalid { .. } => Self::invalid_argument(message),
            WebsiteError::Conflict(_) => Self::already_exists(message),
            WebsiteError::Unmet { .. } => Self::failed_precondition(message),
            WebsiteError::RateLimited(seconds) => {
                let mut status = Self::resource_exhausted(message);
                let value = seconds.to_string().parse().expect("digits");
                status.metadata_mut().insert("retry-after", value);
                status
            }
            WebsiteError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "dependency unavailable");
                Self::unavailable(message)
            }
            WebsiteError::Internal(cause) => {
                tracing::error!(error = %cause, "website internal error");
                Self::internal(message)
            }
        }
    }
}
