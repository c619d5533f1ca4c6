//! PostgreSQL credentials leased from Vault's database secrets engine (OpenBao's built-in
//! PostgreSQL plugin against the test server): they work, the lease is renewed while
//! Vault extends it, and new credentials replace it when its maximum lifetime nears.

use std::time::Duration;

use natter_core::secrets::SecretSource;
use natter_core::store::Store;
use natter_core::vault::{DynamicCredentials, VaultSource};
use natter_testkit::{database_url, vault_addr, vault_config};
use serde_json::json;

use crate::vault::{bootstrapped, root_api};

/// A database secrets engine at a fresh mount whose role `natter` makes PostgreSQL roles
/// living `ttl` seconds, at most `max_ttl`.
async fn engine(ttl: u64, max_ttl: u64) -> String {
    let mount = format!("database-{}", uuid::Uuid::new_v4().simple());
    root_api(
        reqwest::Method::POST,
        &format!("sys/mounts/{mount}"),
        json!({"type": "database"}),
    )
    .await;
    let server = database_url();
    root_api(
        reqwest::Method::POST,
        &format!("{mount}/config/pg"),
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("{server}?sslmode=disable"),
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
            "default_ttl": format!("{ttl}s"),
            "max_ttl": format!("{max_ttl}s"),
        }),
    )
    .await;
    mount
}

/// Connects to the test server as `username`/`password` and runs a query.
async fn works(username: &str, password: &str) -> Result<(), String> {
    let mut url = url::Url::parse(&database_url()).unwrap();
    url.set_username(username).unwrap();
    url.set_password(Some(password)).unwrap();
    let store = Store::connect(url.as_str(), 1)
        .await
        .map_err(|e| e.to_string())?;
    store.ping().await.map_err(|e| e.to_string())?;
    store.close().await;
    Ok(())
}

fn credentials(source_secrets: &natter_core::secrets::Secrets) -> (String, String) {
    let database = source_secrets
        .database
        .as_ref()
        .expect("leased credentials");
    let username = database.username.clone().expect("a user name");
    let password = database
        .password
        .as_ref()
        .expect("a password")
        .expose()
        .clone();
    (username, password)
}

#[tokio::test]
async fn leased_credentials_are_renewed_then_replaced_near_their_maximum() {
    let mount = engine(3, 5).await;
    let config = vault_config(&vault_addr());
    bootstrapped(&config).await;
    let source = VaultSource::connect(&config)
        .await
        .unwrap()
        .with_dynamic_database(DynamicCredentials::new(&mount, "natter"));

    let first = credentials(&source.load().await.unwrap());
    works(&first.0, &first.1)
        .await
        .expect("leased credentials log in");
    assert_eq!(
        credentials(&source.load().await.unwrap()),
        first,
        "held while fresh"
    );

    // Past two thirds of the 3 s lease: renewed (Vault still has 3 s before the 5 s cap).
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(
        credentials(&source.load().await.unwrap()),
        first,
        "renewed, same user"
    );

    // Past two thirds again: Vault can extend it by under a third of 3 s: new credentials.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let second = credentials(&source.load().await.unwrap());
    assert_ne!(second.0, first.0, "a new user replaces the expiring one");
    works(&second.0, &second.1)
        .await
        .expect("new credentials log in");
}
