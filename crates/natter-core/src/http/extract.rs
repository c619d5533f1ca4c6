//! Extractors whose rejections use the Natter error body: a JSON body and a query string.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use http::StatusCode;
use http::request::Parts;

use super::ApiError;

/// A JSON request body, which must be an object; malformed JSON is 400 `bad_request`, a
/// wrong content type 415 and a wrong shape 422, in the Natter error body.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// A query string; malformed is 400 `bad_request`, in the Natter error body.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(value)) => value,
            Err(rejection) => {
                return Err(ApiError::new(
                    rejection.status(),
                    "bad_request",
                    rejection.body_text(),
                ));
            }
        };
        object_body(value).map(Self)
    }
}

/// Reads a request body that must be a JSON object: serde would also take an array for
/// a struct, which no schema of ours allows.
pub fn object_body<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ApiError> {
    let unprocessable =
        |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_request", message);
    if !value.is_object() {
        return Err(unprocessable("the body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| unprocessable(e.to_string()))
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                rejection.body_text(),
            )),
        }
    }
}
