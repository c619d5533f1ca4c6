//! Conformance cases for emoji reactions (PostgreSQL and SQLite): idempotent per user and
//! emoji, counts that include every concurrent change (applied one by one or together,
//! and published in count order), a bound on distinct emoji, and reactions gone with
//! their deleted message.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};

use natter_core::events::Kind;
use natter_core::store::{
    Backend, NewMessage, Reacted, ReactionChange, ReactionCount, Role, RoomKind, Store,
};
use natter_testkit::store;

use crate::heard::Heard;
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

async fn changes_applied_together_count_one_after_the_other(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let bob = user(&t.store, "bob").await;
    let (room, seq) = room_with_message(&t.store, &alice).await;
    t.store
        .react(change(&room, seq, &alice, "👍", true))
        .await
        .unwrap();
    let together = [
        change(&room, seq, &bob, "👍", true),
        change(&room, seq, &bob, "👍", true),
        change(&room, seq, &alice, "🎉", true),
        change(&room, seq, &alice, "😀", true),
        change(&room, seq, &bob, "🚀", true),
        change(&room, seq, &alice, "👍", false),
        change(&room, seq, &alice, "👍", false),
        change(&room, seq, &bob, "🎉", true),
    ];
    let reacted = t.store.react_together(&together).await.unwrap();
    let expected = [
        Reacted::Count(2),
        Reacted::Count(2),
        Reacted::Count(1),
        Reacted::Count(1),
        Reacted::TooMany,
        Reacted::Count(1),
        Reacted::Count(1),
        Reacted::Count(2),
    ];
    assert_eq!(reacted, expected, "each change sees the ones before it");
    let stored = t.store.reactions(&room, seq, seq, &bob).await.unwrap();
    let stored: Vec<(&str, i64)> = stored.iter().map(|r| (r.emoji.as_str(), r.count)).collect();
    assert_eq!(stored, [("👍", 1), ("🎉", 2), ("😀", 1)]);
    let gone = [change(&room, seq + 1, &bob, "👍", true)];
    let on_nothing = t.store.react_together(&gone).await.unwrap();
    assert_eq!(on_nothing, [Reacted::NoMessage]);
}

async fn reactions_at_once_are_each_counted_and_published_in_count_order(backend: Backend) {
    let t = store(backend).await;
    let alice = user(&t.store, "alice").await;
    let (room, seq) = room_with_message(&t.store, &alice).await;
    let mut heard = Heard::new(&t.store, &room).await;
    let messages = heard.messages.clone();
    let mut reactions = tokio::task::JoinSet::new();
    for i in 0..40 {
        let person = user(&t.store, &format!("p{i}")).await;
        assert!(
            t.store
                .add_member(&room, &person, Role::Member)
                .await
                .unwrap()
        );
        let (messages, room) = (messages.clone(), room.clone());
        reactions.spawn(async move { messages.react(&person, &room, seq, "👍", true).await });
    }
    let mut counts = BTreeSet::new();
    while let Some(reaction) = reactions.join_next().await {
        let count = reaction.unwrap().unwrap().count;
        assert!(counts.insert(count), "count {count} twice");
    }
    assert_eq!(counts, (1..=40).collect());
    let counted = |kind| match kind {
        Kind::Reacted(reaction) => Some(reaction.count),
        _ => None,
    };
    let heard = heard.next(40, counted).await;
    assert_eq!(heard, (1..=40).collect::<Vec<_>>(), "published as counted");
}

conformance!(
    reactions_at_once_are_each_counted_and_published_in_count_order,
    changes_applied_together_count_one_after_the_other,
    reactions_are_idempotent_per_user_and_emoji,
    distinct_emoji_are_bounded_and_deletion_drops_reactions,
    concurrent_reactions_are_all_counted,
);
