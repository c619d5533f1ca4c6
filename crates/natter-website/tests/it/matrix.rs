//! The authorization matrix over HTTP: room kind × viewer × action, each cell on a fresh
//! room, compared with the expected status.

use natter_core::store::{Backend, Role, RoomKind};
use serde_json::json;

use crate::harness::{Server, User};

#[derive(Debug, Clone, Copy)]
enum Viewer {
    SignedOut,
    Stranger,
    Member,
    Admin,
    Owner,
}

const ACTIONS: [&str; 7] = [
    "read room",
    "read history",
    "post",
    "add member",
    "remove member",
    "delete",
    "rename",
];

/// Expected per action (ACTIONS order): A = 2xx, F = 403, N = 404, U = 401.
fn expected(kind: RoomKind, viewer: Viewer) -> Option<&'static str> {
    use RoomKind::*;
    use Viewer::*;
    Some(match (kind, viewer) {
        (_, SignedOut) => "UUUUUUU",
        (Public, Stranger) => "AAFFFFF",
        (Group | Direct, Stranger) => "NNNNNNN",
        (Public | Group | Direct, Member) => "AAAFFFF",
        (Public | Group, Admin) => "AAAAAFA",
        (Public | Group, Owner) => "AAAAAAA",
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
        "rename" => (
            "PATCH",
            format!("/api/v1/rooms/{room}"),
            Some(json!({"name": format!("renamed {}", uuid::Uuid::new_v4())})),
        ),
        other => panic!("unknown action {other}"),
    };
    server.call(viewer, method, &path, body).await.status
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

async fn authorization_matrix_holds_over_http(backend: Backend) {
    let server = Server::start(backend).await;
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
                got.push(letter(attempt(&server, &cell, action).await));
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

crate::per_backend!(authorization_matrix_holds_over_http);
