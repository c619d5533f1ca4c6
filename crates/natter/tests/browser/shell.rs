//! The app shell in Chromium: the sidebar's rooms with live badges, switching rooms on
//! one socket with the URL following, a resume gap larger than a history page filled
//! completely, a send made offline surviving a reload, the phone drawer, dark mode,
//! Russian, and axe-core on every page (screenshots into the test output directory).

use std::time::Duration;

use serde_json::json;

use super::browser::{Browser, Driver};
use super::notify::{group_with_bob, say};
use super::support::{free_addr, start_with, terminate};
use super::{alice_and_bob, output_dir, start};

fn room_id(path: &str) -> &str {
    path.trim_start_matches("/rooms/")
}

fn sidebar_link(room: &str) -> String {
    format!("#sidebar [data-counts-of=\"{}\"] a", room_id(room))
}

#[tokio::test(flavor = "multi_thread")]
async fn rooms_switch_on_one_socket_with_badges_and_the_url_following() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &free_addr());
    let driver = Driver::start();
    let (alice, bob) = alice_and_bob(&driver, &server).await;
    let alpha = group_with_bob(&alice, "Alpha").await;
    let beta = group_with_bob(&alice, "Beta").await;

    bob.goto("/").await;
    bob.check_accessibility("home").await;
    bob.click(&sidebar_link(&alpha)).await;
    bob.wait_live().await;
    assert_eq!(bob.url().await.path(), alpha, "the URL follows the room");
    bob.check_accessibility("a room").await;

    // A message in the other room: a badge on it, nothing reloads.
    alice.goto(&beta).await;
    alice.wait_live().await;
    say(&alice, "in beta").await;
    let badge = format!(
        "document.querySelector('[data-counts-of=\"{}\"] .unread')",
        room_id(&beta)
    );
    bob.wait_for(
        "beta's badge",
        &format!("!{badge}.hidden && {badge}.textContent === '1'"),
    )
    .await;

    bob.click(&sidebar_link(&beta)).await;
    let shown = "[...document.querySelectorAll('#messages li:not(.pending) .body')].some(e => e.textContent === 'in beta')";
    bob.wait_for("beta's message", shown).await;
    bob.wait_live().await;
    assert_eq!(bob.url().await.path(), beta);
    let ms = bob
        .eval("return document.documentElement.dataset.lastSwitchMs")
        .await;
    eprintln!("switch to a room not opened before: {ms} ms (its page fetched and rendered)");
    bob.wait_for("beta read", &format!("{badge}.hidden")).await;

    // Back to a room opened before: kept, shown at once; back and forward follow.
    bob.click(&sidebar_link(&alpha)).await;
    bob.wait_for(
        "alpha again",
        "document.documentElement.dataset.lastSwitchKept === 'true'",
    )
    .await;
    bob.wait_live().await;
    let ms = bob
        .eval("return Number(document.documentElement.dataset.lastSwitchMs)")
        .await;
    eprintln!("switch to a kept room: {ms} ms from click to its messages on screen");
    assert!(ms.as_f64().is_some(), "{ms}");
    bob.back().await;
    bob.wait_for("back in beta", shown).await;
    assert_eq!(bob.url().await.path(), beta);
    assert_eq!(
        bob.eval("return document.documentElement.dataset.sockets")
            .await,
        json!("1"),
        "one socket for every switch"
    );
    let bytes = bob
        .eval(
            "return performance.getEntriesByType('resource') \
             .filter(e => /\\/static\\/.*\\.(js|css)$/.test(e.name)) \
             .reduce((sum, e) => sum + e.encodedBodySize, 0)",
        )
        .await;
    eprintln!("JS and CSS shipped: {bytes} bytes");
    std::fs::write(output_dir().join("shell.png"), bob.screenshot().await).unwrap();

    // Inline edit and delete with undo.
    bob.goto(&beta).await;
    bob.wait_live().await;
    say(&bob, "typo").await;
    let mine = "#messages li.mine:not(.pending)";
    bob.click(&format!("{mine} button.edit")).await;
    bob.fill(&format!("{mine} form.edit textarea"), "fixed")
        .await;
    bob.press_enter(&format!("{mine} form.edit textarea")).await;
    let edited = format!("document.querySelector('{mine} .body').textContent === 'fixed'");
    alice.wait_for("the edit", "[...document.querySelectorAll('#messages .body')].some(e => e.textContent === 'fixed')").await;
    bob.wait_for("the edit shown", &edited).await;
    bob.click(&format!("{mine} button.delete")).await;
    bob.click(&format!("{mine} button.undo")).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        bob.eval(&format!("return {edited}")).await,
        json!(true),
        "undone"
    );
    bob.click(&format!("{mine} button.delete")).await;
    alice
        .wait_for(
            "deleted after the undo time",
            "document.querySelectorAll('#messages li.deleted').length === 1",
        )
        .await;

    for page in [alice, bob] {
        page.close().await;
    }
    assert!(terminate(server).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconnect_after_a_gap_of_several_pages_fills_it_and_an_offline_send_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let env = [
        ("NATTER_HTTP_ADDR", addr.as_str()),
        ("NATTER_AUTH_LOGIN_LIMIT_PER_IP", "1000"),
        ("NATTER_WEBSITE_WRITE_LIMIT", "100000"),
    ];
    let server = start_with(&data, &env);
    let driver = Driver::start();
    let (alice, bob) = alice_and_bob(&driver, &server).await;
    let room = group_with_bob(&alice, "Busy").await;
    bob.goto(&room).await;
    bob.wait_live().await;
    let first = bob
        .eval("return Number(document.getElementById('room').dataset.contiguous)")
        .await;
    // Bob's browser goes offline (its socket closes) while 700 messages arrive: more
    // than the server replays on resume (500), so 200 come from history, two pages of
    // 100. `NATTER_TEST_GAP` sets another number (e.g. 10000, to measure a tab).
    let gap: u32 = std::env::var("NATTER_TEST_GAP").map_or(700, |n| n.parse().unwrap());
    bob.eval("window.dispatchEvent(new Event('offline')); return null")
        .await;
    bob.wait_for(
        "offline shown",
        "document.getElementById('conn').dataset.state === 'reconnecting'",
    )
    .await;
    alice.goto(&room).await;
    alice.wait_live().await;
    alice
        .eval(&format!(
            "(async () => {{ \
               const csrf = document.querySelector('meta[name=natter-csrf]').content; \
               const token = (await (await fetch('/session/socket-token', {{ headers: {{ 'X-CSRF-Token': csrf }} }})).json()).token; \
               for (let i = 0; i < {gap}; i++) {{ \
                 const r = await fetch('/api/v1/rooms/{}/messages', {{ method: 'POST', \
                   headers: {{ Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' }}, \
                   body: JSON.stringify({{ body: 'gap ' + i, client_id: 'gap-' + i }}) }}); \
                 if (!r.ok) return (window.posted = 'refused ' + r.status + ' at ' + i); \
               }} \
               window.posted = 'ok'; \
             }})(); return null",
            room_id(&room)
        ))
        .await;
    while alice.eval("return window.posted === undefined").await == json!(true) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(alice.eval("return window.posted").await, json!("ok"));
    bob.eval("window.dispatchEvent(new Event('online')); return null")
        .await;
    let expected = first.as_i64().unwrap() + i64::from(gap);
    bob.wait_for(
        "every message of the gap",
        &format!("Number(document.getElementById('room').dataset.contiguous) === {expected}"),
    )
    .await;
    let last = "[...document.querySelectorAll('#messages li.message .body')].pop().textContent";
    let sockets = bob
        .eval("return Number(document.documentElement.dataset.sockets)")
        .await;
    assert!(sockets.as_u64().unwrap() >= 2, "a reconnection: {sockets}");
    let newest = json!(format!("gap {}", gap - 1));
    assert_eq!(bob.eval(&format!("return {last}")).await, newest);
    let measure = "return [document.querySelectorAll('#messages li.message').length, \
                   document.getElementsByTagName('*').length, \
                   Math.round(performance.memory.usedJSHeapSize / 1024)]";
    let after = bob.eval(measure).await;
    eprintln!("after {gap} arrived: [messages in the page, elements, JS heap KiB] = {after}");
    // What the list shows is one unbroken stretch of the room, ending with the newest.
    let seqs = bob
        .eval("return [...document.querySelectorAll('#messages li.message')].map(li => Number(li.dataset.seq))")
        .await;
    let seqs: Vec<i64> = serde_json::from_value(seqs).unwrap();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a hole in {seqs:?}"
    );
    // Reading back through older pages (50 each) to the first: the window stays bounded.
    for _ in 0..20 {
        let before = bob
            .eval("return document.querySelector('#messages li.message').dataset.seq")
            .await;
        if before == json!("1") {
            break;
        }
        bob.eval(
            "const list = document.getElementById('messages'); list.scrollTop = 0; \
             list.dispatchEvent(new Event('scroll')); return null",
        )
        .await;
        let moved =
            format!("document.querySelector('#messages li.message').dataset.seq !== {before}");
        bob.wait_for("an older page", &moved).await;
    }
    let back = bob.eval(measure).await;
    eprintln!("after scrolling back 20 pages: {back}");
    assert!(back[0].as_u64().unwrap() <= 800, "windowed: {back}");

    // Offline: the send waits in this browser's outbox, survives a reload, goes once.
    assert!(terminate(server).success());
    bob.wait_for(
        "offline shown",
        "document.getElementById('conn').dataset.state === 'reconnecting'",
    )
    .await;
    bob.fill("#body", "written offline").await;
    bob.press_enter("#body").await;
    bob.fill("#body", "a draft").await;
    assert_eq!(
        bob.eval("return JSON.parse(localStorage.getItem('natter.outbox')).length")
            .await,
        json!(1)
    );
    let server = start_with(&data, &env);
    bob.refresh().await;
    let once = "[...document.querySelectorAll('#messages li:not(.pending) .body')].filter(e => e.textContent === 'written offline').length === 1";
    bob.wait_for("the offline message stored", once).await;
    alice.refresh().await;
    alice.wait_for("it reached alice once", once).await;
    bob.wait_for(
        "the outbox emptied",
        "JSON.parse(localStorage.getItem('natter.outbox')).length === 0",
    )
    .await;
    assert_eq!(
        bob.eval("return document.getElementById('body').value")
            .await,
        json!("a draft"),
        "the draft kept"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        bob.eval(&format!("return {once}")).await,
        json!(true),
        "no duplicate"
    );

    for page in [alice, bob] {
        page.close().await;
    }
    assert!(terminate(server).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn phone_width_dark_mode_and_russian() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &free_addr());
    let driver = Driver::start();
    let (alice, bob) = alice_and_bob(&driver, &server).await;
    let room = group_with_bob(&alice, "Team").await;
    alice.goto(&room).await;
    alice.wait_live().await;
    say(&alice, "hello from a phone").await;

    // 375 px: the sidebar is a drawer.
    bob.resize(375, 740).await;
    bob.goto("/").await;
    let drawer_shut = "document.getElementById('sidebar').getBoundingClientRect().right <= 0";
    bob.wait_for("the drawer shut", drawer_shut).await;
    bob.click("#drawer-toggle").await;
    bob.wait_for(
        "the drawer open",
        "document.getElementById('sidebar').getBoundingClientRect().left >= 0",
    )
    .await;
    bob.click(&sidebar_link(&room)).await;
    bob.wait_live().await;
    bob.wait_for("the drawer closed again", drawer_shut).await;
    let fits = "document.documentElement.scrollWidth <= window.innerWidth";
    assert_eq!(
        bob.eval(&format!("return {fits}")).await,
        json!(true),
        "no sideways scrolling"
    );
    bob.check_accessibility("a room at phone width").await;
    std::fs::write(output_dir().join("phone-light.png"), bob.screenshot().await).unwrap();

    // Dark: the toggle, kept by the server across a reload.
    bob.click("#theme-toggle").await;
    bob.wait_for("dark", "document.documentElement.dataset.theme === 'dark'")
        .await;
    bob.refresh().await;
    bob.wait_live().await;
    let dark = "getComputedStyle(document.body).backgroundColor === 'rgb(17, 20, 27)'";
    bob.wait_for("dark after a reload", dark).await;
    bob.check_accessibility("a room in dark mode").await;
    std::fs::write(output_dir().join("phone-dark.png"), bob.screenshot().await).unwrap();

    // Russian, chosen over the browser's English; dates and plurals in Russian too.
    bob.resize(1280, 800).await;
    bob.eval("const s = document.getElementById('lang-select'); s.value = 'ru'; s.dispatchEvent(new Event('change')); return null")
        .await;
    bob.wait_for("Russian", "document.documentElement.lang === 'ru'")
        .await;
    bob.wait_live().await;
    for (what, script) in [
        (
            "the send button",
            "document.querySelector('#composer button').textContent === 'Отправить'",
        ),
        (
            "today's separator",
            "document.querySelector('#messages li.day').textContent === 'Сегодня'",
        ),
        (
            "the connection",
            "document.getElementById('conn').textContent === 'подключено'",
        ),
        (
            "the sidebar",
            "document.getElementById('rooms-heading').textContent === 'Комнаты'",
        ),
    ] {
        bob.wait_for(what, script).await;
    }
    bob.check_accessibility("a room in Russian").await;
    std::fs::write(
        output_dir().join("desktop-dark-ru.png"),
        bob.screenshot().await,
    )
    .unwrap();
    bob.goto("/").await;
    bob.wait_for(
        "greeted in Russian",
        "document.querySelector('h1').textContent === 'Здравствуйте, bob'",
    )
    .await;
    bob.goto("/users?q=alice").await;
    bob.click("#users a").await;
    bob.wait_for("alice's profile", "!!document.getElementById('direct')")
        .await;
    bob.check_accessibility("a profile").await;
    for path in [
        "/rooms",
        "/users?q=a",
        "/rooms/new",
        "/profile",
        &format!("{room}/members"),
        "/rooms/no-such-room",
    ] {
        bob.goto(path).await;
        bob.check_accessibility(path).await;
    }
    alice
        .check_accessibility("a room in light mode at 1000 px")
        .await;
    std::fs::write(
        output_dir().join("desktop-light.png"),
        alice.screenshot().await,
    )
    .unwrap();
    let signed_out = Browser::open(&driver, &server.url).await;
    for path in ["/", "/login", "/register", "/unsubscribe/an-unknown-token"] {
        signed_out.goto(path).await;
        signed_out.check_accessibility(path).await;
    }

    for page in [alice, bob, signed_out] {
        page.close().await;
    }
    assert!(terminate(server).success());
}
