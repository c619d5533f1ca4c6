//! OpenAPI links: which answers name a room or a user that other operations take, so
//! that clients (and stateful API testers) can follow them: create a room, then read,
//! join, post to, leave and delete it; post a message, then react to it, pin it, read its
//! edits or its thread.

use natter_core::http::operations;
use serde_json::Value;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr};

/// Operations on a room, by operation id, given its id.
const ON_ROOM: &[&str] = &[
    "room",
    "rename",
    "members",
    "add_member",
    "history",
    "post_message",
    "join",
    "transfer",
    "leave",
    "delete_room",
    "pins",
    "mark_read",
    "set_level",
    "receipts",
];

/// (operation id, status, expression of the room id, expression of a user id).
const SOURCES: &[(&str, &str, Option<&str>, Option<&str>)] = &[
    ("create_room", "201", Some(ROOM), None),
    ("open_direct", "200", Some(ROOM), None),
    ("room", "200", Some(ROOM), None),
    (
        "members",
        "200",
        Some("$request.path.room"),
        Some("$response.body#/0/user_id"),
    ),
    ("my_profile", "200", None, Some("$response.body#/id")),
    ("find_users", "200", None, Some("$response.body#/0/id")),
];

/// A room's id and its creator's, in an answer that is a room.
const ROOM: &str = "$response.body#/id";
const CREATOR: &str = "$response.body#/created_by";

/// Operations on a room whose body names a user: linked from a room with its creator.
const WITH_USER_BODY: &[&str] = &["add_member", "transfer"];

/// Operations on a user, given the user's id (and the room's, when both are known).
const ON_USER: &[&str] = &["profile", "open_direct"];
const ON_MEMBER: &[&str] = &["remove_member", "set_role"];

/// Operations on a message, linked from the answer that stored it (room and seq).
const ON_MESSAGE: &[&str] = &["add_reaction", "remove_reaction", "pin", "unpin", "edits"];

/// Adds the links of [`SOURCES`], and from a stored message to [`ON_MESSAGE`], to
/// `document`.
pub fn add(document: &mut OpenApi) {
    add_from_sources(document);
    let Some(operation) = operation_mut(document, "post_message") else {
        return;
    };
    let Some(RefOr::T(stored)) = operation.responses.responses.get_mut("201") else {
        return;
    };
    for target in ON_MESSAGE {
        let link = LinkBuilder::new()
            .operation_id(*target)
            .parameter("room", Value::from("$request.path.room"))
            .parameter("seq", Value::from("$response.body#/seq"));
        stored
            .links
            .insert((*target).to_owned(), link.build().into());
    }
    // The stored message as a thread's root, read up to itself.
    let link = LinkBuilder::new()
        .operation_id("read_thread")
        .parameter("room", Value::from("$request.path.room"))
        .parameter("root", Value::from("$response.body#/seq"))
        .request_body(Some(serde_json::json!({ "seq": "$response.body#/seq" })));
    stored
        .links
        .insert("read_thread".to_owned(), link.build().into());
}

fn add_from_sources(document: &mut OpenApi) {
    for (source, status, room, user) in SOURCES {
        let mut targets: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
        if let Some(room) = room {
            targets.extend(ON_ROOM.iter().map(|t| (*t, vec![("room", *room)])));
        }
        if let Some(user) = user {
            targets.extend(ON_USER.iter().map(|t| (*t, vec![("user", *user)])));
        }
        if let (Some(room), Some(user)) = (room, user) {
            targets.extend(
                ON_MEMBER
                    .iter()
                    .map(|t| (*t, vec![("room", *room), ("user", *user)])),
            );
        }
        let Some(operation) = operation_mut(document, source) else {
            continue;
        };
        let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status) else {
            continue;
        };
        for (target, parameters) in targets.into_iter().filter(|(t, _)| t != source) {
            let mut link = parameters.into_iter().fold(
                LinkBuilder::new().operation_id(target),
                |link, (name, at)| link.parameter(name, Value::from(at)),
            );
            if *room == Some(ROOM) && WITH_USER_BODY.contains(&target) {
                link = link.request_body(Some(serde_json::json!({ "user_id": CREATOR })));
            }
            response
                .links
                .insert(target.to_owned(), link.build().into());
        }
    }
}

fn operation_mut<'a>(document: &'a mut OpenApi, id: &str) -> Option<&'a mut Operation> {
    document
        .paths
        .paths
        .values_mut()
        .flat_map(operations)
        .map(|(_, op)| op)
        .find(|op| op.operation_id.as_deref() == Some(id))
}
