//! A user's event stream (`me`) across replicas: counts follow every message and every
//! read marker from any device and replica, mentions and levels decide notifications,
//! room list changes made elsewhere reach it, concurrent sends and reads end at the counts
//! the store holds, and read receipts reach small rooms' subscribers live.

use natter_chat::Limits;
use natter_core::events::{Kind, pb};
use natter_core::messaging::Messages;
use natter_core::outbox::{Outbox, OutboxParts};
use natter_core::shutdown::{Shutdown, ShutdownTrigger};
use natter_core::store::{Backend, Level};
use serde_json::{Value, json};

use crate::harness::{Cluster, Replica, Socket, User, connect, next, say, send, subscribe};

/// Starts `socket`'s event stream and returns its rooms by id.
async fn stream(socket: &mut Socket) -> Vec<Value> {
    stream_with_threads(socket).await.0
}

/// Starts `socket`'s event stream: its rooms and its followed threads.
async fn stream_with_threads(socket: &mut Socket) -> (Vec<Value>, Value) {
    say(socket, json!({"type": "subscribe", "room_id": "me"})).await;
    let rooms = next(socket).await;
    assert_eq!(rooms["type"], "my_rooms", "{rooms}");
    let threads = next(socket).await;
    assert_eq!(
        threads["type"], "my_threads",
        "right after my_rooms: {threads}"
    );
    (
        rooms["rooms"].as_array().unwrap().clone(),
        threads["threads"].clone(),
    )
}

/// The next frame of `type_` (others skipped).
async fn next_of(socket: &mut Socket, type_: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == type_ {
            return frame;
        }
    }
}

/// The website's side of the cluster: its messages owner publishing as the website does.
struct Website {
    messages: Messages,
    _stop: ShutdownTrigger,
}

impl Website {
    fn of(cluster: &Cluster) -> Self {
        let (stop, shutdown) = Shutdown::new();
        let parts = OutboxParts::new(cluster.broker.clone(), "website", shutdown);
        let outbox = Outbox::start(parts);
        Self {
            messages: Messages::new(cluster.store.clone(), outbox),
            _stop: stop,
        }
    }
}

/// Two replicas; Alice writes to her room on one, Bob is in it with a laptop on two and a
/// phone on one, neither subscribed to the room.
struct Scene {
    cluster: Cluster,
    _replicas: [Replica; 2],
    bob: User,
    room: String,
    writer: Socket,
    laptop: Socket,
    phone: Socket,
}

impl Scene {
    async fn new(backend: Backend) -> Self {
        let cluster = Cluster::new(backend).await;
        let (one, two) = (
            cluster.replica(Limits::default()).await,
            cluster.replica(Limits::default()).await,
        );
        let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
        let room = cluster.room(&alice, &[&bob]).await;
        let mut writer = connect(&one, Some(&alice)).await;
        subscribe(&mut writer, &room, None).await;
        let laptop = connect(&two, Some(&bob)).await;
        let phone = connect(&one, Some(&bob)).await;
        Self {
            cluster,
            _replicas: [one, two],
            bob,
            room,
            writer,
            laptop,
            phone,
        }
    }
}

async fn counts_follow_messages_and_reads_on_every_replica(backend: Backend) {
    let Scene {
        cluster,
        bob,
        room,
        mut writer,
        mut laptop,
        mut phone,
        _replicas: _running,
    } = Scene::new(backend).await;
    let rooms = stream(&mut laptop).await;
    assert_eq!(
        rooms,
        [
            json!({"room_id": room, "kind": "group", "name": "chat", "last_seq": 0,
                "read_seq": 0, "unread": 0, "mentions": 0, "level": "mentions"})
        ]
    );
    stream(&mut phone).await;

    send(&mut writer, &room, "1", "hello").await;
    let mention = format!("look @{}", bob.name);
    send(&mut writer, &room, "2", &mention).await;
    for device in [&mut laptop, &mut phone] {
        let first = next_of(device, "unread").await;
        assert_eq!(
            (first["unread"].clone(), first["mentions"].clone()),
            (json!(1), json!(0))
        );
        let second = next_of(device, "unread").await;
        assert_eq!(
            (second["unread"].clone(), second["mentions"].clone()),
            (json!(2), json!(1))
        );
        let notify = next(device).await;
        assert_eq!(
            notify["type"], "notify",
            "only the mention notifies: {notify}"
        );
        assert_eq!(
            (
                notify["seq"].clone(),
                notify["reason"].clone(),
                notify["excerpt"].clone()
            ),
            (json!(2), json!("mention"), json!(mention))
        );
    }

    // Read on the phone (replica one): the laptop (replica two) recounts.
    say(
        &mut phone,
        json!({"type": "read", "room_id": room, "seq": 2}),
    )
    .await;
    let on_laptop = next_of(&mut laptop, "unread").await;
    assert_eq!(
        (
            on_laptop["read_seq"].clone(),
            on_laptop["unread"].clone(),
            on_laptop["mentions"].clone()
        ),
        (json!(2), json!(0), json!(0))
    );
    // From the JSON API (the website's messages owner): both hear it.
    send(&mut writer, &room, "3", "more").await;
    next_of(&mut laptop, "unread").await;
    let website = Website::of(&cluster);
    website.messages.mark_read(&bob.id, &room, 3).await.unwrap();
    for device in [&mut laptop, &mut phone] {
        loop {
            let counts = next_of(device, "unread").await;
            if counts["read_seq"] == 3 {
                assert_eq!(counts["unread"], 0);
                break;
            }
        }
    }
}

async fn levels_decide_what_notifies_and_reach_every_device(backend: Backend) {
    let Scene {
        cluster,
        bob,
        room,
        mut writer,
        mut laptop,
        mut phone,
        _replicas: _running,
    } = Scene::new(backend).await;
    stream(&mut laptop).await;
    stream(&mut phone).await;

    let level = |level: Value| json!({"type": "notify_level", "room_id": room, "level": level});
    say(&mut phone, level(json!("loud"))).await;
    assert_eq!(next(&mut phone).await["code"], "invalid_level");
    say(&mut phone, level(json!("all"))).await;
    assert_eq!(
        next(&mut phone).await,
        json!({"type": "notify_level", "room_id": room, "level": "all"})
    );
    let heard = next_of(&mut laptop, "notify_level").await;
    assert_eq!(
        heard["level"], "all",
        "the other replica's device hears the choice"
    );
    send(&mut writer, &room, "1", "plain").await;
    for device in [&mut laptop, &mut phone] {
        assert_eq!(next_of(device, "notify").await["reason"], "all");
    }

    say(&mut laptop, level(json!("nothing"))).await;
    next_of(&mut laptop, "notify_level").await;
    assert_eq!(
        next_of(&mut phone, "notify_level").await["level"],
        "nothing"
    );
    let mention = format!("@{} still there?", bob.name);
    send(&mut writer, &room, "2", &mention).await;
    send(&mut writer, &room, "3", "@room lunch").await;
    for device in [&mut laptop, &mut phone] {
        let counts = next_of(device, "unread").await;
        assert_eq!(counts["mentions"], 1, "counted, though muted");
        let counts = next(device).await;
        assert_eq!(
            (counts["type"].clone(), counts["mentions"].clone()),
            (json!("unread"), json!(2))
        );
    }
    // Nothing notified: the next frame either device gets is the cleared level's.
    say(&mut laptop, level(Value::Null)).await;
    for device in [&mut laptop, &mut phone] {
        assert_eq!(
            next(device).await["level"],
            "mentions",
            "a muted room never notifies"
        );
    }
    let stored = cluster.store.level(&room, &bob.id).await.unwrap();
    assert_eq!(stored, Some(Level::Mentions));
}

async fn rooms_added_renamed_and_removed_elsewhere_reach_the_stream(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let replica = cluster.replica(Limits::default()).await;
    let (alice, bob) = (cluster.user("alice").await, cluster.user("bob").await);
    let mut bobs = connect(&replica, Some(&bob)).await;
    assert_eq!(stream(&mut bobs).await, Vec::<Value>::new());
    let website = Website::of(&cluster);
    let outbox = website.messages.outbox();
    let room = cluster.room(&alice, &[]).await;
    cluster.add_member(&room, &bob).await;
    let added = Kind::MemberAdded(pb::MemberAdded {
        user_id: bob.id.clone(),
    });
    outbox.publish_for(&bob.id, &room, added);
    let frame = next(&mut bobs).await;
    assert_eq!(frame["type"], "room_added", "{frame}");
    assert_eq!(
        (
            frame["room"]["room_id"].clone(),
            frame["room"]["name"].clone()
        ),
        (json!(room), json!("chat"))
    );

    let mut alices = connect(&replica, Some(&alice)).await;
    subscribe(&mut alices, &room, None).await;
    send(&mut alices, &room, "1", "welcome").await;
    assert_eq!(
        next(&mut bobs).await["unread"],
        1,
        "the new room is counted"
    );
    let renamed = Kind::Renamed(pb::RoomRenamed { name: "ops".into() });
    outbox.publish(&room, renamed, None);
    let frame = next(&mut bobs).await;
    assert_eq!(
        frame,
        json!({"type": "room_renamed", "room_id": room, "name": "ops"})
    );
    cluster.store.remove_member(&room, &bob.id).await.unwrap();
    let removed = Kind::MemberRemoved(pb::MemberRemoved {
        user_id: bob.id.clone(),
    });
    outbox.publish(&room, removed, None);
    let frame = next(&mut bobs).await;
    assert_eq!(
        frame,
        json!({"type": "room_removed", "room_id": room, "reason": "removed"})
    );
    send(&mut alices, &room, "2", "gone?").await;
    say(&mut bobs, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut bobs).await["type"],
        "pong",
        "no counts of a room left"
    );
}

/// Three senders on two replicas while the reader marks read from both: whatever order
/// the events arrive in, the stream ends at the counts a fresh start reads.
async fn concurrent_sends_and_reads_end_at_the_stored_counts(backend: Backend) {
    let cluster = Cluster::new(backend).await;
    let (one, two) = (
        cluster.replica(Limits::default()).await,
        cluster.replica(Limits::default()).await,
    );
    let bob = cluster.user("bob").await;
    let mut senders: Vec<User> = Vec::new();
    for name in ["s0", "s1", "s2"] {
        senders.push(cluster.user(name).await);
    }
    let refs: Vec<&User> = senders.iter().chain([&bob]).collect();
    let room = cluster.room(&senders[0], &refs[1..]).await;
    let mut watcher = connect(&two, Some(&bob)).await;
    stream(&mut watcher).await;
    let mut tasks = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let replica = if i % 2 == 0 { &one } else { &two };
        let mut socket = connect(replica, Some(sender)).await;
        let (room, name) = (room.clone(), bob.name.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                let body = if n % 5 == 0 {
                    format!("@{name} {n}")
                } else {
                    format!("{n}")
                };
                let ack = send(&mut socket, &room, &format!("{i}-{n}"), &body).await;
                assert_eq!(ack["type"], "ack", "{ack}");
            }
        }));
    }
    let mut readers = [
        connect(&one, Some(&bob)).await,
        connect(&two, Some(&bob)).await,
    ];
    for n in 1..=30 {
        let reader = &mut readers[n % 2];
        say(
            reader,
            json!({"type": "read", "room_id": room, "seq": n * 2}),
        )
        .await;
        next_of(reader, "read_marker").await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stored = cluster
        .store
        .room_counts(&bob.id, Some(&room), 1)
        .await
        .unwrap()
        .remove(0);
    let expected = (
        stored.room.last_seq,
        stored.read_seq,
        stored.unread(),
        stored.mentions(),
    );
    assert_eq!(expected.0, 60);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let counts = next_of(&mut watcher, "unread").await;
        let live = (
            counts["last_seq"].as_i64().unwrap(),
            counts["read_seq"].as_i64().unwrap(),
            counts["unread"].as_i64().unwrap(),
            counts["mentions"].as_i64().unwrap(),
        );
        if live == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live {live:?}, stored {expected:?}"
        );
    }
    let fresh = stream(&mut watcher).await.remove(0);
    assert_eq!(
        (
            fresh["last_seq"].clone(),
            fresh["read_seq"].clone(),
            fresh["unread"].clone(),
            fresh["mentions"].clone()
        ),
        (
            json!(expected.0),
            json!(expected.1),
            json!(expected.2),
            json!(expected.3)
        )
    );
}

/// Two replicas, and Alice's room with Bob and Carol in it.
struct Trio {
    cluster: Cluster,
    replicas: [Replica; 2],
    people: [User; 3],
    room: String,
}

impl Trio {
    async fn new(backend: Backend) -> Self {
        let cluster = Cluster::new(backend).await;
        let replicas = [
            cluster.replica(Limits::default()).await,
            cluster.replica(Limits::default()).await,
        ];
        let people = [
            cluster.user("alice").await,
            cluster.user("bob").await,
            cluster.user("carol").await,
        ];
        let [alice, bob, carol] = &people;
        let room = cluster.room(alice, &[bob, carol]).await;
        Self {
            cluster,
            replicas,
            people,
            room,
        }
    }
}

async fn read_receipts_reach_subscribers_of_small_rooms(backend: Backend) {
    let Trio {
        cluster,
        replicas: [one, two],
        people: [alice, bob, carol],
        room,
    } = Trio::new(backend).await;
    cluster
        .store
        .set_share_receipts(&carol.id, false)
        .await
        .unwrap();
    let mut alices = connect(&one, Some(&alice)).await;
    subscribe(&mut alices, &room, None).await;
    send(&mut alices, &room, "1", "did you see this?").await;
    say(
        &mut alices,
        json!({"type": "subscribe", "room_id": room, "receipts": true}),
    )
    .await;
    next_of(&mut alices, "subscribed").await;
    let receipts = next(&mut alices).await;
    assert_eq!(
        receipts,
        json!({"type": "read_receipts", "room_id": room, "receipts": []}),
        "nobody has read yet (sending does not move the sender's marker)"
    );
    for (reader, replica) in [(&carol, &two), (&bob, &two)] {
        let mut socket = connect(replica, Some(reader)).await;
        say(
            &mut socket,
            json!({"type": "read", "room_id": room, "seq": 1}),
        )
        .await;
        next_of(&mut socket, "read_marker").await;
    }
    let receipt = next(&mut alices).await;
    assert_eq!(
        receipt,
        json!({"type": "read_receipt", "room_id": room, "user_id": bob.id, "seq": 1}),
        "bob's, not carol's (she does not share)"
    );
    let mut carols = connect(&one, Some(&carol)).await;
    say(
        &mut carols,
        json!({"type": "subscribe", "room_id": room, "receipts": true}),
    )
    .await;
    assert_eq!(next(&mut carols).await["type"], "subscribed");
    say(&mut carols, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut carols).await["type"],
        "pong",
        "no receipts for who does not share"
    );
}

/// Sends a reply in the thread of `root` and waits for its ack.
async fn reply(socket: &mut Socket, room: &str, root: i64, id: &str, body: &str) {
    let frame = json!({"type": "send", "room_id": room, "client_id": id, "body": body,
        "thread_root": root});
    say(socket, frame).await;
    next_of(socket, "ack").await;
}

async fn followed_threads_count_live_across_replicas(backend: Backend) {
    let Trio {
        cluster,
        replicas: [one, two],
        people: [alice, bob, carol],
        room,
    } = Trio::new(backend).await;
    let mut writer = connect(&one, Some(&alice)).await;
    let mut bobs = connect(&one, Some(&bob)).await;
    let mut laptop = connect(&two, Some(&alice)).await;
    let mut carols = connect(&two, Some(&carol)).await;
    send(&mut writer, &room, "root", "the plan").await;
    assert_eq!(stream_with_threads(&mut laptop).await.1, json!([]));
    stream(&mut carols).await;

    // Bob replies to Alice's message on the other replica: she follows it from then on.
    reply(&mut bobs, &room, 1, "b1", "on it").await;
    let state = |unread: i64, read_seq: i64| {
        json!({"type": "thread_unread", "room_id": room, "root": 1, "read_seq": read_seq,
            "unread": unread})
    };
    assert_eq!(next_of(&mut laptop, "thread_unread").await, state(1, 0));
    // Her own reply changes nothing; a mention of Carol makes her follow (every reply so
    // far unread: Bob's two and Alice's).
    reply(&mut writer, &room, 1, "a1", "thanks").await;
    let mention = format!("@{} can you review?", carol.name);
    reply(&mut bobs, &room, 1, "b2", &mention).await;
    assert_eq!(next_of(&mut laptop, "thread_unread").await, state(2, 0));
    assert_eq!(next_of(&mut carols, "thread_unread").await, state(3, 0));

    // Alice reads the thread from elsewhere (the website's owner): her stream follows.
    let website = Website::of(&cluster);
    (website.messages.read_thread(&alice.id, &room, 1, 4).await).unwrap();
    assert_eq!(next_of(&mut laptop, "thread_unread").await, state(0, 4));
    // Carol reads hers on this socket; a fresh stream starts from the stored counts.
    say(
        &mut carols,
        json!({"type": "read_thread", "room_id": room, "root": 1, "seq": 2}),
    )
    .await;
    assert_eq!(next_of(&mut carols, "thread_unread").await, state(2, 2));
    let fresh = stream_with_threads(&mut carols).await.1;
    assert_eq!(
        fresh,
        json!([{"room_id": room, "root": 1, "read_seq": 2, "unread": 2}])
    );
}

macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(#[tokio::test] async fn $case() { super::$case(super::Backend::Postgres).await })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(super::Backend::Sqlite).await })*
        }
    };
}

both!(
    counts_follow_messages_and_reads_on_every_replica,
    levels_decide_what_notifies_and_reach_every_device,
    rooms_added_renamed_and_removed_elsewhere_reach_the_stream,
    concurrent_sends_and_reads_end_at_the_stored_counts,
    read_receipts_reach_subscribers_of_small_rooms,
    followed_threads_count_live_across_replicas,
);
