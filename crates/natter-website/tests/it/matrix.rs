//! The authorization matrix over HTTP: room kind × viewer × action, each cell on a fresh
//! room, compared with the expected status.

use natter_core::store::{Backend, NewMessage, Role, RoomKind};
use serde_json::json;

use natter_proto::website::v1 as pb;
use natter_proto::website::v1::website_service_client::WebsiteServiceClient;
use tonic::transport::Channel;

use crate::harness::{Server, User};

type WebsiteClient = WebsiteServiceClient<Channel>;

#[derive(Debug, Clone, Copy)]
enum Viewer {
    SignedOut,
    Stranger,
    Member,
    Admin,
    Owner,
}

const ACTIONS: [&str; 14] = [
    "read room",
    "read history",
    "post",
    "react",
    "add member",
    "remove member",
    "delete",
    "rename",
    "pin",
    "list pins",
    "read edits",
    "mark read",
    "set level",
    "read receipts",
];

/// Expected per action (ACTIONS order): A = 2xx, F = 403, N = 404, U = 401.
fn expected(kind: RoomKind, viewer: Viewer) -> Option<&'static str> {
    use RoomKind::*;
    use Viewer::*;
    Some(match (kind, viewer) {
        (_, SignedOut) => "UUUUUUUUUUUUUU",
        // Visitors of a public room read it, but have no markers, levels or receipts.
        (Public, Stranger) => "AAFFFFFFFAAFFF",
        (Group | Direct, Stranger) => "NNNNNNNNNNNNNN",
        (Public | Group, Member) => "AAAAFFFFFAAAAA",
        // Both people of a direct room pin.
        (Direct, Member) => "AAAAFFFFAAAAAA",
        (Public | Group, Admin) => "AAAAAAFAAAAAAA",
        (Public | Group, Owner) => "AAAAAAAAAAAAAA",
        (Direct, Admin | Owner) => return None,
    })
}

struct Cell {
    room: String,
    viewer: Option<User>,
    victim: User,
    newcomer: User,
}

async fn setup(server: &Server, kind: RoomKind, viewer: Viewer) -> Cell {
    let owner = server.user("owner").await;
    let victim = server.user("victim").await;
    let newcomer = server.user("newcomer").await;
    let store = server.store();
    let room = match kind {
        RoomKind::Direct => store.open_direct(&owner.id, &victim.id).await.unwrap().id,
        _ => {
            let name = format!("room {}", uuid::Uuid::new_v4());
            let room = store.create_room(kind, &name, &owner.id).await.unwrap().id;
            store
                .add_member(&room, &victim.id, Role::Member)
                .await
                .unwrap();
            room
        }
    };
    // Message 1, for reactions.
    let first = NewMessage::text(&room, &owner.id, "first", "hello", 1);
    store.post_message(first).await.unwrap();
    let viewer = match viewer {
        Viewer::SignedOut => None,
        Viewer::Owner => Some(owner),
        Viewer::Stranger => Some(server.user("stranger").await),
        Viewer::Member if kind == RoomKind::Direct => Some(owner),
        Viewer::Member | Viewer::Admin => {
            let user = server.user("viewer").await;
            let role = if matches!(viewer, Viewer::Admin) {
                Role::Admin
            } else {
                Role::Member
            };
            store.add_member(&room, &user.id, role).await.unwrap();
            Some(user)
        }
    };
    Cell {
        room,
        viewer,
        victim,
        newcomer,
    }
}

async fn attempt(server: &Server, cell: &Cell, action: &str) -> u16 {
    let room = &cell.room;
    let viewer = cell.viewer.as_ref();
    let (method, path, body) = match action {
        "read room" => ("GET", format!("/api/v1/rooms/{room}"), None),
        "read history" => ("GET", format!("/api/v1/rooms/{room}/messages"), None),
        "post" => (
            "POST",
            format!("/api/v1/rooms/{room}/messages"),
            Some(json!({"client_id": "m1", "body": "hi"})),
        ),
        "react" => (
            "PUT",
            format!("/api/v1/rooms/{room}/messages/1/reactions/%F0%9F%91%8D"),
            None,
        ),
        "add member" => (
            "POST",
            format!("/api/v1/rooms/{room}/members"),
            Some(json!({"user_id": cell.newcomer.id})),
        ),
        "remove member" => (
            "DELETE",
            format!("/api/v1/rooms/{room}/members/{}", cell.victim.id),
            None,
        ),
        "delete" => ("DELETE", format!("/api/v1/rooms/{room}"), None),
        "pin" => ("PUT", format!("/api/v1/rooms/{room}/pins/1"), None),
        "list pins" => ("GET", format!("/api/v1/rooms/{room}/pins"), None),
        "read edits" => (
            "GET",
            format!("/api/v1/rooms/{room}/messages/1/edits"),
            None,
        ),
        "mark read" => (
            "PUT",
            format!("/api/v1/rooms/{room}/read"),
            Some(json!({"seq": 1})),
        ),
        "set level" => (
            "PUT",
            format!("/api/v1/rooms/{room}/notifications"),
            Some(json!({"level": "nothing"})),
        ),
        "read receipts" => ("GET", format!("/api/v1/rooms/{room}/receipts"), None),
        "rename" => (
            "PATCH",
            format!("/api/v1/rooms/{room}"),
            Some(json!({"name": format!("renamed {}", uuid::Uuid::new_v4())})),
        ),
        other => panic!("unknown action {other}"),
    };
    server.call(viewer, method, &path, body).await.status
}

async fn attempt_grpc(client: &WebsiteClient, cell: &Cell, action: &str) -> char {
    let room_id = cell.room.clone();
    let mut client = client.clone();
    let token = cell.viewer.as_ref().map(|u| u.token.clone());
    let room = || pb::RoomRequest {
        room_id: room_id.clone(),
    };
    let outcome = match action {
        "read room" => client
            .get_room(authed(room(), token.as_deref()))
            .await
            .map(drop),
        "read history" => {
            let message = natter_proto::common::v1::HistoryRequest {
                room_id: room_id.clone(),
                ..Default::default()
            };
            client
                .get_history(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "post" => {
            let message = pb::PostMessageRequest {
                room_id: room_id.clone(),
                client_id: "m1".into(),
                body: "hi".into(),
                ..Default::default()
            };
            client
                .post_message(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "react" => {
            let message = pb::ReactRequest {
                room_id: room_id.clone(),
                seq: 1,
                emoji: "👍".into(),
                remove: false,
            };
            client
                .react(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "pin" => {
            let message = pb::PinRequest {
                room_id: room_id.clone(),
                seq: 1,
                unpin: false,
            };
            client
                .pin(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "list pins" => client
            .list_pins(authed(room(), token.as_deref()))
            .await
            .map(drop),
        "read edits" => {
            let message = pb::MessageRequest {
                room_id: room_id.clone(),
                seq: 1,
            };
            client
                .get_edits(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "mark read" => {
            let message = pb::MarkReadRequest {
                room_id: room_id.clone(),
                seq: 1,
            };
            client
                .mark_read(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "set level" => {
            let message = pb::SetNotifyLevelRequest {
                room_id: room_id.clone(),
                level: Some("nothing".into()),
            };
            client
                .set_notify_level(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "read receipts" => client
            .get_receipts(authed(room(), token.as_deref()))
            .await
            .map(drop),
        "add member" => {
            let message = pb::AddMemberRequest {
                room_id: room_id.clone(),
                user_id: cell.newcomer.id.clone(),
                role: 0,
            };
            client
                .add_member(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "remove member" => {
            let message = pb::MemberRequest {
                room_id: room_id.clone(),
                user_id: cell.victim.id.clone(),
            };
            client
                .remove_member(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        "delete" => client
            .delete_room(authed(room(), token.as_deref()))
            .await
            .map(drop),
        "rename" => {
            let message = pb::RenameRoomRequest {
                room_id: room_id.clone(),
                name: format!("renamed {}", uuid::Uuid::new_v4()),
            };
            client
                .rename_room(authed(message, token.as_deref()))
                .await
                .map(drop)
        }
        other => panic!("unknown action {other}"),
    };
    match outcome {
        Ok(()) => 'A',
        Err(status) => match status.code() {
            tonic::Code::Unauthenticated => 'U',
            tonic::Code::PermissionDenied => 'F',
            tonic::Code::NotFound => 'N',
            other => panic!("unexpected {other:?}: {status:?}"),
        },
    }
}

/// `message` with the viewer's bearer token in its metadata, if signed in.
fn authed<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn letter(status: u16) -> char {
    match status {
        200..=299 => 'A',
        401 => 'U',
        403 => 'F',
        404 => 'N',
        other => panic!("unexpected status {other}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Http,
    Grpc,
}

async fn authorization_matrix_holds_over_http(backend: Backend) {
    matrix(backend, Transport::Http).await;
}

async fn authorization_matrix_holds_over_grpc(backend: Backend) {
    matrix(backend, Transport::Grpc).await;
}

async fn matrix(backend: Backend, transport: Transport) {
    let server = Server::start(backend).await;
    let client = WebsiteClient::connect(server.base.clone()).await.unwrap();
    let viewers = [
        Viewer::SignedOut,
        Viewer::Stranger,
        Viewer::Member,
        Viewer::Admin,
        Viewer::Owner,
    ];
    let mut failures = Vec::new();
    for kind in [RoomKind::Public, RoomKind::Group, RoomKind::Direct] {
        for viewer in viewers {
            let Some(expected) = expected(kind, viewer) else {
                continue;
            };
            let mut got = String::new();
            for action in ACTIONS {
                let cell = setup(&server, kind, viewer).await;
                got.push(match transport {
                    Transport::Http => letter(attempt(&server, &cell, action).await),
                    Transport::Grpc => attempt_grpc(&client, &cell, action).await,
                });
            }
            if got != expected {
                failures.push(format!(
                    "{kind:?} {viewer:?}: got {got}, expected {expected}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "actions {ACTIONS:?}\n{}",
        failures.join("\n")
    );
}

crate::per_backend!(
    authorization_matrix_holds_over_http,
    authorization_matrix_holds_over_grpc
);
