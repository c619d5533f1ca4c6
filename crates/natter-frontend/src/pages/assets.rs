//! The stylesheet and the room script, compiled into the binary (nothing is fetched from
//! elsewhere at build or run time).

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("../../static/app.css");
const ROOM_JS: &str = include_str!("../../static/room.js");
const NOTIFY_JS: &str = include_str!("../../static/notify.js");
const SERVICE_WORKER: &str = include_str!("../../static/sw.js");

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

/// `/static/room.js`.
pub async fn room_js() -> impl IntoResponse {
    script(ROOM_JS)
}

/// `/static/notify.js`.
pub async fn notify_js() -> impl IntoResponse {
    script(NOTIFY_JS)
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
