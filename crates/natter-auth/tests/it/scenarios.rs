//! The auth scenarios, each written once and run over gRPC and JSON.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use natter_core::kv::MemoryKv;
use natter_core::secrets::Secrets;
use natter_core::time::now_secs;
use natter_core::token::{Denylist, JwkSet, TokenSigner, TokenVerifier};

use crate::api::{Failure, Kind};
use crate::server::Transport;

const PASSWORD: &str = "correct horse battery";

/// A username no other test uses (rate-limit counters in Redis are shared).
fn unique(base: &str) -> String {
    format!(
        "{base}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A client address no other test uses.
fn unique_ip() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2])
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn assert_refused(outcome: Result<impl std::fmt::Debug, Failure>, kind: Kind, says: &str) {
    match outcome {
        Err(failure) => {
            assert_eq!(failure.kind, kind, "{failure:?}");
            assert!(
                failure.message.contains(says),
                "{failure:?} should say {says:?}"
            );
        }
        Ok(value) => panic!("expected a {kind:?} refusal saying {says:?}, got {value:?}"),
    }
}

pub async fn registration_rules_and_duplicates(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("Alice");
    let email = format!("{}@example.org", unique("a"));
    let id = api.register(&name, PASSWORD, Some(&email)).await.unwrap();
    assert!(!id.is_empty());
    assert_refused(
        api.register(&name.to_uppercase(), PASSWORD, None).await,
        Kind::Conflict,
        "username",
    );
    assert_refused(
        api.register(&unique("other"), PASSWORD, Some(&email.to_uppercase()))
            .await,
        Kind::Conflict,
        "email",
    );
    assert_refused(
        api.register("ab", PASSWORD, None).await,
        Kind::Invalid,
        "3 to 32",
    );
    assert_refused(
        api.register(&"x".repeat(33), PASSWORD, None).await,
        Kind::Invalid,
        "3 to 32",
    );
    assert_refused(
        api.register("bad name", PASSWORD, None).await,
        Kind::Invalid,
        "only a-z",
    );
    assert_refused(
        api.register(&unique("p"), "short", None).await,
        Kind::Invalid,
        "8 to 256",
    );
    assert_refused(
        api.register(&unique("p"), &"x".repeat(257), None).await,
        Kind::Invalid,
        "8 to 256",
    );
    assert_refused(
        api.register(&unique("e"), PASSWORD, Some("not-an-email"))
            .await,
        Kind::Invalid,
        "email",
    );
}

pub async fn login_by_username_or_email(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("bob");
    let email = format!("{name}@Example.org");
    let id = api.register(&name, PASSWORD, Some(&email)).await.unwrap();
    let ip = unique_ip();
    let by_name = api
        .login(&name.to_uppercase(), PASSWORD, &ip)
        .await
        .unwrap();
    let by_email = api
        .login(&email.to_lowercase(), PASSWORD, &ip)
        .await
        .unwrap();
    assert_eq!(by_name.user_id, id);
    assert_eq!(by_email.user_id, id);
    assert_ne!(
        by_name.session_id, by_email.session_id,
        "each login is its own session"
    );
    assert_eq!(api.validate(&by_name.access).await.unwrap(), id);
    let claims = server
        .auth
        .verifier()
        .verify(&by_email.access)
        .await
        .unwrap();
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("natter", "natter")
    );
    assert_eq!(claims.exp - claims.iat, 900, "15-minute access tokens");
    assert!(!claims.jti.is_empty());
}

pub async fn login_failure_does_not_reveal_whether_the_user_exists(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("carol");
    api.register(&name, PASSWORD, None).await.unwrap();
    let ip = unique_ip();
    let wrong_password = api.login(&name, "wrong password!", &ip).await.unwrap_err();
    let no_such_user = api
        .login(&unique("nobody"), PASSWORD, &ip)
        .await
        .unwrap_err();
    let no_such_email = api
        .login("nobody@example.org", PASSWORD, &ip)
        .await
        .unwrap_err();
    assert_eq!(wrong_password.kind, Kind::Unauthenticated);
    assert_eq!(wrong_password, no_such_user, "same refusal either way");
    assert_eq!(wrong_password, no_such_email, "same refusal either way");
}

pub async fn refresh_rotates_the_pair(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("dave");
    api.register(&name, PASSWORD, None).await.unwrap();
    let first = api.login(&name, PASSWORD, &unique_ip()).await.unwrap();
    let second = api.refresh(&first.refresh).await.unwrap();
    let third = api.refresh(&second.refresh).await.unwrap();
    assert_ne!(first.refresh, second.refresh);
    assert_ne!(second.refresh, third.refresh);
    assert_ne!(first.access, second.access);
    assert_eq!(
        third.session_id, first.session_id,
        "rotation stays in the session"
    );
    assert_eq!(api.validate(&third.access).await.unwrap(), first.user_id);
    assert_refused(
        api.refresh("nrt_never-issued").await,
        Kind::Unauthenticated,
        "invalid refresh token",
    );
}

pub async fn register_can_open_a_session(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("erin");
    let tokens = api.register_with_session(&name, PASSWORD).await.unwrap();
    assert_eq!(api.validate(&tokens.access).await.unwrap(), tokens.user_id);
    let refreshed = api.refresh(&tokens.refresh).await.unwrap();
    assert_eq!(refreshed.session_id, tokens.session_id);
    let again = api.login(&name, PASSWORD, &unique_ip()).await.unwrap();
    assert_eq!(again.user_id, tokens.user_id, "the same account logs in");
    assert_refused(
        api.register_with_session(&name, PASSWORD).await,
        Kind::Conflict,
        "taken",
    );
}

pub async fn refresh_token_reuse_revokes_the_whole_session(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("erin");
    api.register(&name, PASSWORD, None).await.unwrap();
    let ip = unique_ip();
    let stolen = api.login(&name, PASSWORD, &ip).await.unwrap();
    let other_session = api.login(&name, PASSWORD, &ip).await.unwrap();
    let rotated = api.refresh(&stolen.refresh).await.unwrap();
    assert_refused(
        api.refresh(&stolen.refresh).await,
        Kind::Unauthenticated,
        "reused",
    );
    assert_refused(
        api.refresh(&rotated.refresh).await,
        Kind::Unauthenticated,
        "invalid refresh token",
    );
    assert_refused(
        api.validate(&rotated.access).await,
        Kind::Unauthenticated,
        "revoked",
    );
    assert_refused(
        api.validate(&stolen.access).await,
        Kind::Unauthenticated,
        "revoked",
    );
    api.validate(&other_session.access)
        .await
        .expect("other sessions are untouched");
    api.refresh(&other_session.refresh)
        .await
        .expect("other sessions are untouched");
}

pub async fn logout_revokes_access_and_refresh_tokens(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("frank");
    api.register(&name, PASSWORD, None).await.unwrap();
    let ip = unique_ip();
    let phone = api.login(&name, PASSWORD, &ip).await.unwrap();
    let laptop = api.login(&name, PASSWORD, &ip).await.unwrap();
    api.logout(Some(&phone.access), None).await.unwrap();
    assert_refused(
        api.validate(&phone.access).await,
        Kind::Unauthenticated,
        "revoked",
    );
    assert_refused(
        api.refresh(&phone.refresh).await,
        Kind::Unauthenticated,
        "invalid refresh token",
    );
    api.validate(&laptop.access)
        .await
        .expect("another session stays signed in");
    api.logout(None, Some(&laptop.refresh)).await.unwrap();
    assert_refused(
        api.validate(&laptop.access).await,
        Kind::Unauthenticated,
        "revoked",
    );
    assert_refused(
        api.refresh(&laptop.refresh).await,
        Kind::Unauthenticated,
        "invalid refresh token",
    );
    assert_refused(
        api.logout(Some("garbage"), None).await,
        Kind::Unauthenticated,
        "invalid token",
    );
    assert_refused(
        api.logout(None, Some("nrt_unknown")).await,
        Kind::Unauthenticated,
        "invalid refresh token",
    );
}

pub async fn expired_and_tampered_tokens_are_rejected(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("grace");
    let id = api.register(&name, PASSWORD, None).await.unwrap();
    let session = api.login(&name, PASSWORD, &unique_ip()).await.unwrap();
    let signer = TokenSigner::new(&server.keys, "natter", "natter", 900).unwrap();
    let expired = signer.sign(&id, &name, &session.session_id, now_secs() - 3600);
    assert_refused(
        api.validate(&expired.token).await,
        Kind::Unauthenticated,
        "expired",
    );

    let mut parts: Vec<String> = session.access.split('.').map(str::to_owned).collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    let forged = payload.replace(&id, "00000000-0000-0000-0000-000000000000");
    parts[1] = URL_SAFE_NO_PAD.encode(forged);
    assert_refused(
        api.validate(&parts.join(".")).await,
        Kind::Unauthenticated,
        "invalid token",
    );
    assert_refused(
        api.validate("not.a.jwt").await,
        Kind::Unauthenticated,
        "invalid token",
    );

    let stranger = Secrets::generate().jwt_keys;
    let foreign = TokenSigner::new(&stranger, "natter", "natter", 900).unwrap();
    let unknown = foreign.sign(&id, &name, &session.session_id, now_secs());
    assert_refused(
        api.validate(&unknown.token).await,
        Kind::Unauthenticated,
        "unknown key",
    );

    let wrong_audience = TokenSigner::new(&server.keys, "natter", "elsewhere", 900).unwrap();
    let elsewhere = wrong_audience.sign(&id, &name, &session.session_id, now_secs());
    assert_refused(
        api.validate(&elsewhere.token).await,
        Kind::Unauthenticated,
        "invalid token",
    );
}

pub async fn key_rotation_keeps_old_tokens_valid_until_expiry(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("heidi");
    let id = api.register(&name, PASSWORD, None).await.unwrap();
    let ip = unique_ip();
    let before = api.login(&name, PASSWORD, &ip).await.unwrap();
    let mut keys = server.keys.clone();
    let now = now_secs();
    keys.rotate(now, 900);
    server.auth.set_keys(&keys).unwrap();
    let after = api.login(&name, PASSWORD, &ip).await.unwrap();
    assert_ne!(
        kid_of(&before.access),
        kid_of(&after.access),
        "the new key signs"
    );
    assert_eq!(kid_of(&after.access), keys.active_kid);
    assert_eq!(
        api.validate(&before.access).await.unwrap(),
        id,
        "the old key still verifies"
    );
    assert_eq!(api.validate(&after.access).await.unwrap(), id);
    let jwks: JwkSet = serde_json::from_str(&api.jwks().await).unwrap();
    assert_eq!(jwks.keys.len(), 2, "both keys are published");
    // Once the retired key's tokens have all expired, rotation drops it.
    keys.rotate(now + 901, 900);
    server.auth.set_keys(&keys).unwrap();
    assert_refused(
        api.validate(&before.access).await,
        Kind::Unauthenticated,
        "unknown key",
    );
    assert_eq!(api.validate(&after.access).await.unwrap(), id);
}

pub async fn login_is_rate_limited_per_username_and_per_ip(t: Transport) {
    let server = t
        .start_with(|config| {
            config.auth.login_limit_per_username = 3;
            config.auth.login_limit_per_ip = 5;
        })
        .await;
    let api = &server.api;
    let name = unique("ivan");
    api.register(&name, PASSWORD, None).await.unwrap();
    for _ in 0..3 {
        let refused = api
            .login(&name, "wrong password!", &unique_ip())
            .await
            .unwrap_err();
        assert_eq!(refused.kind, Kind::Unauthenticated);
    }
    let limited = api.login(&name, PASSWORD, &unique_ip()).await.unwrap_err();
    assert_eq!(limited.kind, Kind::RateLimited, "{limited:?}");
    let retry = limited.retry_after.expect("a retry hint");
    assert!((1..=60).contains(&retry), "retry after {retry} s");

    let ip = unique_ip();
    for _ in 0..5 {
        let refused = api
            .login(&unique("nobody"), PASSWORD, &ip)
            .await
            .unwrap_err();
        assert_eq!(refused.kind, Kind::Unauthenticated);
    }
    let limited = api
        .login(&unique("someone"), PASSWORD, &ip)
        .await
        .unwrap_err();
    assert_eq!(limited.kind, Kind::RateLimited, "{limited:?}");
    assert!(limited.retry_after.is_some());
}

pub async fn published_keys_verify_issued_tokens(t: Transport) {
    let server = t.start().await;
    let api = &server.api;
    let name = unique("judy");
    let id = api.register(&name, PASSWORD, None).await.unwrap();
    let session = api.login(&name, PASSWORD, &unique_ip()).await.unwrap();
    let jwks_json = api.jwks().await;
    assert!(!jwks_json.contains("private_key") && !jwks_json.contains("\"d\""));
    let jwks: JwkSet = serde_json::from_str(&jwks_json).unwrap();
    // What another service does: verify locally from the published keys alone.
    let elsewhere = TokenVerifier::new(
        &jwks,
        "natter",
        "natter",
        Denylist::new(Arc::new(MemoryKv::default())),
    );
    let claims = elsewhere.verify(&session.access).await.unwrap();
    assert_eq!(claims.sub, id);
    assert_eq!(claims.name, name.to_lowercase());
    assert_eq!(claims.sid, session.session_id);
}

pub async fn parameter_change_rehashes_on_next_login(t: Transport) {
    let first = t.start().await;
    let name = unique("mallory");
    first.api.register(&name, PASSWORD, None).await.unwrap();
    let store = &first.test_store.store;
    let old_hash = store
        .user_by_login(&name)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(old_hash.contains("m=256,t=1,p=1"), "{old_hash}");
    let second = t
        .restart(&first, |config| config.auth.argon2.memory_kib = 512)
        .await;
    second
        .api
        .login(&name, PASSWORD, &unique_ip())
        .await
        .unwrap();
    let new_hash = store
        .user_by_login(&name)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(new_hash.contains("m=512,t=1,p=1"), "{new_hash}");
    second
        .api
        .login(&name, PASSWORD, &unique_ip())
        .await
        .expect("the new hash verifies");
}
