//! Rotated database credentials: new connections use them, open ones retire at the end
//! of their lifetime, and no query fails during the switch (real PostgreSQL).

use std::time::Duration;

use natter_core::store::Store;
use natter_testkit::database_url;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};

#[tokio::test]
async fn new_credentials_take_over_without_failing_a_query() {
    let admin_url = database_url();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (old_user, new_user) = (format!("natter_old_{id}"), format!("natter_new_{id}"));
    for user in [&old_user, &new_user] {
        let sql = format!("CREATE ROLE {user} LOGIN PASSWORD 'pw-{user}'");
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let server = admin_url.rsplit_once('@').unwrap().1;
    let url_for = |user: &str| format!("postgres://{user}:pw-{user}@{server}");

    let settings = natter_core::store::PoolSettings {
        max_lifetime: Duration::from_millis(500),
        ..natter_core::store::PoolSettings::new(2)
    };
    let store = Store::connect_with(&url_for(&old_user), settings)
        .await
        .unwrap();
    store.ping().await.unwrap();
    let pinger = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..60 {
                store
                    .ping()
                    .await
                    .expect("no query fails during the switch");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.use_url(&url_for(&new_user)).unwrap();
    pinger.await.unwrap();

    // Connections come and go with their lifetime: look while one is in use.
    let mut users = Vec::new();
    for _ in 0..20 {
        store.ping().await.unwrap();
        users = sessions_of(&mut admin, &old_user, &new_user).await;
        if !users.is_empty() {
            break;
        }
    }
    assert!(users.contains(&new_user), "{users:?}");
    assert!(
        !users.contains(&old_user),
        "old connections retired: {users:?}"
    );
    assert!(
        store.use_url("sqlite://x.db").is_err(),
        "the backend cannot change"
    );
    store.close().await;
}

async fn sessions_of(admin: &mut PgConnection, old: &str, new: &str) -> Vec<String> {
    sqlx::query("SELECT usename::text FROM pg_stat_activity WHERE usename IN ($1, $2)")
        .bind(old)
        .bind(new)
        .fetch_all(admin)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}
