//! Message text to safe HTML, and the `@mentions` in it: the documented CommonMark subset
//! of docs/protocol.md ("Message text") parsed with pulldown-cmark, bare URLs linked with
//! linkify, and the result cleaned by an ammonia allow-list, so that whatever a sender
//! writes a reader's page gets no script, no raw HTML and no remote image. The stored
//! body stays the source text; this is the one renderer every transport uses.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{
    CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, TextMergeStream, html,
};

/// The `rel` of every link in a message.
pub const LINK_REL: &str = "noopener nofollow ugc";

/// Most distinct users one message may mention (further names stay plain text).
pub const MAX_MENTIONS: usize = 50;

/// The name that mentions everyone in the room.
pub const ROOM_MENTION: &str = "room";

/// `text` as safe HTML; each `@name` whose lower-cased name `mentioned` answers with a
/// user id becomes `<span class="mention" data-user-id="…">`.
pub fn render(text: &str, mentioned: &dyn Fn(&str) -> Option<String>) -> String {
    match is_plain(text) {
        true => format!("<p>{text}</p>"),
        false => render_full(text, mentioned),
    }
}

/// [`render`], or `None` for text that renders as one paragraph of itself (most chat
/// lines): the wire leaves `html` out for those, and clients show `body` as text.
pub fn formatted(text: &str, mentioned: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    (!is_plain(text)).then(|| render_full(text, mentioned))
}

fn render_full(text: &str, mentioned: &dyn Fn(&str) -> Option<String>) -> String {
    let mut events = Vec::new();
    let mut context = Context::default();
    for event in TextMergeStream::new(Parser::new_ext(text, OPTIONS)) {
        context.push(event, &mut events, mentioned);
    }
    let mut raw = String::with_capacity(text.len() * 2);
    html::push_html(&mut raw, events.into_iter());
    // No line break after the last block: the page's text is the message's.
    let mut html = SANITIZER.clean(&raw).to_string();
    html.truncate(html.trim_end().len());
    html
}

/// The lower-cased names `text` mentions as `@name` outside code and links, each once,
/// at most [`MAX_MENTIONS`] of them ([`ROOM_MENTION`] among them for `@room`).
pub fn mentions(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if !text.contains('@') {
        return names;
    }
    let mut context = Context::default();
    for event in TextMergeStream::new(Parser::new_ext(text, OPTIONS)) {
        context.enter(&event);
        context.leave(&event);
        if let (Event::Text(text), true) = (&event, context.plain()) {
            for (name, _) in mention_spans(text) {
                let name = name.to_ascii_lowercase();
                if names.len() < MAX_MENTIONS && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// Whether `text` renders as one paragraph of itself, so that neither parser nor
/// sanitizer need see it (most chat lines): one line, no leading or trailing space, not
/// starting with a digit (a numbered list), no ASCII punctuation that Markdown, HTML or
/// a mention gives meaning to, no URL, no white space but the space (a non-breaking space
/// is written as an entity). `tests::plain_text_renders_as_the_full_path_would` checks
/// that the full path agrees.
fn is_plain(text: &str) -> bool {
    let starts_plain = text
        .chars()
        .next()
        .is_some_and(|c| !c.is_ascii_digit() && !c.is_whitespace());
    let plain_char = |c: char| match c {
        ' ' => true,
        c if c.is_ascii() => c.is_ascii_alphanumeric() || ",.;:?!'\"()/%$=".contains(c),
        c => !c.is_whitespace() && !c.is_control(),
    };
    starts_plain && !text.ends_with(' ') && text.chars().all(plain_char) && !text.contains("://")
}

/// CommonMark plus strikethrough; no tables, footnotes or math.
const OPTIONS: Options = Options::ENABLE_STRIKETHROUGH;

/// Where in the document the parser is: text in code or in a link is left as it is.
#[derive(Default)]
struct Context {
    code: u32,
    link: u32,
}

impl Context {
    fn plain(&self) -> bool {
        self.code == 0 && self.link == 0
    }

    fn enter(&mut self, event: &Event) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => self.code += 1,
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => self.link += 1,
            _ => {}
        }
    }

    fn leave(&mut self, event: &Event) {
        match event {
            Event::End(TagEnd::CodeBlock) => self.code -= 1,
            Event::End(TagEnd::Link | TagEnd::Image) => self.link -= 1,
            _ => {}
        }
    }

    /// Appends what `event` becomes in a chat message to `out`.
    fn push<'a>(
        &mut self,
        event: Event<'a>,
        out: &mut Vec<Event<'a>>,
        mentioned: &dyn Fn(&str) -> Option<String>,
    ) {
        // Text is neither a start nor an end, so where it is does not depend on order.
        self.enter(&event);
        self.leave(&event);
        match event {
            Event::Text(text) if self.plain() => push_text(text, out, mentioned),
            other => out.push(chat_event(other)),
        }
    }
}

/// The subset: raw HTML is shown as the text it is, an image becomes a link to it,
/// a heading a paragraph, and a single line break stays a line break (as people type).
fn chat_event(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::SoftBreak => Event::HardBreak,
        Event::Start(Tag::Heading { .. }) => Event::Start(Tag::Paragraph),
        Event::End(TagEnd::Heading(_)) => Event::End(TagEnd::Paragraph),
        Event::Start(Tag::Image {
            dest_url, title, ..
        }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url,
            title,
            id: CowStr::Borrowed(""),
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        Event::Start(Tag::HtmlBlock) => Event::Start(Tag::Paragraph),
        Event::End(TagEnd::HtmlBlock) => Event::End(TagEnd::Paragraph),
        other => other,
    }
}

/// Plain text with its bare URLs linked and its known mentions marked.
fn push_text<'a>(
    text: CowStr<'a>,
    out: &mut Vec<Event<'a>>,
    mentioned: &dyn Fn(&str) -> Option<String>,
) {
    for span in LINKS.spans(&text) {
        let part = span.as_str();
        if span.kind().is_some() {
            let url = CowStr::from(part.to_owned());
            out.push(Event::Start(Tag::Link {
                link_type: LinkType::Autolink,
                dest_url: url.clone(),
                title: CowStr::Borrowed(""),
                id: CowStr::Borrowed(""),
            }));
            out.push(Event::Text(url));
            out.push(Event::End(TagEnd::Link));
        } else {
            push_mentions(part, out, mentioned);
        }
    }
}

fn push_mentions<'a>(
    text: &str,
    out: &mut Vec<Event<'a>>,
    mentioned: &dyn Fn(&str) -> Option<String>,
) {
    let mut done = 0;
    for (name, at) in mention_spans(text) {
        let Some(user) = mentioned(&name.to_ascii_lowercase()) else {
            continue;
        };
        let end = at + 1 + name.len();
        out.push(Event::Text(CowStr::from(text[done..at].to_owned())));
        let user = html_attribute(&user);
        let tag = format!(r#"<span class="mention" data-user-id="{user}">"#);
        out.push(Event::InlineHtml(CowStr::from(tag)));
        out.push(Event::Text(CowStr::from(text[at..end].to_owned())));
        out.push(Event::InlineHtml(CowStr::Borrowed("</span>")));
        done = end;
    }
    out.push(Event::Text(CowStr::from(text[done..].to_owned())));
}

/// Each `@name` in `text` with the byte offset of its `@`: an `@` not preceded by a
/// word character (so `a@b.example` is no mention), then username characters, without
/// a trailing `.` or `-` (the end of a sentence).
fn mention_spans(text: &str) -> impl Iterator<Item = (&str, usize)> {
    let bytes = text.as_bytes();
    text.match_indices('@').filter_map(move |(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let rest = &text[at + 1..];
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
            .count();
        let name = rest[..len].trim_end_matches(['.', '-']);
        (!name.is_empty() && name.len() <= 32).then_some((name, at))
    })
}

fn html_attribute(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

static LINKS: LazyLock<linkify::LinkFinder> = LazyLock::new(|| {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    finder
});

/// The elements a rendered message may hold: what the subset produces, nothing else.
const TAGS: &[&str] = &[
    "p",
    "br",
    "em",
    "strong",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "span",
    "hr",
];

/// The allow-list: what the subset produces, nothing else. Links keep only `href` with
/// an absolute http(s) or mailto URL and get [`LINK_REL`].
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(TAGS.iter().copied().collect())
        .tag_attributes(
            [
                ("a", HashSet::from(["href"])),
                ("ol", HashSet::from(["start"])),
                ("span", HashSet::from(["data-user-id"])),
            ]
            .into_iter()
            .collect(),
        )
        .generic_attributes(HashSet::new())
        .allowed_classes([("span", HashSet::from(["mention"]))].into_iter().collect())
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some(LINK_REL))
        .strip_comments(true);
    builder
});

#[cfg(test)]
mod tests;
