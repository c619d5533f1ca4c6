//! OpenAPI schemas of the fields the server checks, built from the same rules
//! (`crate::validate`, `natter_core::text`) so that a request the document allows is one
//! the server accepts, and the reverse.

use natter_core::text::{self, classes};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaFormat, Type};

use crate::validate;

fn text(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max))
}

/// A room name ([`validate::room_name`]).
pub fn room_name() -> Object {
    text(validate::ROOM_NAME_MAX)
        .min_length(Some(1))
        .pattern(Some(text::not_blank_pattern(classes::CONTROL)))
        .description(Some(
            "1–64 characters without control characters, not only white space; stored trimmed.",
        ))
        .build()
}

/// Search text over room names ([`crate::Website::public_rooms`]).
pub fn room_search() -> Object {
    text(validate::ROOM_NAME_MAX)
        .pattern(Some(text::without_pattern(classes::CONTROL)))
        .description(Some(
            "Name substring, at most 64 characters without control characters (trimmed; `%`, `_` and `\\` are literal).",
        ))
        .build()
}

/// A username prefix ([`crate::Website::find_users`]).
pub fn user_prefix() -> Object {
    text(validate::PREFIX_MAX)
        .pattern(Some(text::without_pattern(classes::CONTROL)))
        .description(Some(
            "Username prefix, at most 32 characters without control characters (trimmed); absent or blank: every user, by username.",
        ))
        .build()
}

/// A reaction: one emoji of the Unicode list (`natter_core::text::emoji`), fully
/// qualified (the unqualified forms are accepted too, as the same reaction).
pub fn emoji() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(text::all_emoji()))
        .description(Some(text::EMOJI_RULE))
        .build()
}

/// A message body (`natter_core::text::is_message_body`).
pub fn message_body() -> Object {
    text(text::MESSAGE_MAX)
        .min_length(Some(1))
        .pattern(Some(text::not_blank_pattern(classes::STRAY_CONTROL)))
        .description(Some(text::MESSAGE_RULE))
        .build()
}

/// A client id for a send (`natter_core::text::is_client_id`).
pub fn client_id() -> Object {
    text(64)
        .min_length(Some(1))
        .pattern(Some("^[!-~]+$"))
        .description(Some(
            "Chosen by the client, 1–64 printable ASCII characters; a retry with the same id returns the stored message instead of storing another.",
        ))
        .build()
}

/// A display name ([`validate::profile`]).
pub fn display_name() -> Object {
    text(validate::DISPLAY_NAME_MAX)
        .pattern(Some(text::without_pattern(classes::CONTROL)))
        .description(Some(
            "At most 64 characters without control characters; stored trimmed.",
        ))
        .build()
}

/// A bio ([`validate::profile`]).
pub fn bio() -> Object {
    text(validate::BIO_MAX)
        .pattern(Some(text::without_pattern(classes::STRAY_CONTROL)))
        .description(Some(
            "At most 1000 characters, without control characters other than line breaks and tabs.",
        ))
        .build()
}

/// An avatar URL ([`validate::profile`]): empty, or http(s) with a host and printable
/// ASCII only, white space around it trimmed.
pub fn avatar_url() -> Object {
    let ws = classes::WHITE_SPACE;
    let host = "[A-Za-z0-9.-]+(:[0-9]{1,5})?";
    text(validate::AVATAR_URL_MAX)
        .pattern(Some(format!(
            "^[{ws}]*(https?://{host}([/?#][!-~]*)?)?[{ws}]*$"
        )))
        .description(Some(
            "Empty, or an http:// or https:// URL of printable ASCII characters whose host is a name or IPv4 address with an optional port, at most 2048 characters.",
        ))
        .build()
}

/// An id (`natter_core::text::is_id`).
pub fn id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uuid".into())))
        .pattern(Some(
            "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        ))
        .build()
}

/// A cursor of the public room list: any base64url text reads as a position.
pub fn rooms_cursor() -> Object {
    text(natter_core::store::CURSOR_MAX)
        .pattern(Some("^[A-Za-z0-9_-]*$"))
        .description(Some(
            "`next_cursor` of the previous page (base64url characters).",
        ))
        .build()
}

/// A cursor of the caller's room list: the id of the last room of the previous page.
pub fn my_rooms_cursor() -> Object {
    let mut schema = id();
    schema.description = Some("`next_cursor` of the previous page (a room id).".into());
    schema
}

/// A kind of room a name creates.
pub fn new_room_kind() -> Object {
    enumeration(&["public", "group"], "`public` or `group`.")
}

/// A role that can be given.
pub fn grantable_role() -> Object {
    enumeration(&["member", "admin"], "`member` or `admin` (owners only).")
}

fn enumeration(values: &[&str], description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}
