//! Conformance cases for rooms, members, messages and profiles (PostgreSQL and SQLite).

use std::collections::BTreeSet;

use natter_core::store::{
    Backend, HistoryOrder, NewMessage, NewUser, ProfileUpdate, Role, RoomKind, Store, StoreError,
};
use natter_testkit::store;

use crate::user;

async fn post(store: &Store, room: &str, sender: &str, client_id: &str) -> i64 {
    let new = NewMessage::text(room, sender, client_id, "hello", 1);
    store.post_message(new).await.unwrap().message.seq
}

async fn public_names_are_unique_case_insensitively(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    t.store
        .create_room(RoomKind::Public, "Lobby", &alice)
        .await
        .unwrap();
    match t.store.create_room(RoomKind::Public, "LOBBY", &alice).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains("name_key"), "{what}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    t.store
        .create_room(RoomKind::Group, "Lobby", &alice)
        .await
        .expect("groups may share names");
    let room = t
        .store
        .create_room(RoomKind::Group, "Lobby", &alice)
        .await
        .unwrap();
    assert_eq!(
        t.store.role(&room.id, &alice).await.unwrap(),
        Some(Role::Owner)
    );
}

async fn case_is_folded_beyond_ascii_alike_on_every_backend(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let ecole = t
        .store
        .create_room(RoomKind::Public, "ÉCOLE x", &alice)
        .await
        .unwrap();
    match t
        .store
        .create_room(RoomKind::Public, "école x", &alice)
        .await
    {
        Err(StoreError::Conflict(what)) => assert!(what.contains("name_key"), "{what}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let found = t.store.public_rooms(Some("école"), None, 10).await.unwrap();
    let ids: Vec<&str> = found.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [ecole.id.as_str()]);
    t.store.rename_room(&ecole.id, "Straße").await.unwrap();
    let found = t
        .store
        .public_rooms(Some("STRASSE"), None, 10)
        .await
        .unwrap();
    assert!(
        found.items.is_empty(),
        "folding is lower-casing, not ß → ss"
    );
    let found = t
        .store
        .public_rooms(Some("STRAßE"), None, 10)
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1, "renaming refolds the key");

    let new = NewUser {
        username: "elodie",
        email: Some("Élodie@Example.org"),
        password_hash: "$argon2id$x",
    };
    let elodie = t.store.create_user(new).await.unwrap();
    let by_email = t.store.user_by_login("élodie@example.ORG").await.unwrap();
    assert_eq!(by_email.map(|u| u.id), Some(elodie.id));
    let twin = NewUser {
        username: "elodie2",
        email: Some("élodie@example.org"),
        password_hash: "$argon2id$x",
    };
    match t.store.create_user(twin).await {
        Err(StoreError::Conflict(what)) => assert!(what.contains("email"), "{what}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn migrating_folds_the_keys_sql_could_not(backend: Backend) {
    use sqlx::Connection;
    let t = store(backend).await;
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    // A room from before the key existed, as the migration leaves non-ASCII names.
    sqlx::query(
        "INSERT INTO rooms (id, kind, name, created_at) VALUES ('old', 'public', 'ÉTÉ', 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    t.store.migrate().await.unwrap();
    let found = t.store.public_rooms(Some("été"), None, 10).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].id, "old");
}

async fn direct_rooms_are_unique_per_pair_under_concurrency(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = t.store.clone();
            let (a, b) = if i % 2 == 0 {
                (alice.clone(), bob.clone())
            } else {
                (bob.clone(), alice.clone())
            };
            tokio::spawn(async move { store.open_direct(&a, &b).await.unwrap().id })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "one direct room per pair");
    let id = ids.into_iter().next().unwrap();
    let members = t.store.members(&id).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(
        t.store.room(&id).await.unwrap().unwrap().kind,
        RoomKind::Direct
    );
    // Each person's room list names the room after the other one; a group has no peer.
    t.store
        .create_room(RoomKind::Group, "g", &alice)
        .await
        .unwrap();
    let peers = |page: natter_core::store::Page<natter_core::store::MyRoom>| {
        let mut peers: Vec<_> = page.items.into_iter().map(|r| r.peer).collect();
        peers.sort();
        peers
    };
    let alices = t.store.rooms_of_user(&alice, None, 10).await.unwrap();
    assert_eq!(peers(alices), [None, Some("bob".to_owned())]);
    let bobs = t.store.rooms_of_user(&bob, None, 10).await.unwrap();
    assert_eq!(peers(bobs), [Some("alice".to_owned())]);
}

async fn search_treats_wildcards_literally_and_pages_stably(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    for name in [
        "100% fun",
        "1000 fun",
        "a_b",
        "axb",
        "back\\slash",
        "backslash",
    ] {
        t.store
            .create_room(RoomKind::Public, name, &alice)
            .await
            .unwrap();
    }
    let names = |page: natter_core::store::Page<natter_core::store::RoomRecord>| -> Vec<String> {
        page.items.into_iter().map(|r| r.name.unwrap()).collect()
    };
    assert_eq!(
        names(t.store.public_rooms(Some("0%"), None, 10).await.unwrap()),
        ["100% fun"]
    );
    assert_eq!(
        names(t.store.public_rooms(Some("A_B"), None, 10).await.unwrap()),
        ["a_b"]
    );
    assert_eq!(
        names(t.store.public_rooms(Some("k\\s"), None, 10).await.unwrap()),
        ["back\\slash"]
    );
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = t
            .store
            .public_rooms(None, cursor.as_deref(), 4)
            .await
            .unwrap();
        cursor = page.next.clone();
        seen.extend(names(page));
        if cursor.is_none() {
            break;
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(seen, sorted, "every room once, in name order");
    assert!(matches!(
        t.store.public_rooms(None, Some("not-a-cursor!"), 4).await,
        Err(StoreError::InvalidCursor)
    ));
}

async fn sequences_have_no_gaps_and_retries_are_idempotent(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let room = t
        .store
        .create_room(RoomKind::Group, "g", &alice)
        .await
        .unwrap()
        .id;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, room, alice) = (t.store.clone(), room.clone(), alice.clone());
            tokio::spawn(async move { post(&store, &room, &alice, &format!("c{}", i % 10)).await })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for task in tasks {
        seqs.insert(task.await.unwrap());
    }
    assert_eq!(
        seqs,
        (1..=10).collect(),
        "10 distinct client ids, 10 messages, no gaps"
    );
    assert_eq!(t.store.room(&room).await.unwrap().unwrap().last_seq, 10);
}

async fn history_pages_by_cursor_in_both_directions(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let room = t
        .store
        .create_room(RoomKind::Public, "p", &alice)
        .await
        .unwrap()
        .id;
    for i in 0..25 {
        post(&t.store, &room, &alice, &format!("m{i}")).await;
    }
    let seqs = |v: Vec<natter_core::store::MessageRecord>| {
        v.into_iter().map(|m| m.seq).collect::<Vec<_>>()
    };
    let newest = seqs(
        t.store
            .history(&room, HistoryOrder::NewestFirst, None, None, 10)
            .await
            .unwrap(),
    );
    assert_eq!(newest, (16..=25).rev().collect::<Vec<_>>());
    let older = seqs(
        t.store
            .history(&room, HistoryOrder::NewestFirst, None, Some(16), 10)
            .await
            .unwrap(),
    );
    assert_eq!(older, (6..=15).rev().collect::<Vec<_>>());
    let oldest = seqs(
        t.store
            .history(&room, HistoryOrder::OldestFirst, None, None, 10)
            .await
            .unwrap(),
    );
    assert_eq!(oldest, (1..=10).collect::<Vec<_>>());
    let after = seqs(
        t.store
            .history(&room, HistoryOrder::OldestFirst, Some(20), None, 10)
            .await
            .unwrap(),
    );
    assert_eq!(after, (21..=25).collect::<Vec<_>>());
}

async fn deleting_a_room_removes_members_and_messages(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = t
        .store
        .create_room(RoomKind::Group, "g", &alice)
        .await
        .unwrap()
        .id;
    t.store.add_member(&room, &bob, Role::Member).await.unwrap();
    post(&t.store, &room, &bob, "x").await;
    assert!(t.store.delete_room(&room).await.unwrap());
    assert!(t.store.room(&room).await.unwrap().is_none());
    assert!(t.store.members(&room).await.unwrap().is_empty());
    assert!(
        t.store
            .history(&room, HistoryOrder::OldestFirst, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        t.store
            .rooms_of_user(&bob, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(!t.store.delete_room(&room).await.unwrap());
}

async fn members_roles_and_ownership_transfer(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = t
        .store
        .create_room(RoomKind::Group, "g", &alice)
        .await
        .unwrap()
        .id;
    assert!(t.store.add_member(&room, &bob, Role::Member).await.unwrap());
    assert!(
        !t.store.add_member(&room, &bob, Role::Admin).await.unwrap(),
        "already a member"
    );
    assert!(
        t.store
            .transfer_ownership(&room, &alice, &bob)
            .await
            .unwrap()
    );
    assert_eq!(t.store.role(&room, &bob).await.unwrap(), Some(Role::Owner));
    assert_eq!(
        t.store.role(&room, &alice).await.unwrap(),
        Some(Role::Admin)
    );
    assert!(t.store.remove_member(&room, &alice).await.unwrap());
    assert_eq!(t.store.role(&room, &alice).await.unwrap(), None);
    let mine = t.store.rooms_of_user(&bob, None, 10).await.unwrap();
    assert_eq!(mine.items.len(), 1);
}

async fn many_users_rooms_are_read_at_once_within_each_limit(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let carol = user(&t.store, "carol").await;
    let mut rooms = Vec::new();
    for name in ["a", "b", "c"] {
        let room = t.store.create_room(RoomKind::Group, name, &alice).await;
        rooms.push(room.unwrap().id);
    }
    assert!(
        t.store
            .add_member(&rooms[1], &bob, Role::Member)
            .await
            .unwrap()
    );
    // Bob twice (two of his sockets in one batch), and more ids than a statement shape
    // of SQLite's holds: nobody's rooms come twice or go missing.
    let strangers: Vec<String> = (0..70)
        .map(|i| format!("00000000-0000-7000-8000-{i:012}"))
        .collect();
    let mut users = vec![alice.as_str(), bob.as_str(), carol.as_str(), "x' OR 1=1 --"];
    users.push(bob.as_str());
    users.extend(strangers.iter().map(String::as_str));
    let mut found = t.store.member_rooms(&users, 2).await.unwrap();
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rooms.sort();
    let kind = RoomKind::Group;
    let mut expected = vec![
        (alice.clone(), rooms[0].clone(), kind),
        (alice.clone(), rooms[1].clone(), kind),
        (bob.clone(), rooms[1].clone(), kind),
    ];
    expected.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        found, expected,
        "at most 2 each, the first by id; none for carol"
    );
    assert!(t.store.member_rooms(&[], 2).await.unwrap().is_empty());
}

async fn profiles_are_updated_and_found_by_prefix(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "a_lice").await;
    user(&t.store, "abby").await;
    user(&t.store, "bob").await;
    let update = ProfileUpdate {
        display_name: "Alice",
        bio: "hi",
        avatar_url: "https://x.test/a.png",
    };
    assert!(t.store.update_profile(&alice, update).await.unwrap());
    let profile = t.store.profile(&alice).await.unwrap().unwrap();
    assert_eq!(
        (profile.display_name.as_str(), profile.bio.as_str()),
        ("Alice", "hi")
    );
    let found: Vec<_> = t
        .store
        .users_by_prefix("A", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.username)
        .collect();
    assert_eq!(found, ["a_lice", "abby"]);
    let found: Vec<_> = t
        .store
        .users_by_prefix("a_", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.username)
        .collect();
    assert_eq!(found, ["a_lice"], "`_` is literal");
}

async fn read_markers_only_move_forward_and_stop_at_the_newest(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = t
        .store
        .create_room(RoomKind::Group, "g", &alice)
        .await
        .unwrap()
        .id;
    t.store.add_member(&room, &bob, Role::Member).await.unwrap();
    for i in 0..5 {
        post(&t.store, &room, &bob, &format!("c{i}")).await;
    }
    let marker = t.store.mark_read(&room, &alice, 3).await.unwrap().unwrap();
    assert_eq!((marker.seq, marker.moved, marker.members), (3, true, 2));
    let marker = t.store.mark_read(&room, &alice, 2).await.unwrap().unwrap();
    assert_eq!((marker.seq, marker.moved), (3, false), "never back");
    let marker = t.store.mark_read(&room, &alice, 99).await.unwrap().unwrap();
    assert_eq!(
        (marker.seq, marker.moved),
        (5, true),
        "never past the newest"
    );
    let marker = t.store.mark_read(&room, &alice, 99).await.unwrap().unwrap();
    assert_eq!(
        (marker.seq, marker.moved),
        (5, false),
        "at the newest already"
    );
}

async fn replies_keep_the_seq_they_answer(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let room = t.store.create_room(RoomKind::Group, "g", &alice).await;
    let room = room.unwrap().id;
    let first = post(&t.store, &room, &alice, "c1").await;
    let reply = NewMessage {
        reply_to: Some(first),
        ..NewMessage::text(&room, &alice, "c2", "answer", 2)
    };
    let stored = t.store.post_message(reply).await.unwrap().message;
    assert_eq!((stored.seq, stored.reply_to), (first + 1, Some(first)));
    let page = t
        .store
        .history(&room, HistoryOrder::OldestFirst, None, None, 10)
        .await
        .unwrap();
    let replies: Vec<_> = page.iter().map(|m| m.reply_to).collect();
    assert_eq!(replies, [None, Some(first)]);
    assert!(t.store.message_exists(&room, first).await.unwrap());
    t.store
        .delete_message(&room, first, &alice, 3)
        .await
        .unwrap();
    assert!(
        t.store.message_exists(&room, first).await.unwrap(),
        "a deleted message can still be answered (shown as deleted)"
    );
    assert!(!t.store.message_exists(&room, first + 5).await.unwrap());
}

conformance!(
    replies_keep_the_seq_they_answer,
    read_markers_only_move_forward_and_stop_at_the_newest,
    public_names_are_unique_case_insensitively,
    case_is_folded_beyond_ascii_alike_on_every_backend,
    migrating_folds_the_keys_sql_could_not,
    direct_rooms_are_unique_per_pair_under_concurrency,
    search_treats_wildcards_literally_and_pages_stably,
    sequences_have_no_gaps_and_retries_are_idempotent,
    history_pages_by_cursor_in_both_directions,
    deleting_a_room_removes_members_and_messages,
    members_roles_and_ownership_transfer,
    many_users_rooms_are_read_at_once_within_each_limit,
    profiles_are_updated_and_found_by_prefix,
);
