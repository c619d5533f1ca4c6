//! Conformance cases for what notifications are computed from (PostgreSQL and SQLite):
//! counts follow from sequence numbers and read markers, mentions are counted after the
//! marker only, a sender has read their own message, levels default by room kind, read
//! receipts are shared only by those who share theirs in rooms small enough, and the
//! member count follows every membership change.

use natter_core::store::{Backend, Level, NewMessage, Role, RoomCounts, RoomKind, Store};
use natter_testkit::store;

use crate::user;

/// Sends a message of `sender` mentioning `mentioned` (ids with names) and `@room`.
async fn send(
    store: &Store,
    room: &str,
    sender: &str,
    client_id: &str,
    mentioned: &[(String, String)],
    everyone: bool,
) -> i64 {
    let new = NewMessage {
        mentions: mentioned,
        mentions_room: everyone,
        ..NewMessage::text(room, sender, client_id, "hello", 1)
    };
    store.post_message(new).await.unwrap().message.seq
}

async fn counts_of(store: &Store, user: &str, room: &str) -> RoomCounts {
    let all = store.room_counts(user, None, 100).await.unwrap();
    let one = store.room_counts(user, Some(room), 1).await.unwrap();
    let found = all
        .into_iter()
        .find(|c| c.room.id == room)
        .expect("a member");
    assert_eq!(
        one,
        std::slice::from_ref(&found),
        "one room reads as in the list"
    );
    found
}

async fn unread_and_mentions_follow_markers(backend: Backend) {
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
    let named = [(bob.clone(), "bob".to_owned())];
    send(&t.store, &room, &alice, "1", &[], false).await;
    let mention = send(&t.store, &room, &alice, "2", &named, false).await;
    send(&t.store, &room, &alice, "3", &[], true).await;
    send(&t.store, &room, &alice, "4", &[], false).await;
    let counts = counts_of(&t.store, &bob, &room).await;
    assert_eq!((counts.unread(), counts.mentions()), (4, 2));
    assert_eq!(counts.mentioned, [mention, 3]);
    assert_eq!(counts.level(), Level::Mentions, "rooms default to mentions");
    let alices = counts_of(&t.store, &alice, &room).await;
    assert_eq!(
        (alices.read_seq, alices.unread(), alices.mentions()),
        (0, 4, 0),
        "a sender's marker moves when their client reads; their @room is not their mention"
    );

    t.store
        .mark_read(&room, &bob, mention)
        .await
        .unwrap()
        .unwrap();
    let counts = counts_of(&t.store, &bob, &room).await;
    assert_eq!((counts.unread(), counts.mentions()), (2, 1));
    send(&t.store, &room, &bob, "5", &[], false).await;
    let counts = counts_of(&t.store, &bob, &room).await;
    assert_eq!(
        (counts.read_seq, counts.unread(), counts.mentions()),
        (2, 3, 1),
        "bob's own message is unread until his client reads it"
    );
    t.store.mark_read(&room, &bob, 5).await.unwrap().unwrap();
    let counts = counts_of(&t.store, &bob, &room).await;
    assert_eq!((counts.unread(), counts.mentions()), (0, 0));
}

async fn direct_rooms_count_every_message_and_notify_all(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = t.store.open_direct(&alice, &bob).await.unwrap().id;
    send(&t.store, &room, &alice, "1", &[], false).await;
    send(&t.store, &room, &alice, "2", &[], false).await;
    let counts = counts_of(&t.store, &bob, &room).await;
    assert_eq!((counts.unread(), counts.mentions()), (2, 2));
    assert_eq!(counts.level(), Level::All);
    assert_eq!(t.store.level(&room, &bob).await.unwrap(), Some(Level::All));
}

async fn levels_are_chosen_per_member_and_cleared(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = t
        .store
        .create_room(RoomKind::Public, "p", &alice)
        .await
        .unwrap()
        .id;
    assert!(
        t.store
            .set_level(&room, &alice, Some(Level::Nothing))
            .await
            .unwrap()
    );
    assert_eq!(
        t.store.level(&room, &alice).await.unwrap(),
        Some(Level::Nothing)
    );
    assert_eq!(
        counts_of(&t.store, &alice, &room).await.chosen,
        Some(Level::Nothing)
    );
    assert!(
        !t.store
            .set_level(&room, &bob, Some(Level::All))
            .await
            .unwrap(),
        "not a member"
    );
    assert_eq!(t.store.level(&room, &bob).await.unwrap(), None);
    assert!(t.store.set_level(&room, &alice, None).await.unwrap());
    assert_eq!(
        t.store.level(&room, &alice).await.unwrap(),
        Some(Level::Mentions)
    );
}

async fn receipts_are_shared_by_those_who_share_in_small_rooms(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let carol = user(&t.store, "carol").await;
    let room = t
        .store
        .create_room(RoomKind::Group, "g", &alice)
        .await
        .unwrap()
        .id;
    t.store.add_member(&room, &bob, Role::Member).await.unwrap();
    t.store
        .add_member(&room, &carol, Role::Member)
        .await
        .unwrap();
    send(&t.store, &room, &alice, "1", &[], false).await;
    send(&t.store, &room, &alice, "2", &[], false).await;
    let marker = t.store.mark_read(&room, &bob, 2).await.unwrap().unwrap();
    assert!(marker.shares);
    assert_eq!(marker.members, 3);
    t.store.mark_read(&room, &carol, 1).await.unwrap().unwrap();

    let seen = t.store.receipts(&room, &alice, 3).await.unwrap();
    // Alice has read nothing (sending does not move a marker): not listed.
    let mut expected = vec![(bob.clone(), 2), (carol.clone(), 1)];
    expected.sort();
    assert_eq!(seen, Some(expected));
    assert_eq!(
        t.store.receipts(&room, &alice, 2).await.unwrap(),
        None,
        "room too large"
    );

    assert!(t.store.set_share_receipts(&carol, false).await.unwrap());
    assert!(!t.store.shares_receipts(&carol).await.unwrap());
    let seen = t.store.receipts(&room, &alice, 3).await.unwrap().unwrap();
    assert!(
        seen.iter().all(|(user, _)| user != &carol),
        "carol's is hidden"
    );
    assert_eq!(
        t.store.receipts(&room, &carol, 3).await.unwrap(),
        None,
        "nor sees others'"
    );
    assert!(
        !t.store
            .mark_read(&room, &carol, 2)
            .await
            .unwrap()
            .unwrap()
            .shares
    );
    let members = t.store.members(&room).await.unwrap();
    let carols = members.iter().find(|m| m.user_id == carol).unwrap();
    assert_eq!(carols.last_read_seq, 0, "the member list hides it too");
}

async fn member_counts_follow_every_membership_change(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = t
        .store
        .create_room(RoomKind::Public, "p", &alice)
        .await
        .unwrap()
        .id;
    let members = async |store: &Store| {
        store
            .mark_read(&room, &alice, 0)
            .await
            .unwrap()
            .unwrap()
            .members
    };
    assert_eq!(members(&t.store).await, 1);
    t.store.add_member(&room, &bob, Role::Member).await.unwrap();
    t.store.add_member(&room, &bob, Role::Member).await.unwrap();
    assert_eq!(members(&t.store).await, 2, "adding twice counts once");
    t.store.remove_member(&room, &bob).await.unwrap();
    assert_eq!(members(&t.store).await, 1);
    let direct = t.store.open_direct(&alice, &bob).await.unwrap().id;
    let marker = t.store.mark_read(&direct, &bob, 0).await.unwrap().unwrap();
    assert_eq!(marker.members, 2);
}

conformance!(
    unread_and_mentions_follow_markers,
    direct_rooms_count_every_message_and_notify_all,
    levels_are_chosen_per_member_and_cleared,
    receipts_are_shared_by_those_who_share_in_small_rooms,
    member_counts_follow_every_membership_change,
);
