//! Memberships remembered for authenticating chat connections: many users read at once
//! (their reads shared) are each remembered in their own rooms only, within the limit.

use std::sync::Arc;

use natter_core::broker::MemoryBroker;
use natter_core::memberships::Memberships;
use natter_core::messaging::Messages;
use natter_core::outbox::{Outbox, OutboxParts};
use natter_core::policy::Action;
use natter_core::shutdown::Shutdown;
use natter_core::store::{Backend, Role, RoomKind};
use natter_testkit::store;

use crate::user;

async fn users_authenticating_at_once_are_remembered_in_their_rooms(backend: Backend) {
    let t = store(backend).await;
    let owner = user(&t.store, "owner").await;
    let mut rooms = Vec::new();
    for name in ["all", "some", "none"] {
        let room = t.store.create_room(RoomKind::Group, name, &owner).await;
        rooms.push(room.unwrap().id);
    }
    let [all, some, none] = <[String; 3]>::try_from(rooms).unwrap();
    let mut users = Vec::new();
    for i in 0..150 {
        let id = user(&t.store, &format!("user{i}")).await;
        assert!(t.store.add_member(&all, &id, Role::Member).await.unwrap());
        if i % 2 == 0 {
            assert!(t.store.add_member(&some, &id, Role::Member).await.unwrap());
        }
        users.push(id);
    }
    let (_stop, shutdown) = Shutdown::new();
    let parts = OutboxParts::new(Arc::new(MemoryBroker::default()), "test", shutdown);
    let messages =
        Messages::new(t.store.clone(), Outbox::start(parts)).remembering(Memberships::default());
    let mut reads = tokio::task::JoinSet::new();
    for id in users.clone() {
        let messages = messages.clone();
        reads.spawn(async move { messages.remember_rooms_of(&id, 10).await });
    }
    while let Some(read) = reads.join_next().await {
        read.unwrap().unwrap();
    }
    let read = Action::ReadHistory;
    for (i, id) in users.iter().enumerate() {
        assert!(messages.remembered(id, &all, read), "user{i} in all");
        assert_eq!(messages.remembered(id, &some, read), i % 2 == 0, "user{i}");
        assert!(!messages.remembered(id, &none, read), "user{i} in none");
    }
    let fresh = Messages::new(t.store.clone(), messages.outbox().clone())
        .remembering(Memberships::default());
    fresh.remember_rooms_of(&users[0], 1).await.unwrap();
    let remembered = [&all, &some].map(|room| fresh.remembered(&users[0], room, read));
    assert_eq!(
        remembered.iter().filter(|r| **r).count(),
        1,
        "one room at most"
    );
}

conformance!(users_authenticating_at_once_are_remembered_in_their_rooms);
