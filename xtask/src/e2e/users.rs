//! What a user does on the installation, through port-forwards to its pods: register and
//! log in (auth), create and join a room (website), and exchange a message through two
//! chat pods over the documented WebSocket protocol.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// One HTTP/1.1 JSON request; the status and the JSON body (`null` when empty).
pub fn call(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host)?;
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not HTTP: {response:?}"))?;
    let (_, text) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let value = serde_json::from_str(text).unwrap_or(Value::Null);
    Ok((status, value))
}

/// Registers `name` and logs in: the access token.
pub fn sign_up(auth: &str, name: &str) -> anyhow::Result<String> {
    let credentials = json!({"username": name, "password": "correct horse battery"});
    let (status, body) = call(auth, "POST", "/api/v1/auth/register", None, &credentials)?;
    if status != 201 {
        bail!("register {name}: {status} {body}");
    }
    let login = json!({"login": name, "password": "correct horse battery"});
    let (status, body) = call(auth, "POST", "/api/v1/auth/login", None, &login)?;
    match body["access_token"].as_str() {
        Some(token) if status == 200 => Ok(token.to_owned()),
        _ => bail!("login {name}: {status} {body}"),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next frame of `kind`, skipping others (presence, typing), within 20 s.
async fn next_of(socket: &mut Socket, kind: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .with_context(|| format!("no {kind} frame within 20 s"))?
            .context("socket closed")??;
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(text.as_str())?;
            if value["type"] == kind {
                return Ok(value);
            }
            if value["type"] == "error" {
                bail!("waiting for {kind}: {value}");
            }
        }
    }
}

/// Connects to `chat`'s `/ws`, authenticates with `token` and subscribes to `room`.
async fn subscribed(chat: &str, token: &str, room: &str) -> anyhow::Result<Socket> {
    let url = format!("{}/ws", chat.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    next_of(&mut socket, "hello").await?;
    let auth = json!({"type": "auth", "token": token});
    socket.send(Message::Text(auth.to_string().into())).await?;
    next_of(&mut socket, "authenticated").await?;
    let subscribe = json!({"type": "subscribe", "room_id": room});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    next_of(&mut socket, "subscribed").await?;
    Ok(socket)
}

/// Alice on `chat_a` sends to `room`; Bob on `chat_b` must receive it, and so must she.
pub fn exchange(
    chat_a: &str,
    chat_b: &str,
    (alice, bob): (&str, &str),
    room: &str,
) -> anyhow::Result<i64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut a = subscribed(chat_a, alice, room).await?;
        let mut b = subscribed(chat_b, bob, room).await?;
        let send =
            json!({"type": "send", "room_id": room, "client_id": "e2e-1", "body": "across pods"});
        a.send(Message::Text(send.to_string().into())).await?;
        let ack = next_of(&mut a, "ack").await?;
        let seq = ack["seq"].as_i64().context("ack without seq")?;
        let seen = next_of(&mut b, "message").await?;
        if seen["seq"].as_i64() != Some(seq) || seen["body"] != "across pods" {
            bail!("the other pod delivered {seen}, expected seq {seq}");
        }
        Ok(seq)
    })
}
