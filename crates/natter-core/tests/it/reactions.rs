//! Conformance cases for emoji reactions (PostgreSQL and SQLite): idempotent per user and
//! emoji, counts that include every concurrent change, a bound on distinct emoji, and
//! reactions gone with their deleted message.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};

use natter_core::store::{
    Backend, NewMessage, Reacted, ReactionChange, ReactionCount, RoomKind, Store,
};
use natter_testkit::store;

use crate::user;

/// A group room of `owner` with one message in it: (room, seq).
async fn room_with_message(store: &Store, owner: &str) -> (String, i64) {
    let room = store
        .create_room(RoomKind::Group, "g", owner)
        .await
        .unwrap()
        .id;
    let new = NewMessage::text(&room, owner, "c1", "hello", 1);
    let seq = store.post_message(new).await.unwrap().message.seq;
    (room, seq)
}

/// A change later than the previous one (a message's emoji are listed by first use).
fn change<'a>(
    room: &'a str,
    seq: i64,
    user: &'a str,
    emoji: &'a str,
    add: bool,
) -> ReactionChange<'a> {
    static NOW: AtomicI64 = AtomicI64::new(10);
    ReactionChange {
        room_id: room,
        seq,
        user_id: user,
        emoji,
        add,
        max_distinct: 3,
        now: NOW.fetch_add(1, Ordering::Relaxed),
    }
}

async fn reactions_are_idempotent_per_user_and_emoji(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let (room, seq) = room_with_message(&t.store, &alice).await;
    let react = |user: &str, emoji: &'static str, add| {
        let (store, room, user) = (t.store.clone(), room.clone(), user.to_owned());
        async move {
            store
                .react(change(&room, seq, &user, emoji, add))
                .await
                .unwrap()
        }
    };
    assert_eq!(react(&alice, "👍", true).await, Reacted::Count(1));
    assert_eq!(
        react(&alice, "👍", true).await,
        Reacted::Count(1),
        "twice is once"
    );
    assert_eq!(react(&bob, "👍", true).await, Reacted::Count(2));
    assert_eq!(react(&bob, "🎉", true).await, Reacted::Count(1));
    let seen_by_bob = t.store.reactions(&room, seq, seq, &bob).await.unwrap();
    let counts = |emoji: &str, count, me| ReactionCount {
        seq,
        emoji: emoji.into(),
        count,
        me,
    };
    assert_eq!(seen_by_bob, [counts("👍", 2, true), counts("🎉", 1, true)]);
    let seen_by_alice = t.store.reactions(&room, seq, seq, &alice).await.unwrap();
    assert_eq!(
        seen_by_alice,
        [counts("👍", 2, true), counts("🎉", 1, false)]
    );
    assert_eq!(react(&bob, "👍", false).await, Reacted::Count(1));
    assert_eq!(
        react(&bob, "👍", false).await,
        Reacted::Count(1),
        "gone is gone"
    );
    assert_eq!(react(&bob, "🎉", false).await, Reacted::Count(0));
    let left = t.store.reactions(&room, seq, seq, &alice).await.unwrap();
    assert_eq!(
        left,
        [counts("👍", 1, true)],
        "an emoji nobody uses is not listed"
    );
}

async fn distinct_emoji_are_bounded_and_deletion_drops_reactions(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, seq) = room_with_message(&t.store, &alice).await;
    for emoji in ["👍", "🎉", "😀"] {
        let reacted = t.store.react(change(&room, seq, &alice, emoji, true)).await;
        assert!(matches!(reacted.unwrap(), Reacted::Count(1)));
    }
    let fourth = t.store.react(change(&room, seq, &alice, "🚀", true)).await;
    assert_eq!(fourth.unwrap(), Reacted::TooMany);
    let again = t.store.react(change(&room, seq, &alice, "👍", true)).await;
    assert_eq!(
        again.unwrap(),
        Reacted::Count(1),
        "an emoji already there is fine"
    );
    let missing = t
        .store
        .react(change(&room, seq + 1, &alice, "👍", true))
        .await;
    assert_eq!(missing.unwrap(), Reacted::NoMessage);
    t.store
        .delete_message(&room, seq, &alice, 20)
        .await
        .unwrap();
    let on_deleted = t.store.react(change(&room, seq, &alice, "👍", true)).await;
    assert_eq!(on_deleted.unwrap(), Reacted::NoMessage);
    let kept = t.store.reactions(&room, seq, seq, &alice).await.unwrap();
    assert!(
        kept.is_empty(),
        "a deleted message keeps no reactions: {kept:?}"
    );
}

async fn concurrent_reactions_are_all_counted(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, seq) = room_with_message(&t.store, &alice).await;
    let mut people = Vec::new();
    for i in 0..20 {
        people.push(user(&t.store, &format!("p{i}")).await);
    }
    let reactions = people.iter().map(|person| {
        let (store, room, person) = (t.store.clone(), room.clone(), person.clone());
        tokio::spawn(async move { store.react(change(&room, seq, &person, "👍", true)).await })
    });
    let mut counts = BTreeSet::new();
    for reaction in futures::future::join_all(reactions).await {
        match reaction.unwrap().unwrap() {
            Reacted::Count(count) => assert!(counts.insert(count), "count {count} twice"),
            other => panic!("{other:?}"),
        }
    }
    // Each change saw every earlier one: the counts reported are exactly 1..=20.
    assert_eq!(counts, (1..=20).collect());
}

conformance!(
    reactions_are_idempotent_per_user_and_emoji,
    distinct_emoji_are_bounded_and_deletion_drops_reactions,
    concurrent_reactions_are_all_counted,
);
