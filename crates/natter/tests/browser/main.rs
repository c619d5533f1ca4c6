//! The web UI in headless Chromium (Debian's chromium and chromium-driver, driven over
//! WebDriver): two people chatting live, a direct chat from a profile, an XSS payload,
//! logout and back-navigation, a form without its CSRF token, a server restart while
//! a room is open, and notifications (notify.rs).

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod notify;
mod shell;

use std::time::Duration;

use browser::{Browser, Driver};
use serde_json::json;
use support::{Running, free_addr, start_with, terminate};

fn output_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(data: &std::path::Path, addr: &str) -> Running {
    start_with(
        data,
        &[
            ("NATTER_HTTP_ADDR", addr),
            ("NATTER_AUTH_LOGIN_LIMIT_PER_IP", "1000"),
        ],
    )
}

/// Two people, registered, each in their own browser.
async fn alice_and_bob(driver: &Driver, server: &Running) -> (Browser, Browser) {
    let alice = Browser::open(driver, &server.url).await;
    let bob = Browser::open(driver, &server.url).await;
    alice.register("alice").await;
    bob.register("bob").await;
    (alice, bob)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_people_chat_live_then_direct_xss_csrf_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &free_addr());
    let driver = Driver::start();
    let (alice, bob) = alice_and_bob(&driver, &server).await;

    // Alice makes a group and adds Bob; both open it.
    alice.create_room("Team", "group").await;
    let room_url = alice.url().await;
    alice.goto(&format!("{}/members", room_url.path())).await;
    alice.fill("#add-member input[name=username]", "bob").await;
    alice.submit("#add-member").await;
    alice
        .wait_for(
            "bob listed",
            "document.getElementById('members').textContent.includes('bob')",
        )
        .await;
    alice.click("#members .promote").await;
    // Bob's role itself (the button's "Make admin" is no proof the form was answered).
    alice
        .wait_for(
            "bob is an admin",
            "[...document.querySelectorAll('#members .kind')].some(e => e.textContent === 'admin')",
        )
        .await;
    alice.goto(room_url.path()).await;
    alice.wait_live().await;
    // A subscriber's presence list is the room at its last flush (docs/protocol.md): the
    // page counts its own user online at once, not with the next flush.
    let shown = alice
        .eval("return document.getElementById('online').textContent")
        .await;
    assert!(
        shown.as_str().is_some_and(|s| s.contains("alice")),
        "{shown}"
    );
    bob.goto("/").await;
    bob.click("#my-rooms a").await;
    for page in [&alice, &bob] {
        page.wait_live().await;
    }
    // Each sees the other online, and Bob typing (presence_changes frames).
    for (page, other) in [(&alice, "bob"), (&bob, "alice")] {
        let shown = format!("document.getElementById('online').textContent.includes('{other}')");
        page.wait_for("the other online", &shown).await;
    }
    bob.fill("#body", "hm").await;
    alice
        .wait_for(
            "bob typing",
            "document.getElementById('typing').textContent === 'bob is typing…'",
        )
        .await;

    // Typed in one, shown in the other without a reload, in order.
    for (i, (from, text)) in [
        (&alice, "hello bob"),
        (&bob, "hi alice"),
        (&alice, "how are you?"),
    ]
    .into_iter()
    .enumerate()
    {
        from.fill("#body", text).await;
        from.press_enter("#body").await;
        let shown = format!(
            "document.querySelectorAll('#messages li:not(.pending) .body').length >= {}",
            i + 1
        );
        alice.wait_for("delivered to alice", &shown).await;
        bob.wait_for("delivered to bob", &shown).await;
    }
    let expected = json!(["hello bob", "hi alice", "how are you?"]);
    for page in [&alice, &bob] {
        assert_eq!(
            page.eval(
                "return [...document.querySelectorAll('#messages .body')].map(e => e.textContent)"
            )
            .await,
            expected
        );
    }
    assert_eq!(
        bob.eval("return document.querySelector('#messages li .sender').textContent")
            .await,
        "alice"
    );

    // Reactions, live both ways: Bob picks 👍 under the first message, Alice adds hers
    // with the chip, Bob takes his back; a reload shows Alice's as hers.
    let first = "#messages li[data-seq='1']";
    bob.click(&format!("{first} button.react")).await;
    bob.click(&format!("{first} button[data-pick='👍']")).await;
    let chip = |count: u32, pressed: bool| {
        format!(
            "(c => c && c.querySelector('.count').textContent === '{count}' \
             && c.getAttribute('aria-pressed') === '{pressed}')\
             (document.querySelector(\"{first} button.reaction[data-emoji='👍']\"))"
        )
    };
    alice.wait_for("bob's 👍", &chip(1, false)).await;
    alice.click(&format!("{first} button.reaction")).await;
    alice.wait_for("two 👍, one mine", &chip(2, true)).await;
    bob.wait_for("two 👍, one bob's", &chip(2, true)).await;
    bob.click(&format!("{first} button.reaction")).await;
    bob.wait_for("bob's 👍 taken back", &chip(1, false)).await;
    alice.wait_for("alice's 👍 left", &chip(1, true)).await;
    alice.refresh().await;
    alice.wait_for("rendered as alice's", &chip(1, true)).await;

    // Bob answers Alice's "how are you?" (message 3): both see the quote, which jumps to
    // the original; once Alice deletes it (below) the quote says so.
    alice.wait_live().await;
    bob.click("#messages li[data-seq='3'] button.reply").await;
    bob.fill("#body", "fine, thanks").await;
    bob.press_enter("#body").await;
    let quoted = "[...document.querySelectorAll('#messages a.quote')]\
        .some(q => q.textContent === '↩ alice: how are you?')";
    alice.wait_for("the reply's quote", quoted).await;
    bob.wait_for("the reply's quote", quoted).await;
    alice.click("#messages a.quote").await;
    alice
        .wait_for(
            "the jump to the original",
            "document.querySelector(\"#messages li[data-seq='3']\").classList.contains('flash')",
        )
        .await;

    // Markdown: emphasis, code and a bare URL become markup, the link marked as user
    // content.
    alice
        .fill("#body", "**bold** and `code` at https://natter.example/x")
        .await;
    alice.press_enter("#body").await;
    let rendered = "!!document.querySelector(\"#messages strong\") \
        && document.querySelector('#messages .body code').textContent === 'code' \
        && document.querySelector(\"#messages a[href='https://natter.example/x']\").rel \
           === 'noopener nofollow ugc'";
    bob.wait_for("the message rendered", rendered).await;

    // Mentions: Bob completes "@al" from the members, Alice sees herself mentioned.
    bob.fill("#body", "@al").await;
    bob.wait_for(
        "the suggestion",
        "document.querySelector('#mention-suggest button')?.textContent === '@alice'",
    )
    .await;
    bob.click("#mention-suggest button").await;
    bob.eval("document.getElementById('body').value += 'have a look'; return null")
        .await;
    bob.press_enter("#body").await;
    let mentioned = "[...document.querySelectorAll('#messages li.mentions-me .mention.me')]\
        .some(m => m.textContent === '@alice')";
    alice.wait_for("alice mentioned", mentioned).await;

    // Pins: Bob (an admin) pins the first message; Alice sees it marked and listed, live.
    bob.click(&format!("{first} button.pin")).await;
    let pinned = format!(
        "document.querySelector(\"{first}\").classList.contains('pinned') \
         && document.getElementById('pin-count').textContent === '1' \
         && document.querySelector('#pin-list li').textContent === 'alice: hello bob'"
    );
    alice.wait_for("the pin", &pinned).await;

    // An XSS corpus through the whole path: sent, delivered live, rendered on the
    // server after a reload; nothing dangerous reaches either page.
    for attack in [
        "[x](javascript:alert(1))",
        "<a href=\"javascript:window.pwned=3\">x</a>",
        "![x](javascript:window.pwned=4)",
        "[y](data:text/html,<script>window.pwned=5</script>)",
        "<svg onload=window.pwned=6>",
        "<iframe src=//evil.example></iframe>",
        "[z](JaVaScRiPt:window.pwned=7)",
        "&lt;script&gt;window.pwned=8&lt;/script&gt;",
    ] {
        alice.fill("#body", attack).await;
        alice.press_enter("#body").await;
    }
    let inert = "return (() => { const all = [...document.querySelectorAll('#messages *')]; \
        return all.every(e => [...e.attributes].every(a => !a.name.startsWith('on'))) \
        && all.every(e => !['IMG', 'SVG', 'SCRIPT', 'IFRAME', 'STYLE'].includes(e.tagName.toUpperCase())) \
        && [...document.querySelectorAll('#messages a[href]')].every(a => /^https?:/.test(a.href)) \
        && window.pwned === undefined; })()";
    let corpus_in = "document.querySelectorAll('#messages li:not(.pending)').length >= 14";
    bob.wait_for("the corpus, delivered", corpus_in).await;
    assert_eq!(bob.eval(inert).await, json!(true), "live");
    bob.refresh().await;
    bob.wait_for("the corpus, rendered by the server", corpus_in)
        .await;
    assert_eq!(bob.eval(inert).await, json!(true), "server-rendered");
    bob.wait_live().await;

    // Threads: Alice starts one on Bob's "hi alice"; Bob sees the summary live, opens
    // the thread beside the room and answers, also to the room.
    let second = "#messages li[data-seq='2']";
    alice.click(&format!("{second} button.thread")).await;
    alice
        .wait_for(
            "the thread open",
            "!document.getElementById('thread-panel').hidden",
        )
        .await;
    alice.fill("#thread-body", "in the thread").await;
    alice.press_enter("#thread-body").await;
    bob.wait_for(
        "the root's summary",
        &format!(
            "document.querySelector(\"{second} button.thread-summary\")?.textContent.startsWith('💬 1 reply')"
        ),
    )
    .await;
    bob.click(&format!("{second} button.thread-summary")).await;
    let in_panel = |text: &str| {
        format!(
            "[...document.querySelectorAll('#thread-messages li:not(.pending) .body')]\
             .some(e => e.textContent === '{text}')"
        )
    };
    bob.wait_for("the thread's reply", &in_panel("in the thread"))
        .await;
    bob.click("#also-to-room").await;
    bob.fill("#thread-body", "back to you").await;
    bob.press_enter("#thread-body").await;
    alice
        .wait_for("bob's answer in the thread", &in_panel("back to you"))
        .await;
    let in_room = |text: &str| {
        format!(
            "[...document.querySelectorAll('#messages .body')].some(e => e.textContent === '{text}')"
        )
    };
    alice
        .wait_for("the answer also in the room", &in_room("back to you"))
        .await;
    let marked =
        "document.querySelectorAll('#messages li[data-thread-root] .in-thread').length === 1";
    alice.wait_for("marked as a thread message", marked).await;
    assert_eq!(
        alice
            .eval(&format!("return {}", in_room("in the thread")))
            .await,
        json!(false),
        "a thread-only reply stays out of the room's timeline"
    );
    std::fs::write(output_dir().join("thread.png"), alice.screenshot().await).unwrap();
    // The home page lists the threads Alice follows (she replied); the link opens it.
    alice.goto("/").await;
    alice.click("#my-threads a").await;
    alice
        .wait_for("the thread, opened from its link", &in_panel("back to you"))
        .await;
    alice.wait_live().await;
    alice.click("#close-thread").await;

    // A message made of markup is shown as text and runs nothing.
    let payload = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>";
    alice.fill("#body", payload).await;
    alice.press_enter("#body").await;
    let arrived = format!(
        "[...document.querySelectorAll('#messages .body')].some(e => e.textContent === {})",
        json!(payload)
    );
    bob.wait_for("the payload, as text", &arrived).await;
    assert_eq!(
        bob.eval(
            "return [window.pwned === undefined, document.querySelector('#messages img') === null]"
        )
        .await,
        json!([true, true])
    );
    bob.refresh().await;
    bob.wait_for("the payload after a reload, as text", &arrived)
        .await;
    assert_eq!(
        bob.eval(
            "return [window.pwned === undefined, document.querySelector('#messages img') === null]"
        )
        .await,
        json!([true, true])
    );
    // Editing (in place) and deleting (after the time to undo it) one's own message reach
    // the other page too.
    alice.click("#messages li[data-seq='1'] button.edit").await;
    let editor = "#messages li[data-seq='1'] form.edit textarea";
    alice.fill(editor, "hello bob (edited text)").await;
    alice.press_enter(editor).await;
    bob.wait_for(
        "the edit",
        "document.querySelector('#messages li .body').textContent === 'hello bob (edited text)'",
    )
    .await;
    // "(edited)" opens the earlier text.
    bob.click("#messages li[data-seq='1'] button.edited").await;
    bob.wait_for(
        "the earlier version",
        "document.querySelector('#messages li ol.edits .body')?.textContent === 'hello bob'",
    )
    .await;
    alice
        .click("#messages li[data-seq='3'] button.delete")
        .await;
    bob.wait_for(
        "the deletion",
        "document.querySelectorAll('#messages li.deleted').length === 1",
    )
    .await;
    bob.wait_for(
        "the reply's quote of a deleted message",
        "document.querySelector('#messages a.quote').textContent === '↩ a deleted message'",
    )
    .await;
    std::fs::write(output_dir().join("room.png"), alice.screenshot().await).unwrap();

    // Someone who joins after Bob's page loaded is named there, not "someone".
    let carol = Browser::open(&driver, &server.url).await;
    carol.register("carol").await;
    alice.goto(&format!("{}/members", room_url.path())).await;
    alice
        .fill("#add-member input[name=username]", "carol")
        .await;
    alice.submit("#add-member").await;
    alice
        .wait_for(
            "carol listed",
            "document.getElementById('members').textContent.includes('carol')",
        )
        .await;
    carol.goto(room_url.path()).await;
    carol.wait_live().await;
    carol.fill("#body", "hello all").await;
    carol.press_enter("#body").await;
    bob.wait_for(
        "the late joiner named",
        "[...document.querySelectorAll('#messages > li.message')].some(li => \
         li.querySelector('.sender').textContent === 'carol' \
         && li.querySelector('.body').textContent === 'hello all')",
    )
    .await;
    carol.close().await;

    // A direct chat started from a profile.
    bob.goto("/users?q=ali").await;
    bob.click("#users a").await;
    // The profile comes by the shell's navigation (fetched, then swapped in).
    bob.wait_for("the profile", "!!document.getElementById('direct')")
        .await;
    bob.click("#direct").await;
    bob.wait_for(
        "the direct room",
        "document.querySelector('h1').textContent.includes('alice')",
    )
    .await;
    bob.wait_live().await;
    bob.fill("#body", "just us").await;
    bob.press_enter("#body").await;
    bob.wait_for("acked", "[...document.querySelectorAll('#messages li:not(.pending) .body')].some(e => e.textContent === 'just us')").await;
    let direct = bob.url().await;
    alice.goto(direct.path()).await;
    alice.wait_for("the direct message", "[...document.querySelectorAll('#messages .body')].some(e => e.textContent === 'just us')").await;

    // Bob leaves the group from its members page; it is gone from his home page.
    bob.goto(&format!("{}/members", room_url.path())).await;
    bob.submit("#leave-room").await;
    bob.wait_for(
        "home without the group",
        "!!document.getElementById('my-rooms') && !document.getElementById('my-rooms').textContent.includes('Team')",
    )
    .await;

    // A form whose CSRF token was removed is refused.
    alice.goto("/rooms/new").await;
    alice
        .eval("document.querySelector('#new-room-form input[name=csrf]').remove(); return null")
        .await;
    alice.fill("input[name=name]", "Forged").await;
    alice.submit("#new-room-form").await;
    alice
        .wait_for(
            "the refusal",
            "document.querySelector('h1').textContent === 'Form refused'",
        )
        .await;

    // Logout revokes; going back shows the login page, not the room.
    alice.goto(direct.path()).await;
    alice.click("#logout").await;
    alice
        .wait_for("the login page", "!!document.getElementById('login-form')")
        .await;
    alice.back().await;
    alice
        .wait_for(
            "the login page after going back",
            "!!document.getElementById('login-form')",
        )
        .await;
    assert_eq!(
        alice.eval("return !!document.getElementById('room')").await,
        json!(false)
    );

    alice.close().await;
    bob.close().await;
    assert!(terminate(server).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_while_a_room_is_open_reconnects_and_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let server = start(&data, &addr);
    let driver = Driver::start();
    let (alice, bob) = alice_and_bob(&driver, &server).await;
    alice.create_room("Lobby", "public").await;
    let room = alice.url().await;
    bob.goto(room.path()).await;
    bob.click("#join").await;
    // The room page after the join answered (a public room is live before joining too).
    bob.wait_for(
        "joined",
        "!document.getElementById('join') && !!document.getElementById('room')",
    )
    .await;
    for page in [&alice, &bob] {
        page.wait_live().await;
    }

    assert!(terminate(server).success());
    alice
        .wait_for(
            "reconnecting shown",
            "document.getElementById('room').dataset.state === 'reconnecting'",
        )
        .await;
    alice.fill("#body", "sent while the server was down").await;
    alice.press_enter("#body").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = start(&data, &addr);
    let once = "[...document.querySelectorAll('#messages li:not(.pending) .body')].filter(e => e.textContent === 'sent while the server was down').length";
    for page in [&alice, &bob] {
        page.wait_live().await;
        page.wait_for("the outage message", &format!("{once} === 1"))
            .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for page in [&alice, &bob] {
        assert_eq!(
            page.eval(&format!("return {once}")).await,
            json!(1),
            "no duplicate"
        );
        page.refresh().await;
        page.wait_for("after a reload, once", &format!("{once} === 1"))
            .await;
    }
    alice.close().await;
    bob.close().await;
    assert!(terminate(server).success());
}
