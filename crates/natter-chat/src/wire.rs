//! The server's end of a WebSocket: the HTTP/1.1 upgrade (RFC 6455 §4.2) and a socket
//! that writes text frames straight from the shared frame bytes. tungstenite copies each
//! frame into a per-socket output buffer that keeps the capacity of the largest frame it
//! ever held for the socket's life (a 100-name presence list: ~4 KiB on every idle
//! socket of the room); here frames' headers and bytes go out together, the frames
//! queued since the last flush in one write (copied together when small, else vectored).

mod readable;

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use hyper::upgrade::OnUpgrade;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::{Bytes, Message};

use readable::Readable;

/// A valid upgrade request: the key to answer, whether the client offered the subprotocol,
/// and the connection hyper hands over once the 101 response is sent.
#[derive(Debug)]
pub struct Upgrade {
    key: HeaderValue,
    protocol: Option<&'static str>,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Checks a request's upgrade headers; a bad one is refused with the reason.
    pub fn of(parts: &mut Parts, protocol: &'static str) -> Result<Self, Refusal> {
        let headers = &parts.headers;
        if parts.method != Method::GET {
            let why = "WebSocket upgrades use GET";
            return Err(Refusal(StatusCode::METHOD_NOT_ALLOWED, why));
        }
        let required = [
            (
                header::CONNECTION,
                "upgrade",
                "the Connection header must include `upgrade`",
            ),
            (
                header::UPGRADE,
                "websocket",
                "the Upgrade header must be `websocket`",
            ),
            (
                header::SEC_WEBSOCKET_VERSION,
                "13",
                "Sec-WebSocket-Version must be 13",
            ),
        ];
        if let Some((.., why)) = required
            .into_iter()
            .find(|(h, t, _)| !has_token(headers, h, t))
        {
            return Err(Refusal(StatusCode::BAD_REQUEST, why));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            let why = "Sec-WebSocket-Key is missing";
            return Err(Refusal(StatusCode::BAD_REQUEST, why));
        };
        let offered = has_token(headers, &header::SEC_WEBSOCKET_PROTOCOL, protocol);
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            let why = "this connection cannot be upgraded";
            return Err(Refusal(StatusCode::UPGRADE_REQUIRED, why));
        };
        Ok(Self {
            key,
            protocol: offered.then_some(protocol),
            on_upgrade,
        })
    }

    /// The 101 response that completes the handshake, and the connection it yields.
    pub fn accept(self) -> (Response, OnUpgrade) {
        let accept = HeaderValue::try_from(derive_accept_key(self.key.as_bytes()))
            .expect("base64 is a valid header value");
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
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
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    let values = headers.get_all(name);
    let mut tokens = values
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','));
    tokens.any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// A server WebSocket (tokio-tungstenite) whose text frames are written by it directly:
/// the header as tungstenite formats it, then the message's own bytes, in one vectored
/// write — nothing is copied and no output buffer is kept. Every other frame (ping,
/// pong, close) goes through tungstenite, which is flushed first so the order holds.
///
/// Frames sent without a flush (`feed`) wait, up to [`BATCH`] of them, and go out
/// together on the flush: the frames a subscription answers with, or the events a busy
/// connection takes in a row, cost one system call instead of one each.
pub struct Wire<T> {
    inner: WebSocketStream<T>,
    /// The oldest frame not yet written (most sockets hold one frame at a time).
    head: Option<Queued>,
    /// The frames behind it, in order; allocated only while several wait.
    behind: VecDeque<Queued>,
    /// Whether tungstenite may hold frames it has not written: a control frame sent
    /// through it, or the pong (or close reply) it queues on reading a ping (or close).
    unflushed: bool,
    /// Whether the socket may have something to read: a connection woken for a
    /// delivery polls every branch of its wait, the read among them.
    readable: Arc<Readable>,
}

/// Most frames waiting for a flush; the next send writes them out first.
const BATCH: usize = 16;

/// Text frames written in one vectored write: two slices (header, payload) each.
const SLICES: usize = 2 * BATCH;

/// Frames that fit this many bytes together are copied into one buffer on the stack and
/// written with `send`: Linux's `writev` of their slices costs more than copying a few
/// hundred bytes (its vectored path through the file layer: 96 samples against the bare
/// server's 15 for `sendto` per delivery step, docs/latency.md).
const COPIED: usize = 2048;

/// A frame waiting to be written.
enum Queued {
    /// A text frame, written here.
    Text(Outgoing),
    /// Any other frame, handed to tungstenite when the frames before it are written.
    Control(Message),
}

/// A text frame on its way out: header and payload, and how much of them is written.
struct Outgoing {
    header: [u8; MAX_HEADER],
    header_len: usize,
    payload: Bytes,
    written: usize,
}

/// A server frame's longest header: 2 bytes and a 64-bit length, no mask.
const MAX_HEADER: usize = 10;

impl Outgoing {
    fn text(payload: Bytes) -> Self {
        let header = FrameHeader {
            is_final: true,
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        };
        let mut bytes = [0; MAX_HEADER];
        let mut out = &mut bytes[..];
        let length = payload.len() as u64;
        header
            .format(length, &mut out)
            .expect("an unmasked header fits in ten bytes");
        let header_len = header.len(length);
        Self {
            header: bytes,
            header_len,
            payload,
            written: 0,
        }
    }

    /// What is left to write, as at most two slices.
    fn rest(&self) -> [IoSlice<'_>; 2] {
        let header = &self.header[..self.header_len];
        let (header, payload) = match self.written.checked_sub(header.len()) {
            None => (&header[self.written..], &self.payload[..]),
            Some(into_payload) => (&[][..], &self.payload[into_payload..]),
        };
        [IoSlice::new(header), IoSlice::new(payload)]
    }

    /// Bytes not yet written.
    fn left(&self) -> usize {
        self.header_len + self.payload.len() - self.written
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Wire<T> {
    pub fn new(inner: WebSocketStream<T>) -> Self {
        Self {
            inner,
            head: None,
            behind: VecDeque::new(),
            unflushed: false,
            readable: Readable::new(),
        }
    }

    /// Writes every waiting frame, in order, and whatever tungstenite holds, so that the
    /// next frame, whichever way it goes, follows them. Only a socket that sent or read a
    /// control frame flushes tungstenite: not once per delivery.
    fn poll_drained(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>> {
        loop {
            if self.unflushed {
                ready!(self.inner.poll_flush_unpin(cx))?;
                self.unflushed = false;
            }
            match &self.head {
                None => return Poll::Ready(Ok(())),
                Some(Queued::Text(_)) => ready!(self.poll_write_texts(cx))?,
                Some(Queued::Control(_)) => {
                    ready!(self.inner.poll_ready_unpin(cx))?;
                    let Some(Queued::Control(message)) = self.next_frame() else {
                        unreachable!("the head is a control frame");
                    };
                    self.unflushed = true;
                    self.inner.start_send_unpin(message)?;
                }
            }
        }
    }

    /// One write of the text frames at the head of the queue: copied together when they
    /// are small ([`COPIED`]), else vectored.
    fn poll_write_texts(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), tungstenite::Error>> {
        let mut slices = [IoSlice::new(&[]); SLICES];
        let texts = self.head.iter().chain(&self.behind).map_while(|q| match q {
            Queued::Text(outgoing) => Some(outgoing.rest()),
            Queued::Control(_) => None,
        });
        let mut used = 0;
        for (pair, rest) in slices.chunks_exact_mut(2).zip(texts) {
            pair.copy_from_slice(&rest);
            used += 2;
        }
        let slices = &slices[..used];
        let io = Pin::new(self.inner.get_mut());
        let mut written = if slices.iter().map(|s| s.len()).sum::<usize>() <= COPIED {
            let mut bytes = [0; COPIED];
            let mut end = 0;
            for slice in slices {
                bytes[end..end + slice.len()].copy_from_slice(slice);
                end += slice.len();
            }
            ready!(io.poll_write(cx, &bytes[..end]))?
        } else {
            ready!(io.poll_write_vectored(cx, slices))?
        };
        if written == 0 {
            let gone = std::io::Error::from(std::io::ErrorKind::WriteZero);
            return Poll::Ready(Err(gone.into()));
        }
        while let Some(Queued::Text(outgoing)) = &mut self.head
            && written > 0
        {
            let step = written.min(outgoing.left());
            outgoing.written += step;
            written -= step;
            if outgoing.left() == 0 {
                self.next_frame();
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes the head of the queue; the one behind it moves up. An emptied queue gives
    /// its allocation back (an idle socket holds none).
    fn next_frame(&mut self) -> Option<Queued> {
        let head = std::mem::replace(&mut self.head, self.behind.pop_front());
        if self.head.is_none() && self.behind.capacity() > 0 {
            self.behind = VecDeque::new();
        }
        head
    }

    /// Whether a frame's write has begun and not ended.
    fn partly_written(&self) -> bool {
        matches!(&self.head, Some(Queued::Text(outgoing)) if outgoing.written > 0)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for Wire<T> {
    type Item = Result<Message, tungstenite::Error>;

    /// Reading first finishes a frame partly written: tungstenite answers a ping while
    /// reading, and its pong must not land inside a frame. Frames not yet begun wait
    /// (a control frame may come between two frames, RFC 6455 §5.4): the replies to
    /// frames a client sent together then go out in one write. The read itself is polled
    /// only when the socket may have something ([`Readable`]).
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.partly_written()
            && let Err(error) = ready!(self.poll_drained(cx))
        {
            return Poll::Ready(Some(Err(error)));
        }
        let Self {
            inner, readable, ..
        } = &mut *self;
        let read = ready!(readable.poll(cx.waker(), |cx| inner.poll_next_unpin(cx)));
        if let Some(Ok(Message::Ping(_) | Message::Close(_))) = &read {
            self.unflushed = true;
        }
        Poll::Ready(read)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Sink<Message> for Wire<T> {
    type Error = tungstenite::Error;

    /// Ready while fewer than [`BATCH`] frames wait; otherwise once they are written.
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.behind.len() + 1 >= BATCH {
            ready!(self.poll_drained(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        let queued = match message {
            Message::Text(text) => Queued::Text(Outgoing::text(text.into())),
            message => Queued::Control(message),
        };
        match self.head {
            None => self.head = Some(queued),
            Some(_) => self.behind.push_back(queued),
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_drained(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        ready!(self.poll_drained(cx))?;
        self.inner.poll_close_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures::{FutureExt, SinkExt, StreamExt};
    use tungstenite::protocol::Role;

    use super::*;

    /// A client and a server `Wire` over an in-memory pipe of `capacity` bytes.
    async fn pair(
        capacity: usize,
    ) -> (
        WebSocketStream<tokio::io::DuplexStream>,
        Wire<tokio::io::DuplexStream>,
    ) {
        let (client, server) = tokio::io::duplex(capacity);
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        (client, Wire::new(server))
    }

    fn texts() -> Vec<String> {
        let long = "Grüße, 世界! ".repeat(2_000);
        let sizes = [
            "",
            "a",
            &"b".repeat(125),
            &"c".repeat(126),
            &"d".repeat(65_536),
        ];
        let mut texts: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
        texts.push(long);
        texts
    }

    #[tokio::test]
    async fn text_frames_of_every_length_class_arrive_whole_and_in_order_with_pings() {
        // 7-bit, 16-bit and 64-bit lengths; a pipe smaller than a frame forces partial
        // writes, resumed when the client reads: one frame at a time, and several
        // frames in one write (fed, then flushed together).
        for flushed_each in [true, false] {
            let (client, server) = pair(512).await;
            let heard = exchange(client, server, flushed_each).await;
            assert_eq!(heard, texts(), "flushed each: {flushed_each}");
        }
    }

    /// Sends [`texts`] with a ping after each (then closes), and returns the texts the
    /// client heard.
    async fn exchange(
        mut client: WebSocketStream<tokio::io::DuplexStream>,
        mut server: Wire<tokio::io::DuplexStream>,
        flushed_each: bool,
    ) -> Vec<String> {
        let sent = texts();
        let sending = async {
            for text in &sent {
                let frames = [
                    Message::text(text.clone()),
                    Message::Ping(Bytes::from_static(b"p")),
                ];
                for frame in frames {
                    match flushed_each {
                        true => server.send(frame).await.unwrap(),
                        false => server.feed(frame).await.unwrap(),
                    }
                }
            }
            server.close().await.unwrap();
        };
        let receiving = async {
            let mut heard = Vec::new();
            while let Some(message) = client.next().await {
                match message.unwrap() {
                    Message::Text(text) => heard.push(text.to_string()),
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Close(_) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            heard
        };
        let ((), heard) = tokio::join!(sending, receiving);
        heard
    }

    #[tokio::test]
    async fn small_frames_copied_together_arrive_whole_through_partial_writes() {
        // Ten frames of 102 bytes: copied into one buffer, through a pipe of 64 bytes.
        let (mut client, mut server) = pair(64).await;
        let sent: Vec<String> = (0..10).map(|n| n.to_string().repeat(100)).collect();
        assert!(sent.len() * 102 <= COPIED);
        let sending = async {
            for text in &sent {
                server.feed(Message::text(text.clone())).await.unwrap();
            }
            server.flush().await.unwrap();
        };
        let receiving = async {
            let mut heard = Vec::new();
            for _ in 0..sent.len() {
                heard.push(client.next().await.unwrap().unwrap().into_text().unwrap());
            }
            heard
        };
        let ((), heard) = tokio::join!(sending, receiving);
        assert_eq!(heard, sent);
    }

    #[tokio::test]
    async fn fed_frames_wait_for_the_flush_and_keep_their_order_around_control_frames() {
        let (mut client, mut server) = pair(1 << 16).await;
        server.feed(Message::text("one")).await.unwrap();
        server
            .feed(Message::Ping(Bytes::from_static(b"between")))
            .await
            .unwrap();
        server.feed(Message::text("two")).await.unwrap();
        assert!(
            futures::poll!(client.next()).is_pending(),
            "nothing written yet"
        );
        server.flush().await.unwrap();
        let mut heard_in_order = Vec::new();
        for _ in 0..3 {
            heard_in_order.push(client.next().await.unwrap().unwrap());
        }
        let expected = [
            Message::text("one"),
            Message::Ping(Bytes::from_static(b"between")),
            Message::text("two"),
        ];
        assert_eq!(heard_in_order, expected);
        assert!(server.head.is_none() && server.behind.capacity() == 0);
    }

    #[tokio::test]
    async fn a_full_batch_is_written_before_the_next_frame_is_queued() {
        let (mut client, mut server) = pair(1 << 16).await;
        for n in 0..=BATCH {
            server.feed(Message::text(n.to_string())).await.unwrap();
        }
        // The first BATCH went out when the last one was fed; it waits for a flush.
        for n in 0..BATCH {
            let heard = client.next().await.unwrap().unwrap();
            assert_eq!(heard, Message::text(n.to_string()));
        }
        assert!(futures::poll!(client.next()).is_pending());
        server.flush().await.unwrap();
        let last = client.next().await.unwrap().unwrap();
        assert_eq!(last, Message::text(BATCH.to_string()));
    }

    #[tokio::test]
    async fn the_pong_to_a_client_ping_leaves_before_the_next_text_frame() {
        let (mut client, mut server) = pair(1 << 16).await;
        client
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        let ping = server.next().await.unwrap().unwrap();
        assert_eq!(ping, Message::Ping(Bytes::from_static(b"hi")));
        server.send(Message::text("after the pong")).await.unwrap();
        let pong = client.next().await.unwrap().unwrap();
        assert_eq!(pong, Message::Pong(Bytes::from_static(b"hi")));
        let text = client.next().await.unwrap().unwrap();
        assert_eq!(text, Message::text("after the pong"));
    }

    #[tokio::test]
    async fn reading_leaves_frames_not_begun_waiting_for_the_flush() {
        let (mut client, mut server) = pair(1 << 16).await;
        server.feed(Message::text("reply")).await.unwrap();
        client.send(Message::text("next")).await.unwrap();
        let read = server.next().await.unwrap().unwrap();
        assert_eq!(read, Message::text("next"));
        assert!(
            futures::poll!(client.next()).is_pending(),
            "nothing written"
        );
        server.feed(Message::text("second reply")).await.unwrap();
        server.flush().await.unwrap();
        for text in ["reply", "second reply"] {
            assert_eq!(client.next().await.unwrap().unwrap(), Message::text(text));
        }
    }

    #[tokio::test]
    async fn frames_a_client_sent_together_are_read_without_waiting_for_a_wake() {
        let (mut client, mut server) = pair(1 << 16).await;
        client.feed(Message::text("auth")).await.unwrap();
        client.feed(Message::text("subscribe")).await.unwrap();
        client.flush().await.unwrap();
        assert_eq!(server.next().await.unwrap().unwrap(), Message::text("auth"));
        // As the connection looks for a frame right behind the one it handled.
        let behind = server.next().now_or_never().flatten().unwrap().unwrap();
        assert_eq!(behind, Message::text("subscribe"));
        assert!(server.next().now_or_never().is_none(), "nothing more");
        client.send(Message::text("later")).await.unwrap();
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::text("later")
        );
    }

    #[tokio::test]
    async fn reading_finishes_a_frame_partly_written_before_the_pong() {
        let (mut client, mut server) = pair(64).await;
        let long = "x".repeat(1_000);
        server.feed(Message::text(long.clone())).await.unwrap();
        assert!(
            futures::poll!(server.flush()).is_pending(),
            "a partial write"
        );
        let ping = Message::Ping(Bytes::from_static(b"hi"));
        client.send(ping.clone()).await.unwrap();
        let reading = async { server.next().await.unwrap().unwrap() };
        let hearing = async { client.next().await.unwrap().unwrap() };
        // A pong inside the frame would leave the client waiting for the frame's end.
        let both = async { tokio::join!(reading, hearing) };
        let (read, heard) = tokio::time::timeout(std::time::Duration::from_secs(5), both)
            .await
            .expect("the frame arrives whole");
        assert_eq!((read, heard), (ping, Message::text(long)));
        server.flush().await.unwrap();
        let pong = client.next().await.unwrap().unwrap();
        assert_eq!(pong, Message::Pong(Bytes::from_static(b"hi")));
    }

    fn request(headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::get("/ws");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut parts = request.body(()).unwrap().into_parts().0;
        let (io, _) = tokio::io::duplex(1);
        parts
            .extensions
            .insert(hyper::upgrade::on(axum::http::Request::new(io)));
        parts
    }

    #[test]
    fn the_handshake_answers_the_key_and_refuses_what_is_not_an_upgrade() {
        let good = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-protocol", "chat, natter.v1"),
        ];
        let (response, _) = Upgrade::of(&mut request(&good), "natter.v1")
            .unwrap()
            .accept();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let header = |name| response.headers()[name].to_str().unwrap().to_owned();
        // RFC 6455 §1.3's example key and answer.
        assert_eq!(
            header("sec-websocket-accept"),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(header("sec-websocket-protocol"), "natter.v1");
        let unoffered = Upgrade::of(&mut request(&good[..4]), "natter.v1").unwrap();
        assert!(
            !unoffered
                .accept()
                .0
                .headers()
                .contains_key("sec-websocket-protocol")
        );
        for missing in 0..4 {
            let mut headers = good.to_vec();
            headers.remove(missing);
            let refusal = Upgrade::of(&mut request(&headers), "natter.v1").unwrap_err();
            assert_eq!(
                refusal.0,
                StatusCode::BAD_REQUEST,
                "without {}",
                good[missing].0
            );
        }
    }
}
