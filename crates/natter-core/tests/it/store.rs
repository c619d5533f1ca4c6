//! The store conformance suite: every case runs on a fresh PostgreSQL database and on a
//! fresh SQLite file, and must behave the same on both.

use natter_core::store::{
    Backend, NewSession, NewUser, RotateRequest, Rotation, Store, StoreError,
};
use natter_testkit::store;

const DAY_MS: i64 = 86_400_000;

fn user<'a>(username: &'a str, email: Option<&'a str>) -> NewUser<'a> {
    NewUser {
        username,
        email,
        password_hash: "$argon2id$placeholder",
    }
}

async fn open_session(store: &Store, user_id: &str, token: &[u8], now: i64) -> String {
    store
        .create_session(NewSession {
            user_id,
            user_agent: "test-agent",
            ip: "192.0.2.1",
            token_hash: token,
            expires_at: now + DAY_MS,
            now,
        })
        .await
        .unwrap()
}

fn rotate<'a>(old: &'a [u8], new: &'a [u8], now: i64) -> RotateRequest<'a> {
    RotateRequest {
        old_hash: old,
        new_hash: new,
        expires_at: now + DAY_MS,
        user_agent: "agent-2",
        ip: "192.0.2.2",
        now,
    }
}

async fn users_are_found_by_id_username_and_email(backend: Backend) {
    let t = store(backend).await;
    let created = t
        .store
        .create_user(user("alice", Some("Alice@Example.org")))
        .await
        .unwrap();
    let by_name = t.store.user_by_login("ALICE").await.unwrap().unwrap();
    let by_email = t
        .store
        .user_by_login("alice@example.ORG")
        .await
        .unwrap()
        .unwrap();
    let by_id = t.store.user_by_id(&created.id).await.unwrap().unwrap();
    assert_eq!(by_name, created);
    assert_eq!(by_email, created);
    assert_eq!(by_id, created);
    assert!(t.store.user_by_login("bob").await.unwrap().is_none());
    assert!(
        t.store
            .user_by_login("nobody@example.org")
            .await
            .unwrap()
            .is_none()
    );
}

async fn duplicates_are_conflicts_naming_the_field(backend: Backend) {
    let t = store(backend).await;
    t.store
        .create_user(user("alice", Some("a@example.org")))
        .await
        .unwrap();
    match t.store.create_user(user("ALICE", None)).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains("username"), "{what}"),
        other => panic!("expected a username conflict, got {other:?}"),
    }
    match t
        .store
        .create_user(user("bob", Some("A@EXAMPLE.ORG")))
        .await
    {
        Err(StoreError::Conflict(what)) => assert!(what.contains("email"), "{what}"),
        other => panic!("expected an email conflict, got {other:?}"),
    }
    t.store.create_user(user("carol", None)).await.unwrap();
    t.store
        .create_user(user("dave", None))
        .await
        .expect("many users without email");
}

async fn password_hash_is_replaced(backend: Backend) {
    let t = store(backend).await;
    let created = t.store.create_user(user("alice", None)).await.unwrap();
    t.store
        .set_password_hash(&created.id, "$argon2id$new")
        .await
        .unwrap();
    let read = t.store.user_by_id(&created.id).await.unwrap().unwrap();
    assert_eq!(read.password_hash, "$argon2id$new");
}

async fn rotation_then_reuse_revokes_the_family(backend: Backend) {
    let t = store(backend).await;
    let alice = t.store.create_user(user("alice", None)).await.unwrap();
    let now = 1_000_000;
    let session = open_session(&t.store, &alice.id, b"token-1", now).await;
    let first = t
        .store
        .rotate_refresh(rotate(b"token-1", b"token-2", now + 1))
        .await
        .unwrap();
    assert_eq!(
        first,
        Rotation::Rotated {
            session_id: session.clone(),
            user_id: alice.id.clone()
        }
    );
    let reuse = t
        .store
        .rotate_refresh(rotate(b"token-1", b"token-3", now + 2))
        .await
        .unwrap();
    assert_eq!(
        reuse,
        Rotation::Reused {
            session_id: session.clone()
        }
    );
    let after = t
        .store
        .rotate_refresh(rotate(b"token-2", b"token-4", now + 3))
        .await
        .unwrap();
    assert_eq!(
        after,
        Rotation::Revoked,
        "the family is revoked by the reuse"
    );
    let listed = t.store.sessions_of_user(&alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(now + 2));
    assert_eq!(listed[0].user_agent, "agent-2", "last use is recorded");
}

async fn expired_and_unknown_tokens_are_refused(backend: Backend) {
    let t = store(backend).await;
    let alice = t.store.create_user(user("alice", None)).await.unwrap();
    let now = 1_000_000;
    open_session(&t.store, &alice.id, b"old", now).await;
    let late = now + DAY_MS + 1;
    assert_eq!(
        t.store
            .rotate_refresh(rotate(b"old", b"new", late))
            .await
            .unwrap(),
        Rotation::Expired
    );
    assert_eq!(
        t.store
            .rotate_refresh(rotate(b"never-issued", b"x", now))
            .await
            .unwrap(),
        Rotation::Unknown
    );
}

async fn revocation_is_reported_once_and_listed(backend: Backend) {
    let t = store(backend).await;
    let alice = t.store.create_user(user("alice", None)).await.unwrap();
    let first = open_session(&t.store, &alice.id, b"a", 10).await;
    let second = open_session(&t.store, &alice.id, b"b", 20).await;
    assert_eq!(
        t.store.session_of_token(b"a").await.unwrap(),
        Some(first.clone())
    );
    assert!(t.store.revoke_session(&first, "logout", 30).await.unwrap());
    assert!(!t.store.revoke_session(&first, "logout", 31).await.unwrap());
    let listed = t.store.sessions_of_user(&alice.id).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, vec![second, first], "newest first");
    assert_eq!(
        t.store
            .rotate_refresh(rotate(b"a", b"c", 40))
            .await
            .unwrap(),
        Rotation::Revoked
    );
}

async fn concurrent_rotation_has_one_winner(backend: Backend) {
    let t = store(backend).await;
    let alice = t.store.create_user(user("alice", None)).await.unwrap();
    open_session(&t.store, &alice.id, b"shared", 100).await;
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = t.store.clone();
            tokio::spawn(async move {
                let new = [b'n', i];
                store
                    .rotate_refresh(rotate(b"shared", &new, 200))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotated = 0;
    for task in tasks {
        match task.await.unwrap() {
            Rotation::Rotated { .. } => rotated += 1,
            Rotation::Reused { .. } | Rotation::Revoked => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1, "exactly one presenter of the same token wins");
}

async fn migrations_are_idempotent(backend: Backend) {
    let t = store(backend).await;
    t.store.migrate().await.unwrap();
    t.store.ping().await.unwrap();
}

conformance!(
    users_are_found_by_id_username_and_email,
    duplicates_are_conflicts_naming_the_field,
    password_hash_is_replaced,
    rotation_then_reuse_revokes_the_family,
    expired_and_unknown_tokens_are_refused,
    revocation_is_reported_once_and_listed,
    concurrent_rotation_has_one_winner,
    migrations_are_idempotent,
);

/// A migrated store of one pooled connection on a fresh PostgreSQL database, and a
/// connection of the test's own to that database.
async fn postgres_and_admin() -> (Store, sqlx::PgConnection) {
    use sqlx::Connection;
    let url = natter_testkit::fresh_postgres_url().await;
    let store = Store::connect(&url, 1).await.unwrap();
    store.migrate().await.unwrap();
    let admin = sqlx::PgConnection::connect(&url).await.unwrap();
    (store, admin)
}

/// A pooled PostgreSQL connection cut while it sat idle (a restart, a network cut) is
/// pinged before it is used again, and replaced: the first call after the outage is
/// answered.
#[tokio::test]
async fn a_postgres_connection_cut_while_idle_is_replaced_before_the_next_call() {
    let (store, mut admin) = postgres_and_admin().await;
    store.ping().await.unwrap();
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(cut, [(true,)], "the pool's one connection was cut");
    // Idle long enough to be pinged before use.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    store.ping().await.expect("the first call after the cut");
}

/// Room search on PostgreSQL never scans a pending list: the trigram index takes new
/// rooms in place (GIN `fastupdate` off), so a search costs the same before and after a
/// vacuum.
#[tokio::test]
async fn the_room_search_index_takes_new_rooms_in_place() {
    let (_store, mut admin) = postgres_and_admin().await;
    let options: (Option<Vec<String>>,) =
        sqlx::query_as("SELECT reloptions FROM pg_class WHERE relname = 'rooms_name_trgm_idx'")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(options.0, Some(vec!["fastupdate=off".to_owned()]));
}

/// SQLite's commits leave the log to the checkpointer: past SQLite's own threshold of
/// 1,000 pages, every frame is still in the log until a checkpoint copies it over.
#[tokio::test]
async fn sqlite_commits_leave_their_log_to_the_checkpointer() {
    let t = store(Backend::Sqlite).await;
    for i in 0..600 {
        let name = format!("user{i}");
        t.store.create_user(user(&name, None)).await.unwrap();
    }
    let first = t.store.checkpoint().await.unwrap().unwrap();
    assert!(first.log > 1_000, "no commit checkpointed: {first:?}");
    assert_eq!(first.copied, first.log, "nothing else reads or writes");
    let found = t.store.user_by_login("user599").await.unwrap();
    assert!(found.is_some(), "the checkpoint loses nothing");
}

/// PostgreSQL has no log of the store's to checkpoint.
#[tokio::test]
async fn postgres_has_no_log_to_checkpoint() {
    let t = store(Backend::Postgres).await;
    assert_eq!(t.store.checkpoint().await.unwrap(), None);
}
