//! Who may do what to a room: the one place authorization is decided, the role-relative
//! rules (who may add an admin, remove whom) included. Every read and write of the
//! website and chat services asks here first.

use crate::store::{Role, RoomKind};

/// Something a caller wants to do to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See the room (name, kind, members).
    ReadRoom,
    /// Read its messages.
    ReadHistory,
    /// Send a message.
    Post,
    /// Add someone else.
    AddMember,
    /// Remove someone else.
    RemoveMember,
    /// Delete the room.
    Delete,
    /// Rename the room.
    Rename,
    /// Become a member yourself.
    Join,
    /// Stop being a member.
    Leave,
    /// Change roles or hand over ownership.
    ManageRoles,
    /// Pin or unpin a message (owners and admins; both people of a direct room).
    Pin,
    /// Mention everyone in the room with `@room` (owners and admins; both people of a
    /// direct room).
    MentionRoom,
}

/// Who is asking, relative to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// No valid access token.
    SignedOut,
    /// Signed in; `None` when not a member.
    SignedIn(Option<Role>),
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Sign in first (401).
    Unauthenticated,
    /// The caller may see the room but not do this (403).
    Forbidden,
    /// The caller may not even know the room exists (404).
    NotFound,
}

/// Decides whether `viewer` may do `action` to a room of `kind`.
pub fn authorize(kind: RoomKind, viewer: Viewer, action: Action) -> Result<(), Denial> {
    let role = match viewer {
        Viewer::SignedOut => return Err(Denial::Unauthenticated),
        Viewer::SignedIn(role) => role,
    };
    let Some(role) = role else {
        return non_member(kind, action);
    };
    let allowed = match action {
        Action::ReadRoom | Action::ReadHistory | Action::Post => true,
        Action::Join => false,
        Action::Leave => role != Role::Owner,
        Action::AddMember | Action::RemoveMember => kind != RoomKind::Direct && role >= Role::Admin,
        Action::Rename => kind != RoomKind::Direct && role >= Role::Admin,
        Action::Delete | Action::ManageRoles => kind != RoomKind::Direct && role == Role::Owner,
        Action::Pin | Action::MentionRoom => kind == RoomKind::Direct || role >= Role::Admin,
    };
    if allowed {
        Ok(())
    } else {
        Err(Denial::Forbidden)
    }
}

/// May a member whose role is `own` (allowed to add members) give a new member the role
/// `granted`? Admins add members, the owner also adds admins; nobody adds an owner
/// (ownership is handed over instead).
pub fn may_grant(own: Role, granted: Role) -> Result<(), Denial> {
    let allowed = match granted {
        Role::Owner => false,
        Role::Admin => own == Role::Owner,
        Role::Member => own >= Role::Admin,
    };
    if allowed {
        Ok(())
    } else {
        Err(Denial::Forbidden)
    }
}

/// May a member whose role is `own` (allowed to remove members) remove a member whose
/// role is `theirs`? Only members below one's own role.
pub fn may_remove(own: Role, theirs: Role) -> Result<(), Denial> {
    if theirs < own {
        Ok(())
    } else {
        Err(Denial::Forbidden)
    }
}

/// A signed-in non-member: may look at and join public rooms; must not learn that a group
/// or direct room exists.
fn non_member(kind: RoomKind, action: Action) -> Result<(), Denial> {
    if kind != RoomKind::Public {
        return Err(Denial::NotFound);
    }
    match action {
        Action::ReadRoom | Action::ReadHistory | Action::Join => Ok(()),
        _ => Err(Denial::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    const ACTIONS: [Action; 9] = [
        ReadRoom,
        ReadHistory,
        Post,
        AddMember,
        RemoveMember,
        Delete,
        Rename,
        Pin,
        MentionRoom,
    ];

    /// Expected outcome per action in [`ACTIONS`] order: `A` allow, `F` 403, `N` 404, `U` 401.
    fn expect(kind: RoomKind, viewer: Viewer) -> &'static str {
        use RoomKind::*;
        use Viewer::*;
        match (kind, viewer) {
            (_, SignedOut) => "UUUUUUUUU",
            (Public, SignedIn(None)) => "AAFFFFFFF",
            (Public | Group, SignedIn(Some(Role::Member))) => "AAAFFFFFF",
            (Public | Group, SignedIn(Some(Role::Admin))) => "AAAAAFAAA",
            (Public | Group, SignedIn(Some(Role::Owner))) => "AAAAAAAAA",
            (Group | Direct, SignedIn(None)) => "NNNNNNNNN",
            (Direct, SignedIn(Some(_))) => "AAAFFFFAA",
        }
    }

    /// Role-relative rules: rows are the actor's role (member, admin, owner), columns the
    /// other role (member, admin, owner); `A` allow, `F` 403.
    #[test]
    fn who_may_grant_and_remove_whom() {
        let roles = [Role::Member, Role::Admin, Role::Owner];
        let table = |rule: fn(Role, Role) -> Result<(), Denial>| -> Vec<String> {
            roles
                .iter()
                .map(|&own| {
                    roles
                        .iter()
                        .map(|&other| if rule(own, other).is_ok() { 'A' } else { 'F' })
                        .collect()
                })
                .collect()
        };
        assert_eq!(table(may_grant), ["FFF", "AFF", "AAF"], "grant");
        assert_eq!(table(may_remove), ["FFF", "AFF", "AAF"], "remove");
    }

    #[test]
    fn the_authorization_matrix_holds() {
        let viewers = [
            Viewer::SignedOut,
            Viewer::SignedIn(None),
            Viewer::SignedIn(Some(Role::Member)),
            Viewer::SignedIn(Some(Role::Admin)),
            Viewer::SignedIn(Some(Role::Owner)),
        ];
        for kind in [RoomKind::Public, RoomKind::Group, RoomKind::Direct] {
            for viewer in viewers {
                let got: String = ACTIONS
                    .iter()
                    .map(|&action| match authorize(kind, viewer, action) {
                        Ok(()) => 'A',
                        Err(Denial::Forbidden) => 'F',
                        Err(Denial::NotFound) => 'N',
                        Err(Denial::Unauthenticated) => 'U',
                    })
                    .collect();
                assert_eq!(got, expect(kind, viewer), "{kind:?} {viewer:?}");
            }
        }
    }

    #[test]
    fn owners_cannot_leave_and_only_public_rooms_can_be_joined() {
        let owner = Viewer::SignedIn(Some(Role::Owner));
        assert_eq!(
            authorize(RoomKind::Group, owner, Leave),
            Err(Denial::Forbidden)
        );
        let member = Viewer::SignedIn(Some(Role::Member));
        assert_eq!(authorize(RoomKind::Group, member, Leave), Ok(()));
        let stranger = Viewer::SignedIn(None);
        assert_eq!(authorize(RoomKind::Public, stranger, Join), Ok(()));
        assert_eq!(
            authorize(RoomKind::Group, stranger, Join),
            Err(Denial::NotFound)
        );
    }
}
