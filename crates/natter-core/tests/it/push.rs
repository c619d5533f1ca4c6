//! Web Push end to end against a push service written here: the worker pushes each due
//! message once even with two replicas running it, nothing for what is read in time, muted
//! or one's own; every push carries a VAPID token that verifies with the key it names and
//! a payload that decrypts by RFC 8291 with the subscriber's private key (done here from
//! the primitives); a 410 forgets the subscription, a 500 is tried again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use natter_core::push::{Payload, PushWorker, Sender, VapidKey, WorkerSettings};
use natter_core::store::{Backend, Level, NewMessage, PushSubscription, Role, RoomKind, Store};
use natter_testkit::store;

use crate::user;

/// One browser: its push service path and its keys (RFC 8291).
struct Browser {
    user: String,
    endpoint: String,
    private: p256::SecretKey,
    auth: [u8; 16],
}

/// Pushes received per endpoint path; answers per path (default 201).
#[derive(Default)]
struct Service {
    received: Mutex<Vec<(String, HeaderMap, Vec<u8>)>>,
    answers: Mutex<HashMap<String, Vec<u16>>>,
}

async fn receive(
    State(service): State<Arc<Service>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let status = service
        .answers
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(|a| a.pop());
    let status = status.unwrap_or(201);
    if status == 201 {
        service
            .received
            .lock()
            .unwrap()
            .push((path, headers, body.to_vec()));
    }
    StatusCode::from_u16(status).unwrap()
}

/// A push service on 127.0.0.1: its base URL.
async fn push_service(service: Arc<Service>) -> String {
    let app = axum::Router::new()
        .route("/push/{path}", axum::routing::post(receive))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/push", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn subscribe(store: &Store, user: &str, base: &str, path: &str) -> Browser {
    let private = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let auth: [u8; 16] = rand::random();
    let endpoint = format!("{base}/{path}");
    let sub = PushSubscription {
        endpoint: endpoint.clone(),
        user_id: user.into(),
        p256dh: B64.encode(private.public_key().to_sec1_bytes()),
        auth: B64.encode(auth),
    };
    natter_core::push::check_subscription(&sub).unwrap();
    store.save_push_subscription(&sub, 1).await.unwrap();
    Browser {
        user: user.into(),
        endpoint,
        private,
        auth,
    }
}

/// RFC 8291 §3.4 and RFC 8188 §2, from the primitives: the payload of one push.
fn decrypt(browser: &Browser, body: &[u8]) -> Payload {
    let (salt, rest) = body.split_at(16);
    let record_size = u32::from_be_bytes(rest[..4].try_into().unwrap());
    assert!(record_size as usize >= body.len() - 86, "one record");
    let id_len = rest[4] as usize;
    let (server_key, ciphertext) = rest[5..].split_at(id_len);
    let server_public = p256::PublicKey::from_sec1_bytes(server_key).unwrap();
    let shared = p256::ecdh::diffie_hellman(
        browser.private.to_nonzero_scalar(),
        server_public.as_affine(),
    );
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&browser.private.public_key().to_sec1_bytes());
    key_info.extend_from_slice(server_key);
    let mut ikm = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&browser.auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .unwrap();
    let prk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .unwrap();
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .unwrap();
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&cek).unwrap();
    let mut plain = cipher.decrypt(&nonce.into(), ciphertext).unwrap();
    // The last record ends with the delimiter 2, then padding zeros.
    while plain.last() == Some(&0) {
        plain.pop();
    }
    assert_eq!(plain.pop(), Some(2), "the last record's delimiter");
    serde_json::from_slice(&plain).unwrap()
}

/// The VAPID token verifies with the key the header names, for the endpoint's origin.
fn check_vapid(headers: &HeaderMap, endpoint: &str, public_key: &str) {
    let header = headers["authorization"].to_str().unwrap();
    let rest = header
        .strip_prefix("vapid t=")
        .expect("a vapid authorization");
    let (token, key) = rest.split_once(", k=").unwrap();
    assert_eq!(key, public_key);
    let point = B64.decode(key).unwrap();
    let (x, y) = (B64.encode(&point[1..33]), B64.encode(&point[33..]));
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(&x, &y).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    let origin = url::Url::parse(endpoint)
        .unwrap()
        .origin()
        .ascii_serialization();
    validation.set_audience(&[origin]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation)
        .expect("the token verifies");
    assert_eq!(claims.claims["sub"], "mailto:ops@example.com");
    assert_eq!(headers["content-encoding"], "aes128gcm");
    assert!(headers["topic"].len() <= 32);
}

async fn send(
    store: &Store,
    room: &str,
    sender: &str,
    id: &str,
    mention: &[(String, String)],
    everyone: bool,
) -> i64 {
    let new = NewMessage {
        mentions: mention,
        mentions_room: everyone,
        ..NewMessage::text(room, sender, id, id, natter_core::time::now_ms())
    };
    store.post_message(new).await.unwrap().message.seq
}

fn worker(store: &Store, key: &VapidKey, delay_ms: u64) -> PushWorker {
    let sender = Sender::new(key.clone(), "mailto:ops@example.com").unwrap();
    let settings = WorkerSettings {
        delay: Duration::from_millis(delay_ms),
        every: Duration::from_millis(50),
        retry_after: Duration::from_millis(10),
    };
    PushWorker::new(store.clone(), sender, settings)
}

async fn each_due_message_is_pushed_once_by_two_replicas(backend: Backend) {
    let t = store(backend).await;
    // A second replica: its own pool on the same database.
    let other = natter_core::store::Store::connect(&t.url, 4).await.unwrap();
    let (alice, bob, carol) = (
        user(&t.store, "alice").await,
        user(&t.store, "bob").await,
        user(&t.store, "carol").await,
    );
    let room = t
        .store
        .create_room(RoomKind::Group, "team", &alice)
        .await
        .unwrap()
        .id;
    for member in [&bob, &carol] {
        t.store
            .add_member(&room, member, Role::Member)
            .await
            .unwrap();
    }
    t.store
        .set_level(&room, &carol, Some(Level::Nothing))
        .await
        .unwrap();
    let service = Arc::new(Service::default());
    let base = push_service(service.clone()).await;
    let bobs = subscribe(&t.store, &bob, &base, "bob").await;
    let carols = subscribe(&t.store, &carol, &base, "carol").await;
    let alices = subscribe(&t.store, &alice, &base, "alice").await;
    let key = VapidKey::generate();
    let (one, two) = (worker(&t.store, &key, 300), worker(&other, &key, 300));

    let named = [
        (bob.clone(), "bob".to_owned()),
        (carol.clone(), "carol".to_owned()),
    ];
    send(&t.store, &room, &bob, "my own", &[], false).await;
    send(&t.store, &room, &alice, "plain", &[], false).await;
    let read_in_time = send(&t.store, &room, &alice, "@room soon", &[], true).await;
    send(&t.store, &room, &alice, "look @bob", &named, false).await;
    let direct = t.store.open_direct(&alice, &bob).await.unwrap().id;
    send(&t.store, &direct, &alice, "psst", &[], false).await;
    let both = async || {
        for _ in 0..3 {
            let (a, b) = tokio::join!(one.tick(), two.tick());
            a.unwrap();
            b.unwrap();
        }
    };
    both().await;
    assert!(
        service.received.lock().unwrap().is_empty(),
        "nothing before the delay"
    );
    // Bob reads the @room message in time: it is not pushed.
    t.store.mark_read(&room, &bob, read_in_time).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    both().await;
    let received = std::mem::take(&mut *service.received.lock().unwrap());
    let mut seen: Vec<(String, String, String)> = received
        .iter()
        .map(|(path, headers, body)| {
            let browser = [&bobs, &carols, &alices]
                .into_iter()
                .find(|b| b.endpoint.ends_with(path.as_str()))
                .unwrap();
            check_vapid(headers, &browser.endpoint, &key.public_key().unwrap());
            let payload = decrypt(browser, body);
            assert_eq!(payload.tag, format!("{}:{}", payload.room_id, payload.seq));
            (browser.user.clone(), payload.title, payload.body)
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (
            bob.clone(),
            "alice in team mentioned you".to_owned(),
            "look @bob".to_owned(),
        ),
        (bob.clone(), "alice".to_owned(), "psst".to_owned()),
    ];
    expected.sort();
    assert_eq!(
        seen, expected,
        "each due push once across both workers; none read in time, muted (carol), own or \
         undue (alice)"
    );
}

async fn gone_subscriptions_are_forgotten_and_failures_tried_again(backend: Backend) {
    let t = store(backend).await;
    let (alice, bob) = (user(&t.store, "alice").await, user(&t.store, "bob").await);
    let direct = t.store.open_direct(&alice, &bob).await.unwrap().id;
    let service = Arc::new(Service::default());
    let base = push_service(service.clone()).await;
    let phone = subscribe(&t.store, &bob, &base, "phone").await;
    let laptop = subscribe(&t.store, &bob, &base, "laptop").await;
    service
        .answers
        .lock()
        .unwrap()
        .insert("phone".into(), vec![410]);
    // Popped from the end: a 500, then accepted.
    service
        .answers
        .lock()
        .unwrap()
        .insert("laptop".into(), vec![201, 500]);
    let key = VapidKey::generate();
    let worker = worker(&t.store, &key, 0);
    send(&t.store, &direct, &alice, "are you there?", &[], false).await;
    worker.tick().await.unwrap();
    let left = t.store.push_subscriptions(&bob).await.unwrap();
    assert_eq!(left.len(), 1, "the 410 forgot the phone");
    assert_eq!(left[0].endpoint, laptop.endpoint);
    assert!(
        service.received.lock().unwrap().is_empty(),
        "the laptop's service failed"
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    worker.tick().await.unwrap();
    let received = service.received.lock().unwrap();
    assert_eq!(received.len(), 1, "tried again, accepted once");
    assert_eq!(decrypt(&laptop, &received[0].2).body, "are you there?");
    assert!(!phone.endpoint.is_empty());
}

conformance!(
    each_due_message_is_pushed_once_by_two_replicas,
    gone_subscriptions_are_forgotten_and_failures_tried_again,
);
