//! Vault for tests: the throwaway OpenBao dev server `cargo xtask test` starts
//! (VAULT_ADDR, VAULT_TOKEN) and a config per test.

use natter_core::config::{VaultAuthMethod, VaultConfig};
use natter_core::secret::Secret;
use serde_json::json;

/// The Vault server's address; panics with instructions when unset.
pub fn vault_addr() -> String {
    std::env::var("VAULT_ADDR").unwrap_or_else(|_| {
        panic!("VAULT_ADDR is not set: run the tests with `cargo xtask test`, which starts OpenBao")
    })
}

/// The dev server's root token.
pub fn vault_root_token() -> String {
    std::env::var("VAULT_TOKEN").unwrap_or_else(|_| {
        panic!(
            "VAULT_TOKEN is not set: run the tests with `cargo xtask test`, which starts OpenBao"
        )
    })
}

/// A database secrets engine at a fresh mount whose role `natter` creates users of the
/// PostgreSQL server of `database_url` (reading and writing every table) that live
/// `ttl_secs`, at most `max_ttl_secs`; returns the mount.
pub async fn database_engine(database_url: &str, ttl_secs: u64, max_ttl_secs: u64) -> String {
    let mount = format!("database-{}", uuid::Uuid::new_v4().simple());
    root_api(
        reqwest::Method::POST,
        &format!("sys/mounts/{mount}"),
        json!({"type": "database"}),
    )
    .await;
    root_api(
        reqwest::Method::POST,
        &format!("{mount}/config/pg"),
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("{database_url}?sslmode=disable"),
            "allowed_roles": "natter",
        }),
    )
    .await;
    root_api(
        reqwest::Method::POST,
        &format!("{mount}/roles/natter"),
        json!({
            "db_name": "pg",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                "GRANT pg_read_all_data, pg_write_all_data TO \"{{name}}\";",
            ],
            "default_ttl": format!("{ttl_secs}s"),
            "max_ttl": format!("{max_ttl_secs}s"),
        }),
    )
    .await;
    mount
}

/// Calls the Vault API at `path` with `body` as root (test set-up only).
pub async fn root_api(method: reqwest::Method, path: &str, body: serde_json::Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}/v1/{path}", vault_addr()))
        .header("X-Vault-Token", vault_root_token())
        .json(&body)
        .send()
        .await
        .expect("Vault answers");
    let status = response.status();
    assert!(
        status.is_success(),
        "{path}: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

/// Token login to `addr` with the root token, secrets under a fresh path of `secret/`.
pub fn vault_config(addr: &str) -> VaultConfig {
    VaultConfig {
        addr: Some(addr.into()),
        auth_method: VaultAuthMethod::Token,
        token: Some(Secret::new(vault_root_token())),
        auth_mount: None,
        role: None,
        token_file: "/nonexistent".into(),
        kv_mount: "secret".into(),
        kv_path: format!("natter-test/{}", uuid::Uuid::new_v4().simple()),
        database_path: None,
        redis_path: None,
        smtp_path: None,
        database_role: None,
        database_mount: "database".into(),
        start_deadline_secs: 5,
    }
}
