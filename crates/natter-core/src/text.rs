//! Rules for text people write (messages, bios) that every service applies alike.

/// Most characters in a message.
pub const MESSAGE_MAX: usize = 4000;

/// What a message body must be, for error messages.
pub const MESSAGE_RULE: &str = "message must be 1 to 4000 characters, not only white space, without control characters other than line breaks and tabs";

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
    fn case_folds_beyond_ascii() {
        assert_eq!(fold_case("ÉCOLE Straße ΣΑΣ"), fold_case("école straße σας"));
    }
}
