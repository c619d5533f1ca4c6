//! Presence: net changes per flush, large rooms, announcements between replicas, expiry.

use super::*;

fn changes(online: &[&str], offline: &[&str], typing: &[&str], count: usize) -> RoomUpdate {
    let owned = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect();
    RoomUpdate::Changes {
        online: owned(online),
        offline: owned(offline),
        typing: owned(typing),
        count,
    }
}

/// Who `presence` lists in room `r` (as of the last flush).
fn listed(presence: &Presence) -> Vec<String> {
    presence.list("r").0.iter().map(|u| u.to_string()).collect()
}

fn updates(presence: &Presence) -> Vec<(String, RoomUpdate)> {
    let updates = presence.flush().updates;
    let mut updates: Vec<_> = updates
        .into_iter()
        .map(|(room, update)| (room.to_string(), update))
        .collect();
    updates.sort_by(|a, b| a.0.cmp(&b.0));
    updates
}

#[test]
fn a_burst_is_one_update_of_net_changes() {
    let presence = Presence::new(100);
    for user in ["carol", "alice", "bob"] {
        presence.join("r", user);
    }
    presence.join("r", "alice"); // a second tab
    presence.leave("r", "bob"); // came and went before the flush
    presence.typing("r", "alice");
    presence.typing("r", "alice");
    let expected = changes(&["alice", "carol"], &[], &["alice"], 2);
    assert_eq!(updates(&presence), [("r".to_owned(), expected)]);
    assert!(updates(&presence).is_empty(), "nothing new, nothing sent");
    presence.leave("r", "alice");
    assert!(updates(&presence).is_empty(), "alice still has a tab open");
    presence.leave("r", "alice");
    presence.join("r", "bob");
    let expected = changes(&["bob"], &["alice"], &[], 2);
    assert_eq!(updates(&presence), [("r".to_owned(), expected)]);
    assert_eq!(presence.list("r"), (vec!["bob".into(), "carol".into()], 2));
}

#[test]
fn large_rooms_get_counts_and_a_new_list_when_they_change_size() {
    let presence = Presence::new(2);
    for user in ["a", "b", "c"] {
        presence.join("r", user);
    }
    let large = RoomUpdate::List {
        user_ids: vec![],
        count: 3,
    };
    assert_eq!(updates(&presence), [("r".to_owned(), large)]);
    assert_eq!(presence.list("r"), (vec![], 3));
    presence.join("r", "d");
    presence.typing("r", "a");
    assert_eq!(
        updates(&presence),
        [("r".to_owned(), changes(&[], &[], &[], 4))],
        "no names in a large room"
    );
    presence.leave("r", "c");
    presence.leave("r", "d");
    let small = RoomUpdate::List {
        user_ids: vec!["a".into(), "b".into()],
        count: 2,
    };
    assert_eq!(updates(&presence), [("r".to_owned(), small)]);
}

#[test]
fn own_changes_are_announced_once_per_flush() {
    let presence = Presence::new(100);
    presence.join("r", "alice");
    presence.join("r", "alice");
    presence.join("r", "bob");
    presence.leave("r", "bob");
    let announce = presence.flush().announce;
    let alice = Changes {
        online: vec!["alice".into()],
        offline: vec![],
    };
    assert_eq!(announce, HashMap::from([("r".to_owned(), alice)]));
    presence.leave("r", "alice");
    presence.leave("r", "alice");
    let announce = presence.flush().announce;
    assert_eq!(announce["r"].offline, ["alice"]);
    assert!(presence.flush().announce.is_empty());
    assert!(presence.snapshot().is_empty());
}

#[test]
fn a_user_online_elsewhere_stays_online_when_their_local_tab_closes() {
    let presence = Presence::new(100);
    presence.join("r", "alice");
    updates(&presence);
    let there = Announcement::Batch {
        node: "n2".into(),
        rooms: HashMap::from([(
            "r".to_owned(),
            Changes {
                online: vec!["alice".into()],
                offline: vec![],
            },
        )]),
    };
    presence.apply(&there);
    presence.leave("r", "alice");
    assert!(updates(&presence).is_empty(), "still online on n2");
    assert!(presence.is_online("r", "alice"));
    let announce = presence.flush().announce;
    assert!(announce.is_empty(), "announced when it happened");
}

#[tokio::test(start_paused = true)]
async fn other_replicas_users_are_forgotten_when_they_fall_silent() {
    let presence = Presence::new(100);
    presence.join("r", "alice");
    let change = Announcement::Change {
        node: "n2".into(),
        room_id: "r".into(),
        user_id: "bob".into(),
        online: true,
    };
    presence.apply(&change);
    updates(&presence);
    assert_eq!(listed(&presence), ["alice", "bob"]);
    tokio::time::advance(FORGET_AFTER / 2).await;
    let sync = Announcement::Sync {
        node: "n2".into(),
        rooms: HashMap::from([("r".to_owned(), vec!["bob".to_owned()])]),
    };
    presence.apply(&sync);
    tokio::time::advance(FORGET_AFTER / 2 + Duration::from_secs(1)).await;
    presence.expire();
    assert!(presence.is_online("r", "bob"), "re-announced in time");
    assert!(updates(&presence).is_empty());
    tokio::time::advance(FORGET_AFTER).await;
    presence.expire();
    assert!(!presence.is_online("r", "bob"), "n2 fell silent");
    let expected = changes(&[], &["bob"], &[], 1);
    assert_eq!(updates(&presence), [("r".to_owned(), expected)]);
    assert_eq!(listed(&presence), ["alice"]);
    let leave = Announcement::Change {
        node: "n2".into(),
        room_id: "r".into(),
        user_id: "bob".into(),
        online: false,
    };
    presence.apply(&leave);
    assert_eq!(listed(&presence), ["alice"]);
    assert!(updates(&presence).is_empty());
}

#[test]
fn empty_rooms_are_forgotten() {
    let presence = Presence::new(100);
    presence.join("r", "alice");
    updates(&presence);
    presence.leave("r", "alice");
    updates(&presence);
    assert!(presence.lock().rooms.is_empty());
}

#[test]
fn a_list_is_the_room_at_its_last_flush_which_the_next_changes_start_from() {
    let presence = Presence::new(100);
    presence.join("r", "alice");
    presence.join("r", "dave");
    assert_eq!(presence.list("r"), (vec![], 0), "nothing flushed yet");
    updates(&presence);
    presence.leave("r", "alice");
    presence.join("r", "alice"); // went and came back
    presence.join("r", "carol");
    presence.leave("r", "carol"); // came and went
    presence.leave("r", "dave");
    presence.join("r", "bob");
    assert_eq!(listed(&presence), ["alice", "dave"]);
    let (mut known, _) = presence.list("r");
    let update = updates(&presence).pop().map(|(_, update)| update);
    let Some(RoomUpdate::Changes {
        online, offline, ..
    }) = update
    else {
        panic!("the room's changes");
    };
    known.extend(online.iter().map(|u| Arc::from(u.as_str())));
    known.retain(|u| !offline.iter().any(|o| **o == **u));
    known.sort();
    assert_eq!(known, presence.list("r").0, "list + changes = the room now");
    assert_eq!(listed(&presence), ["alice", "bob"]);
}

#[test]
fn a_list_frame_is_made_once_per_flush() {
    let presence = Presence::new(100);
    let made = std::cell::Cell::new(0);
    let frame = || {
        presence.list_frame("r", |users, count| {
            made.set(made.get() + 1);
            Utf8Bytes::from(format!("{}:{count}", users.join(",")))
        })
    };
    assert_eq!(frame().as_str(), ":0", "a room nobody is in");
    presence.join("r", "alice");
    updates(&presence);
    presence.join("r", "bob");
    assert_eq!((frame().as_str(), frame().as_str()), ("alice:1", "alice:1"));
    assert_eq!(made.get(), 2);
    updates(&presence);
    assert_eq!(frame().as_str(), "alice,bob:2");
    assert_eq!(made.get(), 3);
}
