//! The unsubscribe link of email digests: `GET /unsubscribe/{token}` asks (mail scanners
//! follow links, so a visit changes nothing), `POST` turns the digests off — from the
//! page's button, or from a mail client's one-click unsubscribe (RFC 8058), neither
//! signed in: the token in the link is the only permission, and it permits only this.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use natter_proto::website::v1::UnsubscribeRequest;
use tonic::Code;

use super::{Page, error_page, nav, render, service_error};
use crate::Frontend;
use crate::prefs::t;
use crate::session::MaybeUser;
use crate::views::Unsubscribe;

/// Longest token a link carries (ours are 43 characters).
const TOKEN_MAX: usize = 128;

/// `GET /unsubscribe/{token}`: the question, with a button.
pub async fn ask(MaybeUser(session): MaybeUser, Path(token): Path<String>) -> Page {
    let page = Unsubscribe {
        nav: nav(session.as_ref()),
        token,
        username: None,
    };
    Ok(render(&page))
}

/// `POST /unsubscribe/{token}`: digests off.
pub async fn confirm(
    State(frontend): State<Frontend>,
    MaybeUser(session): MaybeUser,
    Path(token): Path<String>,
) -> Page {
    let unknown = || {
        error_page(
            session.as_ref(),
            StatusCode::NOT_FOUND,
            &t("digests-unknown-title"),
            &t("digests-unknown"),
        )
    };
    if token.len() > TOKEN_MAX {
        return Err(unknown().into());
    }
    let request = UnsubscribeRequest {
        token: token.clone(),
    };
    match frontend.website().unsubscribe(request).await {
        Ok(reply) => {
            let page = Unsubscribe {
                nav: nav(session.as_ref()),
                token,
                username: Some(reply.into_inner().username),
            };
            Ok(render(&page).into_response())
        }
        Err(status) if status.code() == Code::NotFound => Err(unknown().into()),
        Err(status) => Err(service_error(session.as_ref(), status).into()),
    }
}
