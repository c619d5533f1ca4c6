//! Conformance cases for threads (PostgreSQL and SQLite): thread messages take the room's
//! seq but stay out of its timeline; the root's summary counts every concurrent reply;
//! starters, repliers and the mentioned follow, with unread counts per thread.

use std::sync::Arc;

use natter_core::store::{
    Backend, HistoryOrder, MessageRecord, NewMessage, Role, RoomKind, Store, Timeline,
};
use natter_testkit::store;

use crate::user;

/// A message of `sender` in `room`, in the thread of `root` when given.
async fn send(
    store: &Store,
    room: &str,
    sender: &str,
    client_id: &str,
    root: Option<i64>,
    mentions: &[(String, String)],
) -> (MessageRecord, Option<MessageRecord>) {
    let new = NewMessage {
        mentions,
        thread_root: root,
        also_to_room: client_id.starts_with("both"),
        ..NewMessage::text(room, sender, client_id, "hello", 100)
    };
    let posted = store.post_message(new).await.unwrap();
    (posted.message, posted.root)
}

fn seqs(messages: &[MessageRecord]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

async fn thread_messages_share_the_sequence_but_not_the_timeline(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let room = t.store.create_room(RoomKind::Group, "g", &alice).await;
    let room = room.unwrap().id;
    let (root, _) = send(&t.store, &room, &alice, "c1", None, &[]).await;
    let (reply, summary) = send(&t.store, &room, &alice, "c2", Some(root.seq), &[]).await;
    let (both, _) = send(&t.store, &room, &alice, "both3", Some(root.seq), &[]).await;
    send(&t.store, &room, &alice, "c4", None, &[]).await;
    assert_eq!((reply.seq, both.seq), (2, 3), "the room's own sequence");
    assert_eq!(summary.unwrap().thread_replies, 1);
    let retry = send(&t.store, &room, &alice, "c2", Some(root.seq), &[]).await;
    assert_eq!((retry.0.seq, retry.1), (2, None), "a retry counts nothing");
    let page = |timeline| {
        let store = t.store.clone();
        let room = room.clone();
        async move {
            let range = (None, None, 10);
            let page = store.timeline(&room, timeline, HistoryOrder::OldestFirst, range);
            seqs(&page.await.unwrap())
        }
    };
    assert_eq!(page(Timeline::Room).await, [1, 3, 4]);
    assert_eq!(page(Timeline::Thread(1)).await, [2, 3]);
    assert_eq!(page(Timeline::Everything).await, [1, 2, 3, 4]);
    let all = t
        .store
        .history(&room, HistoryOrder::OldestFirst, None, None, 10);
    assert_eq!(
        seqs(&all.await.unwrap()),
        [1, 2, 3, 4],
        "what a resume replays"
    );
    let root = t.store.can_root_thread(&room, 1).await.unwrap();
    let reply = t.store.can_root_thread(&room, 2).await.unwrap();
    let none = t.store.can_root_thread(&room, 9).await.unwrap();
    assert_eq!((root, reply, none), (Some(true), Some(false), None));
}

async fn concurrent_replies_are_all_counted(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let room = t.store.create_room(RoomKind::Group, "g", &alice).await;
    let room = room.unwrap().id;
    let mut people = Vec::new();
    for i in 0..25 {
        let id = user(&t.store, &format!("user{i}")).await;
        t.store.add_member(&room, &id, Role::Member).await.unwrap();
        people.push(id);
    }
    let (root, _) = send(&t.store, &room, &alice, "root", None, &[]).await;
    let store = Arc::new(t.store.clone());
    let replies = people.iter().cloned().map(|person| {
        let (store, room) = (store.clone(), room.clone());
        tokio::spawn(async move {
            send(&store, &room, &person, "r", Some(root.seq), &[]).await;
        })
    });
    for reply in futures::future::join_all(replies.collect::<Vec<_>>()).await {
        reply.unwrap();
    }
    let stored = t
        .store
        .history(&room, HistoryOrder::OldestFirst, None, Some(2), 1);
    let root = stored.await.unwrap().remove(0);
    assert_eq!(root.thread_replies, 25, "no reply lost from the count");
    let participants: Vec<&str> = root.participants().collect();
    assert_eq!(participants.len(), natter_core::store::MAX_PARTICIPANTS);
    assert_eq!(participants[0], alice, "the starter first");
}

async fn starters_repliers_and_the_mentioned_follow_with_unread_counts(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let carol = user(&t.store, "carol").await;
    let room = t.store.create_room(RoomKind::Group, "g", &alice).await;
    let room = room.unwrap().id;
    for member in [&bob, &carol] {
        t.store
            .add_member(&room, member, Role::Member)
            .await
            .unwrap();
    }
    let (root, _) = send(&t.store, &room, &alice, "root", None, &[]).await;
    let carol_mention = [(carol.clone(), "carol".to_owned())];
    send(&t.store, &room, &bob, "b1", Some(root.seq), &carol_mention).await;
    send(&t.store, &room, &bob, "b2", Some(root.seq), &[]).await;
    let unread = |user: String| {
        let store = t.store.clone();
        async move {
            let threads = store.followed_threads(&user, 10).await.unwrap();
            threads
                .iter()
                .map(|f| (f.root_seq, f.unread))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(unread(alice.clone()).await, [(1, 2)], "the starter follows");
    assert_eq!(
        unread(bob.clone()).await,
        [(1, 0)],
        "one's own replies are read"
    );
    assert_eq!(
        unread(carol.clone()).await,
        [(1, 2)],
        "the mentioned follow"
    );
    assert!(t.store.read_thread(&alice, &room, 1, 2).await.unwrap());
    assert_eq!(unread(alice.clone()).await, [(1, 1)]);
    let stranger = user(&t.store, "dave").await;
    assert!(!t.store.read_thread(&stranger, &room, 1, 3).await.unwrap());
    t.store.remove_member(&room, &carol).await.unwrap();
    assert_eq!(unread(carol).await, [], "not in the room, no thread");
}

conformance!(
    thread_messages_share_the_sequence_but_not_the_timeline,
    concurrent_replies_are_all_counted,
    starters_repliers_and_the_mentioned_follow_with_unread_counts,
);
