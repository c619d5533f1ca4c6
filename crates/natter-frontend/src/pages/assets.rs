//! The stylesheet and the app's script modules, compiled into the binary (nothing is fetched from
//! elsewhere at build or run time).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::i18n::{self, Lang};

const CSS: &str = include_str!("../../static/app.css");
const SERVICE_WORKER: &str = include_str!("../../static/sw.js");

/// The app's ES modules by file name (`/static/{name}`).
const MODULES: [(&str, &str); 10] = [
    ("app.js", include_str!("../../static/app.js")),
    ("socket.js", include_str!("../../static/socket.js")),
    ("stream.js", include_str!("../../static/stream.js")),
    ("room.js", include_str!("../../static/room.js")),
    ("message.js", include_str!("../../static/message.js")),
    ("composer.js", include_str!("../../static/composer.js")),
    ("people.js", include_str!("../../static/people.js")),
    ("outbox.js", include_str!("../../static/outbox.js")),
    ("i18n.js", include_str!("../../static/i18n.js")),
    ("prefs.js", include_str!("../../static/prefs.js")),
];

/// `/static/app.css`.
pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
}

/// `/static/{module}.js`: one of the app's modules.
pub async fn module(Path(name): Path<String>) -> Response {
    match MODULES.iter().find(|(file, _)| *file == name) {
        Some((_, text)) => script(text).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/static/i18n/{lang}.js`: the UI's messages in that language, for the script.
pub async fn catalog(Path(file): Path<String>) -> Response {
    let lang = file.strip_suffix(".js").and_then(Lang::parse);
    match lang {
        Some(lang) if file == format!("{}.js", lang.code()) => {
            script(i18n::script(lang)).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/sw.js`: the service worker, served from the root so that its scope is the site.
pub async fn service_worker() -> impl IntoResponse {
    script(SERVICE_WORKER)
}

fn script(text: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        text,
    )
}
