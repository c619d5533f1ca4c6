//! The server's end of a WebSocket: the HTTP/1.1 upgrade (RFC 6455 §4.2) and a socket
//! that writes long text messages as fragments of [`FRAGMENT`] bytes, so that
//! tungstenite's output buffer — which keeps the capacity of the largest frame it ever
//! held, for the socket's whole life — stays at one fragment on every idle connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use hyper::upgrade::OnUpgrade;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::{Bytes, Message};

/// Longest frame the server writes; a longer text message goes out in fragments.
pub const FRAGMENT: usize = 1024;

/// A valid upgrade request: the key to answer, whether the client offered the subprotocol,
/// and the connection hyper hands over once the 101 response is sent.
pub struct Upgrade {
    key: HeaderValue,
    protocol: Option<&'static str>,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Checks a request's upgrade headers; a bad one is refused with the reason.
    pub fn of(parts: &mut Parts, protocol: &'static str) -> Result<Self, Refusal> {
        let refuse = Refusal;
        let headers = &parts.headers;
        if parts.method != Method::GET {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "WebSocket upgrades use GET",
            ));
        }
        if !has_token(headers, header::CONNECTION, "upgrade") {
            let why = "the Connection header must include `upgrade`";
            return Err(refuse(StatusCode::BAD_REQUEST, why));
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            let why = "the Upgrade header must be `websocket`";
            return Err(refuse(StatusCode::BAD_REQUEST, why));
        }
        if !has_token(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            let why = "Sec-WebSocket-Version must be 13";
            return Err(refuse(StatusCode::BAD_REQUEST, why));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            let why = "Sec-WebSocket-Key is missing";
            return Err(refuse(StatusCode::BAD_REQUEST, why));
        };
        let offered = has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, protocol);
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            let why = "this connection cannot be upgraded";
            return Err(refuse(StatusCode::UPGRADE_REQUIRED, why));
        };
        Ok(Self {
            key,
            protocol: offered.then_some(protocol),
            on_upgrade,
        })
    }

    /// The 101 response that completes the handshake, and the connection it yields.
    pub fn accept(self) -> (Response, OnUpgrade) {
        let accept = derive_accept_key(self.key.as_bytes());
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = self.protocol {
            let protocol = HeaderValue::from_static(protocol);
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        (response, self.on_upgrade)
    }
}

/// Why an upgrade request was refused: its status and reason, as the response.
#[derive(Debug)]
pub struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

/// Does a comma-separated header (any of its lines) hold `token`, ignoring ASCII case?
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    let values = headers.get_all(name);
    let mut tokens = values
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','));
    tokens.any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// A server WebSocket whose text messages longer than [`FRAGMENT`] are written as a
/// text frame and continuation frames (clients reassemble them; RFC 6455 §5.4).
pub struct Wire<T> {
    inner: WebSocketStream<T>,
}

impl<T> Wire<T> {
    pub fn new(inner: WebSocketStream<T>) -> Self {
        Self { inner }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for Wire<T> {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Wire<T> {
    type Error = tungstenite::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready_unpin(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        match message {
            Message::Text(text) if text.len() > FRAGMENT => {
                for frame in fragments(text.into()) {
                    // tungstenite queues what it cannot write yet: each is accepted.
                    self.inner.start_send_unpin(Message::Frame(frame))?;
                }
                Ok(())
            }
            message => self.inner.start_send_unpin(message),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_flush_unpin(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_close_unpin(cx)
    }
}

/// A text message's bytes as frames of at most [`FRAGMENT`] bytes (not split on
/// character boundaries: only the reassembled message must be UTF-8).
fn fragments(text: Bytes) -> impl Iterator<Item = Frame> {
    let len = text.len();
    (0..len).step_by(FRAGMENT).map(move |start| {
        let end = (start + FRAGMENT).min(len);
        let opcode = match start {
            0 => OpCode::Data(Data::Text),
            _ => OpCode::Data(Data::Continue),
        };
        Frame::message(text.slice(start..end), opcode, end == len)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_is_a_text_frame_then_continuations_ending_in_a_final_one() {
        let text = Bytes::from("é".repeat(FRAGMENT + 10));
        let frames: Vec<Frame> = fragments(text.clone()).collect();
        assert_eq!(frames.len(), 3);
        let opcodes: Vec<OpCode> = frames.iter().map(|f| f.header().opcode).collect();
        let continued = OpCode::Data(Data::Continue);
        assert_eq!(opcodes, [OpCode::Data(Data::Text), continued, continued]);
        let finals: Vec<bool> = frames.iter().map(|f| f.header().is_final).collect();
        assert_eq!(finals, [false, false, true]);
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.payload().to_vec()).collect();
        assert_eq!(joined, text);
        assert!(frames.iter().all(|f| f.payload().len() <= FRAGMENT));
    }
}
