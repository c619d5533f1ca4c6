//! Cluster mode: `natter migrate`, then auth, website, chat and frontend as separate
//! processes over PostgreSQL and Redis, as the operator runs them. Each serves `/metrics`
//! as Prometheus text, and its counters move with what users do; spans go to the OTLP
//! collector configured.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_opentelemetry_collector::FakeCollectorServer;
use futures::{SinkExt, StreamExt};
use natter_testkit::telemetry::{assert_exposition, sample};
use serde_json::{Value, json};
use support::{Reaped, call, free_addr, get, header, hidden, request, set_cookie};
use tokio_tungstenite::tungstenite::Message;

/// One service process, killed when dropped.
struct Service {
    child: Reaped,
    http: String,
    grpc: String,
}

struct Installation {
    database_url: String,
    dir: tempfile::TempDir,
}

impl Installation {
    /// A fresh database, migrated by `natter migrate`.
    async fn new() -> Self {
        let installation = Self {
            database_url: natter_testkit::fresh_postgres_url().await,
            dir: tempfile::tempdir().unwrap(),
        };
        let migrated = installation.command(&["migrate"]).output().unwrap();
        assert!(migrated.status.success(), "{migrated:?}");
        installation
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_natter"));
        command
            .args(args)
            .env("NATTER_DATABASE_URL", &self.database_url)
            .env("NATTER_REDIS_URL", natter_testkit::redis_url())
            .env("NATTER_DATA_DIR", self.dir.path())
            .env("NATTER_AUTH_ARGON2_MEMORY_KIB", "256")
            .env("RUST_LOG", "warn");
        command
    }

    fn start(&self, service: &str, env: &[(&str, &str)]) -> Service {
        let (http, grpc) = (free_addr(), free_addr());
        let child = self
            .command(&[service])
            .env("NATTER_HTTP_ADDR", &http)
            .env("NATTER_GRPC_ADDR", &grpc)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut service = Service {
            child: Reaped(child),
            http: format!("http://{http}"),
            grpc: format!("http://{grpc}"),
        };
        service.wait_ready();
        service
    }
}

impl Installation {
    /// Auth, website and two chat replicas, as the operator runs them.
    fn two_chat_replicas(&self) -> (Service, Service, Service, Service) {
        let auth = self.start("auth", &[]);
        let to_auth = [("NATTER_AUTH_GRPC_URL", auth.grpc.as_str())];
        let website = self.start("website", &to_auth);
        let (one, two) = (self.start("chat", &to_auth), self.start("chat", &to_auth));
        (auth, website, one, two)
    }
}

impl Service {
    /// Waits for `/readyz` to answer 200; a process that exits first fails the test at
    /// once, with its status (its errors are on the test's stderr). The deadline outlasts
    /// a service's own 60 s wait for its dependencies (chat's for auth's signing keys),
    /// so that the service names what it waited for.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let host = self.http.trim_start_matches("http://").to_owned();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the service for {} exited before it was ready: {status}",
                    self.http
                );
            }
            if std::net::TcpStream::connect(&host).is_ok()
                && get(&self.http, "/readyz").starts_with("HTTP/1.1 200")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                self.http
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn body(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("a response body");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
}

/// `/metrics` of `url`, checked to be Prometheus text.
fn metrics(url: &str) -> String {
    let response = get(url, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, text) = response.split_once("\r\n\r\n").unwrap();
    assert_exposition(text);
    text.to_owned()
}

/// The value of `series`, 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or(0.0)
}

/// Registers `name` with the auth service and logs in: the token pair.
fn sign_up(auth: &Service, name: &str) -> Value {
    let credentials = json!({"username": name, "password": "correct horse"}).to_string();
    let registered = request(
        &auth.http,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&credentials),
    );
    assert!(registered.starts_with("HTTP/1.1 201"), "{registered}");
    let login = json!({"login": name, "password": "correct horse"}).to_string();
    body(&request(
        &auth.http,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&login),
    ))
}

fn requests(text: &str, method: &str, route: &str, status: u16) -> f64 {
    value(
        text,
        &format!(
            "natter_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_counts_what_it_serves() {
    let installation = Installation::new().await;
    let auth = installation.start("auth", &[]);
    let to_auth = [("NATTER_AUTH_GRPC_URL", auth.grpc.as_str())];
    let website = installation.start("website", &to_auth);
    let chat = installation.start("chat", &to_auth);
    let frontend = installation.start(
        "frontend",
        &[
            to_auth[0],
            ("NATTER_WEBSITE_GRPC_URL", website.grpc.as_str()),
        ],
    );

    // auth: a registration and a login, served over HTTP; JWKS over gRPC to the others.
    let tokens = sign_up(&auth, "meter");
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let text = metrics(&auth.http);
    assert_eq!(
        requests(&text, "POST", "/api/v1/auth/login", 200),
        1.0,
        "{text}"
    );
    assert_eq!(requests(&text, "POST", "/api/v1/auth/register", 201), 1.0);
    assert!(
        text.contains("natter_requests_total{method=\"POST\",route=\"/natter.auth.v1.AuthService/"),
        "gRPC calls are counted by RPC: {text}"
    );
    assert!(value(&text, "natter_db_pool_connections") >= 1.0, "{text}");
    assert_eq!(value(&text, "natter_db_pool_max_connections"), 16.0);
    assert!(
        text.contains("natter_request_duration_seconds_bucket{"),
        "{text}"
    );

    // website: a room created through the JSON API.
    let before = requests(&metrics(&website.http), "POST", "/api/v1/rooms", 201);
    let room = body(&request(
        &website.http,
        "POST",
        "/api/v1/rooms",
        Some(&token),
        Some(r#"{"kind":"group","name":"metered"}"#),
    ));
    let room_id = room["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{room}"))
        .to_owned();
    let text = metrics(&website.http);
    assert_eq!(
        requests(&text, "POST", "/api/v1/rooms", 201),
        before + 1.0,
        "{text}"
    );
    assert!(value(&text, "natter_db_pool_connections") >= 1.0, "{text}");
    assert_eq!(value(&text, "natter_token_signatures_checked_total"), 1.0);

    // chat: a socket that authenticates, subscribes and sends.
    let ws_url = format!("{}/ws", chat.http.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut say = async |frame: Value| socket.send(Message::text(frame.to_string())).await.unwrap();
    say(json!({"type": "auth", "token": token})).await;
    say(json!({"type": "subscribe", "room_id": room_id})).await;
    say(json!({"type": "send", "room_id": room_id, "client_id": "c-1", "body": "counted"})).await;
    loop {
        let frame = socket.next().await.unwrap().unwrap();
        let text = match frame {
            Message::Text(text) => text,
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("{other:?}"),
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == "message" {
            break;
        }
    }
    // The delivery is counted once its write completes, which may be just after the
    // client read it.
    let mut text = metrics(&chat.http);
    for _ in 0..100 {
        if value(&text, "natter_chat_messages_delivered_total") == 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        text = metrics(&chat.http);
    }
    assert_eq!(value(&text, "natter_chat_connections"), 1.0, "{text}");
    assert_eq!(value(&text, "natter_chat_subscriptions"), 1.0);
    assert_eq!(value(&text, "natter_chat_messages_received_total"), 1.0);
    assert_eq!(value(&text, "natter_chat_messages_delivered_total"), 1.0);
    // The token was new to chat: its signature was checked once, in a batch of one.
    assert_eq!(value(&text, "natter_token_signatures_checked_total"), 1.0);
    assert_eq!(value(&text, "natter_token_signature_batches_total"), 1.0);
    assert!(text.contains("natter_chat_queued_events "), "{text}");
    assert!(text.contains("natter_chat_outbox_depth "), "{text}");
    assert!(
        text.contains("natter_chat_broker_lag_seconds_count "),
        "{text}"
    );

    // frontend: pages served.
    let before = requests(&metrics(&frontend.http), "GET", "/login", 200);
    let page = get(&frontend.http, "/login");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let text = metrics(&frontend.http);
    assert_eq!(
        requests(&text, "GET", "/login", 200),
        before + 1.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_configured_otlp_collector() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let endpoint = collector.endpoint();
    let installation = Installation::new().await;
    // A quiet log (RUST_LOG=warn, set for every process here) must not empty the traces.
    let auth = installation.start(
        "auth",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let tokens = sign_up(&auth, "traced");
    let refresh = json!({"refresh_token": tokens["refresh_token"]}).to_string();
    let refreshed = request(
        &auth.http,
        "POST",
        "/api/v1/auth/refresh",
        None,
        Some(&refresh),
    );
    assert!(refreshed.starts_with("HTTP/1.1 200"), "{refreshed}");

    let expected = [
        "POST /api/v1/auth/login",
        "auth.login",
        "db.user_by_login",
        "password.verify",
        "db.create_session",
        "POST /api/v1/auth/refresh",
        "auth.refresh",
        "db.rotate_refresh",
        "db.user_by_id",
        "token.sign",
    ];
    let mut names = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !expected.iter().all(|n| names.contains(*n)) && Instant::now() < deadline {
        let batch = collector
            .exported_spans(1, Duration::from_millis(200))
            .await;
        names.extend(batch.into_iter().map(|s| s.name));
    }
    for name in expected {
        assert!(names.contains(name), "{name} not exported: {names:?}");
    }
}

/// `natter auth` on a PostgreSQL user leased from Vault's database secrets engine: the
/// configured URL names host and database only, so nothing works unless the lease does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_runs_on_database_credentials_leased_from_vault() {
    let installation = Installation::new().await;
    let mount = natter_testkit::database_engine(&installation.database_url, 3600, 7200).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let kv_path = format!("natter-lease/{id}");
    let vault_env = [
        ("NATTER_SECRETS_SOURCE", "vault"),
        ("NATTER_VAULT_KV_PATH", kv_path.as_str()),
    ];
    let bootstrap = installation
        .command(&["vault", "bootstrap"])
        .envs(vault_env)
        .output()
        .unwrap();
    assert!(bootstrap.status.success(), "{bootstrap:?}");
    let mut anonymous = url::Url::parse(&installation.database_url).unwrap();
    anonymous.set_username("").unwrap();
    let mut env = vec![
        ("NATTER_DATABASE_URL", anonymous.as_str()),
        ("NATTER_VAULT_DATABASE_ROLE", "natter"),
        ("NATTER_VAULT_DATABASE_MOUNT", mount.as_str()),
    ];
    env.extend(vault_env);
    let auth = installation.start("auth", &env);
    let tokens = sign_up(&auth, "leased");
    assert!(tokens["access_token"].is_string(), "{tokens}");
}

/// `name` signed up, owning a new group room: the access token and the room id.
fn member_of_a_room(auth: &Service, website: &Service, name: &str) -> (String, String) {
    let token = sign_up(auth, name)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let room = body(&request(
        &website.http,
        "POST",
        "/api/v1/rooms",
        Some(&token),
        Some(r#"{"kind":"group","name":"a room"}"#),
    ))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, room)
}

/// `host:port` of a `scheme://user:pw@host:port/…` URL.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split('/').next().unwrap()
}

/// The status line's code and the `Retry-After` header of a raw response.
fn status_and_retry(response: &str) -> (u16, Option<&str>) {
    let status = response[9..12].parse().unwrap();
    (status, header(response, "retry-after"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_are_answered_503_and_the_first_call_after_recovery_works() {
    let installation = Installation::new().await;
    let database = natter_testkit::Proxy::start(host_port(&installation.database_url)).await;
    let redis = natter_testkit::Proxy::start(host_port(&natter_testkit::redis_url())).await;
    let database_url = installation.database_url.replace(
        host_port(&installation.database_url),
        &database.addr.to_string(),
    );
    let redis_url = format!("redis://{}", redis.addr);
    let env = [
        ("NATTER_DATABASE_URL", database_url.as_str()),
        ("NATTER_REDIS_URL", redis_url.as_str()),
        ("NATTER_DATABASE_ACQUIRE_TIMEOUT_MS", "500"),
        ("NATTER_REDIS_TIMEOUT_MS", "300"),
    ];
    let auth = installation.start("auth", &env);
    let mut website_env = env.to_vec();
    website_env.push(("NATTER_AUTH_GRPC_URL", auth.grpc.as_str()));
    let website = installation.start("website", &website_env);
    let (token, room) = member_of_a_room(&auth, &website, "outage");
    let history = format!("/api/v1/rooms/{room}/messages");
    let login = json!({"login": "outage", "password": "correct horse"}).to_string();
    let calls = |label: &str| {
        [
            (
                "me",
                request(&auth.http, "GET", "/api/v1/auth/me", Some(&token), None),
            ),
            (
                "login",
                request(&auth.http, "POST", "/api/v1/auth/login", None, Some(&login)),
            ),
            (
                "history",
                request(&website.http, "GET", &history, Some(&token), None),
            ),
        ]
        .map(|(name, response)| (format!("{label} {name}"), response))
    };

    for (line, what) in [(&redis, "redis down"), (&database, "database down")] {
        line.set_open(false);
        for (call, response) in calls(what) {
            if what == "database down" && call.ends_with(" me") {
                continue; // /auth/me reads only the token and the deny-list
            }
            assert_eq!(
                status_and_retry(&response),
                (503, Some("2")),
                "{call}: {response}"
            );
            assert_eq!(body(&response)["error"]["code"], "unavailable", "{call}");
        }
        line.set_open(true);
        // The connections the outage broke are replaced on the first call, not the second.
        for (call, response) in calls(&format!("{what}, then back")) {
            assert!(response.starts_with("HTTP/1.1 200"), "{call}: {response}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_answers_503_while_the_services_are_unreachable() {
    let installation = Installation::new().await;
    let nowhere = format!("http://{}", free_addr());
    let frontend = installation.start(
        "frontend",
        &[
            ("NATTER_AUTH_GRPC_URL", nowhere.as_str()),
            ("NATTER_WEBSITE_GRPC_URL", nowhere.as_str()),
        ],
    );
    let form_page = call(&frontend.http, "GET", "/login", "", None, "");
    let form_cookie = set_cookie(&form_page, "natter_form").unwrap();
    let token = hidden(&form_page, "form_token");
    let reply = call(
        &frontend.http,
        "POST",
        "/login",
        &format!("natter_form={form_cookie}"),
        Some(&format!(
            "form_token={token}&login=nobody&password=whatever+it+is"
        )),
        "",
    );
    assert_eq!(status_and_retry(&reply), (503, Some("2")), "{reply}");
    assert!(reply.contains("briefly unavailable"), "{reply}");
}

/// A WebSocket on `chat`, authenticated and subscribed to `room`.
async fn subscribed(
    chat: &Service,
    token: &str,
    room: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("{}/ws", chat.http.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    for frame in [
        json!({"type": "auth", "token": token}),
        json!({"type": "subscribe", "room_id": room}),
    ] {
        socket.send(Message::text(frame.to_string())).await.unwrap();
    }
    while next_frame(&mut socket).await["type"] != "subscribed" {}
    socket
}

/// The next text frame as JSON (within 10 s).
async fn next_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let frame: Value = serde_json::from_str(&text).unwrap();
            assert_ne!(frame["type"], "error", "{frame}");
            return frame;
        }
    }
}

/// A gRPC request carrying `token`.
fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let bearer = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_posted_through_any_transport_reaches_every_replica_once_in_order() {
    use natter_proto::chat::v1::{SaveMessageRequest, chat_service_client::ChatServiceClient};
    use natter_proto::website::v1::{
        PostMessageRequest, website_service_client::WebsiteServiceClient,
    };
    let installation = Installation::new().await;
    let (auth, website, one, two) = installation.two_chat_replicas();
    let (token, room) = member_of_a_room(&auth, &website, "poster");
    let mut on_one = subscribed(&one, &token, &room).await;
    let mut on_two = subscribed(&two, &token, &room).await;

    // 1: the JSON API.
    let posted = request(
        &website.http,
        "POST",
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&token),
        Some(r#"{"client_id":"json-1","body":"through JSON"}"#),
    );
    assert!(posted.starts_with("HTTP/1.1 201"), "{posted}");
    // 2: the website's gRPC.
    let mut website_grpc = WebsiteServiceClient::connect(website.grpc.clone())
        .await
        .unwrap();
    let post = PostMessageRequest {
        room_id: room.clone(),
        client_id: "grpc-1".into(),
        body: "through website gRPC".into(),
        ..Default::default()
    };
    website_grpc
        .post_message(authed(post, &token))
        .await
        .unwrap();
    // 3: chat's gRPC, on the first replica.
    let mut chat_grpc = ChatServiceClient::connect(one.grpc.clone()).await.unwrap();
    let save = SaveMessageRequest {
        room_id: room.clone(),
        client_id: "grpc-2".into(),
        body: "through chat gRPC".into(),
        ..Default::default()
    };
    chat_grpc.save_message(authed(save, &token)).await.unwrap();
    // 4: a WebSocket send on the second replica.
    let send =
        json!({"type": "send", "room_id": room, "client_id": "ws-1", "body": "through the socket"});
    on_two.send(Message::text(send.to_string())).await.unwrap();

    let expected = [
        "through JSON",
        "through website gRPC",
        "through chat gRPC",
        "through the socket",
    ];
    for socket in [&mut on_one, &mut on_two] {
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            let frame = next_frame(socket).await;
            if frame["type"] == "message" {
                seen.push((
                    frame["seq"].as_i64().unwrap(),
                    frame["body"].as_str().unwrap().to_owned(),
                ));
            }
        }
        let want: Vec<(i64, String)> = (1..).zip(expected.map(str::to_owned)).collect();
        assert_eq!(seen, want, "every message, once, in order, on each replica");
    }
}

/// The chat service remembers memberships (no store read per send), and forgets one as
/// soon as the website says it ended: a removed member's subscription ends and their next
/// send is refused, on every chat replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_on_the_website_loses_the_room_on_every_chat_replica() {
    let installation = Installation::new().await;
    let (auth, website, one, two) = installation.two_chat_replicas();
    let (owner, room) = member_of_a_room(&auth, &website, "owner");
    let bob = sign_up(&auth, "bob")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = request(&auth.http, "GET", "/api/v1/auth/me", Some(&bob), None);
    let bob_id = body(&me)["user_id"].as_str().unwrap().to_owned();
    let add = json!({"user_id": bob_id}).to_string();
    let members = format!("/api/v1/rooms/{room}/members");
    let added = request(&website.http, "POST", &members, Some(&owner), Some(&add));
    assert!(added.starts_with("HTTP/1.1 20"), "{added}");
    let mut sockets = Vec::new();
    for chat in [&one, &two] {
        let mut socket = subscribed(chat, &bob, &room).await;
        let send = json!({"type": "send", "room_id": room, "client_id": "before", "body": "hi"});
        socket.send(Message::text(send.to_string())).await.unwrap();
        while next_frame(&mut socket).await["type"] != "ack" {}
        sockets.push(socket);
    }
    let removal = format!("{members}/{bob_id}");
    let removed = request(&website.http, "DELETE", &removal, Some(&owner), None);
    assert!(removed.starts_with("HTTP/1.1 204"), "{removed}");
    for socket in &mut sockets {
        let mut frame = next_frame(socket).await;
        while frame["type"] != "unsubscribed" {
            frame = next_frame(socket).await;
        }
        assert_eq!(frame["reason"], "removed");
        let send = json!({"type": "send", "room_id": room, "client_id": "after", "body": "hi"});
        socket.send(Message::text(send.to_string())).await.unwrap();
        let refusal = loop {
            let message = socket.next().await.unwrap().unwrap();
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "error" || frame["type"] == "ack" {
                    break frame;
                }
            }
        };
        assert_eq!(refusal["code"], "not_found", "{refusal}");
    }
}

/// Reactions go through the messages' owner whichever transport adds them: one added on
/// the website's JSON API and one on a socket reach the subscribers of both chat replicas,
/// and the history shows them as its reader sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_from_any_transport_reach_every_replica_and_the_history() {
    let installation = Installation::new().await;
    let (auth, website, one, two) = installation.two_chat_replicas();
    let (token, room) = member_of_a_room(&auth, &website, "reactor");
    let messages = format!("/api/v1/rooms/{room}/messages");
    let post = r#"{"client_id":"c1","body":"ship it?"}"#;
    let posted = request(&website.http, "POST", &messages, Some(&token), Some(post));
    assert!(posted.starts_with("HTTP/1.1 201"), "{posted}");
    let mut on_one = subscribed(&one, &token, &room).await;
    let mut on_two = subscribed(&two, &token, &room).await;

    // 👍 percent-encoded in the path, on the website.
    let thumbs = format!("{messages}/1/reactions/%F0%9F%91%8D");
    let added = request(&website.http, "PUT", &thumbs, Some(&token), None);
    assert!(added.starts_with("HTTP/1.1 200"), "{added}");
    assert_eq!(body(&added), json!({"emoji": "👍", "count": 1, "me": true}));
    // 🎉 on a socket of the second replica.
    let react = json!({"type": "react", "room_id": room, "seq": 1, "emoji": "🎉"});
    on_two.send(Message::text(react.to_string())).await.unwrap();
    for socket in [&mut on_one, &mut on_two] {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let frame = next_frame(socket).await;
            if frame["type"] == "reaction" {
                seen.push((frame["emoji"].clone(), frame["count"].clone()));
            }
        }
        // Unsequenced updates from two transports: either may come first (the website's
        // crosses the broker; the socket's is local to its replica).
        seen.sort_by_key(|(emoji, _)| emoji.to_string());
        let mut expected = [(json!("👍"), json!(1)), (json!("🎉"), json!(1))];
        expected.sort_by_key(|(emoji, _)| emoji.to_string());
        assert_eq!(seen, expected);
    }
    let history = request(&website.http, "GET", &messages, Some(&token), None);
    let reactions = body(&history)[0]["reactions"].clone();
    assert_eq!(
        reactions,
        json!([{"emoji": "👍", "count": 1, "me": true}, {"emoji": "🎉", "count": 1, "me": true}])
    );
    let bad = format!("{messages}/1/reactions/nope");
    let refused = request(&website.http, "PUT", &bad, Some(&token), None);
    assert!(refused.starts_with("HTTP/1.1 422"), "{refused}");
    assert_eq!(body(&refused)["error"]["code"], "invalid_emoji");
}
