//! Presence across replicas: a subscriber learns who is online in the room, and hears
//! others come online and go offline, wherever they are connected.

use std::time::Duration;

use natter_chat::Limits;
use natter_core::store::Backend;
use serde_json::{Value, json};

use crate::harness::{Cluster, Socket, connect, next_any, say};

/// The next presence frame about `user`.
async fn presence_of(socket: &mut Socket, user: &str) -> Value {
    loop {
        let frame = next_any(socket).await;
        if frame["type"] == "presence" && frame["user_id"] == user {
            return frame;
        }
    }
}

/// Subscribes and returns the `presence_list` that follows `subscribed`.
async fn subscribe_listing(socket: &mut Socket, room: &str) -> Vec<String> {
    say(socket, json!({"type": "subscribe", "room_id": room})).await;
    assert_eq!(next_any(socket).await["type"], "subscribed");
    let list = next_any(socket).await;
    assert_eq!(list["type"], "presence_list", "{list}");
    list["user_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
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
    assert_eq!(listed, std::slice::from_ref(&bob.id));
    let mut on_one = connect(&one, Some(&alice)).await;
    let mut listed = subscribe_listing(&mut on_one, &room).await;
    for _ in 0..50 {
        if listed.contains(&bob.id) {
            break;
        }
        // Bob's announcement may still be on its way from the other replica.
        tokio::time::sleep(Duration::from_millis(20)).await;
        listed = subscribe_listing(&mut on_one, &room).await;
    }
    assert!(
        listed.contains(&alice.id) && listed.contains(&bob.id),
        "{listed:?}"
    );
    let came = presence_of(&mut on_two, &alice.id).await;
    assert_eq!(came["online"], true);
    drop(on_one);
    let went = presence_of(&mut on_two, &alice.id).await;
    assert_eq!(
        (went["online"].as_bool(), went["room_id"].as_str()),
        (Some(false), Some(room.as_str()))
    );
}

mod postgres {
    #[tokio::test]
    async fn presence_is_shared_across_replicas() {
        super::presence_is_shared_across_replicas(super::Backend::Postgres).await
    }
}

mod sqlite {
    #[tokio::test]
    async fn presence_is_shared_across_replicas() {
        super::presence_is_shared_across_replicas(super::Backend::Sqlite).await
    }
}
