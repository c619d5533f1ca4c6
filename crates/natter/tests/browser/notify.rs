//! Notifications in the browser: Bob's badges and tab title on his home page follow
//! messages in rooms he does not have open and his reading on another device, live; a
//! mention shows a notification, a muted room never does; Alice sees "seen by".

use std::time::Duration;

use serde_json::json;

use super::browser::{Browser, Driver};
use super::support::{free_addr, terminate};
use super::{alice_and_bob, output_dir, start};

/// Alice's new group `name` with Bob added; its path.
pub async fn group_with_bob(alice: &Browser, name: &str) -> String {
    alice.create_room(name, "group").await;
    let room = alice.url().await.path().to_owned();
    alice.goto(&format!("{room}/members")).await;
    alice.fill("#add-member input[name=username]", "bob").await;
    alice.submit("#add-member").await;
    alice
        .wait_for(
            "bob added",
            "document.getElementById('members').textContent.includes('bob')",
        )
        .await;
    room
}

pub async fn say(page: &Browser, text: &str) {
    page.fill("#body", text).await;
    page.press_enter("#body").await;
    let stored = format!(
        "[...document.querySelectorAll('#messages li:not(.pending) .body')].some(e => e.textContent === {})",
        json!(text)
    );
    page.wait_for("the message stored", &stored).await;
}

/// The badges of `room` (a path) on Bob's home page: `[unread shown, unread, mentions shown]`.
fn badges(room: &str) -> String {
    let id = room.trim_start_matches("/rooms/");
    format!(
        "(() => {{ const li = document.querySelector('[data-counts-of=\"{id}\"]'); \
         const u = li.querySelector('.unread'), m = li.querySelector('.mentions'); \
         return [!u.hidden, u.textContent, !m.hidden]; }})()"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn badges_titles_and_notifications_follow_the_stream_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &free_addr());
    let driver = Driver::start();
    let (alice, bob) = alice_and_bob(&driver, &server).await;
    let team = group_with_bob(&alice, "Team").await;
    let noise = group_with_bob(&alice, "Noise").await;

    // Bob mutes Noise from its page, then stays on his home page.
    bob.goto(&noise).await;
    bob.wait_live().await;
    bob.wait_for(
        "the level known",
        "!document.getElementById('notify-level').disabled",
    )
    .await;
    bob.click("#notify-level option[value=nothing]").await;
    bob.wait_for(
        "the muted room shown",
        "document.getElementById('notify-level').value === 'nothing'",
    )
    .await;
    bob.goto("/").await;
    bob.wait_for(
        "the stream started",
        "document.documentElement.dataset.due === '0'",
    )
    .await;

    alice.goto(&team).await;
    alice.wait_live().await;
    say(&alice, "hello team").await;
    let shown = badges(&team);
    bob.wait_for(
        "one unread",
        &format!("JSON.stringify({shown}) === '[true,\"1\",false]'"),
    )
    .await;
    assert_eq!(bob.eval("return document.title").await, "Home · Natter");
    say(&alice, "@bob look at this").await;
    bob.wait_for(
        "a mention",
        &format!("JSON.stringify({shown}) === '[true,\"2\",true]'"),
    )
    .await;
    bob.wait_for(
        "the title counts it",
        "document.title === '(1) Home · Natter'",
    )
    .await;
    bob.wait_for(
        "a notification of the mention",
        "document.getElementById('toasts').textContent.includes('alice in Team mentioned you')",
    )
    .await;
    std::fs::write(output_dir().join("home-badges.png"), bob.screenshot().await).unwrap();

    // A muted room counts but never notifies.
    alice.goto(&noise).await;
    alice.wait_live().await;
    say(&alice, "@bob in the noise").await;
    let muted = badges(&noise);
    bob.wait_for(
        "counted though muted",
        &format!("JSON.stringify({muted}) === '[true,\"1\",true]'"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let toasts = bob
        .eval("return document.getElementById('toasts').textContent")
        .await;
    assert!(!toasts.as_str().unwrap().contains("Noise"), "{toasts}");
    assert_eq!(bob.eval("return document.title").await, "(1) Home · Natter");

    // Bob reads Team on his phone: the home page's badge goes down, Alice sees it read.
    let phone = Browser::open(&driver, &server.url).await;
    phone.goto("/login").await;
    phone.fill("input[name=login]", "bob").await;
    phone
        .fill("input[name=password]", "correct horse battery")
        .await;
    phone.submit("#login-form").await;
    phone
        .wait_for(
            "signed in",
            "document.querySelector('h1').textContent === 'Hello, bob'",
        )
        .await;
    phone.goto(&team).await;
    phone.wait_live().await;
    bob.wait_for(
        "read elsewhere",
        &format!("JSON.stringify({shown}) === '[false,\"0\",false]'"),
    )
    .await;
    bob.wait_for("the title cleared", "document.title === 'Home · Natter'")
        .await;
    alice.goto(&team).await;
    alice
        .wait_for(
            "seen by bob",
            "document.querySelector('#messages li.mine:last-child .seen')?.textContent === 'Seen by bob'",
        )
        .await;
    for page in [alice, bob, phone] {
        page.close().await;
    }
    assert!(terminate(server).success());
}
