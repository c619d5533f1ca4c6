//! Chat servers over a fresh database, signed-in users, and a small WebSocket client.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use natter_auth::{Auth, Client};
use natter_chat::{Chat, Limits, Sockets};
use natter_core::broker::{Broker, MemoryBroker};
use natter_core::secrets::Secrets;
use natter_core::shutdown::{Shutdown, ShutdownTrigger};
use natter_core::store::{Backend, Role, RoomKind, Store};
use natter_testkit::TestStore;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Shared by every replica of one test.
pub struct Cluster {
    pub auth: Auth,
    pub keys: natter_core::token::KeySet,
    pub store: Store,
    pub broker: Arc<dyn Broker>,
    pub test_store: TestStore,
}

/// One replica.
pub struct Replica {
    pub url: String,
    pub metrics: natter_core::http::Metrics,
    pub sockets: Sockets,
    pub stop: ShutdownTrigger,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
    pub name: String,
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Two replicas sharing PostgreSQL and Redis, with alice on one and bob on two, both
/// subscribed to their group room.
pub struct Pair {
    pub one: Replica,
    pub two: Replica,
    pub room: String,
    pub a: Socket,
    pub b: Socket,
    _cluster: Cluster,
}

impl Pair {
    pub async fn new() -> Self {
        let cluster = Cluster::new(Backend::Postgres).await;
        let one = cluster.replica(Limits::default()).await;
        let two = cluster.replica(Limits::default()).await;
        let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
        let room = cluster.room(&alice, &[&bob]).await;
        let mut a = connect(&one, Some(&alice)).await;
        let mut b = connect(&two, Some(&bob)).await;
        subscribe(&mut a, &room, None).await;
        subscribe(&mut b, &room, None).await;
        Self {
            one,
            two,
            room,
            a,
            b,
            _cluster: cluster,
        }
    }
}

impl Cluster {
    pub async fn new(backend: Backend) -> Self {
        Self::with_redis(backend, None).await
    }

    /// A cluster whose broker and deny-list are the Redis at `redis_url` (PostgreSQL
    /// store).
    pub async fn with_redis(backend: Backend, redis_url: Option<&str>) -> Self {
        let config = natter_testkit::config();
        let test_store = natter_testkit::store(backend).await;
        let kv: Arc<dyn natter_core::kv::Kv> = match redis_url {
            Some(url) => Arc::new(
                natter_core::kv::RedisKv::connect(url, natter_core::kv::REDIS_TIMEOUT)
                    .await
                    .unwrap(),
            ),
            None => natter_testkit::kv_for(backend).await,
        };
        let keys = Secrets::generate().jwt_keys;
        let store = test_store.store.clone();
        let broker: Arc<dyn Broker> = match backend {
            Backend::Postgres => {
                let url = redis_url.map_or_else(natter_testkit::redis_url, str::to_owned);
                Arc::new(
                    natter_core::broker::RedisBroker::connect(&url, natter_core::kv::REDIS_TIMEOUT)
                        .await
                        .unwrap(),
                )
            }
            Backend::Sqlite => Arc::new(MemoryBroker::default()),
        };
        let handles = natter_auth::Handles {
            store: store.clone(),
            kv,
            broker: broker.clone(),
        };
        let auth = natter_auth::assemble(&config, handles, &keys)
            .await
            .unwrap();
        Self {
            auth,
            keys,
            store,
            broker,
            test_store,
        }
    }

    pub async fn replica(&self, limits: Limits) -> Replica {
        self.replica_on(self.store.clone(), self.broker.clone(), limits)
            .await
    }

    /// A replica reading and writing through `store` and fanning out through `broker`
    /// (e.g. the same database or Redis behind a proxy whose line can be cut).
    pub async fn replica_on(
        &self,
        store: Store,
        broker: Arc<dyn Broker>,
        limits: Limits,
    ) -> Replica {
        let (stop, shutdown) = Shutdown::new();
        let chat = Chat::new(
            store,
            self.auth.verifier().clone(),
            broker,
            shutdown.clone(),
            limits,
        );
        let metrics = natter_core::http::Metrics::new();
        chat.register_metrics(&metrics);
        tokio::spawn(chat.clone().relay());
        let sockets = Sockets::default();
        let grpc = tonic::service::Routes::new(natter_chat::grpc_service(&chat)).into_axum_router();
        let router = natter_chat::routes(chat.clone(), sockets.clone()).merge(grpc);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(natter_core::http::serve(listener, router, shutdown));
        chat.relaying().await;
        Replica {
            url,
            metrics,
            sockets,
            stop,
        }
    }

    pub async fn user(&self, base: &str) -> User {
        let name = format!("{base}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let registered = self
            .auth
            .register(&name, "correct horse", None)
            .await
            .unwrap();
        let outcome = self
            .auth
            .login(&name, "correct horse", &Client::default())
            .await
            .unwrap();
        User {
            id: registered.user.id,
            token: outcome.access_token,
            name,
        }
    }

    /// A group room owned by `owner` with `members`.
    pub async fn room(&self, owner: &User, members: &[&User]) -> String {
        let room = self
            .store
            .create_room(RoomKind::Group, "chat", &owner.id)
            .await
            .unwrap()
            .id;
        for member in members {
            self.add_member(&room, member).await;
        }
        room
    }

    /// Makes `user` a member of `room`.
    pub async fn add_member(&self, room: &str, user: &User) {
        let store = &self.store;
        store
            .add_member(room, &user.id, Role::Member)
            .await
            .unwrap();
    }
}

/// Connects, reads `hello`, and authenticates as `user` (when given).
pub async fn connect(replica: &Replica, user: Option<&User>) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(replica.url.as_str())
        .await
        .unwrap();
    let hello = next(&mut socket).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["protocol"], 1);
    if let Some(user) = user {
        say(&mut socket, json!({"type": "auth", "token": user.token})).await;
        let reply = next(&mut socket).await;
        assert_eq!(reply["type"], "authenticated", "{reply}");
    }
    socket
}

pub async fn say(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next text frame as JSON, skipping presence frames (fails the test after 10 s).
pub async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = next_any(socket).await;
        if frame["type"] != "presence" && frame["type"] != "presence_list" {
            return frame;
        }
    }
}

/// The next text frame as JSON, whatever it is (fails the test after 10 s).
pub async fn next_any(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Waits for the server to close the socket; returns the close code.
pub async fn closed(socket: &mut Socket) -> u16 {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a close within 10 s");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return 0,
            Some(Ok(_)) => continue,
        }
    }
}

/// Subscribes and returns the `subscribed` frame.
pub async fn subscribe(socket: &mut Socket, room: &str, since: Option<i64>) -> Value {
    let mut frame = json!({"type": "subscribe", "room_id": room});
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    say(socket, frame).await;
    next(socket).await
}

/// Sends and returns the reply (`ack` or `error`).
pub async fn send(socket: &mut Socket, room: &str, client_id: &str, body: &str) -> Value {
    say(
        socket,
        json!({"type": "send", "room_id": room, "client_id": client_id, "body": body}),
    )
    .await;
    loop {
        let frame = next(socket).await;
        if frame["type"] == "ack" || frame["type"] == "error" {
            return frame;
        }
    }
}

/// Connects as `user` over a TCP socket with a 4 KiB receive buffer, to play a client
/// that stops reading.
pub async fn connect_small_window(replica: &Replica, user: &User) -> Socket {
    let addr: std::net::SocketAddr = replica
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(addr).await.unwrap();
    let (mut socket, _) =
        tokio_tungstenite::client_async(replica.url.as_str(), MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let hello = next(&mut socket).await;
    assert_eq!(hello["type"], "hello");
    say(&mut socket, json!({"type": "auth", "token": user.token})).await;
    assert_eq!(next(&mut socket).await["type"], "authenticated");
    socket
}
