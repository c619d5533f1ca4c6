//! The Vault secret source against a real Vault API server (OpenBao dev mode): token and
//! service-account (jwt method) login, every secret read, missing secrets, rotations,
//! token renewal and Vault going away and coming back.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use natter_core::config::{VaultAuthMethod, VaultConfig};
use natter_core::secrets::{
    ConnectionSecret, SecretSource, SecretsError, load_at_start, rotate_cookie_key,
    rotate_signing_key, watch,
};
use natter_core::shutdown::Shutdown;
use natter_core::time::now_secs;
use natter_core::vault::{VaultSource, bootstrap};
use natter_testkit::{Proxy, root_api, vault_addr, vault_config, vault_root_token};
use serde_json::json;

pub(crate) async fn bootstrapped(
    config: &VaultConfig,
) -> (VaultSource, natter_core::secrets::Secrets) {
    let source = VaultSource::connect(config).await.expect("token login");
    let written = bootstrap(
        &source,
        Some(ConnectionSecret::url("postgres://natter:pw@db/natter")),
        Some(ConnectionSecret::url("redis://:pw@redis:6379")),
        false,
    )
    .await
    .expect("bootstrap");
    (source, written)
}

#[tokio::test]
async fn token_login_reads_every_secret() {
    let config = vault_config(&vault_addr());
    let (_, written) = bootstrapped(&config).await;
    let reader = VaultSource::connect(&config).await.unwrap();
    let read = reader.load().await.unwrap();
    assert_eq!(read, written);
    assert!(read.database.is_some() && read.redis.is_some());
    let mut app = natter_core::config::Config::default();
    read.apply_to(&mut app).unwrap();
    assert_eq!(app.database_url(), "postgres://natter:pw@db/natter");
}

#[tokio::test]
async fn bootstrap_does_not_overwrite_without_force() {
    let config = vault_config(&vault_addr());
    let (source, first) = bootstrapped(&config).await;
    let err = bootstrap(&source, None, None, false).await.unwrap_err();
    assert!(
        err.to_string().contains("/jwt` is invalid: already exists"),
        "{err}"
    );
    let forced = bootstrap(&source, None, None, true).await.unwrap();
    assert_ne!(forced.jwt_keys.active_kid, first.jwt_keys.active_kid);
    let reader = VaultSource::connect(&config).await.unwrap();
    assert_eq!(reader.load().await.unwrap().jwt_keys, forced.jwt_keys);
}

#[tokio::test]
async fn a_missing_secret_fails_at_once_naming_it() {
    let config = vault_config(&vault_addr());
    let source = VaultSource::connect(&config).await.unwrap();
    let err = load_at_start(&source, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretsError::Missing(_)), "{err:?}");
    let expected = format!("secret `secret/{}/jwt` is missing", config.kv_path);
    assert_eq!(err.to_string(), expected);
}

#[tokio::test]
async fn a_secret_of_the_wrong_shape_is_named() {
    let config = vault_config(&vault_addr());
    let (source, _) = bootstrapped(&config).await;
    let path = format!("secret/data/{}/cookie", config.kv_path);
    root_api(
        reqwest::Method::POST,
        &path,
        json!({"data": {"current": "c2hvcnQ="}}),
    )
    .await;
    let _ = source; // the next reader sees the new version
    let reader = VaultSource::connect(&config).await.unwrap();
    let err = reader.load().await.unwrap_err().to_string();
    assert!(
        err.contains(&config.kv_path) && err.contains("cookie"),
        "{err}"
    );
    assert!(err.contains("must be base64 of 32 bytes"), "{err}");
}

#[tokio::test]
async fn a_bad_token_is_refused_with_a_clear_error() {
    let mut config = vault_config(&vault_addr());
    config.token = Some(natter_core::secret::Secret::new("not-a-token".into()));
    let err = VaultSource::connect(&config).await.unwrap_err().to_string();
    assert!(err.contains("VAULT_TOKEN") && err.contains("403"), "{err}");
    assert!(
        !err.contains("not-a-token"),
        "the token never appears: {err}"
    );
}

#[tokio::test]
async fn service_account_login_through_the_jwt_method() {
    let config = vault_config(&vault_addr());
    bootstrapped(&config).await;
    let account = ServiceAccount::set_up(&config, "4s", "8s").await;
    let source = VaultSource::connect(&account.config)
        .await
        .expect("jwt login");
    assert_eq!(source.load().await.unwrap().jwt_keys, {
        let root = VaultSource::connect(&config).await.unwrap();
        root.load().await.unwrap().jwt_keys
    });
    let ttl = source
        .vault()
        .token_ttl_secs()
        .expect("a login token expires");
    assert!((1..=4).contains(&ttl), "ttl {ttl}");

    // A token for another subject is refused, and the error says by whom and why.
    let stranger = account.token_file_for("system:serviceaccount:other:intruder");
    let mut wrong = account.config.clone();
    wrong.token_file = stranger;
    let err = VaultSource::connect(&wrong).await.unwrap_err().to_string();
    assert!(err.contains("jwt auth at") && err.contains("role"), "{err}");
}

#[tokio::test]
async fn login_token_is_renewed_and_replaced_past_its_max_ttl() {
    let config = vault_config(&vault_addr());
    bootstrapped(&config).await;
    let account = ServiceAccount::set_up(&config, "2s", "3s").await;
    let source = VaultSource::connect(&account.config).await.unwrap();
    // Well past the token's maximum lifetime, reads still work: the client renewed, then
    // logged in again.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        source.load().await.expect("reads keep working");
        let ttl = source.vault().token_ttl_secs().unwrap();
        assert!(ttl >= 0, "token expired: {ttl}");
    }
}

#[tokio::test]
async fn rotations_are_seen_and_only_changed_secrets_reread() {
    let config = vault_config(&vault_addr());
    let (admin, written) = bootstrapped(&config).await;
    let reader = VaultSource::connect(&config).await.unwrap();
    reader.load().await.unwrap();
    // jwt, cookie, database, redis, vapid.
    assert_eq!(reader.data_reads(), 5);
    reader.load().await.unwrap();
    assert_eq!(
        reader.data_reads(),
        5,
        "unchanged versions are not read again"
    );

    let rotated = rotate_signing_key(&admin, 3600).await.unwrap();
    let seen = reader.load().await.unwrap();
    assert_eq!(reader.data_reads(), 6, "only the rotated secret is read");
    assert_eq!(seen.jwt_keys.active_kid, rotated.jwt_keys.active_kid);
    assert_ne!(seen.jwt_keys.active_kid, written.jwt_keys.active_kid);
    let old = seen
        .jwt_keys
        .keys
        .iter()
        .find(|k| k.kid == written.jwt_keys.active_kid);
    assert!(
        old.is_some_and(|k| k.retired_at.is_some()),
        "the old key still verifies"
    );
}

#[tokio::test]
async fn cookie_rotation_keeps_old_cookies_open_for_the_grace_period() {
    let config = vault_config(&vault_addr());
    let (admin, written) = bootstrapped(&config).await;
    let sealed = written.cookie_keys.seal(b"session-1").unwrap();
    rotate_cookie_key(&admin, 600).await.unwrap();
    let reader = VaultSource::connect(&config).await.unwrap();
    let keys = reader.load().await.unwrap().cookie_keys;
    assert_ne!(keys.current, written.cookie_keys.current);
    let now = now_secs();
    assert_eq!(keys.open(&sealed, now).unwrap(), b"session-1");
    assert!(
        keys.open(&sealed, now + 601).is_none(),
        "not after the grace period"
    );
    let fresh = keys.seal(b"session-2").unwrap();
    assert!(written.cookie_keys.open(&fresh, now).is_none());
}

#[tokio::test]
async fn vault_going_away_keeps_loaded_secrets_and_recovery_brings_rotations() {
    let proxy = Proxy::start(vault_addr().trim_start_matches("http://")).await;
    let direct = vault_config(&vault_addr());
    let (admin, written) = bootstrapped(&direct).await;
    let mut through_proxy = direct.clone();
    through_proxy.addr = Some(proxy.url());
    let source: Arc<dyn SecretSource> =
        Arc::new(VaultSource::connect(&through_proxy).await.unwrap());
    let (_trigger, shutdown) = Shutdown::new();
    let initial = source.load().await.unwrap();
    let mut current = watch(
        source.clone(),
        initial,
        Duration::from_millis(100),
        shutdown,
    );

    proxy.set_open(false);
    let err = source.load().await.unwrap_err();
    assert!(matches!(err, SecretsError::Unavailable(_)), "{err:?}");
    let rotated = rotate_signing_key(&admin, 3600).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        current.borrow_and_update().jwt_keys,
        written.jwt_keys,
        "kept while down"
    );

    proxy.set_open(true);
    tokio::time::timeout(Duration::from_secs(10), current.changed())
        .await
        .expect("the rotation arrives after recovery")
        .unwrap();
    assert_eq!(current.borrow().jwt_keys, rotated.jwt_keys);
}

#[tokio::test]
async fn an_unreachable_vault_at_start_is_retried_then_reported() {
    let proxy = Proxy::start(vault_addr().trim_start_matches("http://")).await;
    proxy.set_open(false);
    let mut config = vault_config(&proxy.url());
    config.start_deadline_secs = 1;
    let err = VaultSource::connect(&config).await.unwrap_err().to_string();
    assert!(err.contains("unreachable for 1s"), "{err}");

    // Coming up while start-up still retries is fine.
    config.start_deadline_secs = 20;
    let opener = proxy.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        opener.set_open(true);
    });
    VaultSource::connect(&config)
        .await
        .expect("connects once Vault is back");
}

#[test]
fn debug_output_of_vault_config_and_client_hides_the_token() {
    let config = vault_config("http://127.0.0.1:1");
    let debug = format!("{config:?}");
    assert!(!debug.contains(&vault_root_token()), "{debug}");
    let login = natter_core::vault::Login::from_config(&config).unwrap();
    assert!(!format!("{login:?}").contains(&vault_root_token()));
}

/// A jwt auth mount trusting a test key, a role bound to one service account, a policy
/// reading one KV path, and a token file as a pod would have it.
struct ServiceAccount {
    config: VaultConfig,
    key: SigningKey,
    dir: tempfile::TempDir,
}

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const SUBJECT: &str = "system:serviceaccount:natter:natter";

impl ServiceAccount {
    async fn set_up(base: &VaultConfig, ttl: &str, max_ttl: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mount = format!("jwt-{id}");
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        root_api(
            reqwest::Method::POST,
            &format!("sys/auth/{mount}"),
            json!({"type": "jwt"}),
        )
        .await;
        root_api(
            reqwest::Method::POST,
            &format!("auth/{mount}/config"),
            json!({"jwt_validation_pubkeys": [public_pem(&key)], "bound_issuer": ISSUER}),
        )
        .await;
        let policy = format!(
            "path \"secret/data/{0}/*\" {{ capabilities = [\"read\"] }}\n\
             path \"secret/metadata/{0}/*\" {{ capabilities = [\"read\"] }}",
            base.kv_path
        );
        root_api(
            reqwest::Method::PUT,
            &format!("sys/policies/acl/natter-{id}"),
            json!({"policy": policy}),
        )
        .await;
        root_api(
            reqwest::Method::POST,
            &format!("auth/{mount}/role/natter"),
            json!({
                "role_type": "jwt",
                "bound_audiences": ["vault"],
                "bound_subject": SUBJECT,
                "user_claim": "sub",
                "token_policies": [format!("natter-{id}")],
                "token_ttl": ttl,
                "token_max_ttl": max_ttl,
            }),
        )
        .await;
        let mut account = Self {
            config: base.clone(),
            key,
            dir: tempfile::tempdir().unwrap(),
        };
        account.config.auth_method = VaultAuthMethod::Jwt;
        account.config.token = None;
        account.config.auth_mount = Some(mount);
        account.config.role = Some("natter".into());
        account.config.token_file = account.token_file_for(SUBJECT);
        account
    }

    /// A projected service-account token for `subject`, signed by the trusted key.
    fn token_file_for(&self, subject: &str) -> std::path::PathBuf {
        let now = now_secs();
        let claims = json!({
            "iss": ISSUER, "sub": subject, "aud": ["vault"],
            "iat": now, "nbf": now, "exp": now + 3600,
            "kubernetes.io": {"namespace": "natter", "serviceaccount": {"name": "natter"}},
        });
        let der = self.key.to_pkcs8_der().unwrap();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap();
        let path = self.dir.path().join(subject.replace(':', "_"));
        std::fs::write(&path, token).unwrap();
        path
    }
}

/// The Ed25519 public key as a PEM SubjectPublicKeyInfo (RFC 8410).
fn public_pem(key: &SigningKey) -> String {
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(&key.verifying_key().to_bytes());
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}
