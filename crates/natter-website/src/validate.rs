//! Field rules: room names, profiles, page sizes, push subscriptions (messages' rules are the messages
//! owner's, `natter_core::messaging`).

use natter_core::store::PushSubscription;
use natter_core::text;

use crate::WebsiteError;

/// Most characters in a room name.
pub const ROOM_NAME_MAX: usize = 64;
/// Most characters in a display name.
pub const DISPLAY_NAME_MAX: usize = 64;
/// Most characters in a bio.
pub const BIO_MAX: usize = 1000;
/// Most characters in an avatar URL.
pub const AVATAR_URL_MAX: usize = 2048;
/// Most characters in a username prefix to look up.
pub const PREFIX_MAX: usize = 32;

// Lengths are counted as sent, before trimming, so that the OpenAPI document's
// `maxLength` (`crate::http`) states the rule exactly.

/// Whether `raw` is at most `max` characters, as sent, without control characters: the
/// one-line fields' rule (`http::schemas` states it in the OpenAPI document).
fn is_line(raw: &str, max: usize) -> bool {
    raw.chars().count() <= max && !raw.chars().any(char::is_control)
}

/// Checks a room name is 1–64 characters without control characters, not only white
/// space, and trims it.
pub fn room_name(raw: &str) -> Result<String, WebsiteError> {
    let name = raw.trim();
    if name.is_empty() || !is_line(raw, ROOM_NAME_MAX) {
        return Err(WebsiteError::invalid(
            "invalid_name",
            "room name must be 1 to 64 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Trims and checks profile fields; the avatar URL must be empty or http(s).
pub fn profile(
    display_name: &str,
    bio: &str,
    avatar_url: &str,
) -> Result<(String, String, String), WebsiteError> {
    if !is_line(display_name, DISPLAY_NAME_MAX) {
        return Err(WebsiteError::invalid(
            "invalid_display_name",
            "display name must be at most 64 characters without control characters",
        ));
    }
    if bio.chars().count() > BIO_MAX || text::has_stray_control(bio) {
        return Err(WebsiteError::invalid(
            "invalid_bio",
            "bio must be at most 1000 characters, without control characters other than line breaks and tabs",
        ));
    }
    let too_long = avatar_url.chars().count() > AVATAR_URL_MAX;
    let avatar_url = avatar_url.trim();
    if too_long || !avatar_url.is_empty() && !is_http_url(avatar_url) {
        return Err(WebsiteError::invalid(
            "invalid_avatar_url",
            "avatar URL must be an http:// or https:// URL",
        ));
    }
    Ok((
        display_name.trim().to_owned(),
        bio.to_owned(),
        avatar_url.to_owned(),
    ))
}

/// An http(s) URL of printable ASCII whose host is a name or an IPv4 address (letters,
/// digits, `.` and `-`) with an optional port of up to five digits.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = authority.split_once(':').unwrap_or((authority, "1"));
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    host_ok && port_ok && url.chars().all(|c| c.is_ascii_graphic())
}

/// Checks search text over room names: at most 64 characters without control
/// characters; trims it, and blank text searches nothing.
pub fn room_search(raw: Option<&str>) -> Result<Option<&str>, WebsiteError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if !is_line(raw, ROOM_NAME_MAX) {
        return Err(WebsiteError::invalid(
            "invalid_query",
            "search text is at most 64 characters without control characters",
        ));
    }
    Ok(Some(raw.trim()).filter(|q| !q.is_empty()))
}

/// Checks a username prefix: at most 32 characters without control characters; trims
/// it (blank: every user).
pub fn user_prefix(raw: &str) -> Result<&str, WebsiteError> {
    if !is_line(raw, PREFIX_MAX) {
        return Err(WebsiteError::invalid(
            "invalid_prefix",
            "prefix is at most 32 characters without control characters",
        ));
    }
    Ok(raw.trim())
}

/// A page size: 1–100, default 50.
pub fn limit(requested: Option<u32>) -> Result<u32, WebsiteError> {
    Ok(natter_core::messaging::page_limit(requested)?)
}

/// Checks a browser's push subscription can be pushed to (`natter_core::push`), as
/// `user`'s.
pub fn push_subscription(
    user: &str,
    sub: PushSubscription,
) -> Result<PushSubscription, WebsiteError> {
    let sub = PushSubscription {
        user_id: user.to_owned(),
        ..sub
    };
    // The shape the OpenAPI document states (422), then what only decoding tells (409).
    let base64url = |text: &str, len: usize, pad: &str| {
        let text = text.strip_suffix(pad).unwrap_or(text);
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let endpoint = &sub.endpoint;
    let url_shaped = (endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        && endpoint.len() <= 2048
        && !endpoint.chars().any(char::is_whitespace);
    if !url_shaped || !base64url(&sub.p256dh, 87, "=") || !base64url(&sub.auth, 22, "==") {
        return Err(WebsiteError::invalid(
            "invalid_subscription",
            "endpoint must be an http(s) URL of at most 2048 characters, p256dh 87 and auth 22 base64url characters",
        ));
    }
    match natter_core::push::check_subscription(&sub) {
        Ok(()) => Ok(sub),
        Err(rule) => Err(WebsiteError::Unmet {
            code: "unusable_subscription",
            message: rule,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_trimmed_and_bounded() {
        assert_eq!(room_name("  Lobby ").unwrap(), "Lobby");
        assert!(room_name("   ").is_err());
        assert!(room_name(&"é".repeat(64)).is_ok());
        assert!(room_name(&"é".repeat(65)).is_err());
        assert!(room_name("bell\u{7}").is_err());
        assert!(
            room_name(&format!(" {} ", "x".repeat(63))).is_err(),
            "counted as sent"
        );
    }

    #[test]
    fn avatar_urls_must_be_http() {
        assert!(profile("A", "", "https://cdn.example.org/a.png").is_ok());
        assert!(profile("A", "", "").is_ok());
        assert!(profile("A", "", " http://10.0.0.1:8080/a?b#c ").is_ok());
        for bad in [
            "javascript:alert(1)",
            "ftp://x/a",
            "https://",
            "https://u@evil/x",
            "http://a b/",
            "http://[/",
            "https://host:/x",
            "https://host:123456/x",
        ] {
            assert!(profile("A", "", bad).is_err(), "{bad}");
        }
        assert!(profile(&"x".repeat(65), "", "").is_err());
        assert!(profile("A", &"x".repeat(1001), "").is_err());
    }

    #[test]
    fn limits_default_and_bound() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(100)).unwrap(), 100);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
    }
}
