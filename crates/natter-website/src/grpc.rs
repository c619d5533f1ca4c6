//! `natter.website.v1.WebsiteService` over tonic: the caller's bearer token from metadata,
//! messages to and from the domain, [`WebsiteError`] to `tonic::Status`.

use natter_core::store::{
    MemberRecord, Page, ProfileRecord, Role, RoomCounts, RoomKind, RoomRecord,
};
use natter_core::token::AccessClaims;
use natter_proto::website::v1 as pb;
use natter_proto::website::v1::website_service_server::{WebsiteService, WebsiteServiceServer};
use tonic::{Request, Response, Status};

use crate::{HistoryQuery, UserSettings, Website, WebsiteError};

/// The gRPC face of [`Website`].
#[derive(Debug, Clone)]
pub struct WebsiteGrpc {
    website: Website,
}

/// The tonic service for `website`.
pub fn grpc_service(website: &Website) -> WebsiteServiceServer<WebsiteGrpc> {
    WebsiteServiceServer::new(WebsiteGrpc {
        website: website.clone(),
    })
}

type Reply<T> = Result<Response<T>, Status>;

impl WebsiteGrpc {
    /// The end user: the verified bearer token in the request's metadata.
    async fn caller<T>(&self, request: &Request<T>) -> Result<AccessClaims, Status> {
        natter_core::grpc::caller(self.website.verifier(), request).await
    }
}

fn kind(kind: RoomKind) -> pb::RoomKind {
    match kind {
        RoomKind::Public => pb::RoomKind::Public,
        RoomKind::Group => pb::RoomKind::Group,
        RoomKind::Direct => pb::RoomKind::Direct,
    }
}

fn role(role: Option<Role>) -> pb::Role {
    match role {
        None => pb::Role::Unspecified,
        Some(Role::Member) => pb::Role::Member,
        Some(Role::Admin) => pb::Role::Admin,
        Some(Role::Owner) => pb::Role::Owner,
    }
}

fn room(room: RoomRecord, my_role: Option<Role>) -> pb::Room {
    pb::Room {
        kind: kind(room.kind).into(),
        id: room.id,
        name: room.name,
        created_by: room.created_by,
        created_at: room.created_at,
        last_seq: room.last_seq,
        my_role: role(my_role).into(),
        unread: None,
        peer_name: None,
    }
}

fn room_counts(counts: &RoomCounts) -> pb::RoomCounts {
    pb::RoomCounts {
        room_id: counts.room.id.clone(),
        kind: kind(counts.room.kind).into(),
        name: counts.room.name.clone(),
        last_seq: counts.room.last_seq,
        read_seq: counts.read_seq,
        unread: counts.unread(),
        mentions: counts.mentions(),
        level: counts.level().as_str().into(),
    }
}

fn page(page: Page<RoomRecord>) -> pb::RoomPage {
    pb::RoomPage {
        rooms: page.items.into_iter().map(|r| room(r, None)).collect(),
        next_cursor: page.next,
    }
}

fn member(m: MemberRecord) -> pb::Member {
    pb::Member {
        role: role(Some(m.role)).into(),
        user_id: m.user_id,
        username: m.username,
        joined_at: m.joined_at,
        last_read_seq: m.last_read_seq,
    }
}

fn profile(p: ProfileRecord) -> pb::Profile {
    pb::Profile {
        id: p.id,
        username: p.username,
        display_name: p.display_name,
        bio: p.bio,
        avatar_url: p.avatar_url,
        created_at: p.created_at,
    }
}

fn limit(limit: u32) -> Option<u32> {
    (limit != 0).then_some(limit)
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[tonic::async_trait]
impl WebsiteService for WebsiteGrpc {
    async fn create_room(&self, request: Request<pb::CreateRoomRequest>) -> Reply<pb::Room> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let kind = match req.kind() {
            pb::RoomKind::Public => RoomKind::Public,
            pb::RoomKind::Group => RoomKind::Group,
            _ => {
                return Err(
                    WebsiteError::invalid("invalid_kind", "kind must be public or group").into(),
                );
            }
        };
        let created = self.website.create_room(&me.sub, kind, &req.name).await?;
        Ok(Response::new(room(created, Some(Role::Owner))))
    }

    async fn open_direct(&self, request: Request<pb::OpenDirectRequest>) -> Reply<pb::Room> {
        let me = self.caller(&request).await?;
        let opened = self
            .website
            .open_direct(&me.sub, &request.get_ref().user_id)
            .await?;
        Ok(Response::new(room(opened, Some(Role::Member))))
    }

    async fn get_room(&self, request: Request<pb::RoomRequest>) -> Reply<pb::Room> {
        let me = self.caller(&request).await?;
        let (found, my_role) = self
            .website
            .room(&me.sub, &request.get_ref().room_id)
            .await?;
        Ok(Response::new(room(found, my_role)))
    }

    async fn rename_room(&self, request: Request<pb::RenameRoomRequest>) -> Reply<pb::Room> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let (renamed, my_role) = self
            .website
            .rename(&me.sub, &req.room_id, &req.name)
            .await?;
        Ok(Response::new(room(renamed, my_role)))
    }

    async fn delete_room(&self, request: Request<pb::RoomRequest>) -> Reply<pb::Empty> {
        let me = self.caller(&request).await?;
        self.website
            .delete(&me.sub, &request.get_ref().room_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn join_room(&self, request: Request<pb::RoomRequest>) -> Reply<pb::Empty> {
        let me = self.caller(&request).await?;
        self.website
            .join(&me.sub, &request.get_ref().room_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn leave_room(&self, request: Request<pb::RoomRequest>) -> Reply<pb::Empty> {
        let me = self.caller(&request).await?;
        self.website
            .leave(&me.sub, &request.get_ref().room_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_members(&self, request: Request<pb::RoomRequest>) -> Reply<pb::MemberList> {
        let me = self.caller(&request).await?;
        let members = self
            .website
            .members(&me.sub, &request.get_ref().room_id)
            .await?;
        Ok(Response::new(pb::MemberList {
            members: members.into_iter().map(member).collect(),
        }))
    }

    async fn add_member(&self, request: Request<pb::AddMemberRequest>) -> Reply<pb::Empty> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        self.website
            .add_member(
                &me.sub,
                &req.room_id,
                &req.user_id,
                role_from_wire(req.role()),
            )
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn set_role(&self, request: Request<pb::SetRoleRequest>) -> Reply<pb::Empty> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        self.website
            .set_role(
                &me.sub,
                &req.room_id,
                &req.user_id,
                role_from_wire(req.role()),
            )
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn remove_member(&self, request: Request<pb::MemberRequest>) -> Reply<pb::Empty> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        self.website
            .remove_member(&me.sub, &req.room_id, &req.user_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_public_rooms(
        &self,
        request: Request<pb::ListRoomsRequest>,
    ) -> Reply<pb::RoomPage> {
        self.caller(&request).await?;
        let req = request.into_inner();
        let found = self
            .website
            .public_rooms(
                non_empty(&req.query),
                non_empty(&req.cursor),
                limit(req.limit),
            )
            .await?;
        Ok(Response::new(page(found)))
    }

    async fn list_my_rooms(&self, request: Request<pb::ListRoomsRequest>) -> Reply<pb::RoomPage> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let mine = self
            .website
            .my_rooms(&me.sub, non_empty(&req.cursor), limit(req.limit))
            .await?;
        let rooms = mine
            .items
            .into_iter()
            .map(|m| pb::Room {
                unread: Some(m.unread()),
                peer_name: m.peer.clone(),
                ..room(m.room.clone(), Some(m.role))
            })
            .collect();
        Ok(Response::new(pb::RoomPage {
            rooms,
            next_cursor: mine.next,
        }))
    }

    async fn get_history(
        &self,
        request: Request<natter_core::events::pb::HistoryRequest>,
    ) -> Reply<pb::MessageList> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let query = HistoryQuery::of(&req);
        let page = self.website.history(&me.sub, &req.room_id, query).await?;
        Ok(Response::new(pb::MessageList {
            messages: page.to_wire(),
        }))
    }

    async fn post_message(
        &self,
        request: Request<pb::PostMessageRequest>,
    ) -> Reply<pb::PostMessageResponse> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let post = natter_core::messaging::Post {
            user: &me.sub,
            room: &req.room_id,
            client_id: &req.client_id,
            body: &req.body,
            reply_to: req.reply_to,
            thread_root: req.thread_root,
            also_to_room: req.also_to_room,
        };
        let (stored, created) = self.website.post(post).await?;
        Ok(Response::new(pb::PostMessageResponse {
            message: Some(stored),
            created,
        }))
    }

    async fn react(
        &self,
        request: Request<pb::ReactRequest>,
    ) -> Reply<natter_core::events::pb::ReactionCount> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let add = !req.remove;
        let reaction = self
            .website
            .react(&me.sub, &req.room_id, req.seq, &req.emoji, add)
            .await?;
        Ok(Response::new(natter_core::events::pb::ReactionCount {
            emoji: reaction.emoji,
            count: reaction.count,
            me: add,
        }))
    }

    async fn get_edits(&self, request: Request<pb::MessageRequest>) -> Reply<pb::EditList> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let edits = self.website.edits(&me.sub, &req.room_id, req.seq).await?;
        Ok(Response::new(pb::EditList {
            edits: edits.iter().map(natter_core::events::edit).collect(),
        }))
    }

    async fn pin(
        &self,
        request: Request<pb::PinRequest>,
    ) -> Reply<natter_core::events::pb::Message> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let pinned = (self.website)
            .pin(&me.sub, &req.room_id, req.seq, !req.unpin)
            .await?;
        Ok(Response::new(pinned))
    }

    async fn list_pins(&self, request: Request<pb::RoomRequest>) -> Reply<pb::MessageList> {
        let me = self.caller(&request).await?;
        let pins = self
            .website
            .pins(&me.sub, &request.get_ref().room_id)
            .await?;
        Ok(Response::new(pb::MessageList {
            messages: pins.iter().map(natter_core::events::message).collect(),
        }))
    }

    async fn list_threads(
        &self,
        request: Request<pb::ListThreadsRequest>,
    ) -> Reply<pb::ThreadList> {
        let me = self.caller(&request).await?;
        let threads = self
            .website
            .threads(&me.sub, limit(request.get_ref().limit));
        let threads = threads.await?.into_iter().map(|t| pb::FollowedThread {
            room_id: t.room_id,
            root_seq: t.root_seq,
            root_body: t.root_body,
            replies: t.replies,
            last_reply_at: t.last_reply_at,
            unread: t.unread,
        });
        Ok(Response::new(pb::ThreadList {
            threads: threads.collect(),
        }))
    }

    async fn read_thread(&self, request: Request<pb::ReadThreadRequest>) -> Reply<pb::Empty> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        (self.website)
            .read_thread(&me.sub, &req.room_id, req.root_seq, req.seq)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_unread(&self, request: Request<pb::Empty>) -> Reply<pb::UnreadList> {
        let me = self.caller(&request).await?;
        let rooms = self.website.room_counts(&me.sub).await?;
        let rooms = rooms.iter().map(room_counts).collect();
        Ok(Response::new(pb::UnreadList { rooms }))
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Reply<pb::ReadMarker> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let marked = self
            .website
            .mark_read(&me.sub, &req.room_id, req.seq)
            .await?;
        Ok(Response::new(pb::ReadMarker { seq: marked.seq }))
    }

    async fn set_notify_level(
        &self,
        request: Request<pb::SetNotifyLevelRequest>,
    ) -> Reply<pb::NotifyLevel> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let level = (self.website)
            .set_level(&me.sub, &req.room_id, req.level.as_deref())
            .await?;
        Ok(Response::new(pb::NotifyLevel {
            room_id: req.room_id,
            level: level.as_str().into(),
        }))
    }

    async fn get_receipts(&self, request: Request<pb::RoomRequest>) -> Reply<pb::ReceiptList> {
        let me = self.caller(&request).await?;
        let receipts = (self.website)
            .receipts(&me.sub, &request.get_ref().room_id)
            .await?;
        Ok(Response::new(pb::ReceiptList {
            shown: receipts.is_some(),
            receipts: (receipts.into_iter().flatten())
                .map(|(user_id, seq)| pb::Receipt { user_id, seq })
                .collect(),
        }))
    }

    async fn get_settings(&self, request: Request<pb::Empty>) -> Reply<pb::Settings> {
        let me = self.caller(&request).await?;
        let settings = self.website.settings(&me.sub).await?;
        Ok(Response::new(settings_pb(settings)))
    }

    async fn update_settings(&self, request: Request<pb::SettingsChange>) -> Reply<pb::Settings> {
        let me = self.caller(&request).await?;
        let change = request.into_inner();
        let settings = (self.website)
            .update_settings(&me.sub, change.share_receipts, change.email_digests)
            .await?;
        Ok(Response::new(settings_pb(settings)))
    }

    async fn unsubscribe(
        &self,
        request: Request<pb::UnsubscribeRequest>,
    ) -> Reply<pb::UnsubscribeReply> {
        let username = self.website.unsubscribe(&request.get_ref().token).await?;
        Ok(Response::new(pb::UnsubscribeReply { username }))
    }

    async fn get_profile(&self, request: Request<pb::ProfileRequest>) -> Reply<pb::Profile> {
        let me = self.caller(&request).await?;
        let id = non_empty(&request.get_ref().user_id)
            .unwrap_or(&me.sub)
            .to_owned();
        Ok(Response::new(profile(self.website.profile(&id).await?)))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Reply<pb::Profile> {
        let me = self.caller(&request).await?;
        let req = request.into_inner();
        let updated = self
            .website
            .update_profile(&me.sub, &req.display_name, &req.bio, &req.avatar_url)
            .await?;
        Ok(Response::new(profile(updated)))
    }

    async fn find_users(&self, request: Request<pb::FindUsersRequest>) -> Reply<pb::ProfileList> {
        self.caller(&request).await?;
        let req = request.into_inner();
        let users = self
            .website
            .find_users(&req.prefix, limit(req.limit))
            .await?;
        Ok(Response::new(pb::ProfileList {
            profiles: users.into_iter().map(profile).collect(),
        }))
    }
}

/// A role from the wire; unspecified means a plain member.
fn role_from_wire(role: pb::Role) -> Role {
    match role {
        pb::Role::Admin => Role::Admin,
        pb::Role::Owner => Role::Owner,
        pb::Role::Member | pb::Role::Unspecified => Role::Member,
    }
}

fn settings_pb(settings: UserSettings) -> pb::Settings {
    pb::Settings {
        share_receipts: settings.share_receipts,
        email_digests: settings.email_digests,
    }
}
