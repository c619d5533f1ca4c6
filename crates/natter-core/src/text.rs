//! Rules for text people write (messages, bios) that every service applies alike.

/// Most characters in a message.
pub const MESSAGE_MAX: usize = 4000;

/// What a message body must be, for error messages.
pub const MESSAGE_RULE: &str = "message must be 1 to 4000 characters, not only white space, without control characters other than line breaks and tabs";

/// What a reply must answer, for error messages.
pub const REPLY_RULE: &str = "reply_to must be the seq of a message of this room";

/// What a thread message must name, for error messages.
pub const THREAD_RULE: &str =
    "thread_root must be the seq of a message of this room that is not in a thread";

/// What a reaction must be, for error messages.
pub const EMOJI_RULE: &str = "emoji must be one Unicode emoji (Unicode 17.0)";

/// The emoji `text` is, in its fully-qualified form (so "✌" and "✌️" are one reaction);
/// `None` unless `text` is exactly one emoji of the Unicode emoji list ([`EMOJI_RULE`]).
pub fn emoji(text: &str) -> Option<&'static str> {
    emojis::get(text).map(emojis::Emoji::as_str)
}

/// Every emoji [`emoji`] answers with, skin tones included (for API documents).
pub fn all_emoji() -> impl Iterator<Item = &'static str> {
    emojis::iter().flat_map(|base| {
        let toned = base.skin_tones().into_iter().flatten();
        std::iter::once(base)
            .chain(toned.skip(1))
            .map(emojis::Emoji::as_str)
    })
}

/// What a client id must be, for error messages.
pub const CLIENT_ID_RULE: &str = "client_id must be 1 to 64 printable ASCII characters";

/// Whether `id` is a valid client id for a send: 1–64 printable ASCII characters
/// ([`CLIENT_ID_RULE`]).
pub fn is_client_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `text` holds a control character other than a line break or a tab. NUL is
/// one: PostgreSQL cannot store it in a text column, and none of them has a place in
/// chat text.
pub fn has_stray_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Whether `body` is a valid message: 1–[`MESSAGE_MAX`] characters, not only white
/// space, no stray control characters ([`MESSAGE_RULE`]).
pub fn is_message_body(body: &str) -> bool {
    !body.trim().is_empty() && body.chars().count() <= MESSAGE_MAX && !has_stray_control(body)
}

/// Whether `id` is an id this system makes: a UUID in its lowercase hyphenated form.
/// Anything else names nothing, so look-ups answer "not found" without a query (and
/// PostgreSQL never sees a NUL).
pub fn is_id(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Regular-expression classes (ECMA-262, as OpenAPI patterns use) for the character
/// sets the rules above use, so that a documented pattern accepts exactly what the
/// server does.
pub mod classes {
    /// Unicode White_Space, as Rust's `char::is_whitespace` and `str::trim` use it.
    pub const WHITE_SPACE: &str =
        r"\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
    /// Unicode Cc, as `char::is_control` uses it.
    pub const CONTROL: &str = r"\x00-\x1F\x7F-\x9F";
    /// Cc without line breaks and tabs ([`super::has_stray_control`]).
    pub const STRAY_CONTROL: &str = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F";
}

/// A pattern for text without the characters of `forbidden` (a class body).
pub fn without_pattern(forbidden: &str) -> String {
    format!("^[^{forbidden}]*$")
}

/// A pattern for text without the characters of `forbidden` (a class body) that has at
/// least one character that is neither white space nor forbidden.
pub fn not_blank_pattern(forbidden: &str) -> String {
    use classes::{CONTROL, WHITE_SPACE};
    format!("^[^{forbidden}]*[^{WHITE_SPACE}{CONTROL}][^{forbidden}]*$")
}

/// The key two texts share when they are equal ignoring case (room names, email
/// addresses): Unicode lower case, computed here so that every backend and database
/// locale agrees.
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bodies_keep_line_breaks_and_refuse_other_controls() {
        assert!(is_message_body("two\nlines\twith a tab\r\n"));
        assert!(!is_message_body("nul \0 inside"));
        assert!(!is_message_body("bell \u{7}"));
        assert!(!is_message_body("  \n "));
        assert!(is_message_body(&"é".repeat(MESSAGE_MAX)));
        assert!(!is_message_body(&"é".repeat(MESSAGE_MAX + 1)));
    }

    #[test]
    fn ids_are_lowercase_hyphenated_uuids() {
        assert!(is_id("01a2326b-bf41-74bb-8543-a92593bdc749"));
        assert!(!is_id("01A2326B-bf41-74bb-8543-a92593bdc749"));
        assert!(!is_id("01a2326b-bf41-74bb-8543-a92593bdc74"));
        assert!(!is_id("01a2326b-bf41-74bb-8543\0a92593bdc749"));
        assert!(!is_id(""));
    }

    #[test]
    fn classes_match_the_rust_predicates() {
        // Every character below U+3001 is in WHITE_SPACE exactly when is_whitespace.
        let listed = |class: &str, c: char| class_contains(class, c);
        for c in (0..0x3001).filter_map(char::from_u32) {
            assert_eq!(listed(classes::WHITE_SPACE, c), c.is_whitespace(), "{c:?}");
            assert_eq!(listed(classes::CONTROL, c), c.is_control(), "{c:?}");
            let stray = c.is_control() && !matches!(c, '\n' | '\r' | '\t');
            assert_eq!(listed(classes::STRAY_CONTROL, c), stray, "{c:?}");
        }
    }

    /// Whether a class body of `\xHH`, `\uHHHH`, the escapes `\t \n \f \r`, literal
    /// characters and `-` ranges holds `c`.
    fn class_contains(class: &str, c: char) -> bool {
        let mut chars = Vec::new();
        let mut rest = class;
        while let Some(first) = rest.chars().next() {
            let (ch, len) = match first {
                '\\' => {
                    let kind = rest[1..].chars().next().unwrap();
                    match kind {
                        'x' => (u32::from_str_radix(&rest[2..4], 16).unwrap(), 4),
                        'u' => (u32::from_str_radix(&rest[2..6], 16).unwrap(), 6),
                        't' => (9, 2),
                        'n' => (10, 2),
                        'f' => (12, 2),
                        'r' => (13, 2),
                        other => panic!("unexpected escape {other}"),
                    }
                }
                other => (other as u32, other.len_utf8()),
            };
            chars.push(ch);
            rest = &rest[len..];
        }
        let mut i = 0;
        let code = c as u32;
        while i < chars.len() {
            // A `-` between two characters is a range.
            if i + 2 < chars.len() && chars[i + 1] == '-' as u32 {
                if (chars[i]..=chars[i + 2]).contains(&code) {
                    return true;
                }
                i += 3;
            } else {
                if chars[i] == code {
                    return true;
                }
                i += 1;
            }
        }
        false
    }

    #[test]
    fn case_folds_beyond_ascii() {
        assert_eq!(fold_case("ÉCOLE Straße ΣΑΣ"), fold_case("école straße σας"));
    }
}
