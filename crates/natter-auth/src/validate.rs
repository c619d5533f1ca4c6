//! Registration rules: usernames, passwords, email addresses.

use crate::AuthError;

const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=256;
const EMAIL_MAX: usize = 254;

/// Trims and lower-cases a username, then checks it: 3–32 of `[a-z0-9_.-]`.
pub fn normalize_username(raw: &str) -> Result<String, AuthError> {
    let username = raw.trim().to_ascii_lowercase();
    if !USERNAME_LEN.contains(&username.len()) {
        return Err(AuthError::invalid(
            "invalid_username",
            "username must be 3 to 32 characters",
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
    if !username.chars().all(allowed) {
        return Err(AuthError::invalid(
            "invalid_username",
            "username may contain only a-z, 0-9, '_', '.' and '-'",
        ));
    }
    Ok(username)
}

/// The OpenAPI pattern of [`normalize_username`]'s rule.
pub fn username_pattern() -> String {
    let ws = natter_core::text::classes::WHITE_SPACE;
    format!("^[{ws}]*[A-Za-z0-9_.-]{{3,32}}[{ws}]*$")
}

/// The OpenAPI pattern of [`validate_email`]'s rule (blank reads as no address).
pub fn email_pattern() -> String {
    use natter_core::text::classes::{CONTROL, WHITE_SPACE as WS};
    let label = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
    format!("^[{WS}]*$|^[{WS}]*[^@{WS}{CONTROL}]{{1,64}}@({label}\\.)+{label}[{WS}]*$")
}

/// Checks a password is 8–256 characters.
pub fn validate_password(password: &str) -> Result<(), AuthError> {
    if !PASSWORD_LEN.contains(&password.chars().count()) {
        return Err(AuthError::invalid(
            "invalid_password",
            "password must be 8 to 256 characters",
        ));
    }
    Ok(())
}

/// Checks an email address's shape and trims it: at most 254 characters as sent, a
/// local part of 1–64 characters without `@`, white space or control characters, and a
/// dotted domain of ASCII letters, digits and inner hyphens (IDNs in their `xn--` form).
pub fn validate_email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim();
    let invalid = || AuthError::invalid("invalid_email", "email address is not valid");
    if raw.chars().count() > EMAIL_MAX || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let local_len = local.chars().count();
    if !(1..=64).contains(&local_len) || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(invalid());
    }
    Ok(email.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalize_username("  Alice_01 ").unwrap(), "alice_01");
        assert_eq!(normalize_username("a.b-c").unwrap(), "a.b-c");
        for bad in [
            "ab",
            &"x".repeat(33),
            "with space",
            "émile",
            "semi;colon",
            "at@sign",
        ] {
            assert!(
                normalize_username(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn passwords_are_length_checked_in_characters() {
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("1234567").is_err());
        assert!(validate_password(&"é".repeat(256)).is_ok());
        assert!(validate_password(&"x".repeat(257)).is_err());
    }

    #[test]
    fn emails_are_shape_checked() {
        assert_eq!(validate_email(" a@example.org ").unwrap(), "a@example.org");
        assert!(validate_email("first.last+tag@sub.example.co").is_ok());
        assert!(validate_email(&format!("{}@{}.org", "x".repeat(60), "d".repeat(189))).is_ok());
        for bad in [
            "plain",
            "@example.org",
            "a@",
            "a@localhost",
            "a b@example.org",
            "a@-x.org",
            "a@x..org",
            "a@bücher.example",
            // 254 characters once trimmed, 255 as sent.
            &format!(" {}@{}.org", "x".repeat(60), "d".repeat(189)),
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
