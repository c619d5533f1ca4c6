//! What a page's presentation depends on besides the session (the reader's language and
//! colour scheme), read once per request and available to every page built for it.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::i18n::Lang;
use crate::session::cookie;

/// Name of the cookie holding the reader's colour scheme (`dark` or `light`; absent:
/// follow the system). Not HTTP-only: the page's toggle writes it.
pub const THEME_COOKIE: &str = "natter_theme";

/// Name of the cookie holding the language the reader chose over their browser's.
pub const LANG_COOKIE: &str = "natter_lang";

/// The reader's presentation preferences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefs {
    /// `"dark"`, `"light"`, or `""` to follow the system.
    pub theme: &'static str,
    /// The UI's language.
    pub lang: Lang,
    /// The page is fetched by the app shell's navigation (`X-Natter-Nav`), which keeps
    /// its own sidebar: the server need not read one.
    pub partial: bool,
}

tokio::task_local! {
    static PREFS: Prefs;
}

impl Prefs {
    /// The preferences of the request being answered (defaults outside one).
    pub fn current() -> Self {
        PREFS.try_with(|p| *p).unwrap_or_default()
    }

    fn of(request: &Request) -> Self {
        let theme = match cookie(request.headers(), THEME_COOKIE) {
            Some("dark") => "dark",
            Some("light") => "light",
            _ => "",
        };
        let accept =
            (request.headers().get(http::header::ACCEPT_LANGUAGE)).and_then(|v| v.to_str().ok());
        let lang = Lang::negotiate(cookie(request.headers(), LANG_COOKIE), accept);
        let partial = request.headers().contains_key("x-natter-nav");
        Self {
            theme,
            lang,
            partial,
        }
    }
}

/// Message `id` in the current request's language.
pub fn t(id: &str) -> String {
    crate::i18n::translate(Prefs::current().lang, id, None)
}

/// Message `id` with one string argument, in the current request's language.
pub fn t_with(id: &str, name: &str, value: &str) -> String {
    crate::i18n::translate_with(Prefs::current().lang, id, name, value)
}

/// Middleware: answers the request with its preferences in scope.
pub async fn layer(request: Request, next: Next) -> Response {
    let prefs = Prefs::of(&request);
    PREFS.scope(prefs, next.run(request)).await
}
