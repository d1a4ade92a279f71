//! HTTP errors: a status and `{"error": {"code": "...", "message": "..."}}` with a stable
//! snake_case code and a message without personal data.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudfilm_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code, e.g. `not_found`, `rate_limited`.
    #[schema(value_type = String, example = "not_found")]
    pub code: &'static str,
    /// Human text without personal data.
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before retrying (429 answers).
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` challenges (401 answers of a credential sent by header).
    pub challenges: &'static [&'static str],
}

/// The organization credential's challenges (API.md): the key as a Bearer token, or HTTP
/// Basic with the key id as user name and the whole key as password.
pub const ORG_KEY_CHALLENGES: &[&str] = &["Bearer realm=\"cloudfilm\"", "Basic realm=\"cloudfilm\", charset=\"UTF-8\""];

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None, challenges: &[] }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The same answer for "does not exist" and "is not yours" (S15).
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 401 of the organization credential, with its challenges (RFC 9110 §11.6.1).
    pub fn unauthorized() -> ApiError {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API key is required");
        e.challenges = ORG_KEY_CHALLENGES;
        e
    }

    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", message)
    }

    /// 429 with the seconds to wait.
    pub fn rate_limited(retry_after: i64) -> ApiError {
        let mut e =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; wait and try again");
        e.retry_after = Some(retry_after.max(1) as u64);
        e
    }

    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; the request id is in the logs")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Full => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", "the archive is out of storage space")
            }
            StoreError::Integrity => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "integrity_failure",
                "stored data failed its integrity check; it was not returned and the event was recorded",
            ),
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "the index or the object store is unreachable");
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the archive's storage cannot be reached right now; nothing was changed; try again",
                );
                e.retry_after = Some(5);
                e
            }
            StoreError::AlreadyExists(what) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", format!("{what} already exists"))
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl From<crate::retrieve::RetrieveError> for ApiError {
    fn from(e: crate::retrieve::RetrieveError) -> ApiError {
        use crate::retrieve::RetrieveError::*;
        match e {
            NoSuchFrame(n) => {
                ApiError::new(StatusCode::NOT_FOUND, "no_such_frame", format!("frame {n} does not exist"))
            }
            NoPixels => ApiError::new(StatusCode::NOT_FOUND, "no_pixel_data", "the instance has no pixel data"),
            Store(s) => s.into(),
            Parse(m) => {
                tracing::warn!(error = %m, "a stored instance does not parse");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "cannot_decode",
                    "this instance's data set cannot be read here; the original is available",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        for challenge in self.challenges {
            response
                .headers_mut()
                .append(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static(challenge));
        }
        response
    }
}
