//! Presence across replicas: a subscriber learns who is online in the room, and hears
//! others come online and go offline, wherever they are connected — one frame per user
//! (`presence`) or one per room and flush (`presence_changes`), and counts only in large
//! rooms.

use natter_chat::Limits;
use natter_core::store::Backend;
use serde_json::{Value, json};

use crate::harness::{Cluster, Replica, Socket, User, connect, next_any, say};

/// The next presence frame about `user`.
async fn presence_of(socket: &mut Socket, user: &str) -> Value {
    loop {
        let frame = next_any(socket).await;
        if frame["type"] == "presence" && frame["user_id"] == user {
            return frame;
        }
    }
}

/// The next `presence_changes` frame that is not only typing.
async fn changes(socket: &mut Socket) -> Value {
    loop {
        let frame = next_any(socket).await;
        let typing_only = frame["online"] == json!([]) && frame["offline"] == json!([]);
        if frame["type"] == "presence_changes" && !typing_only {
            return frame;
        }
    }
}

/// Connects as `user` asking for `presence_changes` frames.
async fn connect_batched(replica: &Replica, user: &User) -> Socket {
    let mut socket = connect(replica, None).await;
    let auth = json!({"type": "auth", "token": user.token, "presence_changes": true});
    say(&mut socket, auth).await;
    assert_eq!(next_any(&mut socket).await["type"], "authenticated");
    socket
}

/// Subscribes and returns the `presence_list` that follows `subscribed`.
async fn subscribe_list(socket: &mut Socket, room: &str) -> Value {
    say(socket, json!({"type": "subscribe", "room_id": room})).await;
    assert_eq!(next_any(socket).await["type"], "subscribed");
    let list = next_any(socket).await;
    assert_eq!(list["type"], "presence_list", "{list}");
    list
}

/// Subscribes and returns who the `presence_list` that follows `subscribed` names.
async fn subscribe_listing(socket: &mut Socket, room: &str) -> Vec<String> {
    let list = subscribe_list(socket, room).await;
    let ids = list["user_ids"].as_array().unwrap().iter();
    ids.map(|u| u.as_str().unwrap().to_owned()).collect()
}

async fn presence_is_shared_across_replicas(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (one, two) = (
        cluster.replica(Limits::default()).await,
        cluster.replica(Limits::default()).await,
    );
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let room = cluster.room(&alice, &[&bob]).await;
    let mut on_two = connect(&two, Some(&bob)).await;
    let listed = subscribe_listing(&mut on_two, &room).await;
    // The room at its last flush: nobody, unless a flush came after Bob's arrival.
    assert!(listed.iter().all(|u| *u == bob.id), "{listed:?}");
    let own = presence_of(&mut on_two, &bob.id).await;
    assert_eq!(
        own["online"], true,
        "your own arrival comes with the next flush"
    );
    let mut on_one = connect(&one, Some(&alice)).await;
    let listed = subscribe_listing(&mut on_one, &room).await;
    if !listed.contains(&bob.id) {
        // Bob's announcement was still on its way from the other replica.
        assert_eq!(presence_of(&mut on_one, &bob.id).await["online"], true);
    }
    let came = presence_of(&mut on_two, &alice.id).await;
    assert_eq!(came["online"], true);
    drop(on_one);
    let went = presence_of(&mut on_two, &alice.id).await;
    assert_eq!(
        (went["online"].as_bool(), went["room_id"].as_str()),
        (Some(false), Some(room.as_str()))
    );
    let mut batched = connect_batched(&one, &bob).await;
    subscribe_list(&mut batched, &room).await;
    let carol = cluster.user("carol").await;
    cluster.add_member(&room, &carol).await;
    let mut on_two = connect(&two, Some(&carol)).await;
    subscribe_list(&mut on_two, &room).await;
    say(&mut on_two, json!({"type": "typing", "room_id": room})).await;
    let came = changes(&mut batched).await;
    assert_eq!(
        (&came["online"], &came["offline"], &came["count"]),
        (&json!([carol.id]), &json!([]), &json!(2)),
        "{came}"
    );
    drop(on_two);
    let went = changes(&mut batched).await;
    assert_eq!(
        (&went["offline"], &went["count"]),
        (&json!([carol.id]), &json!(1))
    );
}

/// Past `presence_list_max` users online, a room's subscribers get counts, not names,
/// and a full list again when it shrinks.
async fn large_rooms_get_counts(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let small = Limits {
        presence_list_max: 2,
        ..Limits::default()
    };
    let (one, two) = (cluster.replica(small).await, cluster.replica(small).await);
    let users = [
        cluster.user("ann").await,
        cluster.user("ben").await,
        cluster.user("cal").await,
    ];
    let room = cluster.room(&users[0], &[&users[1], &users[2]]).await;
    let mut watcher = connect_batched(&one, &users[0]).await;
    let list = subscribe_list(&mut watcher, &room).await;
    assert!(matches!(list["count"].as_u64(), Some(0 | 1)), "{list}");
    let mut others = Vec::new();
    for (user, replica) in users[1..].iter().zip([&one, &two]) {
        let mut socket = connect(replica, Some(user)).await;
        subscribe_list(&mut socket, &room).await;
        others.push(socket);
    }
    let mut frame = next_any(&mut watcher).await;
    while frame["count"] != 3 {
        frame = next_any(&mut watcher).await;
    }
    assert_eq!(
        (frame["type"].as_str(), &frame["user_ids"]),
        (Some("presence_list"), &json!([])),
        "the room became large: {frame}"
    );
    let mut late = connect(&two, Some(&users[0])).await;
    let mut list = subscribe_list(&mut late, &room).await;
    // The other replica may not have flushed since it heard of all three.
    while list["type"] != "presence_list" || list["count"] != 3 {
        list = next_any(&mut late).await;
    }
    assert_eq!(list["user_ids"], json!([]), "{list}");
    others.pop();
    let mut frame = next_any(&mut watcher).await;
    while frame["type"] != "presence_list" {
        frame = next_any(&mut watcher).await;
    }
    let mut expected = vec![users[0].id.clone(), users[1].id.clone()];
    expected.sort();
    assert_eq!(
        (&frame["user_ids"], &frame["count"]),
        (&json!(expected), &json!(2))
    );
}

mod postgres {
    #[tokio::test]
    async fn presence_is_shared_across_replicas() {
        super::presence_is_shared_across_replicas(super::Backend::Postgres).await
    }

    #[tokio::test]
    async fn large_rooms_get_counts() {
        super::large_rooms_get_counts(super::Backend::Postgres).await
    }
}

mod sqlite {
    #[tokio::test]
    async fn presence_is_shared_across_replicas() {
        super::presence_is_shared_across_replicas(super::Backend::Sqlite).await
    }

    #[tokio::test]
    async fn large_rooms_get_counts() {
        super::large_rooms_get_counts(super::Backend::Sqlite).await
    }
}
