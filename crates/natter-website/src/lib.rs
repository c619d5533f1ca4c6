//! The website service: rooms (public, group, direct), members and roles, profiles,
//! message history and search; the management plane behind the JSON API.

mod error;
mod grpc;
mod http;
mod limit;
mod service;
mod validate;

pub use natter_core::policy;

pub use error::WebsiteError;
pub use grpc::{WebsiteGrpc, grpc_service};
pub use http::{OPENAPI_PATH, openapi, routes};
pub use limit::WriteLimiter;
pub use natter_core::messaging::HistoryQuery;
pub use service::{UserSettings, Website};
