//! Room life cycle, history paging, validation and cascades over HTTP.

use std::collections::BTreeSet;

use futures::StreamExt;
use natter_core::broker::{Broker, Delivery};
use natter_core::store::Backend;
use serde_json::{Value, json};

use crate::harness::{Server, User};

async fn create(server: &Server, owner: &User, kind: &str, name: &str) -> String {
    let reply = server
        .call(
            Some(owner),
            "POST",
            "/api/v1/rooms",
            Some(json!({"kind": kind, "name": name})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn say(server: &Server, user: &User, room: &str, client_id: &str) -> Value {
    let body = json!({"client_id": client_id, "body": format!("message {client_id}")});
    let reply = server
        .call(
            Some(user),
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            Some(body),
        )
        .await;
    assert!(
        reply.status == 201 || reply.status == 200,
        "{:?}",
        reply.body
    );
    reply.body
}

fn seqs(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

async fn history_pages_have_no_gaps_or_duplicates_while_messages_arrive(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice").await;
    let room = create(&server, &alice, "group", "paging").await;
    for i in 0..30 {
        say(&server, &alice, &room, &format!("a{i}")).await;
    }
    let mut backwards: Vec<i64> = Vec::new();
    let mut path = format!("/api/v1/rooms/{room}/messages?limit=7");
    let mut arrivals = 0;
    loop {
        let page = server.call(Some(&alice), "GET", &path, None).await;
        let got = seqs(&page.body);
        if got.is_empty() {
            break;
        }
        backwards.extend(&got);
        say(&server, &alice, &room, &format!("late{arrivals}")).await;
        arrivals += 1;
        path = format!(
            "/api/v1/rooms/{room}/messages?limit=7&before={}",
            got.last().unwrap()
        );
    }
    assert_eq!(
        backwards,
        (1..=30).rev().collect::<Vec<_>>(),
        "newest first, from where paging began"
    );

    let mut forwards: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let page = server
            .call(
                Some(&alice),
                "GET",
                &format!("/api/v1/rooms/{room}/messages?limit=9&after={after}"),
                None,
            )
            .await;
        let got = seqs(&page.body);
        let Some(&last) = got.last() else { break };
        forwards.extend(&got);
        after = last;
        if forwards.len() < 40 {
            say(&server, &alice, &room, &format!("later{}", forwards.len())).await;
        }
    }
    let total = forwards.len() as i64;
    assert_eq!(
        forwards,
        (1..=total).collect::<Vec<_>>(),
        "oldest first, every message once"
    );
    assert!(
        total > 30 + arrivals,
        "messages that arrived while paging are included"
    );
    let between = server
        .call(
            Some(&alice),
            "GET",
            &format!("/api/v1/rooms/{room}/messages?after=10&before=15"),
            None,
        )
        .await;
    assert_eq!(
        seqs(&between.body),
        [11, 12, 13, 14],
        "after and before: between them"
    );
}

async fn sends_are_idempotent_per_client_id(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice").await;
    let room = create(
        &server,
        &alice,
        "public",
        &format!("idem {}", uuid::Uuid::new_v4()),
    )
    .await;
    let first = say(&server, &alice, &room, "same").await;
    let again = say(&server, &alice, &room, "same").await;
    assert_eq!(first, again, "a retry returns the stored message");
    let history = server
        .call(
            Some(&alice),
            "GET",
            &format!("/api/v1/rooms/{room}/messages"),
            None,
        )
        .await;
    assert_eq!(seqs(&history.body), [1]);
}

async fn replies_name_a_message_of_the_room(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice").await;
    let name = format!("replies {}", uuid::Uuid::new_v4());
    let room = create(&server, &alice, "public", &name).await;
    say(&server, &alice, &room, "first").await;
    let messages = format!("/api/v1/rooms/{room}/messages");
    let post = |client_id: &str, reply_to: i64| {
        let body = json!({"client_id": client_id, "body": "re", "reply_to": reply_to});
        server.call(Some(&alice), "POST", &messages, Some(body))
    };
    let reply = post("r1", 1).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(
        (reply.body["seq"].clone(), reply.body["reply_to"].clone()),
        (json!(2), json!(1))
    );
    let refused = post("r2", 7).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["error"]["code"], "invalid_reply_to");
    // JSON Schema's integers: 1.0 is 1; a whole number past i64 names no message.
    for (reply_to, status) in [(json!(1.0), 201), (json!(1e19), 409), (json!(1.5), 422)] {
        let body = json!({"client_id": format!("w{status}"), "body": "re", "reply_to": reply_to});
        let answer = server
            .call(Some(&alice), "POST", &messages, Some(body))
            .await;
        assert_eq!(answer.status, status, "{reply_to}: {:?}", answer.body);
    }
    let history = server.call(Some(&alice), "GET", &messages, None).await;
    let replies: Vec<Value> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reply_to"].clone())
        .collect();
    assert_eq!(replies, [json!(1), json!(1), Value::Null], "newest first");
}

async fn public_rooms_are_joined_and_left(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let name = format!("100% Lobby {}", uuid::Uuid::new_v4());
    let room = create(&server, &alice, "public", &name).await;
    let dup = server
        .call(
            Some(&bob),
            "POST",
            "/api/v1/rooms",
            Some(json!({"kind": "public", "name": name.to_uppercase()})),
        )
        .await;
    assert_eq!(dup.status, 409);
    let found = server
        .call(Some(&bob), "GET", "/api/v1/rooms?q=0%25%20lob", None)
        .await;
    assert_eq!(
        found.body["items"][0]["id"],
        room.as_str(),
        "{:?}",
        found.body
    );
    let none = server
        .call(Some(&bob), "GET", "/api/v1/rooms?q=0_%20lob", None)
        .await;
    assert_eq!(none.body["items"], json!([]), "`_` is literal");
    assert_eq!(
        server
            .call(
                Some(&bob),
                "POST",
                &format!("/api/v1/rooms/{room}/join"),
                None
            )
            .await
            .status,
        204
    );
    say(&server, &alice, &room, "hello").await;
    let mine = server
        .call(Some(&bob), "GET", "/api/v1/rooms/mine", None)
        .await;
    assert_eq!(mine.body["items"][0]["id"], room.as_str());
    assert_eq!(mine.body["items"][0]["my_role"], "member");
    assert_eq!(
        mine.body["items"][0]["unread"], 1,
        "bob has not read alice's message"
    );
    let read = json!({"seq": 1});
    let path = format!("/api/v1/rooms/{room}/read");
    let marked = server.call(Some(&bob), "PUT", &path, Some(read)).await;
    assert_eq!((marked.status, marked.body["seq"].clone()), (200, json!(1)));
    let mine = server
        .call(Some(&bob), "GET", "/api/v1/rooms/mine", None)
        .await;
    assert_eq!(mine.body["items"][0]["unread"], 0, "read");
    assert_eq!(
        server
            .call(
                Some(&bob),
                "POST",
                &format!("/api/v1/rooms/{room}/leave"),
                None
            )
            .await
            .status,
        204
    );
    let owner_leaves = server
        .call(
            Some(&alice),
            "POST",
            &format!("/api/v1/rooms/{room}/leave"),
            None,
        )
        .await;
    assert_eq!(
        owner_leaves.status, 403,
        "the owner hands over ownership first"
    );
}

async fn deleting_a_room_cascades_and_tells_live_subscribers(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let room = create(&server, &alice, "group", "doomed").await;
    let add = server
        .call(
            Some(&alice),
            "POST",
            &format!("/api/v1/rooms/{room}/members"),
            Some(json!({"user_id": bob.id})),
        )
        .await;
    assert_eq!(add.status, 204);
    say(&server, &bob, &room, "x").await;
    let topic = natter_core::events::room_topic(&room);
    let mut events = server.broker.subscribe(&topic).await.unwrap();
    assert_eq!(
        server
            .call(
                Some(&alice),
                "DELETE",
                &format!("/api/v1/rooms/{room}"),
                None
            )
            .await
            .status,
        204
    );
    let Some(Delivery::Message(payload)) = events.next().await else {
        panic!("no event")
    };
    use natter_core::events::{Kind, decode, pb};
    let event = decode(&topic, &payload).expect("a room event");
    assert_eq!(
        (event.room_id.as_str(), event.kind),
        (room.as_str(), Some(Kind::RoomDeleted(pb::RoomDeleted {})))
    );
    assert_eq!(
        server
            .call(
                Some(&bob),
                "GET",
                &format!("/api/v1/rooms/{room}/messages"),
                None
            )
            .await
            .status,
        404
    );
    let mine = server
        .call(Some(&bob), "GET", "/api/v1/rooms/mine", None)
        .await;
    assert_eq!(mine.body["items"], json!([]));
    assert!(server.store().members(&room).await.unwrap().is_empty());
}

async fn direct_rooms_are_unique_per_pair(backend: Backend) {
    let server = Server::start(backend).await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let requests: Vec<(&User, String)> = (0..6)
        .map(|i| {
            let (me, other) = if i % 2 == 0 {
                (&alice, &bob)
            } else {
                (&bob, &alice)
            };
            (me, format!("/api/v1/direct/{}", other.id))
        })
        .collect();
    let calls = requests
        .iter()
        .map(|(me, path)| server.call(Some(*me), "PUT", path, None));
    let ids: BTreeSet<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.body["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    // Each one's room list names it after the other person.
    for (me, other) in [(&alice, &bob), (&bob, &alice)] {
        let mine = server
            .call(Some(me), "GET", "/api/v1/rooms/mine", None)
            .await;
        assert_eq!(mine.body["items"][0]["peer_name"], other.name.as_str());
    }
    let myself = server
        .call(
            Some(&alice),
            "PUT",
            &format!("/api/v1/direct/{}", alice.id),
            None,
        )
        .await;
    assert_eq!(myself.status, 403, "{:?}", myself.body);
    let nobody = server
        .call(Some(&alice), "PUT", "/api/v1/direct/no-such-user", None)
        .await;
    assert_eq!(nobody.status, 404);
}

async fn bad_input_gets_a_clear_error(backend: Backend) {
    let server = Server::start(backend).await;
    let alice = server.user("alice").await;
    let room = create(&server, &alice, "group", "inputs").await;
    let cases = [
        (
            "POST",
            "/api/v1/rooms".to_owned(),
            Some(json!({"kind": "group", "name": "   "})),
            422,
            "invalid_name",
        ),
        (
            "POST",
            "/api/v1/rooms".to_owned(),
            Some(json!({"kind": "direct", "name": "x"})),
            422,
            "invalid_kind",
        ),
        (
            "POST",
            format!("/api/v1/rooms/{room}/messages"),
            Some(json!({"client_id": "c", "body": "x".repeat(4001)})),
            422,
            "invalid_body",
        ),
        (
            "GET",
            format!("/api/v1/rooms/{room}/messages?limit=0"),
            None,
            422,
            "invalid_limit",
        ),
        (
            "GET",
            format!("/api/v1/rooms/{room}/messages?before=abc"),
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/rooms?cursor=not%2Fbase64url".to_owned(),
            None,
            422,
            "invalid_cursor",
        ),
        (
            "GET",
            "/api/v1/rooms/mine?cursor=not-a-room-id".to_owned(),
            None,
            422,
            "invalid_cursor",
        ),
        (
            "POST",
            "/api/v1/rooms".to_owned(),
            Some(json!(["group", "an array is not an object"])),
            422,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/rooms".to_owned(),
            Some(json!({"kind": "group", "name": format!(" {} ", "x".repeat(63))})),
            422,
            "invalid_name",
        ),
        (
            "POST",
            format!("/api/v1/rooms/{room}/members"),
            Some(json!({"user_id": "01a2326b-bf41-74bb-8543-a92593bdc749"})),
            409,
            "unknown_user",
        ),
        (
            "PUT",
            "/api/v1/profile".to_owned(),
            Some(json!({"avatar_url": "javascript:alert(1)"})),
            422,
            "invalid_avatar_url",
        ),
        (
            "PUT",
            "/api/v1/profile".to_owned(),
            Some(json!({"display_name": "x".repeat(65)})),
            422,
            "invalid_display_name",
        ),
        (
            "GET",
            "/api/v1/users/nobody".to_owned(),
            None,
            404,
            "not_found",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let reply = server.call(Some(&alice), method, &path, body).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {:?}",
            reply.body
        );
    }
    let update = json!({"display_name": "Alice", "bio": "hi", "avatar_url": "https://cdn.example.org/a.png"});
    let saved = server
        .call(Some(&alice), "PUT", "/api/v1/profile", Some(update))
        .await;
    assert_eq!(saved.body["display_name"], "Alice");
    let seen = server
        .call(
            Some(&alice),
            "GET",
            &format!("/api/v1/users/{}", alice.id),
            None,
        )
        .await;
    assert_eq!(seen.body["avatar_url"], "https://cdn.example.org/a.png");
    let prefix = &alice.name[..5];
    let found = server
        .call(
            Some(&alice),
            "GET",
            &format!("/api/v1/users?prefix={prefix}"),
            None,
        )
        .await;
    assert!(
        found
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == alice.id.as_str())
    );
}

async fn writes_are_rate_limited_per_user(backend: Backend) {
    let server = Server::start_with(backend, 3).await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let room = create(
        &server,
        &alice,
        "public",
        &format!("busy {}", uuid::Uuid::new_v4()),
    )
    .await;
    say(&server, &alice, &room, "one").await;
    say(&server, &alice, &room, "two").await;
    let limited = server
        .call(
            Some(&alice),
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            Some(json!({"client_id": "three", "body": "x"})),
        )
        .await;
    assert_eq!(limited.status, 429, "{:?}", limited.body);
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    let reads = server
        .call(
            Some(&alice),
            "GET",
            &format!("/api/v1/rooms/{room}/messages"),
            None,
        )
        .await;
    assert_eq!(reads.status, 200, "reads are not limited");
    assert_eq!(
        seqs(&reads.body),
        [2, 1],
        "the refused write stored nothing"
    );
    let join = server
        .call(
            Some(&bob),
            "POST",
            &format!("/api/v1/rooms/{room}/join"),
            None,
        )
        .await;
    assert_eq!(join.status, 204, "other users have their own budget");
}

async fn settings_change_only_what_is_named(backend: Backend) {
    let server = Server::start(backend).await;
    let bob = server.user("bob").await;
    let get = server
        .call(Some(&bob), "GET", "/api/v1/settings", None)
        .await;
    assert_eq!(
        get.body,
        json!({"share_receipts": true, "email_digests": true})
    );
    let digests_off = Some(json!({"email_digests": false}));
    let put = (server.call(Some(&bob), "PUT", "/api/v1/settings", digests_off)).await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(
        put.body,
        json!({"share_receipts": true, "email_digests": false})
    );
    let receipts_off = Some(json!({"share_receipts": false}));
    let put = (server.call(Some(&bob), "PUT", "/api/v1/settings", receipts_off)).await;
    assert_eq!(
        put.body,
        json!({"share_receipts": false, "email_digests": false})
    );
    let unknown = Some(json!({"email": true}));
    let bad = (server.call(Some(&bob), "PUT", "/api/v1/settings", unknown)).await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    let anonymous = server.call(None, "GET", "/api/v1/settings", None).await;
    assert_eq!(anonymous.status, 401);
}

crate::per_backend!(
    writes_are_rate_limited_per_user,
    history_pages_have_no_gaps_or_duplicates_while_messages_arrive,
    sends_are_idempotent_per_client_id,
    replies_name_a_message_of_the_room,
    public_rooms_are_joined_and_left,
    deleting_a_room_cascades_and_tells_live_subscribers,
    direct_rooms_are_unique_per_pair,
    bad_input_gets_a_clear_error,
    settings_change_only_what_is_named,
);
