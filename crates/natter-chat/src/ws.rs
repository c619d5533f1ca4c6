//! The `/ws` route: upgrades (`wire`) with the protocol's size limits and subprotocol,
//! runs one connection task per socket, and lets shutdown wait for every socket to close.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::Chat;
use crate::connection;
use crate::wire::{Upgrade, Wire};

/// Counts open sockets so shutdown can wait for them to close.
#[derive(Debug, Clone, Default)]
pub struct Sockets(Arc<Count>);

/// The sockets open and the waiters for the last to close: behind one pointer, held
/// twice by every socket's task.
#[derive(Debug, Default)]
struct Count {
    open: AtomicUsize,
    closed: Notify,
}

/// One open socket, counted until dropped.
struct Open(Arc<Count>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.closed.notify_waiters();
        }
    }
}

impl Sockets {
    /// Open sockets now.
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Acquire)
    }

    /// Waits until every socket has closed, or `limit` has passed.
    pub async fn drained(&self, limit: Duration) {
        let wait = async {
            loop {
                let closed = self.0.closed.notified();
                if self.open() == 0 {
                    return;
                }
                closed.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }

    fn track(&self) -> Open {
        self.0.open.fetch_add(1, Ordering::AcqRel);
        Open(self.0.clone())
    }
}

/// The WebSocket route at `/ws`; `sockets` counts the connections it serves.
pub fn routes(chat: Chat, sockets: Sockets) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .with_state((chat, sockets))
}

async fn upgrade(State((chat, sockets)): State<(Chat, Sockets)>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let (accepted, on_upgrade) = match Upgrade::of(&mut parts, "natter.v1") {
        Ok(upgrade) => upgrade.accept(),
        Err(refusal) => return refusal.into_response(),
    };
    // The task keeps what it captures for the socket's life: no more than it needs.
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => return tracing::debug!(%error, "WebSocket upgrade failed"),
        };
        let open = sockets.track();
        let io = TokioIo::new(upgraded);
        let config = config(chat.limits.max_frame_bytes);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        connection::serve(chat, Wire::new(socket)).await;
        drop(open);
    });
    accepted
}

/// The socket's settings: the protocol's frame limit, and small buffers.
fn config(limit: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
        // tungstenite's defaults (128 KiB read buffer) would cost more per idle socket
        // than a chat needs; frames are small. The buffer grows to the largest frame read
        // (tungstenite reserves a frame's length on top of what it holds), which for most
        // connections is the auth frame: starting at 1 KiB it ended at 2 KiB.
        .read_buffer_size(256)
        // Only control frames go through tungstenite's output buffer (`Wire` writes text
        // frames itself): written at once.
        .write_buffer_size(0)
}
