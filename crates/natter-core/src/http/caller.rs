//! The signed-in caller of an HTTP request: the `Authorization: Bearer` access token,
//! verified locally (signature, claims, deny-list) by the state's [`TokenVerifier`].

use axum::extract::{FromRef, FromRequestParts};
use http::StatusCode;
use http::request::Parts;

use super::ApiError;
use crate::token::{AccessClaims, TokenError, TokenVerifier};

/// A request whose bearer token verified; rejects with 401 otherwise.
#[derive(Debug, Clone)]
pub struct Caller(pub AccessClaims);

/// A request that may carry no token; a token that is present must verify.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<AccessClaims>);

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The 401 for a request without a token.
pub fn missing_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing_token",
        "an Authorization: Bearer access token is required",
    )
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        let code = match &error {
            TokenError::Expired => "token_expired",
            TokenError::Revoked => "token_revoked",
            TokenError::Invalid | TokenError::UnknownKey => "invalid_token",
            TokenError::Unavailable(cause) => return ApiError::unavailable(cause),
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, error.to_string())
    }
}

async fn verify(parts: &Parts, verifier: &TokenVerifier) -> Result<Option<AccessClaims>, ApiError> {
    let Some(token) = bearer_token(&parts.headers) else {
        return Ok(None);
    };
    Ok(Some(verifier.verify(token).await?))
}

impl<S> FromRequestParts<S> for Caller
where
    TokenVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let verifier = TokenVerifier::from_ref(state);
        verify(parts, &verifier)
            .await?
            .map(Self)
            .ok_or_else(missing_token)
    }
}

impl<S> FromRequestParts<S> for MaybeCaller
where
    TokenVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let verifier = TokenVerifier::from_ref(state);
        Ok(Self(verify(parts, &verifier).await?))
    }
}
