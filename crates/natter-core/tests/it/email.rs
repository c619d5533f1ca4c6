//! Email digests end to end against an SMTP server written here: two replicas running
//! the worker send exactly one digest per user with their unread mentions and direct
//! messages (not plain messages, not what was read in time, not to who turned digests
//! off), through lettre over real SMTP; the digest carries RFC 8058 unsubscribe headers
//! and a link whose token turns digests off.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use natter_core::email::Mailer;
use natter_core::email::worker::DigestWorker;
use natter_core::secret::Secret;
use natter_core::store::{Backend, NewMessage, NewUser, Role, RoomKind, Store};
use natter_testkit::store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::user;

/// Messages an SMTP sink took: envelope recipients and the data.
type Inbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// An SMTP server on 127.0.0.1 that accepts every message (RFC 5321's commands as lettre
/// sends them, no extensions); its URL.
async fn smtp_sink(inbox: Inbox) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(session(socket, inbox.clone()));
        }
    });
    url
}

async fn session(socket: tokio::net::TcpStream, inbox: Inbox) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut recipients = Vec::new();
    write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink\r\n",
            "MAIL" | "RSET" => {
                recipients.clear();
                b"250 ok\r\n"
            }
            "RCPT" => {
                recipients.push(line[8..].trim().to_owned());
                b"250 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await.unwrap();
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = line.trim_end_matches('\r');
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(line));
                    data.push('\n');
                }
                let to = std::mem::take(&mut recipients);
                inbox.lock().unwrap().push((to, data));
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(answer).await.unwrap();
    }
}

async fn person(store: &Store, name: &str, email: Option<&str>) -> String {
    let new = NewUser {
        username: name,
        email,
        password_hash: "$argon2id$x",
    };
    store.create_user(new).await.unwrap().id
}

async fn send(
    store: &Store,
    room: &str,
    sender: &str,
    text: &str,
    named: &[(String, String)],
) -> i64 {
    let new = NewMessage {
        mentions: named,
        ..NewMessage::text(room, sender, text, text, natter_core::time::now_ms())
    };
    store.post_message(new).await.unwrap().message.seq
}

fn worker(store: &Store, smtp: &str, delay: Duration) -> DigestWorker {
    let url = Secret::new(smtp.to_owned());
    let mailer = Mailer::new(
        &url,
        "Natter <natter@example.com>",
        "https://chat.example.com",
    )
    .unwrap();
    DigestWorker::new(store.clone(), mailer, delay)
}

/// A message with its body's quoted-printable encoding (RFC 2045) undone.
fn decoded(message: &str) -> String {
    let Some((head, body)) = message.split_once("\n\n") else {
        return message.into();
    };
    let joined = body.replace("=\n", "");
    let mut bytes = Vec::new();
    let mut rest = joined.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
        match hex.map(|h| u8::from_str_radix(h, 16)) {
            Some(Ok(byte)) if first == b'=' => {
                bytes.push(byte);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(first);
                rest = tail;
            }
        }
    }
    format!("{head}\n\n{}", String::from_utf8(bytes).unwrap())
}

/// Every message in the inbox so far, taken out.
fn take(inbox: &Inbox) -> Vec<(Vec<String>, String)> {
    std::mem::take(&mut *inbox.lock().unwrap())
}

async fn one_digest_per_user_across_two_replicas(backend: Backend) {
    let t = store(backend).await;
    let other = Store::connect(&t.url, 4).await.unwrap();
    let alice = person(&t.store, "alice", Some("alice@example.com")).await;
    let bob = person(&t.store, "bob", Some("bob@example.com")).await;
    let carol = person(&t.store, "carol", Some("carol@example.com")).await;
    let dave = user(&t.store, "dave").await; // no address
    let room = (t.store.create_room(RoomKind::Group, "team", &alice).await)
        .unwrap()
        .id;
    for member in [&bob, &carol, &dave] {
        (t.store.add_member(&room, member, Role::Member).await).unwrap();
    }
    assert!(t.store.set_email_digests(&carol, false).await.unwrap());
    let inbox = Inbox::default();
    let smtp = smtp_sink(inbox.clone()).await;
    let delay = Duration::from_millis(400);
    let (one, two) = (worker(&t.store, &smtp, delay), worker(&other, &smtp, delay));
    let both = async || {
        for _ in 0..3 {
            let (a, b) = tokio::join!(one.tick(), two.tick());
            a.unwrap();
            b.unwrap();
        }
    };

    let named = |who: &[&str]| -> Vec<(String, String)> {
        let ids = [(&bob, "bob"), (&carol, "carol"), (&dave, "dave")];
        (ids.iter().filter(|(_, n)| who.contains(n)))
            .map(|(id, n)| ((*id).clone(), (*n).to_owned()))
            .collect()
    };
    send(&t.store, &room, &alice, "plain chatter", &[]).await;
    send(
        &t.store,
        &room,
        &alice,
        "@bob @carol @dave the deploy",
        &named(&["bob", "carol", "dave"]),
    )
    .await;
    let read_in_time = send(&t.store, &room, &alice, "@bob quick one", &named(&["bob"])).await;
    let direct = t.store.open_direct(&alice, &bob).await.unwrap().id;
    send(&t.store, &direct, &alice, "lunch?", &[]).await;
    send(
        &t.store,
        &room,
        &bob,
        "@alice my own mention of her",
        &[(alice.clone(), "alice".into())],
    )
    .await;
    both().await;
    assert!(take(&inbox).is_empty(), "nothing before the delay");
    (t.store.mark_read(&room, &bob, read_in_time).await).unwrap();
    // Bob read up to "quick one" — the deploy mention before it too. Another comes after.
    send(
        &t.store,
        &room,
        &alice,
        "@bob after you read",
        &named(&["bob"]),
    )
    .await;
    tokio::time::sleep(delay + Duration::from_millis(100)).await;
    both().await;

    let mails = take(&inbox);
    let to: Vec<&str> = mails.iter().map(|(to, _)| to[0].as_str()).collect();
    assert_eq!(
        to.iter().filter(|t| t.contains("bob@")).count(),
        1,
        "one digest to bob across both workers: {to:?}"
    );
    assert!(
        to.iter().any(|t| t.contains("alice@")),
        "alice was mentioned: {to:?}"
    );
    assert!(
        !to.iter().any(|t| t.contains("carol@")),
        "carol turned digests off"
    );
    assert_eq!(mails.len(), 2, "bob and alice only: {to:?}");
    let bobs = mails.iter().find(|(to, _)| to[0].contains("bob@"));
    let bobs = &decoded(&bobs.unwrap().1);
    assert!(
        bobs.contains("Subject: 2 unread messages for you on Natter"),
        "{bobs}"
    );
    assert!(
        bobs.contains("@bob after you read") && bobs.contains("lunch?"),
        "{bobs}"
    );
    assert!(
        !bobs.contains("plain chatter") && !bobs.contains("quick one"),
        "{bobs}"
    );
    assert!(
        bobs.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{bobs}"
    );
    let link = bobs
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .and_then(|l| l.strip_suffix('>'))
        .expect("a List-Unsubscribe header");
    assert!(
        bobs.contains(&format!("Stop these emails: {link}")),
        "{bobs}"
    );
    assert!(
        bobs.contains(&format!("https://chat.example.com/rooms/{room}")),
        "{bobs}"
    );

    // Within the delay after a digest, no second one, whatever arrives.
    send(&t.store, &direct, &alice, "still there?", &[]).await;
    both().await;
    assert!(take(&inbox).is_empty(), "at most one digest per delay");

    // The link's token turns digests off and drops what waited.
    let token = link.rsplit('/').next().unwrap();
    let whose = t.store.unsubscribe_digests(token).await.unwrap();
    assert_eq!(whose.as_deref(), Some("bob"));
    let (_, digests) = t.store.user_settings(&bob).await.unwrap().unwrap();
    assert!(!digests);
    assert_eq!(t.store.digests_queued(&bob).await.unwrap(), 0);
    assert_eq!(t.store.unsubscribe_digests("nope").await.unwrap(), None);
    tokio::time::sleep(delay + Duration::from_millis(100)).await;
    both().await;
    assert!(take(&inbox).is_empty(), "no digest after unsubscribing");
}

async fn a_refused_digest_stays_queued_until_the_retry(backend: Backend) {
    let t = store(backend).await;
    let alice = person(&t.store, "alice", Some("alice@example.com")).await;
    let bob = person(&t.store, "bob", Some("bob@example.com")).await;
    let direct = t.store.open_direct(&alice, &bob).await.unwrap().id;
    send(&t.store, &direct, &alice, "are you there", &[]).await;
    // Nothing listens here: the send fails and the message stays queued.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("smtp://{}", closed.local_addr().unwrap());
    drop(closed);
    worker(&t.store, &dead, Duration::ZERO)
        .tick()
        .await
        .unwrap();
    assert_eq!(t.store.digests_queued(&bob).await.unwrap(), 1);
    let inbox = Inbox::default();
    let smtp = smtp_sink(inbox.clone()).await;
    let live = worker(&t.store, &smtp, Duration::ZERO);
    live.tick().await.unwrap();
    assert!(take(&inbox).is_empty(), "not before the retry wait");
    assert_eq!(t.store.digests_queued(&bob).await.unwrap(), 1);
}

conformance!(
    one_digest_per_user_across_two_replicas,
    a_refused_digest_stays_queued_until_the_retry
);
