//! The OpenAPI document lists every route of the public JSON API (the auth service's
//! too), each documented website route answers (and demands a token), and Swagger UI is
//! served from bundled assets. `crates/natter/tests/contract.rs` checks every answer
//! against the document with schemathesis.

use std::collections::BTreeSet;

use natter_core::store::Backend;
use serde_json::Value;

use crate::harness::Server;

const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/rooms"),
    ("post", "/api/v1/rooms"),
    ("get", "/api/v1/rooms/mine"),
    ("get", "/api/v1/rooms/{room}"),
    ("patch", "/api/v1/rooms/{room}"),
    ("delete", "/api/v1/rooms/{room}"),
    ("post", "/api/v1/rooms/{room}/join"),
    ("post", "/api/v1/rooms/{room}/leave"),
    ("get", "/api/v1/rooms/{room}/members"),
    ("post", "/api/v1/rooms/{room}/members"),
    ("delete", "/api/v1/rooms/{room}/members/{user}"),
    ("put", "/api/v1/rooms/{room}/members/{user}/role"),
    ("put", "/api/v1/rooms/{room}/owner"),
    ("get", "/api/v1/rooms/{room}/messages"),
    ("post", "/api/v1/rooms/{room}/messages"),
    (
        "put",
        "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}",
    ),
    (
        "delete",
        "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}",
    ),
    ("get", "/api/v1/rooms/{room}/messages/{seq}/edits"),
    ("put", "/api/v1/rooms/{room}/pins/{seq}"),
    ("delete", "/api/v1/rooms/{room}/pins/{seq}"),
    ("get", "/api/v1/rooms/{room}/pins"),
    ("get", "/api/v1/threads"),
    ("put", "/api/v1/rooms/{room}/threads/{root}/read"),
    ("get", "/api/v1/unread"),
    ("put", "/api/v1/rooms/{room}/read"),
    ("put", "/api/v1/rooms/{room}/notifications"),
    ("get", "/api/v1/rooms/{room}/receipts"),
    ("get", "/api/v1/settings"),
    ("put", "/api/v1/settings"),
    ("get", "/api/v1/push/key"),
    ("put", "/api/v1/push/subscriptions"),
    ("delete", "/api/v1/push/subscriptions"),
    ("put", "/api/v1/direct/{user}"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{user}"),
    ("get", "/api/v1/profile"),
    ("put", "/api/v1/profile"),
];

/// The auth service's routes, in the same document.
const AUTH_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("get", "/api/v1/auth/sessions"),
    ("get", "/.well-known/jwks.json"),
];

async fn openapi_document_lists_every_route(backend: Backend) {
    let server = Server::start(backend).await;
    let document = server
        .call(None, "GET", natter_website::OPENAPI_PATH, None)
        .await;
    assert_eq!(document.status, 200);
    assert!(document.body["openapi"].as_str().unwrap().starts_with("3."));
    let mut listed = BTreeSet::new();
    for (path, item) in document.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<_> = ROUTES
        .iter()
        .chain(AUTH_ROUTES)
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, expected);
    for (method, path) in ROUTES {
        let responses = &document.body["paths"][path][method]["responses"];
        for status in ["401", "503"] {
            assert!(
                responses.get(status).is_some(),
                "{method} {path} documents {status}: {responses}"
            );
        }
    }
    for (method, path) in ROUTES {
        let concrete = path.replace("{room}", "r1").replace("{user}", "u1");
        let reply = server
            .call(None, &method.to_uppercase(), &concrete, Some(Value::Null))
            .await;
        assert_eq!(
            reply.status, 401,
            "{method} {path} exists and demands a token: {:?}",
            reply.body
        );
    }
    let scheme = &document.body["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["scheme"], "bearer");
    // A stored message links to reacting to it (stateful testers follow it).
    let stored =
        &document.body["paths"]["/api/v1/rooms/{room}/messages"]["post"]["responses"]["201"];
    let react = &stored["links"]["add_reaction"]["parameters"];
    assert_eq!(react["seq"], "$response.body#/seq", "{stored}");
    let emoji = &document.body["components"]["schemas"]["Emoji"]["enum"];
    assert!(
        emoji.as_array().unwrap().iter().any(|e| e == "👍🏽"),
        "skin tones listed"
    );
}

async fn swagger_ui_is_served_offline(backend: Backend) {
    let server = Server::start(backend).await;
    let page = server
        .http
        .get(format!("{}/api/docs/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("unpkg.com") && !html.contains("cdn.jsdelivr"),
        "no CDN assets"
    );
    let bundle = server
        .http
        .get(format!("{}/api/docs/swagger-ui-bundle.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(
        bundle.text().await.unwrap().len() > 100_000,
        "the bundle is served from the binary"
    );
}

crate::per_backend!(
    openapi_document_lists_every_route,
    swagger_ui_is_served_offline
);
