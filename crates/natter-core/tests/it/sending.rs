//! Conformance cases for sends stored together (PostgreSQL and SQLite): sends to one room
//! at once take gap-free seqs and are published, and handed to the replica's own
//! subscribers, in their order; a batch stores each message as sent, its mentions too; a
//! batch holding a retry stores nothing and each is then answered alone; replies to roots
//! stored together each count every reply before them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use natter_core::events::Kind;
use natter_core::messaging::{Local, Post, Stored};
use natter_core::store::{Backend, HistoryOrder, NewMessage, Role, RoomKind, Store, StoreError};
use natter_testkit::store;

use crate::heard::Heard;
use crate::user;

/// A group room of `owner` with `members` more members: (room, members).
async fn room_of(store: &Store, owner: &str, members: usize) -> (String, Vec<String>) {
    let room = store.create_room(RoomKind::Group, "g", owner).await;
    let room = room.unwrap().id;
    let mut people = Vec::new();
    for i in 0..members {
        let person = user(store, &format!("p{i}")).await;
        assert!(
            store
                .add_member(&room, &person, Role::Member)
                .await
                .unwrap()
        );
        people.push(person);
    }
    (room, people)
}

/// A plain post of `user` to `room`.
fn post<'a>(user: &'a str, room: &'a str, client_id: &'a str) -> Post<'a> {
    Post {
        user,
        room,
        client_id,
        body: "hi",
        reply_to: None,
        thread_root: None,
        also_to_room: false,
    }
}

/// The seqs handed to a replica's own subscribers, in their order.
#[derive(Debug, Default)]
struct Handed(Mutex<Vec<i64>>);

impl Local for Handed {
    fn stored(&self, stored: Stored<'_>) {
        self.0.lock().unwrap().push(stored.wire.seq);
    }
}

async fn sends_at_once_take_gap_free_seqs_and_are_published_in_order(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, people) = room_of(&t.store, &alice, 40).await;
    let mut heard = Heard::new(&t.store, &room).await;
    let handed = Arc::new(Handed::default());
    let messages = heard.messages.clone().delivering_locally(handed.clone());
    let mut sends = tokio::task::JoinSet::new();
    for person in people {
        let (messages, room) = (messages.clone(), room.clone());
        sends.spawn(async move { messages.post(post(&person, &room, "c")).await });
    }
    let mut seqs = BTreeSet::new();
    while let Some(sent) = sends.join_next().await {
        let posted = sent.unwrap().unwrap();
        assert!(posted.created);
        assert!(seqs.insert(posted.message.seq), "seq twice");
    }
    assert_eq!(seqs, (1..=40).collect(), "gap-free");
    let posted = |kind| match kind {
        Kind::Posted(message) => Some(message.seq),
        _ => None,
    };
    let heard = heard.next(40, posted).await;
    assert_eq!(
        heard,
        (1..=40).collect::<Vec<_>>(),
        "published in seq order"
    );
}

async fn a_batch_holding_a_retry_stores_nothing_and_retries_are_answered_alone(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, people) = room_of(&t.store, &alice, 3).await;
    let first = NewMessage::text(&room, &people[0], "once", "first", 1);
    assert_eq!(t.store.post_message(first).await.unwrap().message.seq, 1);
    let fresh = NewMessage::text(&room, &people[1], "new", "second", 2);
    let retried = t.store.post_together(&[fresh, first]).await;
    assert!(
        matches!(retried, Err(StoreError::Conflict(_))),
        "{retried:?}"
    );
    let twice = [
        fresh,
        NewMessage::text(&room, &people[1], "new", "again", 3),
    ];
    let twice = t.store.post_together(&twice).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    let stored = (t.store).history(&room, HistoryOrder::OldestFirst, None, None, 10);
    assert_eq!(stored.await.unwrap().len(), 1, "nothing of either batch");

    // Through `Messages`, sends at once with a retry among them: the retry gets what it
    // stored, the rest gap-free seqs after it.
    let heard = Heard::new(&t.store, &room).await;
    let messages = heard.messages.clone();
    let mut sends = tokio::task::JoinSet::new();
    for (i, person) in people.iter().enumerate() {
        for client_id in ["a", "b", "once"] {
            let (messages, room, person) = (messages.clone(), room.clone(), person.clone());
            let retry = client_id == "once" && i == 0;
            sends.spawn(async move {
                let sent = messages.post(post(&person, &room, client_id)).await;
                (retry, sent.unwrap())
            });
        }
    }
    let mut seqs = BTreeSet::new();
    while let Some(sent) = sends.join_next().await {
        let (retry, posted) = sent.unwrap();
        assert_eq!(posted.created, !retry);
        if retry {
            assert_eq!(posted.message.seq, 1, "the retry's own message");
        } else {
            assert!(seqs.insert(posted.message.seq), "seq twice");
        }
    }
    assert_eq!(seqs, (2..=9).collect(), "gap-free after the first");
}

async fn replies_stored_together_each_count_the_replies_before_them(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, people) = room_of(&t.store, &alice, 3).await;
    for (n, client_id) in ["r1", "r2"].into_iter().enumerate() {
        let root = NewMessage::text(&room, &alice, client_id, "root", n as i64);
        t.store.post_message(root).await.unwrap();
    }
    let reply = |who: &'static str, person: usize, root: i64, now: i64| NewMessage {
        thread_root: Some(root),
        ..NewMessage::text(&room, &people[person], who, "reply", now)
    };
    // Replies to the second root before the first: the roots are locked in seq order.
    // Their times were taken before they queued: the latest is not always last.
    let batch = [
        reply("x", 0, 2, 12),
        reply("y", 1, 1, 10),
        reply("z", 2, 2, 11),
        NewMessage::text(&room, &alice, "plain", "plain", 11),
    ];
    let posted = t.store.post_together(&batch).await.unwrap();
    let seqs: Vec<i64> = posted.iter().map(|p| p.message.seq).collect();
    assert_eq!(seqs, [3, 4, 5, 6], "the room's seqs in the batch's order");
    let roots: Vec<Option<(i64, i64, Option<i64>)>> = (posted.iter())
        .map(|p| (p.root.as_ref()).map(|r| (r.seq, r.thread_replies, r.thread_last_at)))
        .collect();
    let expected = [
        Some((2, 1, Some(12))),
        Some((1, 1, Some(10))),
        Some((2, 2, Some(12))),
        None,
    ];
    assert_eq!(roots, expected);
    let last = posted[2].root.as_ref().unwrap();
    let participants: Vec<&str> = last.participants().collect();
    assert_eq!(participants, [&alice, &people[0], &people[2]]);
    let stored = (t.store).history(&room, HistoryOrder::OldestFirst, Some(1), Some(3), 1);
    let stored = stored.await.unwrap().remove(0);
    assert_eq!(stored.thread_replies, 2);
    assert_eq!(stored.thread_participants, last.thread_participants);
    assert_eq!(stored.thread_last_at, Some(12), "the latest reply's time");
    let thread = t.store.followed_threads(&people[2], 10).await.unwrap();
    assert_eq!(thread.len(), 1, "a replier follows");
}

async fn replies_at_once_publish_every_count_of_their_root_in_order(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, people) = room_of(&t.store, &alice, 30).await;
    let root = NewMessage::text(&room, &alice, "root", "root", 1);
    let root = t.store.post_message(root).await.unwrap().message.seq;
    let mut heard = Heard::new(&t.store, &room).await;
    let messages = heard.messages.clone();
    let mut replies = tokio::task::JoinSet::new();
    for person in people {
        let (messages, room) = (messages.clone(), room.clone());
        replies.spawn(async move {
            let reply = Post {
                thread_root: Some(root),
                ..post(&person, &room, "r")
            };
            messages
                .post(reply)
                .await
                .unwrap()
                .root
                .unwrap()
                .thread_replies
        });
    }
    let mut counts = BTreeSet::new();
    while let Some(count) = replies.join_next().await {
        assert!(counts.insert(count.unwrap()), "count twice");
    }
    assert_eq!(counts, (1..=30).collect());
    let updated = |kind| match kind {
        Kind::Updated(message) => Some(message.thread.map_or(0, |t| t.replies)),
        _ => None,
    };
    let heard = heard.next(30, updated).await;
    assert_eq!(heard, (1..=30).collect::<Vec<_>>(), "published as counted");
}

async fn a_batch_stores_each_message_as_sent_with_its_mentions(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, people) = room_of(&t.store, &alice, 2).await;
    let first = NewMessage::text(&room, &alice, "first", "first", 1);
    t.store.post_message(first).await.unwrap();
    let mentioned = [(people[1].clone(), "p1".to_owned())];
    let batch = [
        NewMessage {
            mentions: &mentioned,
            reply_to: Some(1),
            ..NewMessage::text(&room, &people[0], "a", "hi @p1 \"quoted\" \u{1F600}", 5)
        },
        NewMessage {
            mentions_room: true,
            ..NewMessage::text(&room, &people[0], "b", "@room", 6)
        },
        NewMessage::text(&room, &alice, "c", "", 7),
    ];
    let posted = t.store.post_together(&batch).await.unwrap();
    let seqs: Vec<i64> = posted.iter().map(|p| p.message.seq).collect();
    assert_eq!(seqs, [2, 3, 4], "the room's next seqs in the batch's order");
    let stored = (t.store).history(&room, HistoryOrder::OldestFirst, Some(1), None, 10);
    let stored = stored.await.unwrap();
    let answered: Vec<_> = posted.into_iter().map(|p| p.message).collect();
    assert_eq!(stored, answered, "stored as answered");
    let counts = t
        .store
        .room_counts(&people[1], Some(&room), 1)
        .await
        .unwrap();
    assert_eq!(counts[0].mentioned, [2, 3], "named, and @room");
    let counts = t.store.room_counts(&alice, Some(&room), 1).await.unwrap();
    assert_eq!(counts[0].mentioned, [3], "only @room");
}

conformance!(
    sends_at_once_take_gap_free_seqs_and_are_published_in_order,
    a_batch_stores_each_message_as_sent_with_its_mentions,
    a_batch_holding_a_retry_stores_nothing_and_retries_are_answered_alone,
    replies_stored_together_each_count_the_replies_before_them,
    replies_at_once_publish_every_count_of_their_root_in_order,
);
