//! Web Push: the server's VAPID key (RFC 8292, a managed secret), one push to one browser
//! subscription (payload encrypted by RFC 8291 with `web-push-native`, the request
//! signed by the VAPID key with `jsonwebtoken`), and the worker that turns due
//! notifications into pushes from a durable outbox (`worker`).

mod worker;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::pkcs8::EncodePrivateKey;
use serde::{Deserialize, Serialize};

pub use worker::{PushWorker, WorkerSettings};

use crate::secret::Secret;
use crate::store::PushSubscription;

/// How long a push service keeps an undelivered push (the `TTL` header): a day.
const TTL_SECS: u64 = 24 * 60 * 60;
/// How long a VAPID token is valid (RFC 8292 allows up to 24 hours).
const TOKEN_SECS: i64 = 12 * 60 * 60;

/// The application server's P-256 key pair. Stored as the private scalar only
/// (base64url); the public key is what browsers subscribe with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VapidKey {
    d: Secret<String>,
}

/// Why a VAPID key or a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The stored key is not a P-256 private key.
    #[error("the VAPID key is not a P-256 private scalar")]
    BadKey,
    /// The subscription's keys are not what RFC 8291 needs.
    #[error("subscription keys unusable: {0}")]
    BadSubscription(&'static str),
    /// Encrypting or signing failed.
    #[error("{0}")]
    Crypto(String),
    /// The push service could not be reached or answered something unexpected.
    #[error("push service: {0}")]
    Transport(String),
}

/// What became of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the push service.
    Sent,
    /// The subscription is gone (404 or 410): forget it.
    Gone,
    /// Refused for now (429, 5xx, network): try again later.
    Retry,
    /// Refused for good (another 4xx): give up on this push.
    Refused,
}

/// What a push carries to the service worker (JSON, encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The room.
    pub room_id: String,
    /// The message.
    pub seq: i64,
    /// The notification's title ("alice in Team mentioned you").
    pub title: String,
    /// The start of the message.
    pub body: String,
    /// Where a click leads.
    pub url: String,
    /// One notification per message, whoever shows it (page or service worker).
    pub tag: String,
}

impl VapidKey {
    /// The key whose private scalar is `d` (base64url, as `generate` stores it).
    pub fn from_private(d: &str) -> Self {
        Self {
            d: Secret::new(d.to_owned()),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        Self {
            d: Secret::new(URL_SAFE_NO_PAD.encode(key.to_bytes())),
        }
    }

    fn secret(&self) -> Result<p256::SecretKey, PushError> {
        let bytes = (URL_SAFE_NO_PAD.decode(self.d.expose())).map_err(|_| PushError::BadKey)?;
        p256::SecretKey::from_slice(&bytes).map_err(|_| PushError::BadKey)
    }

    /// The private scalar, base64url: what `NATTER_VAPID_KEY` holds. Only for writing
    /// it into a secret store.
    pub fn private_key(&self) -> &str {
        self.d.expose()
    }

    /// Whether the key is a usable P-256 private key.
    pub fn validate(&self) -> Result<(), PushError> {
        self.secret().map(drop)
    }

    /// The public key browsers subscribe with (`applicationServerKey`): the uncompressed
    /// point, base64url.
    pub fn public_key(&self) -> Result<String, PushError> {
        let point = self.secret()?.public_key().to_sec1_bytes();
        Ok(URL_SAFE_NO_PAD.encode(point))
    }

    /// The `Authorization` header of a push to `endpoint` (RFC 8292): an ES256 token for
    /// the endpoint's origin, valid for 12 hours, and the public key.
    pub fn authorization(
        &self,
        endpoint: &url::Url,
        subject: &str,
        now: i64,
    ) -> Result<String, PushError> {
        let secret = self.secret()?;
        let der = (secret.to_pkcs8_der()).map_err(|e| PushError::Crypto(e.to_string()))?;
        let key = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
        let claims = serde_json::json!({
            "aud": endpoint.origin().ascii_serialization(),
            "exp": now + TOKEN_SECS,
            "sub": subject,
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let token = jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| PushError::Crypto(e.to_string()))?;
        Ok(format!("vapid t={token}, k={}", self.public_key()?))
    }
}

/// Sends pushes: an HTTP client, the VAPID key and the contact it names.
#[derive(Debug, Clone)]
pub struct Sender {
    client: push_http::Client,
    key: VapidKey,
    subject: String,
}

impl Sender {
    /// A sender signing with `key`, naming `subject` (a `mailto:` or `https:` contact
    /// for push services).
    pub fn new(key: VapidKey, subject: &str) -> Result<Self, PushError> {
        key.validate()?;
        // The process's TLS provider (kube's and Vault's too): ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = push_http::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| PushError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            key,
            subject: subject.to_owned(),
        })
    }

    /// The key browsers subscribe with.
    pub fn public_key(&self) -> Result<String, PushError> {
        self.key.public_key()
    }

    /// Encrypts `payload` for `subscription` and posts it to its push service.
    pub async fn send(
        &self,
        subscription: &PushSubscription,
        payload: &Payload,
        urgent: bool,
        now: i64,
    ) -> Result<Delivery, PushError> {
        let endpoint = url::Url::parse(&subscription.endpoint)
            .map_err(|_| PushError::BadSubscription("endpoint"))?;
        let body = encrypt(subscription, payload)?;
        let response = self
            .client
            .post(endpoint.as_str())
            .header("TTL", TTL_SECS.to_string())
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Urgency", if urgent { "high" } else { "normal" })
            .header("Topic", topic(&payload.room_id, payload.seq))
            .header(
                "Authorization",
                self.key.authorization(&endpoint, &self.subject, now)?,
            )
            .body(body)
            .send()
            .await;
        let status = match response {
            Ok(response) => response.status().as_u16(),
            Err(error) => {
                tracing::debug!(%error, "push service unreachable");
                return Ok(Delivery::Retry);
            }
        };
        Ok(match status {
            200..=299 => Delivery::Sent,
            404 | 410 => Delivery::Gone,
            429 | 500..=599 => Delivery::Retry,
            _ => Delivery::Refused,
        })
    }
}

/// Why a subscription a browser gave cannot be pushed to, if it cannot: its endpoint
/// must be an https URL (http only to this machine, for development and tests) of at most
/// 2,048 characters, its keys a P-256 point and a 16-byte secret (base64url).
pub fn check_subscription(sub: &PushSubscription) -> Result<(), &'static str> {
    let endpoint = url::Url::parse(&sub.endpoint).map_err(|_| "endpoint is not a URL")?;
    let loopback = matches!(
        endpoint.host_str(),
        Some("127.0.0.1" | "localhost" | "[::1]")
    );
    let secure = endpoint.scheme() == "https" || (endpoint.scheme() == "http" && loopback);
    if !secure || sub.endpoint.len() > 2048 {
        return Err("endpoint must be an https URL of at most 2048 characters");
    }
    let probe = Payload {
        room_id: String::new(),
        seq: 0,
        title: String::new(),
        body: String::new(),
        url: String::new(),
        tag: String::new(),
    };
    encrypt(sub, &probe).map(drop).map_err(
        |_| "keys must be the browser's P-256 key (p256dh) and 16-byte auth secret, base64url",
    )
}

/// The payload encrypted for the subscription's browser (RFC 8291, `aes128gcm`).
fn encrypt(subscription: &PushSubscription, payload: &Payload) -> Result<Vec<u8>, PushError> {
    let decode = |text: &str, what| {
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| PushError::BadSubscription(what))
    };
    let public = decode(&subscription.p256dh, "p256dh")?;
    let public = p256::PublicKey::from_sec1_bytes(&public)
        .map_err(|_| PushError::BadSubscription("p256dh"))?;
    let auth: [u8; 16] = (decode(&subscription.auth, "auth")?.try_into())
        .map_err(|_| PushError::BadSubscription("auth"))?;
    let auth = web_push_native::Auth::from(auth);
    let message = serde_json::to_vec(payload).expect("payloads serialise");
    web_push_native::encrypt(message, &public, &auth).map_err(|e| PushError::Crypto(e.to_string()))
}

/// A push service replaces an undelivered push with a newer one of the same topic: a
/// retry of one message's push never shows twice. The room id's 16 bytes and the seq's 8,
/// base64url: 32 characters, the most RFC 8030 allows.
fn topic(room_id: &str, seq: i64) -> String {
    let room = uuid::Uuid::parse_str(room_id).unwrap_or_default();
    let mut bytes = room.as_bytes().to_vec();
    bytes.extend_from_slice(&seq.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}
