//! Conformance cases for rich messages (PostgreSQL and SQLite): edits keep the texts they
//! replace and deletion drops them; mentions resolve to members only and are stored with
//! the message; pins keep their first pinner, are bounded per room and go with deletion.

use natter_core::store::{
    Backend, Edit, EditRecord, HistoryOrder, MessageRecord, NewMessage, Pinned, Role, RoomKind,
    Store,
};
use natter_testkit::store;

use crate::user;

/// A message of `sender` in `room`, sent at `now`, mentioning `mentions`.
async fn send(
    store: &Store,
    room: &str,
    sender: &str,
    now: i64,
    mentions: &[(String, String)],
    mentions_room: bool,
) -> MessageRecord {
    let client_id = format!("c{now}");
    let new = NewMessage {
        mentions,
        mentions_room,
        ..NewMessage::text(room, sender, &client_id, "hello", now)
    };
    store.post_message(new).await.unwrap().message
}

fn seqs_of(messages: Vec<MessageRecord>) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

fn edit<'a>(room: &'a str, seq: i64, sender: &'a str, body: &'a str, now: i64) -> Edit<'a> {
    Edit {
        room_id: room,
        seq,
        sender_id: sender,
        body,
        mentions: &[],
        now,
    }
}

async fn group(store: &Store, owner: &str) -> String {
    store
        .create_room(RoomKind::Group, "g", owner)
        .await
        .unwrap()
        .id
}

async fn edits_keep_earlier_texts_and_deletion_drops_them(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = group(&t.store, &alice).await;
    let seq = send(&t.store, &room, &alice, 1, &[], false).await.seq;
    let hijack = t.store.edit_message(edit(&room, seq, &bob, "hijack", 2));
    assert!(hijack.await.unwrap().is_none(), "only the sender edits");
    for (body, now) in [("fixed", 2), ("again", 3)] {
        let edited = t.store.edit_message(edit(&room, seq, &alice, body, now));
        let edited = edited.await.unwrap().unwrap();
        assert_eq!((edited.body.as_str(), edited.edited_at), (body, Some(now)));
    }
    let earlier = |body: &str, written_at| EditRecord {
        body: body.into(),
        written_at,
    };
    let edits = t.store.edits(&room, seq).await.unwrap();
    assert_eq!(edits, [earlier("hello", 1), earlier("fixed", 2)]);
    // Only the latest earlier texts are kept.
    let many = natter_core::store::MAX_EDITS_KEPT + 5;
    for now in 10..10 + many {
        let text = format!("v{now}");
        let edited = t.store.edit_message(edit(&room, seq, &alice, &text, now));
        edited.await.unwrap().unwrap();
    }
    let kept = t.store.edits(&room, seq).await.unwrap();
    assert_eq!(kept.len() as i64, natter_core::store::MAX_EDITS_KEPT);
    assert_eq!(kept.last().unwrap().body, format!("v{}", 8 + many));
    let deleted = t.store.delete_message(&room, seq, &alice, 4).await.unwrap();
    assert!(deleted.unwrap().visible_body().is_empty());
    assert_eq!(t.store.edits(&room, seq).await.unwrap(), []);
    let after = t.store.edit_message(edit(&room, seq, &alice, "back", 5));
    assert!(after.await.unwrap().is_none(), "deleted stays deleted");
}

async fn mentions_resolve_to_members_and_are_stored(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    user(&t.store, "carol").await;
    let room = group(&t.store, &alice).await;
    t.store.add_member(&room, &bob, Role::Member).await.unwrap();
    let mut found = (t.store)
        .members_named(&room, &["bob", "carol", "alice", "nobody"])
        .await
        .unwrap();
    found.sort();
    let mut expected = vec![(alice.clone(), "alice".into()), (bob.clone(), "bob".into())];
    expected.sort();
    assert_eq!(found, expected, "carol is not a member: not mentioned");
    let bob_only = [(bob.clone(), "bob".to_owned())];
    let sent = send(&t.store, &room, &alice, 1, &bob_only, false).await;
    let read = (t.store)
        .history(&room, HistoryOrder::NewestFirst, None, None, 1)
        .await
        .unwrap();
    assert_eq!(read, std::slice::from_ref(&sent));
    let mentioned: Vec<_> = read[0].mentioned().collect();
    assert_eq!(mentioned, [(bob.as_str(), "bob")]);
    let mut rewrite = edit(&room, sent.seq, &alice, "hi @alice", 2);
    let alice_only = [(alice.clone(), "alice".to_owned())];
    rewrite.mentions = &alice_only;
    let edited = t.store.edit_message(rewrite).await.unwrap().unwrap();
    let mentioned: Vec<_> = edited.mentioned().collect();
    assert_eq!(
        mentioned,
        [(alice.as_str(), "alice")],
        "an edit re-mentions"
    );
    assert_eq!(t.store.last_room_mention(&room).await.unwrap(), None);
    send(&t.store, &room, &alice, 7, &[], true).await;
    assert_eq!(t.store.last_room_mention(&room).await.unwrap(), Some(7));
}

async fn pins_keep_their_first_pinner_and_are_bounded(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let room = group(&t.store, &alice).await;
    let mut seqs = Vec::new();
    for now in 1..=3 {
        seqs.push(send(&t.store, &room, &alice, now, &[], false).await.seq);
    }
    let pinned = |outcome: Pinned| match outcome {
        Pinned::Message(message) => (message.pinned_at, message.pinned_by),
        other => panic!("not pinned: {other:?}"),
    };
    let first = t
        .store
        .pin(&room, seqs[0], Some(&alice), 2, 10)
        .await
        .unwrap();
    assert_eq!(pinned(first), (Some(10), Some(alice.clone())));
    let again = t
        .store
        .pin(&room, seqs[0], Some(&bob), 2, 11)
        .await
        .unwrap();
    assert_eq!(
        pinned(again),
        (Some(10), Some(alice.clone())),
        "first pin kept"
    );
    t.store
        .pin(&room, seqs[1], Some(&bob), 2, 12)
        .await
        .unwrap();
    let third = t
        .store
        .pin(&room, seqs[2], Some(&bob), 2, 13)
        .await
        .unwrap();
    assert_eq!(third, Pinned::TooMany);
    let order = seqs_of(t.store.pins(&room).await.unwrap());
    assert_eq!(order, [seqs[1], seqs[0]], "latest pin first");
    let unpinned = t.store.pin(&room, seqs[1], None, 2, 14).await.unwrap();
    assert_eq!(pinned(unpinned), (None, None));
    let third = t
        .store
        .pin(&room, seqs[2], Some(&bob), 2, 15)
        .await
        .unwrap();
    assert_eq!(pinned(third), (Some(15), Some(bob.clone())));
    let missing = t.store.pin(&room, 99, Some(&bob), 2, 16).await.unwrap();
    assert_eq!(missing, Pinned::NoMessage);
    t.store
        .delete_message(&room, seqs[2], &alice, 17)
        .await
        .unwrap();
    let order = seqs_of(t.store.pins(&room).await.unwrap());
    assert_eq!(order, [seqs[0]], "a deleted message is no longer pinned");
}

conformance!(
    edits_keep_earlier_texts_and_deletion_drops_them,
    mentions_resolve_to_members_and_are_stored,
    pins_keep_their_first_pinner_and_are_bounded,
);
