//! The chat service's one error type, and its one mapping to each edge: the protocol's
//! `error` frame codes (docs/protocol.md) and gRPC statuses. Every variant is matched
//! exhaustively, so a new one that is not mapped does not compile.

use natter_core::messaging::MessageError;
use natter_core::store::StoreError;
use tonic::Status;

/// Why a request on a connection (or a gRPC call) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Not valid JSON of a known frame.
    #[error("{0}")]
    BadFrame(String),
    /// Only `auth` and `ping` before authenticating.
    #[error("send an auth frame first")]
    Unauthenticated,
    /// More subscriptions than a connection may hold.
    #[error("unsubscribe from a room first")]
    TooManySubscriptions,
    /// Too many sends or edits per second.
    #[error("too many requests, slow down")]
    RateLimited,
    /// The messages' owner refused (validation, authorization, storage).
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl From<StoreError> for ChatError {
    fn from(error: StoreError) -> Self {
        Self::Message(error.into())
    }
}

impl ChatError {
    /// The stable code of its `error` frame.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadFrame(_) => "bad_frame",
            Self::Unauthenticated => "unauthenticated",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::RateLimited => "rate_limited",
            Self::Message(error) => match error {
                MessageError::Invalid { code, .. } => code,
                MessageError::RoomNotFound
                | MessageError::MessageNotFound
                | MessageError::NoSuchMessage => "not_found",
                MessageError::Unmet { code, .. } => code,
                MessageError::RateLimited(_) => "rate_limited",
                MessageError::Forbidden(_) => "forbidden",
                MessageError::Unavailable(_) => "unavailable",
                MessageError::Internal(_) => "internal",
            },
        }
    }

    /// Logs a failure of the service's own (storage) with its cause; each edge calls
    /// this once when it answers.
    pub fn log(&self) {
        match self {
            Self::Message(MessageError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "chat storage unavailable")
            }
            Self::Message(MessageError::Internal(cause)) => {
                tracing::error!(error = %cause, "chat internal error")
            }
            _ => {}
        }
    }
}

impl From<ChatError> for Status {
    fn from(error: ChatError) -> Self {
        error.log();
        let message = error.to_string();
        match error {
            ChatError::BadFrame(_) => Status::invalid_argument(message),
            ChatError::Unauthenticated => Status::unauthenticated(message),
            ChatError::TooManySubscriptions | ChatError::RateLimited => {
                Status::resource_exhausted(message)
            }
            ChatError::Message(error) => match error {
                MessageError::Invalid { .. } => Status::invalid_argument(message),
                MessageError::RoomNotFound
                | MessageError::MessageNotFound
                | MessageError::NoSuchMessage => Status::not_found(message),
                MessageError::Unmet { .. } => Status::failed_precondition(message),
                MessageError::RateLimited(_) => Status::resource_exhausted(message),
                MessageError::Forbidden(_) => Status::permission_denied(message),
                MessageError::Unavailable(_) => Status::unavailable(message),
                MessageError::Internal(_) => Status::internal(message),
            },
        }
    }
}
