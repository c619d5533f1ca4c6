//! Rich messages over the socket: rendered text and mentions in `message` frames, the
//! `@room` rules, and pins heard by every subscriber.

use natter_core::store::Role;
use serde_json::{Value, json};

use super::tests::{Client, Setup};

/// Alice's group with Bob in it, both connected and subscribed: (room, alice, bob, a, b).
async fn alice_and_bob(setup: &Setup) -> (String, String, String, Client, Client) {
    let (alice, alice_token) = setup.user("alice", "s1").await;
    let (bob, bob_token) = setup.user("bob", "s2").await;
    setup.user("carol", "s3").await;
    let room = setup.group(&alice).await;
    setup
        .store
        .add_member(&room, &bob, Role::Member)
        .await
        .unwrap();
    let mut a = setup.signed_in(&alice_token).await;
    let mut b = setup.signed_in(&bob_token).await;
    for client in [&mut a, &mut b] {
        client
            .say(json!({"type": "subscribe", "room_id": room}))
            .await;
        assert_eq!(client.next().await["type"], "subscribed");
    }
    (room, alice, bob, a, b)
}

/// `a` says `frame`, and both hear what it caused (a send's `ack` is checked first).
async fn said(a: &mut Client, b: &mut Client, frame: Value) {
    let sends = frame["type"] == "send";
    a.say(frame).await;
    if sends {
        assert_eq!(a.next().await["type"], "ack");
    }
    a.next().await;
    b.next().await;
}

fn send(room: &str, client_id: &str, body: &str) -> Value {
    json!({"type": "send", "room_id": room, "client_id": client_id, "body": body})
}

#[tokio::test]
async fn messages_carry_their_rendered_text_and_the_members_they_mention() {
    let setup = Setup::new().await;
    let (room, alice, _, mut a, mut b) = alice_and_bob(&setup).await;
    b.say(send(&room, "c1", "hi @Alice and @carol, **now**"))
        .await;
    assert_eq!(b.next().await["type"], "ack");
    let message = a.next().await;
    assert_eq!(
        message["mentions"],
        json!([{"user_id": alice, "username": "alice"}]),
        "carol is no member: not mentioned"
    );
    let html = format!(
        "<p>hi <span class=\"mention\" data-user-id=\"{alice}\">@Alice</span> and @carol, \
         <strong>now</strong></p>"
    );
    assert_eq!(message["html"], html);
    assert!(message.get("mentions_room").is_none(), "absent when false");
}

#[tokio::test]
async fn only_owners_and_admins_mention_the_room_and_not_too_often() {
    let setup = Setup::new().await;
    let (room, _, _, mut a, mut b) = alice_and_bob(&setup).await;
    b.say(send(&room, "b1", "@room lunch")).await;
    let refusal = b.next().await;
    assert_eq!(
        (refusal["code"].clone(), refusal["message"].clone()),
        (
            json!("forbidden"),
            json!("only owners and admins may mention @room")
        )
    );
    a.say(send(&room, "a1", "@room lunch")).await;
    assert_eq!(a.next().await["type"], "ack");
    let message = b.next().await;
    assert_eq!(message["mentions_room"], true);
    assert!(
        message["html"]
            .as_str()
            .unwrap()
            .contains("data-user-id=\"room\"")
    );
    a.next().await;
    a.say(send(&room, "a2", "@room again")).await;
    assert_eq!(a.next().await["code"], "rate_limited");
    a.say(send(&room, "a1", "@room lunch")).await;
    let retry = a.next().await;
    assert_eq!(
        (retry["type"].clone(), retry["duplicate"].clone()),
        (json!("ack"), json!(true))
    );
}

#[tokio::test]
async fn owners_pin_and_every_subscriber_hears_it() {
    let setup = Setup::new().await;
    let (room, alice, _, mut a, mut b) = alice_and_bob(&setup).await;
    said(&mut a, &mut b, send(&room, "a1", "the decision")).await;
    let pin = |pinned: bool| json!({"type": "pin", "room_id": room, "seq": 1, "pinned": pinned});
    b.say(pin(true)).await;
    let refusal = b.next().await;
    assert_eq!(refusal["message"], "only owners and admins may pin");
    a.say(pin(true)).await;
    for client in [&mut a, &mut b] {
        let updated = client.next().await;
        assert_eq!(updated["type"], "message_updated");
        assert_eq!(updated["pinned_by"], json!(alice));
        assert!(updated["pinned_at"].is_i64());
    }
    a.say(pin(false)).await;
    let unpinned = b.next().await;
    assert!(unpinned.get("pinned_at").is_none(), "{unpinned}");
    assert_eq!(a.next().await, unpinned);
    a.say(json!({"type": "pin", "room_id": room, "seq": 9}))
        .await;
    assert_eq!(a.next().await["code"], "not_found");
}

#[tokio::test]
async fn thread_replies_are_sequenced_and_update_their_root() {
    let setup = Setup::new().await;
    let (room, alice, bob, mut a, mut b) = alice_and_bob(&setup).await;
    a.say(send(&room, "a1", "shall we?")).await;
    assert_eq!(a.next().await["type"], "ack");
    a.next().await;
    b.next().await;
    let reply = |client_id: &str, root: i64| {
        json!({"type": "send", "room_id": room,
        "client_id": client_id, "body": "yes", "thread_root": root})
    };
    b.say(reply("b1", 1)).await;
    assert_eq!(b.next().await["seq"], 2, "the room's next seq");
    for client in [&mut a, &mut b] {
        let message = client.next().await;
        assert_eq!(
            (message["seq"].clone(), message["thread_root"].clone()),
            (json!(2), json!(1))
        );
        let root = client.next().await;
        assert_eq!(
            (root["type"].clone(), root["seq"].clone()),
            (json!("message_updated"), json!(1))
        );
        assert_eq!(root["thread"]["replies"], 1);
        assert_eq!(root["thread"]["participants"], json!([alice, bob]));
    }
    b.say(reply("b2", 2)).await;
    assert_eq!(
        b.next().await["code"],
        "invalid_thread_root",
        "no thread in a thread"
    );
    b.say(reply("b3", 9)).await;
    assert_eq!(
        b.next().await["code"],
        "invalid_thread_root",
        "no such message"
    );
}

#[tokio::test]
async fn pins_edits_and_threads_are_read_over_the_socket() {
    let setup = Setup::new().await;
    let (room, _, _, mut a, mut b) = alice_and_bob(&setup).await;
    said(&mut a, &mut b, send(&room, "a1", "the decision")).await;
    said(
        &mut a,
        &mut b,
        json!({"type": "pin", "room_id": room, "seq": 1}),
    )
    .await;
    let edit = json!({"type": "edit", "room_id": room, "seq": 1, "body": "the final decision"});
    said(&mut a, &mut b, edit).await;
    b.say(json!({"type": "pins", "room_id": room})).await;
    let pins = b.next().await;
    assert_eq!(pins["messages"][0]["type"], "message");
    assert_eq!(pins["messages"][0]["body"], "the final decision");
    b.say(json!({"type": "edits", "room_id": room, "seq": 1}))
        .await;
    let edits = b.next().await;
    assert_eq!(edits["edits"][0]["body"], "the decision");
    b.say(json!({"type": "send", "room_id": room, "client_id": "b1", "body": "agreed", "thread_root": 1}))
        .await;
    assert_eq!(b.next().await["type"], "ack");
    for client in [&mut a, &mut b] {
        client.next().await;
        client.next().await;
    }
    let threads = |limit: u32| json!({"type": "threads", "limit": limit});
    a.say(threads(10)).await;
    let followed = a.next().await;
    assert_eq!(
        (
            followed["threads"][0]["root"].clone(),
            followed["threads"][0]["unread"].clone()
        ),
        (json!(1), json!(1))
    );
    a.say(json!({"type": "read_thread", "room_id": room, "root": 1, "seq": 2}))
        .await;
    assert_eq!(a.next().await["type"], "thread_read_marker");
    a.say(threads(10)).await;
    assert_eq!(a.next().await["threads"][0]["unread"], 0);
    a.say(threads(0)).await;
    assert_eq!(a.next().await["code"], "invalid_limit");
    let (_, carol_token) = setup.user("dave", "s4").await;
    let mut c = setup.signed_in(&carol_token).await;
    c.say(json!({"type": "pins", "room_id": room})).await;
    assert_eq!(
        c.next().await["code"],
        "not_found",
        "strangers learn nothing"
    );
}
