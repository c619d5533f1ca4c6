//! Tests that capture spans run in a binary of their own: a tracing subscriber installed
//! while other tests of the same process run can miss callsites those registered first
//! (seen as a trace with no spans at all).

#[allow(dead_code)]
#[path = "../it/api.rs"]
mod api;
mod login;
#[allow(dead_code)]
#[path = "../it/server.rs"]
mod server;
