//! PostgreSQL credentials leased from Vault's database secrets engine (OpenBao's built-in
//! PostgreSQL plugin against the test server): they work, the lease is renewed while
//! Vault extends it, and new credentials replace it when its maximum lifetime nears.

use std::time::Duration;

use natter_core::secrets::SecretSource;
use natter_core::store::Store;
use natter_core::vault::{DynamicCredentials, VaultSource};
use natter_testkit::{database_engine, database_url, vault_addr, vault_config};

use crate::vault::bootstrapped;

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
    let mount = database_engine(&database_url(), 3, 5).await;
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
