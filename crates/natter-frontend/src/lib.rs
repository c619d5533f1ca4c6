//! The web UI: server-rendered pages over the auth and website services' gRPC APIs, an
//! encrypted session cookie, CSRF-checked forms, strict security headers, English and
//! Russian, and the app shell's script modules (docs/frontend.md).

mod i18n;
mod pages;
mod prefs;
mod session;
mod views;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use natter_core::cookie::CookieKeys;
use natter_core::grpc::{TracedChannel, traced};
use natter_core::secrets::Secrets;
use natter_proto::auth::v1::auth_service_client::AuthServiceClient;
use natter_proto::website::v1::website_service_client::WebsiteServiceClient;
use tokio::sync::watch;
use tonic::transport::Channel;
use tower_http::compression::CompressionLayer;

pub use session::{FORM_COOKIE, SESSION_COOKIE};

/// The frontend's connections and keys. Cheap to clone.
#[derive(Clone)]
pub struct Frontend {
    auth: Channel,
    website: Channel,
    secrets: watch::Receiver<Secrets>,
    secure_cookies: bool,
}

impl std::fmt::Debug for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontend")
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

impl Frontend {
    /// A frontend calling auth and website over `auth` and `website`, sealing cookies with
    /// the current cookie keys of `secrets`; `secure_cookies` marks them HTTPS-only.
    pub fn new(
        auth: Channel,
        website: Channel,
        secrets: watch::Receiver<Secrets>,
        secure_cookies: bool,
    ) -> Self {
        Self {
            auth,
            website,
            secrets,
            secure_cookies,
        }
    }

    // Each call carries the page request's trace context.
    fn auth(&self) -> AuthServiceClient<TracedChannel> {
        AuthServiceClient::new(traced(self.auth.clone()))
    }

    fn website(&self) -> WebsiteServiceClient<TracedChannel> {
        WebsiteServiceClient::new(traced(self.website.clone()))
    }

    fn cookie_keys(&self) -> CookieKeys {
        self.secrets.borrow().cookie_keys.clone()
    }
}

/// Every page and the socket-token endpoint behind the session middleware, the static
/// assets beside it (they need no session: a page's asset requests, made in parallel,
/// must not each refresh the session and so present one refresh token twice), all
/// behind the security headers.
pub fn routes(frontend: Frontend) -> Router {
    let assets = Router::new()
        .route("/static/app.css", get(pages::assets::css))
        .route("/static/{module}", get(pages::assets::module))
        .route("/static/i18n/{lang}", get(pages::assets::catalog))
        .route("/sw.js", get(pages::assets::service_worker))
        // Gzip for the scripts and the stylesheet (a quarter of their size). Not for
        // pages: they carry the CSRF token beside reflected input (BREACH).
        .layer(CompressionLayer::new());
    Router::new()
        .route("/", get(pages::home))
        .route(
            "/register",
            get(pages::auth::register_form).post(pages::auth::register),
        )
        .route(
            "/login",
            get(pages::auth::login_form).post(pages::auth::login),
        )
        .route("/logout", post(pages::auth::logout))
        .route("/rooms", get(pages::rooms::list).post(pages::rooms::create))
        .route("/rooms/new", get(pages::rooms::new_form))
        .route("/rooms/{room}", get(pages::room::show))
        .route("/rooms/{room}/join", post(pages::rooms::join))
        .route("/rooms/{room}/rename", post(pages::settings::rename))
        .route("/rooms/{room}/leave", post(pages::settings::leave))
        .route("/rooms/{room}/delete", post(pages::settings::delete))
        .route(
            "/rooms/{room}/members",
            get(pages::members::list).post(pages::members::add),
        )
        .route(
            "/rooms/{room}/members/{user}/remove",
            post(pages::members::remove),
        )
        .route(
            "/rooms/{room}/members/{user}/role",
            post(pages::members::set_role),
        )
        .route("/users", get(pages::users::search))
        .route("/users/{user}", get(pages::users::profile))
        .route("/users/{user}/direct", post(pages::users::direct))
        .route(
            "/profile",
            get(pages::users::edit_form).post(pages::users::edit),
        )
        .route("/session/socket-token", get(pages::room::socket_token))
        .route(
            "/unsubscribe/{token}",
            get(pages::email::ask).post(pages::email::confirm),
        )
        .layer(middleware::from_fn_with_state(
            frontend.clone(),
            session::layer,
        ))
        .with_state(frontend)
        .merge(assets)
        .layer(middleware::from_fn(prefs::layer))
        .layer(middleware::from_fn(security_headers))
}

/// Content-Security-Policy without inline script, no framing, no sniffing, and pages that
/// are never cached (so back-navigation after logout asks the server again).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await.into_response();
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
