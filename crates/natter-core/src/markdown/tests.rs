//! The subset as documented, and an XSS corpus that must come out inert.

use super::*;

fn plain(text: &str) -> String {
    render(text, &|_| None)
}

#[test]
fn the_subset_renders() {
    assert_eq!(
        plain("**bold** and _em_"),
        "<p><strong>bold</strong> and <em>em</em></p>"
    );
    assert_eq!(plain("`a < b`"), "<p><code>a &lt; b</code></p>");
    assert_eq!(plain("~~gone~~"), "<p><del>gone</del></p>");
    assert_eq!(
        plain("```\nfn main() {}\n```"),
        "<pre><code>fn main() {}\n</code></pre>"
    );
    assert_eq!(
        plain("> quoted"),
        "<blockquote>\n<p>quoted</p>\n</blockquote>"
    );
    assert_eq!(plain("- a\n- b"), "<ul>\n<li>a</li>\n<li>b</li>\n</ul>");
    assert_eq!(plain("3. c"), "<ol start=\"3\">\n<li>c</li>\n</ol>");
    assert_eq!(plain("one\ntwo"), "<p>one<br>\ntwo</p>");
    assert_eq!(plain("# Title"), "<p>Title</p>");
}

#[test]
fn links_are_absolute_and_marked_as_user_content() {
    let rel = r#"rel="noopener nofollow ugc""#;
    assert_eq!(
        plain("[docs](https://natter.example/docs)"),
        format!("<p><a href=\"https://natter.example/docs\" {rel}>docs</a></p>")
    );
    assert_eq!(
        plain("see https://natter.example/a_b?c=1."),
        format!(
            "<p>see <a href=\"https://natter.example/a_b?c=1\" {rel}>https://natter.example/a_b?c=1</a>.</p>"
        )
    );
    // Relative links could reach the app's own endpoints: they lose their target.
    assert_eq!(plain("[out](/logout)"), format!("<p><a {rel}>out</a></p>"));
    // An image is never fetched: it becomes a link to it.
    assert_eq!(
        plain("![cat](https://img.example/cat.png)"),
        format!("<p><a href=\"https://img.example/cat.png\" {rel}>cat</a></p>")
    );
}

#[test]
fn mentions_are_found_outside_code_and_marked_when_known() {
    let text = "@Bob and @alice. mail a@b.example, `@code`, @bob again, @room\n\n    @indented";
    assert_eq!(mentions(text), ["bob", "alice", "room"]);
    let known = |name: &str| (name == "bob").then(|| "u-1".to_owned());
    assert_eq!(
        render("hi @Bob, @carol", &known),
        "<p>hi <span class=\"mention\" data-user-id=\"u-1\">@Bob</span>, @carol</p>"
    );
    let many: String = (0..80).map(|i| format!("@user{i} ")).collect();
    assert_eq!(mentions(&many).len(), MAX_MENTIONS);
}

#[test]
fn plain_text_renders_as_the_full_path_would() {
    let samples = [
        "hello bob",
        "ok, see you at 5.",
        "b=17:1733100000",
        "what?! (really) 100% $5 / \"quoted\" 'single'",
        "Привет, как дела?",
        "émoji 👍 and — dashes… «quotes»",
        "a  double  space",
        "x.",
        "=",
        "!",
        "(",
    ];
    for text in samples {
        assert!(is_plain(text), "{text:?} takes the fast path");
        assert_eq!(plain(text), render_full(text, &|_| None), "{text:?}");
    }
    for text in [
        "1. one",
        " indented",
        "trailing ",
        "a\nb",
        "@bob",
        "see https://x.example",
        "a\u{a0}b",
        "a & b",
        "<b>",
    ] {
        assert!(!is_plain(text), "{text:?} takes the full path");
    }
}

/// What a sender may try: whatever it is, the output has no script, no event handler,
/// no dangerous URL and no element outside the allow-list.
const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    "![x](javascript:alert(1))",
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</script>",
    "<a href='x' onclick='alert(1)'>x</a>",
    "<p onmouseover=alert(1)>hover</p>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<!-- <script>alert(1)</script> -->",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<form action=https://evil.example><input name=p></form>",
    "[x](https://ok.example \"title\\\" onmouseover=\\\"alert(1)\")",
    "<details open ontoggle=alert(1)>",
    "`<script>alert(1)</script>`",
    "```html\n<script>alert(1)</script>\n```",
    "<a href=\"https://ok.example\" target=\"_blank\">x</a>",
    "[x](//evil.example)",
    "@<script>alert(1)</script>",
    "<meta http-equiv=refresh content=0;url=https://evil.example>",
    "<base href=https://evil.example/>",
    "<object data=javascript:alert(1)>",
    "\u{0}<script>alert(1)</script>",
];

#[test]
fn the_xss_corpus_comes_out_inert() {
    for attack in XSS {
        let html = render(attack, &|_| Some("u-1".into()));
        for tag in tags(&html) {
            let mut words = tag.trim_start_matches('/').split(' ');
            let name = words.next().unwrap_or_default();
            assert!(TAGS.contains(&name), "{attack:?} gave <{tag}>");
            for attribute in words {
                let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
                let fine = match key {
                    "href" => ["\"https://", "\"http://", "\"mailto:"]
                        .iter()
                        .any(|scheme| value.starts_with(scheme)),
                    "class" => value == "\"mention\"",
                    "rel" | "nofollow" | "ugc\"" | "start" | "data-user-id" => true,
                    _ => false,
                };
                assert!(fine, "{attack:?} gave <{tag}>");
            }
        }
    }
}

/// The insides of every `<…>` of `html`: text never holds a raw `<` (it is escaped),
/// and attribute values this renderer keeps hold no space except in `rel`.
fn tags(html: &str) -> impl Iterator<Item = &str> {
    html.split('<')
        .skip(1)
        .map(|part| part.split('>').next().unwrap_or(part))
}
