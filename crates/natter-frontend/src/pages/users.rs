//! People: find by user name, anyone's profile, a direct chat from a profile, and editing
//! one's own profile.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use natter_proto::website::v1::{
    Empty, FindUsersRequest, OpenDirectRequest, ProfileRequest, SettingsChange,
    UpdateProfileRequest,
};
use serde::Deserialize;
use tonic::Code;

use super::auth::CsrfForm;
use super::{Page, authed, check_csrf, render, service_error, shell};
use crate::Frontend;
use crate::session::{Session, User};
use crate::views::{EditProfile, ProfilePage, Users};

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    bio: String,
    /// The checkbox: present ("on") when ticked.
    #[serde(default)]
    share_receipts: Option<String>,
    /// The email digests checkbox.
    #[serde(default)]
    email_digests: Option<String>,
}

/// `GET /users?q=`: user names starting with `q`.
pub async fn search(
    State(frontend): State<Frontend>,
    User(session): User,
    Query(query): Query<SearchQuery>,
) -> Page {
    let users = match query.q.trim() {
        "" => Vec::new(),
        prefix => {
            frontend
                .website()
                .find_users(authed(
                    &session,
                    FindUsersRequest {
                        prefix: prefix.into(),
                        limit: 50,
                    },
                ))
                .await
                .map_err(|s| service_error(Some(&session), s))?
                .into_inner()
                .profiles
        }
    };
    Ok(render(&Users {
        nav: shell(&frontend, &session).await,
        query: query.q,
        users,
    }))
}

/// `GET /users/{user}`.
pub async fn profile(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(user): Path<String>,
) -> Page {
    let profile = frontend
        .website()
        .get_profile(authed(&session, ProfileRequest { user_id: user }))
        .await
        .map_err(|s| service_error(Some(&session), s))?
        .into_inner();
    let mine = profile.id == session.user_id;
    Ok(render(&ProfilePage {
        nav: shell(&frontend, &session).await,
        profile,
        mine,
    }))
}

/// `POST /users/{user}/direct`: opens (or reopens) the direct chat with that user.
pub async fn direct(
    State(frontend): State<Frontend>,
    User(session): User,
    Path(user): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let room = frontend
        .website()
        .open_direct(authed(&session, OpenDirectRequest { user_id: user }))
        .await
        .map_err(|s| service_error(Some(&session), s))?
        .into_inner();
    Ok(Redirect::to(&format!("/rooms/{}", room.id)).into_response())
}

/// `GET /profile`: the edit form of one's own profile.
pub async fn edit_form(State(frontend): State<Frontend>, User(session): User) -> Page {
    edit_page(&frontend, &session, None).await
}

/// The edit form, with `error` when a save was refused.
async fn edit_page(frontend: &Frontend, session: &Session, error: Option<String>) -> Page {
    let request = ProfileRequest {
        user_id: session.user_id.clone(),
    };
    let profile = frontend
        .website()
        .get_profile(authed(session, request))
        .await
        .map_err(|s| service_error(Some(session), s))?
        .into_inner();
    let settings = frontend
        .website()
        .get_settings(authed(session, Empty {}))
        .await
        .map_err(|s| service_error(Some(session), s))?
        .into_inner();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = EditProfile {
        nav: shell(frontend, session).await,
        profile,
        settings,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /profile`.
pub async fn edit(
    State(frontend): State<Frontend>,
    User(session): User,
    Form(form): Form<ProfileForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let settings = SettingsChange {
        share_receipts: Some(form.share_receipts.is_some()),
        email_digests: Some(form.email_digests.is_some()),
    };
    (frontend.website())
        .update_settings(authed(&session, settings))
        .await
        .map_err(|s| service_error(Some(&session), s))?;
    let request = UpdateProfileRequest {
        display_name: form.display_name,
        bio: form.bio,
        avatar_url: String::new(),
    };
    match frontend
        .website()
        .update_profile(authed(&session, request))
        .await
    {
        Ok(profile) => {
            Ok(Redirect::to(&format!("/users/{}", profile.into_inner().id)).into_response())
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            edit_page(&frontend, &session, Some(status.message().into())).await
        }
        Err(status) => Err(service_error(Some(&session), status).into()),
    }
}
