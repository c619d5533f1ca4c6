//! The website domain: every operation resolves the caller's role, asks the policy, then
//! reads or writes the store. Transport-agnostic.

use natter_core::events::{Kind, pb};
use natter_core::messaging::{HistoryPage, HistoryQuery, Marked, Messages, Post, Reaction};
use natter_core::outbox::Outbox;
use natter_core::store::{
    EditRecord, FollowedThread, Level, MemberRecord, MessageRecord, MyRoom, Page, ProfileRecord,
    ProfileUpdate, PushSubscription, Role, RoomCounts, RoomKind, RoomRecord, Store, StoreError,
};
use natter_core::time::now_ms;
use natter_core::token::TokenVerifier;

use crate::policy::{self, Action, Viewer, authorize};
use crate::{WebsiteError, WriteLimiter, validate};

/// A user's notification settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSettings {
    /// Whether members see how far they have read (and they see others').
    pub share_receipts: bool,
    /// Whether they get email digests.
    pub email_digests: bool,
}

/// The website service's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Website {
    store: Store,
    /// The owner of messages' life (posting goes through it, as from chat).
    messages: Messages,
    verifier: TokenVerifier,
    limiter: WriteLimiter,
    /// The public VAPID key browsers subscribe with, when pushes are sent.
    push_key: Option<String>,
}

type Result<T, E = WebsiteError> = std::result::Result<T, E>;

/// Most rooms whose counts one request lists (as many as a chat connection subscribes).
pub const ROOM_COUNTS_MAX: u32 = 1000;

impl Website {
    /// The service over `store`, publishing messages and room events through `outbox`,
    /// counting writes with `limiter`.
    pub fn new(
        store: Store,
        outbox: Outbox,
        verifier: TokenVerifier,
        limiter: WriteLimiter,
    ) -> Self {
        Self {
            messages: Messages::new(store.clone(), outbox),
            store,
            verifier,
            limiter,
            push_key: None,
        }
    }

    /// Accepts browsers' push subscriptions for the VAPID public key `key`.
    pub fn with_push(self, key: String) -> Self {
        Self {
            push_key: Some(key),
            ..self
        }
    }

    /// Shows read receipts in rooms of at most `members` members.
    pub fn receipts_up_to(self, members: i64) -> Self {
        Self {
            messages: self.messages.with_receipts_up_to(members),
            ..self
        }
    }

    /// Verifies bearer tokens for the HTTP layer.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The room, after checking `user` may do `action` to it.
    async fn room_for(
        &self,
        user: &str,
        room_id: &str,
        action: Action,
    ) -> Result<(RoomRecord, Option<Role>)> {
        let (room, role) = self
            .store
            .room_with_role(room_id, user)
            .await?
            .ok_or(WebsiteError::NotFound("room"))?;
        authorize(room.kind, Viewer::SignedIn(role), action).map_err(WebsiteError::denied)?;
        Ok((room, role))
    }

    /// Creates a public or group room owned by `user`.
    pub async fn create_room(&self, user: &str, kind: RoomKind, name: &str) -> Result<RoomRecord> {
        self.limiter.write(user).await?;
        if kind == RoomKind::Direct {
            return Err(WebsiteError::invalid(
                "invalid_kind",
                "direct rooms are opened with a user, not created with a name",
            ));
        }
        let name = validate::room_name(name)?;
        let room = self
            .store
            .create_room(kind, &name, user)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    WebsiteError::Conflict("a public room with this name exists")
                }
                other => other.into(),
            })?;
        self.added(&room.id, user);
        Ok(room)
    }

    /// The direct room of `user` and `other`, opened if new.
    pub async fn open_direct(&self, user: &str, other: &str) -> Result<RoomRecord> {
        self.limiter.write(user).await?;
        if user == other {
            return Err(WebsiteError::Forbidden(
                "a direct room is opened with another user",
            ));
        }
        self.store
            .profile(other)
            .await?
            .ok_or(WebsiteError::NotFound("user"))?;
        let room = self.store.open_direct(user, other).await?;
        // Heard twice when the room existed: adding is idempotent for streams.
        self.added(&room.id, user);
        self.added(&room.id, other);
        Ok(room)
    }

    /// A room and its members.
    pub async fn room(&self, user: &str, room_id: &str) -> Result<(RoomRecord, Option<Role>)> {
        self.room_for(user, room_id, Action::ReadRoom).await
    }

    /// A room's members; how far others have read only when they and `user` share
    /// read receipts (0 otherwise).
    pub async fn members(&self, user: &str, room_id: &str) -> Result<Vec<MemberRecord>> {
        self.room_for(user, room_id, Action::ReadRoom).await?;
        let mut members = self.store.members(room_id).await?;
        if !self.store.shares_receipts(user).await? {
            (members.iter_mut())
                .filter(|m| m.user_id != user)
                .for_each(|m| m.last_read_seq = 0);
        }
        Ok(members)
    }

    /// Renames a room; returns it with the caller's role.
    pub async fn rename(
        &self,
        user: &str,
        room_id: &str,
        name: &str,
    ) -> Result<(RoomRecord, Option<Role>)> {
        self.limiter.write(user).await?;
        let (room, role) = self.room_for(user, room_id, Action::Rename).await?;
        let name = validate::room_name(name)?;
        self.store
            .rename_room(room_id, &name)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    WebsiteError::Conflict("a public room with this name exists")
                }
                other => other.into(),
            })?;
        let name_event = pb::RoomRenamed { name: name.clone() };
        self.publish(room_id, Kind::Renamed(name_event));
        let renamed = RoomRecord {
            name: Some(name),
            ..room
        };
        Ok((renamed, role))
    }

    /// Deletes a room with its members and messages, and tells live subscribers.
    pub async fn delete(&self, user: &str, room_id: &str) -> Result<()> {
        self.limiter.write(user).await?;
        self.room_for(user, room_id, Action::Delete).await?;
        self.store.delete_room(room_id).await?;
        let deleted = Kind::RoomDeleted(pb::RoomDeleted {});
        self.publish(room_id, deleted);
        Ok(())
    }

    /// Joins a public room.
    pub async fn join(&self, user: &str, room_id: &str) -> Result<()> {
        self.limiter.write(user).await?;
        let (room, role) = self
            .store
            .room_with_role(room_id, user)
            .await?
            .ok_or(WebsiteError::NotFound("room"))?;
        if role.is_some() {
            return Ok(());
        }
        authorize(room.kind, Viewer::SignedIn(None), Action::Join).map_err(WebsiteError::denied)?;
        if self.store.add_member(room_id, user, Role::Member).await? {
            self.added(room_id, user);
        }
        Ok(())
    }

    /// Leaves a room (owners hand over ownership first).
    pub async fn leave(&self, user: &str, room_id: &str) -> Result<()> {
        self.limiter.write(user).await?;
        self.room_for(user, room_id, Action::Leave).await?;
        self.drop_member(room_id, user).await
    }

    /// Adds `target` as a member (owners may add admins).
    pub async fn add_member(
        &self,
        user: &str,
        room_id: &str,
        target: &str,
        role: Role,
    ) -> Result<()> {
        self.limiter.write(user).await?;
        let (_, own) = self.room_for(user, room_id, Action::AddMember).await?;
        // AddMember was allowed, so the caller is a member.
        policy::may_grant(own.unwrap_or(Role::Member), role).map_err(|_| {
            WebsiteError::Forbidden("only the owner adds admins; ownership is transferred")
        })?;
        self.store
            .profile(target)
            .await?
            .ok_or(WebsiteError::Unmet {
                code: "unknown_user",
                message: "no user has this id",
            })?;
        if !self.store.add_member(room_id, target, role).await? {
            return Err(WebsiteError::Conflict("already a member"));
        }
        self.added(room_id, target);
        Ok(())
    }

    /// Removes `target`: yourself (leave), or someone of a lower role.
    pub async fn remove_member(&self, user: &str, room_id: &str, target: &str) -> Result<()> {
        if user == target {
            return self.leave(user, room_id).await;
        }
        self.limiter.write(user).await?;
        let (_, own) = self.room_for(user, room_id, Action::RemoveMember).await?;
        let theirs = self
            .store
            .role(room_id, target)
            .await?
            .ok_or(WebsiteError::NotFound("member"))?;
        policy::may_remove(own.unwrap_or(Role::Member), theirs)
            .map_err(|_| WebsiteError::Forbidden("you can only remove members below your role"))?;
        self.drop_member(room_id, target).await
    }

    /// Makes a member an admin or a plain member again.
    pub async fn set_role(
        &self,
        user: &str,
        room_id: &str,
        target: &str,
        role: Role,
    ) -> Result<()> {
        self.limiter.write(user).await?;
        self.room_for(user, room_id, Action::ManageRoles).await?;
        if role == Role::Owner {
            return Err(WebsiteError::invalid(
                "invalid_role",
                "use the owner route to hand over ownership",
            ));
        }
        if user == target {
            return Err(WebsiteError::Forbidden("you cannot change your own role"));
        }
        if !self.store.set_role(room_id, target, role).await? {
            return Err(WebsiteError::NotFound("member"));
        }
        Ok(())
    }

    /// Hands ownership to another member; the previous owner becomes an admin.
    pub async fn transfer(&self, user: &str, room_id: &str, target: &str) -> Result<()> {
        self.limiter.write(user).await?;
        self.room_for(user, room_id, Action::ManageRoles).await?;
        if user == target {
            return Err(WebsiteError::Forbidden("you own this room already"));
        }
        if !self.store.transfer_ownership(room_id, user, target).await? {
            return Err(WebsiteError::Unmet {
                code: "not_a_member",
                message: "ownership goes to a member of the room",
            });
        }
        Ok(())
    }

    /// A page of history, with its reactions as `user` sees them.
    pub async fn history(
        &self,
        user: &str,
        room_id: &str,
        query: HistoryQuery,
    ) -> Result<HistoryPage> {
        Ok(self.messages.history(user, room_id, query).await?)
    }

    /// Stores a message (idempotent per client id): its wire shape, and whether it is new.
    pub async fn post(&self, post: Post<'_>) -> Result<(pb::Message, bool)> {
        self.limiter.write(post.user).await?;
        let (posted, wire) = self.messages.post_wire(post).await?;
        // A retry's message was not published (nor rendered) now.
        let wire = wire.map_or_else(
            || natter_core::events::message(&posted.message),
            std::sync::Arc::unwrap_or_clone,
        );
        Ok((wire, posted.created))
    }

    /// Adds or removes `user`'s reaction to message `seq`.
    pub async fn react(
        &self,
        user: &str,
        room_id: &str,
        seq: i64,
        emoji: &str,
        add: bool,
    ) -> Result<Reaction> {
        self.limiter.write(user).await?;
        Ok(self.messages.react(user, room_id, seq, emoji, add).await?)
    }

    /// Pins (or unpins) message `seq`; owners and admins.
    pub async fn pin(&self, user: &str, room_id: &str, seq: i64, pin: bool) -> Result<pb::Message> {
        self.limiter.write(user).await?;
        Ok(self.messages.pin(user, room_id, seq, pin).await?)
    }

    /// The room's pinned messages, most recently pinned first.
    pub async fn pins(&self, user: &str, room_id: &str) -> Result<Vec<MessageRecord>> {
        Ok(self.messages.pins(user, room_id).await?)
    }

    /// The threads `user` follows, most recently active first.
    pub async fn threads(&self, user: &str, limit: Option<u32>) -> Result<Vec<FollowedThread>> {
        Ok(self.messages.followed_threads(user, limit).await?)
    }

    /// Moves `user`'s read marker in the thread of `root`.
    pub async fn read_thread(&self, user: &str, room_id: &str, root: i64, seq: i64) -> Result<()> {
        self.limiter.write(user).await?;
        Ok(self.messages.read_thread(user, room_id, root, seq).await?)
    }

    /// Moves `user`'s read marker in `room_id` forward to `seq`; the marker in effect.
    pub async fn mark_read(&self, user: &str, room_id: &str, seq: i64) -> Result<Marked> {
        self.limiter.write(user).await?;
        Ok(self.messages.mark_read(user, room_id, seq).await?)
    }

    /// Sets (or with `None` clears) `user`'s notification level in `room_id`; the level
    /// in effect.
    pub async fn set_level(&self, user: &str, room_id: &str, level: Option<&str>) -> Result<Level> {
        self.limiter.write(user).await?;
        let level = natter_core::messaging::level_named(level)?;
        Ok(self.messages.set_level(user, room_id, level).await?)
    }

    /// How far members who share receipts have read `room_id`, when it shows them.
    pub async fn receipts(&self, user: &str, room_id: &str) -> Result<Option<Vec<(String, i64)>>> {
        Ok(self.messages.receipts(user, room_id).await?)
    }

    /// Every room of `user` with its unread and mention counts and level.
    pub async fn room_counts(&self, user: &str) -> Result<Vec<RoomCounts>> {
        Ok(self.messages.room_counts(user, ROOM_COUNTS_MAX).await?)
    }

    /// The public key browsers subscribe with; not found when pushes are off.
    pub fn push_key(&self) -> Result<&str> {
        self.push_key
            .as_deref()
            .ok_or(WebsiteError::NotFound("push service"))
    }

    /// Saves `user`'s browser push subscription.
    pub async fn subscribe_push(&self, user: &str, sub: PushSubscription) -> Result<()> {
        self.limiter.write(user).await?;
        self.push_key()?;
        let sub = validate::push_subscription(user, sub)?;
        Ok(self.store.save_push_subscription(&sub, now_ms()).await?)
    }

    /// Forgets `user`'s browser push subscription of `endpoint`.
    pub async fn unsubscribe_push(&self, user: &str, endpoint: &str) -> Result<()> {
        self.limiter.write(user).await?;
        match self
            .store
            .delete_push_subscription(endpoint, Some(user))
            .await?
        {
            true => Ok(()),
            false => Err(WebsiteError::NotFound("push subscription")),
        }
    }

    /// `user`'s notification settings.
    pub async fn settings(&self, user: &str) -> Result<UserSettings> {
        let settings = self.store.user_settings(user).await?;
        let (share_receipts, email_digests) = settings.ok_or(WebsiteError::NotFound("user"))?;
        Ok(UserSettings {
            share_receipts,
            email_digests,
        })
    }

    /// Changes the settings given (not sharing receipts hides others' too; turning
    /// digests off drops what was queued for one); answers with all of them.
    pub async fn update_settings(
        &self,
        user: &str,
        share_receipts: Option<bool>,
        email_digests: Option<bool>,
    ) -> Result<UserSettings> {
        self.limiter.write(user).await?;
        let missing = || WebsiteError::NotFound("user");
        if let Some(shares) = share_receipts {
            (self.store.set_share_receipts(user, shares).await?)
                .then_some(())
                .ok_or_else(missing)?;
        }
        if let Some(on) = email_digests {
            (self.store.set_email_digests(user, on).await?)
                .then_some(())
                .ok_or_else(missing)?;
        }
        self.settings(user).await
    }

    /// Turns off the digests of the user whose unsubscribe link carries `token`; their
    /// user name.
    pub async fn unsubscribe(&self, token: &str) -> Result<String> {
        match self.store.unsubscribe_digests(token).await? {
            Some(username) => Ok(username),
            None => Err(WebsiteError::NotFound("unsubscribe link")),
        }
    }

    /// The earlier texts of message `seq`, oldest first.
    pub async fn edits(&self, user: &str, room_id: &str, seq: i64) -> Result<Vec<EditRecord>> {
        Ok(self.messages.edits(user, room_id, seq).await?)
    }

    /// Public rooms, optionally filtered by a name substring.
    pub async fn public_rooms(
        &self,
        query: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<RoomRecord>> {
        let limit = validate::limit(limit)?;
        let query = validate::room_search(query)?;
        Ok(self.store.public_rooms(query, cursor, limit).await?)
    }

    /// The caller's rooms with their roles and unread counts.
    pub async fn my_rooms(
        &self,
        user: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<MyRoom>> {
        let limit = validate::limit(limit)?;
        Ok(self.store.rooms_of_user(user, cursor, limit).await?)
    }

    /// Anyone's profile.
    pub async fn profile(&self, user_id: &str) -> Result<ProfileRecord> {
        self.store
            .profile(user_id)
            .await?
            .ok_or(WebsiteError::NotFound("user"))
    }

    /// Replaces the caller's profile fields.
    pub async fn update_profile(
        &self,
        user: &str,
        display_name: &str,
        bio: &str,
        avatar_url: &str,
    ) -> Result<ProfileRecord> {
        self.limiter.write(user).await?;
        let (display_name, bio, avatar_url) = validate::profile(display_name, bio, avatar_url)?;
        let update = ProfileUpdate {
            display_name: &display_name,
            bio: &bio,
            avatar_url: &avatar_url,
        };
        if !self.store.update_profile(user, update).await? {
            return Err(WebsiteError::NotFound("user"));
        }
        self.profile(user).await
    }

    /// Users whose username starts with `prefix`, by username (blank: every user).
    pub async fn find_users(&self, prefix: &str, limit: Option<u32>) -> Result<Vec<ProfileRecord>> {
        let prefix = validate::user_prefix(prefix)?;
        let limit = validate::limit(limit)?;
        Ok(self.store.users_by_prefix(prefix, limit).await?)
    }

    /// Removes a member and tells live subscribers.
    async fn drop_member(&self, room_id: &str, user_id: &str) -> Result<()> {
        self.store.remove_member(room_id, user_id).await?;
        let removed = pb::MemberRemoved {
            user_id: user_id.into(),
        };
        self.publish(room_id, Kind::MemberRemoved(removed));
        Ok(())
    }

    /// Tells the replicas serving `user`'s event stream that they are a member of
    /// `room_id` now.
    fn added(&self, room_id: &str, user: &str) {
        let added = Kind::MemberAdded(pb::MemberAdded {
            user_id: user.into(),
        });
        self.messages.outbox().publish_for(user, room_id, added);
    }

    /// Tells live subscribers on every chat replica (`natter_core::events`), through
    /// the outbox its messages go out by.
    fn publish(&self, room_id: &str, kind: Kind) {
        self.messages.outbox().publish(room_id, kind, None);
    }
}
