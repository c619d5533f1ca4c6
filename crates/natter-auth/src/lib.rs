//! The auth service: accounts, argon2id passwords, Ed25519 access tokens, rotating
//! refresh tokens, logout, login rate limits; served over gRPC and JSON.

mod assemble;
mod error;
mod grpc;
mod hashpool;
mod http;
mod password;
mod ratelimit;
mod service;
mod validate;

pub use assemble::{Handles, assemble};
pub use error::AuthError;
pub use grpc::{AuthGrpc, grpc_service};
pub use http::{openapi, routes};
pub use password::{Passwords, Verified};
pub use ratelimit::LoginLimiter;
pub use service::{Auth, AuthParts, Client, Identity, LoginOutcome, Registered};
pub use validate::{normalize_username, validate_email, validate_password};
