//! Email digests: the SMTP mailer (lettre) and what a digest says — the unread mentions
//! and direct messages of one user, grouped by room, with a link to each room and an
//! unsubscribe link (also as RFC 8058 one-click `List-Unsubscribe` headers).

pub mod worker;

use std::fmt::Write;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::secret::Secret;
use crate::store::{DigestItem, DueDigest};

/// Longest text of one message in a digest.
const BODY_CHARS: usize = 300;

/// Sends digests through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where users open Natter, without a trailing slash.
    public_url: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Why a mailer could not be made or a digest not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The SMTP URL or From address is unusable.
    #[error("email settings: {0}")]
    Settings(String),
    /// The SMTP server did not take the digest.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The digest could not be composed (an address the user entered, say).
    #[error("composing the digest: {0}")]
    Compose(String),
}

impl Mailer {
    /// A mailer sending through `smtp_url` (smtp://, smtps://; credentials in it) from
    /// `from`, linking to `public_url`.
    pub fn new(smtp_url: &Secret<String>, from: &str, public_url: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url.expose())
            .map_err(|e| MailError::Settings(format!("notify.smtp_url: {e}")))?
            .build();
        let from =
            (from.parse()).map_err(|e| MailError::Settings(format!("notify.email_from: {e}")))?;
        Ok(Self {
            transport,
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The unsubscribe link of a user's digests.
    pub fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}/unsubscribe/{token}", self.public_url)
    }

    /// Composes `to`'s digest of `items` (`total` unread in all).
    pub fn compose(
        &self,
        to: &DueDigest,
        items: &[DigestItem],
        total: i64,
    ) -> Result<Message, MailError> {
        let mailbox: Mailbox = (to.email.parse())
            .map_err(|e| MailError::Compose(format!("the address of {}: {e}", to.username)))?;
        let unsubscribe = self.unsubscribe_url(&to.unsubscribe);
        let header = |name: &str, value: String| {
            let name = HeaderName::new_from_ascii(name.into()).expect("a valid header name");
            HeaderValue::new(name, value)
        };
        let subject = match total {
            1 => "1 unread message for you on Natter".to_owned(),
            n => format!("{n} unread messages for you on Natter"),
        };
        Message::builder()
            .from(self.from.clone())
            .to(mailbox)
            .subject(subject)
            .raw_header(header("List-Unsubscribe", format!("<{unsubscribe}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .raw_header(header("Auto-Submitted", "auto-generated".into()))
            .header(ContentType::TEXT_PLAIN)
            .body(self.text(to, items, total, &unsubscribe))
            .map_err(|e| MailError::Compose(e.to_string()))
    }

    /// The plain-text body: one section per room, its messages, the link to it.
    fn text(&self, to: &DueDigest, items: &[DigestItem], total: i64, unsubscribe: &str) -> String {
        let mut text = format!("Hello {},\n\nwhile you were away:\n", to.username);
        let mut room = None;
        for item in items {
            if room != Some(&item.room_id) {
                room = Some(&item.room_id);
                let place = match &item.room_name {
                    Some(name) => format!("#{name}"),
                    None => format!("{} (direct)", sender(item)),
                };
                let link = format!("{}/rooms/{}", self.public_url, item.room_id);
                let _ = write!(text, "\n{place} — {link}\n");
            }
            let mark = match item.reason.as_str() {
                "mention" => " (mentioned you)",
                "room" => " (@room)",
                _ => "",
            };
            let body: String = item.body.chars().take(BODY_CHARS).collect();
            let _ = writeln!(text, "  {}{mark}: {body}", sender(item));
        }
        let more = total - items.len() as i64;
        if more > 0 {
            let _ = writeln!(text, "\n…and {more} more.");
        }
        let _ = write!(
            text,
            "\nYou get this because you have unread mentions or direct messages on Natter.\n\
             Stop these emails: {unsubscribe}\n"
        );
        text
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        self.transport.send(message).await?;
        Ok(())
    }
}

fn sender(item: &DigestItem) -> &str {
    item.sender.as_deref().unwrap_or("someone")
}
