//! Room events between replicas: the one typed, versioned envelope
//! (`natter.common.v1.RoomEvent`, protobuf) on one broker topic, the one mapping from a
//! stored message to its wire shape, and the decoders of the previous release's formats,
//! so that replicas of two releases can run side by side during a rolling upgrade.
//!
//! Version rule (proto/natter/common/v1/common.proto): fields and event kinds are only
//! added; a reader ignores what it does not know and skips an event of an unknown kind.

use bytes::Bytes;
use prost::Message as _;
use serde_json::Value;

pub use natter_proto::common::v1 as pb;
pub use pb::room_event::Kind;

use crate::markdown;
use crate::store::MessageRecord;

/// The topic every room event was published on until events went to each room's own
/// topic ([`room_topic`]); still read, from replicas of the previous release.
pub const TOPIC: &str = "natter.room-events.v1";

/// The topic of one room's events (the same envelope as on [`TOPIC`]): a replica
/// receives the events of the rooms it listens to, and no others.
pub fn room_topic(room: &str) -> String {
    format!("{TOPIC}.{room}")
}
/// The topic of events about one user rather than one room (added to a room, a chosen
/// notification level): a replica serving that user's event stream listens to it.
pub fn user_topic(user: &str) -> String {
    format!("{USER_TOPIC}.{user}")
}

/// The prefix of [`user_topic`]s.
pub const USER_TOPIC: &str = "natter.user-events.v1";

/// The previous release's topic of message frames (a text format), still read.
pub const LEGACY_MESSAGES_TOPIC: &str = "natter.messages";
/// The previous release's topic of room life-cycle events (JSON), still read.
pub const LEGACY_ROOMS_TOPIC: &str = "natter.rooms";

/// The wire shape of a stored message, its text rendered: the one mapping every service
/// uses (gRPC answers, the event envelope, JSON).
pub fn message(record: &MessageRecord) -> pb::Message {
    let mentions: Vec<pb::Mention> = (record.mentioned())
        .map(|(user_id, username)| pb::Mention {
            user_id: user_id.into(),
            username: username.into(),
        })
        .collect();
    pb::Message {
        room_id: record.room_id.clone(),
        seq: record.seq,
        sender_id: record.sender_id.clone(),
        client_id: record.client_id.clone(),
        body: record.visible_body().to_owned(),
        created_at: record.created_at,
        edited_at: record.edited_at,
        deleted: record.is_deleted(),
        reply_to: record.reply_to,
        reactions: Vec::new(),
        html: html(record.visible_body(), &mentions, record.mentions_room()),
        mentions,
        mentions_room: record.mentions_room(),
        pinned_at: record.pinned_at,
        pinned_by: record.pinned_by.clone(),
        thread_root: record.thread_root,
        also_to_room: record.also_to_room(),
        thread: (record.thread_replies > 0).then(|| pb::ThreadSummary {
            replies: record.thread_replies,
            last_reply_at: record.thread_last_at.unwrap_or_default(),
            participants: record.participants().map(str::to_owned).collect(),
        }),
    }
}

/// `body` rendered, its `@names` of `mentions` (and `@room` when `everyone`) marked;
/// empty for plain text (one paragraph of itself: shown as text) and for no text.
pub fn html(body: &str, mentions: &[pb::Mention], everyone: bool) -> String {
    let mentioned = |name: &str| match name {
        markdown::ROOM_MENTION if everyone => Some(markdown::ROOM_MENTION.to_owned()),
        _ => (mentions.iter())
            .find(|m| m.username == name)
            .map(|m| m.user_id.clone()),
    };
    markdown::formatted(body, &mentioned).unwrap_or_default()
}

/// The wire shape of an earlier text of a message.
pub fn edit(record: &crate::store::EditRecord) -> pb::Edit {
    pb::Edit {
        html: html(&record.body, &[], false),
        body: record.body.clone(),
        written_at: record.written_at,
    }
}

/// The wire shape of a reaction change.
pub fn reaction(reaction: &crate::messaging::Reaction) -> pb::Reaction {
    pb::Reaction {
        seq: reaction.seq,
        emoji: reaction.emoji.clone(),
        user_id: reaction.user_id.clone(),
        added: reaction.added,
        count: reaction.count,
    }
}

/// An event of `kind` in `room`, published by `origin`.
pub fn event(origin: &str, room: &str, kind: Kind) -> pb::RoomEvent {
    pb::RoomEvent {
        origin: origin.into(),
        room_id: room.into(),
        traceparent: String::new(),
        tracestate: String::new(),
        kind: Some(kind),
    }
}

/// The payload of `event` on its room's topic.
pub fn encode(event: &pb::RoomEvent) -> Bytes {
    Bytes::from(event.encode_to_vec())
}

/// The event a payload of `topic` carries: the envelope on a room's topic (or
/// [`TOPIC`]), or the previous release's formats on the legacy topics. `None` for
/// anything unreadable or of a kind this release does not know.
pub fn decode(topic: &str, payload: &[u8]) -> Option<pb::RoomEvent> {
    let mut event = match topic {
        _ if topic.starts_with(TOPIC) || topic.starts_with(USER_TOPIC) => {
            pb::RoomEvent::decode(payload).ok()?
        }
        LEGACY_MESSAGES_TOPIC => legacy_message(payload)?,
        LEGACY_ROOMS_TOPIC => legacy_room(payload)?,
        _ => return None,
    };
    // The previous release sends no rendered text: render it here, once per event.
    if let Some(Kind::Posted(message) | Kind::Updated(message)) = &mut event.kind
        && message.html.is_empty()
    {
        message.html = html(&message.body, &message.mentions, message.mentions_room);
    }
    event.kind.is_some().then_some(event)
}

/// `node \n room \n seq \n created_ms \n traceparent \n tracestate \n frame`, the frame
/// being the JSON `message`, `message_updated` or `typing` frame of the WebSocket
/// protocol (`-` for an absent trace field).
fn legacy_message(payload: &[u8]) -> Option<pb::RoomEvent> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(7, '\n');
    let mut next = || parts.next();
    let (node, room, _seq, _created, traceparent, tracestate, frame) = (
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
    );
    let frame: Value = serde_json::from_str(frame).ok()?;
    let message = || pb::Message {
        room_id: room.into(),
        seq: frame["seq"].as_i64().unwrap_or(0),
        sender_id: frame["sender_id"].as_str().map(str::to_owned),
        client_id: frame["client_id"].as_str().unwrap_or_default().into(),
        body: frame["body"].as_str().unwrap_or_default().into(),
        created_at: frame["created_at"].as_i64().unwrap_or(0),
        edited_at: frame["edited_at"].as_i64(),
        deleted: frame["deleted"].as_bool().unwrap_or(false),
        ..pb::Message::default()
    };
    let kind = match frame["type"].as_str()? {
        "message" => Kind::Posted(message()),
        "message_updated" => Kind::Updated(message()),
        "typing" => Kind::Typing(pb::Typing {
            user_id: frame["user_id"].as_str()?.into(),
        }),
        _ => return None,
    };
    let absent = |field: &str| {
        if field == "-" {
            String::new()
        } else {
            field.into()
        }
    };
    Some(pb::RoomEvent {
        origin: node.into(),
        room_id: room.into(),
        traceparent: absent(traceparent),
        tracestate: absent(tracestate),
        kind: Some(kind),
    })
}

/// `{"type": "room_deleted" | "member_removed", "room_id": …, "user_id": …}`.
fn legacy_room(payload: &[u8]) -> Option<pb::RoomEvent> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let room = value["room_id"].as_str()?;
    let kind = match value["type"].as_str()? {
        "room_deleted" => Kind::RoomDeleted(pb::RoomDeleted {}),
        "member_removed" => Kind::MemberRemoved(pb::MemberRemoved {
            user_id: value["user_id"].as_str()?.into(),
        }),
        _ => return None,
    };
    Some(event("website", room, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted() -> pb::RoomEvent {
        event(
            "n1",
            "r1",
            Kind::Posted(pb::Message {
                room_id: "r1".into(),
                seq: 3,
                sender_id: Some("u1".into()),
                client_id: "c1".into(),
                body: "hi".into(),
                created_at: 1_700_000_000_000,
                edited_at: None,
                deleted: false,
                ..pb::Message::default()
            }),
        )
    }

    /// The envelope as this release encodes it; a change here breaks mixed-version
    /// clusters (only additions are allowed).
    const POSTED_V1: &[u8] =
        b"\n\x02n1\x12\x02r1R\x19\n\x02r1\x10\x03\x1a\x02u1\"\x02c1*\x02hi0\x80\xd0\x95\xff\xbc1";

    #[test]
    fn the_envelope_decodes_as_it_always_did_and_round_trips() {
        assert_eq!(encode(&posted()).as_ref(), POSTED_V1);
        assert_eq!(decode(TOPIC, POSTED_V1), Some(posted()));
    }

    #[test]
    fn an_event_without_rendered_text_is_rendered_on_arrival() {
        let mut event = posted();
        if let Some(Kind::Posted(message)) = &mut event.kind {
            message.body = "**hi**".into();
        }
        let decoded = decode(TOPIC, &encode(&event)).unwrap();
        let Some(Kind::Posted(message)) = decoded.kind else {
            panic!("{decoded:?}");
        };
        assert_eq!(message.html, "<p><strong>hi</strong></p>");
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_kinds_skipped() {
        let mut with_future_field = POSTED_V1.to_vec();
        with_future_field.extend_from_slice(b"\xa2\x06\x03new"); // field 100, a string
        assert_eq!(decode(TOPIC, &with_future_field), Some(posted()));
        let future_kind = b"\n\x02n1\x12\x02r1\xfa\x06\x00"; // kind 111, empty
        assert_eq!(decode(TOPIC, future_kind), None);
    }

    #[test]
    fn the_previous_release_formats_still_decode() {
        let message = "n1\nr1\n3\n1700000000000\n-\n-\n{\"type\":\"message\",\"room_id\":\"r1\",\"seq\":3,\"sender_id\":\"u1\",\"client_id\":\"c1\",\"body\":\"hi\",\"created_at\":1700000000000}";
        assert_eq!(
            decode(LEGACY_MESSAGES_TOPIC, message.as_bytes()),
            Some(posted())
        );
        let typing =
            "n2\nr1\n0\n0\n-\n-\n{\"type\":\"typing\",\"room_id\":\"r1\",\"user_id\":\"u9\"}";
        let typing = decode(LEGACY_MESSAGES_TOPIC, typing.as_bytes()).unwrap();
        assert_eq!(
            typing.kind,
            Some(Kind::Typing(pb::Typing {
                user_id: "u9".into()
            }))
        );
        let removed = br#"{"type":"member_removed","room_id":"r1","user_id":"u2"}"#;
        let removed = decode(LEGACY_ROOMS_TOPIC, removed).unwrap();
        assert_eq!(
            removed.kind,
            Some(Kind::MemberRemoved(pb::MemberRemoved {
                user_id: "u2".into()
            }))
        );
        assert_eq!(
            decode(LEGACY_ROOMS_TOPIC, br#"{"type":"renamed","room_id":"r1"}"#),
            None
        );
    }
}
