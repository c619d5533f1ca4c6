//! The web UI over plain HTTP: cookie flags and security headers, CSRF on signed-out
//! forms, the socket token's guard, and the session refreshing itself until its refresh
//! token is reused, which ends it.

mod support;

use support::{Running, call, header, hidden, set_cookie, start_with, terminate};

/// Registers `name` through the forms; the session cookie.
fn register(server: &Running, name: &str) -> String {
    let form_page = call(&server.url, "GET", "/register", "", None, "");
    let form_cookie = set_cookie(&form_page, "natter_form").unwrap();
    let token = hidden(&form_page, "form_token");
    let body = format!("form_token={token}&username={name}&password=correct+horse+battery");
    let reply = call(
        &server.url,
        "POST",
        "/register",
        &format!("natter_form={form_cookie}"),
        Some(&body),
        "",
    );
    assert!(reply.starts_with("HTTP/1.1 303"), "{reply}");
    set_cookie(&reply, "natter_session").expect("a session cookie")
}

#[test]
fn pages_carry_security_headers_and_locked_down_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("data"), &[]);
    let page = call(&server.url, "GET", "/login", "", None, "");
    let csp = header(&page, "content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&page, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&page, "referrer-policy"), Some("same-origin"));
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    assert!(!page.contains("<script>"), "no inline script");

    let reply = call(&server.url, "GET", "/register", "", None, "");
    let token = hidden(&reply, "form_token");
    let forged = call(
        &server.url,
        "POST",
        "/login",
        "",
        Some(&format!("form_token={token}&login=a&password=b")),
        "",
    );
    assert!(
        forged.starts_with("HTTP/1.1 403"),
        "a form without its cookie is refused: {forged}"
    );

    let session = register(&server, "carol");
    let signed_in = call(
        &server.url,
        "GET",
        "/",
        &format!("natter_session={session}"),
        None,
        "",
    );
    assert!(signed_in.contains("Hello, carol"));
    let raw = call(&server.url, "GET", "/register", "", None, "");
    let flags = raw
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie: natter_form"))
        .unwrap();
    assert!(
        flags.contains("HttpOnly") && flags.contains("SameSite=Strict"),
        "{flags}"
    );
    assert!(
        !signed_in.contains(&session),
        "the cookie's content never appears in a page"
    );

    let token = call(
        &server.url,
        "GET",
        "/session/socket-token",
        &format!("natter_session={session}"),
        None,
        "",
    );
    assert!(
        token.starts_with("HTTP/1.1 403"),
        "no X-CSRF-Token, no token: {token}"
    );
    let csrf = hidden(&signed_in, "csrf");
    let extra = format!("X-CSRF-Token: {csrf}\r\n");
    let token = call(
        &server.url,
        "GET",
        "/session/socket-token",
        &format!("natter_session={session}"),
        None,
        &extra,
    );
    assert!(
        token.starts_with("HTTP/1.1 200") && token.contains("\"token\""),
        "{token}"
    );
    assert!(terminate(server).success());
}

#[test]
fn the_session_refreshes_itself_and_ends_when_its_refresh_token_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    // Access tokens shorter than the refresh margin: every request refreshes.
    let server = start_with(
        &dir.path().join("data"),
        &[("NATTER_AUTH_ACCESS_TTL_SECS", "10")],
    );
    let first = register(&server, "dave");
    let page = call(
        &server.url,
        "GET",
        "/",
        &format!("natter_session={first}"),
        None,
        "",
    );
    assert!(page.contains("Hello, dave"), "{page}");
    let second = set_cookie(&page, "natter_session").expect("a refreshed session cookie");
    assert_ne!(second, first);
    let page = call(
        &server.url,
        "GET",
        "/",
        &format!("natter_session={second}"),
        None,
        "",
    );
    assert!(page.contains("Hello, dave"));
    let third = set_cookie(&page, "natter_session").unwrap();

    // Assets never touch the session: an old cookie on them revokes nothing.
    let css = call(
        &server.url,
        "GET",
        "/static/app.css",
        &format!("natter_session={first}"),
        None,
        "",
    );
    assert!(css.starts_with("HTTP/1.1 200") && set_cookie(&css, "natter_session").is_none());
    let page = call(
        &server.url,
        "GET",
        "/",
        &format!("natter_session={third}"),
        None,
        "",
    );
    assert!(page.contains("Hello, dave"), "the session lives on: {page}");
    let third = set_cookie(&page, "natter_session").unwrap();

    // An old cookie replays a used refresh token: the auth service revokes the session,
    // and every cookie of it now leads to the login page.
    let replay = call(
        &server.url,
        "GET",
        "/",
        &format!("natter_session={first}"),
        None,
        "",
    );
    assert!(!replay.contains("Hello, dave"), "{replay}");
    assert_eq!(
        set_cookie(&replay, "natter_session").as_deref(),
        Some(""),
        "the cookie is cleared"
    );
    let after = call(
        &server.url,
        "GET",
        "/rooms",
        &format!("natter_session={third}"),
        None,
        "",
    );
    assert!(
        after.starts_with("HTTP/1.1 303") && header(&after, "location") == Some("/login"),
        "{after}"
    );
    assert!(terminate(server).success());
}

#[test]
fn a_room_is_renamed_left_and_deleted_from_its_members_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("data"), &[]);
    let url = server.url.clone();
    let owner = format!("natter_session={}", register(&server, "owner"));
    let guest = format!("natter_session={}", register(&server, "guest"));
    let csrf = |cookies: &str| hidden(&call(&url, "GET", "/rooms/new", cookies, None, ""), "csrf");
    let post =
        |cookies: &str, path: &str, form: &str| call(&url, "POST", path, cookies, Some(form), "");
    // A form posted with the sender's CSRF token and then `fields` (`&name=value…`).
    let submit = |cookies: &str, path: &str, fields: &str| {
        post(cookies, path, &format!("csrf={}{fields}", csrf(cookies)))
    };

    let created = submit(&owner, "/rooms", "&name=Plans&kind=group");
    let room = header(&created, "location")
        .expect("the new room")
        .to_owned();
    let added = submit(&owner, &format!("{room}/members"), "&username=guest");
    assert!(added.starts_with("HTTP/1.1 303"), "{added}");

    // The guest sees "Leave", not the owner's controls; leaving ends at home.
    let seen = call(&url, "GET", &format!("{room}/members"), &guest, None, "");
    assert!(
        seen.contains("id=\"leave-room\"") && !seen.contains("id=\"delete-room\""),
        "{seen}"
    );
    let left = submit(&guest, &format!("{room}/leave"), "");
    assert_eq!(header(&left, "location"), Some("/"), "{left}");
    let gone = call(&url, "GET", &room, &guest, None, "");
    assert!(
        gone.starts_with("HTTP/1.1 404"),
        "a private room is invisible once left: {gone}"
    );

    // Renaming: a bad name is refused on the page, a good one shows.
    let refused = submit(&owner, &format!("{room}/rename"), "&name=+");
    assert!(
        refused.starts_with("HTTP/1.1 422") && refused.contains("role=\"alert\""),
        "{refused}"
    );
    let renamed = submit(&owner, &format!("{room}/rename"), "&name=Holiday+plans");
    assert!(renamed.starts_with("HTTP/1.1 303"), "{renamed}");
    let page = call(&url, "GET", &format!("{room}/members"), &owner, None, "");
    assert!(
        page.contains("<h1>Members of Holiday plans</h1>") && page.contains("← Holiday plans</a>"),
        "{page}"
    );

    // Deleting asks for the box to be ticked, then removes the room.
    let unconfirmed = submit(&owner, &format!("{room}/delete"), "");
    assert!(unconfirmed.contains("Tick the box"), "{unconfirmed}");
    let forged = post(&owner, &format!("{room}/delete"), "confirm=1");
    assert!(
        forged.starts_with("HTTP/1.1 403"),
        "no CSRF token, no deletion: {forged}"
    );
    let deleted = submit(&owner, &format!("{room}/delete"), "&confirm=1");
    assert_eq!(header(&deleted, "location"), Some("/"), "{deleted}");
    let gone = call(&url, "GET", &room, &owner, None, "");
    assert!(gone.starts_with("HTTP/1.1 404"), "{gone}");
    assert!(terminate(server).success());
}

/// A digest's unsubscribe link: a visit only asks (mail scanners open links), a POST
/// — the page's button or a mail client's one-click — acts, signed in or not; a token
/// nobody holds is refused. (Turning digests off with a real token: the store's email
/// tests and docs/website.md.)
#[test]
fn an_unsubscribe_link_asks_first_and_unknown_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(&dir.path().join("data"), &[]);
    let page = call(&server.url, "GET", "/unsubscribe/abc", "", None, "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains(r#"<form method="post" action="/unsubscribe/abc">"#),
        "{page}"
    );
    let one_click = Some("List-Unsubscribe=One-Click");
    let unknown = call(&server.url, "POST", "/unsubscribe/abc", "", one_click, "");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.contains("Unknown link"), "{unknown}");
    let long = format!("/unsubscribe/{}", "a".repeat(200));
    let refused = call(&server.url, "POST", &long, "", one_click, "");
    assert!(refused.starts_with("HTTP/1.1 404"), "{refused}");
    assert!(terminate(server).success());
}
