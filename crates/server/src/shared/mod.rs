//! What people without an account reach through a link (API.md "Share and download pages"):
//! a share opened with its password into a share-scoped session that sees one exam, and a
//! download link opened with the security code sent to the account holder's phone, streaming
//! the original DICOM as a zip. Tokens are kept only as keyed hashes; unknown, expired and
//! revoked links answer alike for every caller, and every failure counts against the address.

pub(crate) mod download;
pub(crate) mod package;
mod pages;
pub(crate) mod unlock;
pub(crate) mod viewer;

use crate::Archive;
use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloudfilm_core::{AccountId, MemberId};
use cloudfilm_store::patients::AuditContext;

/// Largest body a link's form sends.
const MAX_BODY: usize = 8 * 1024;

/// Routes under `/api/v1`.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/shared/{token}/unlock", post(unlock::unlock))
        .route("/shared/exam", get(viewer::detail))
        .route("/shared/exam/report.pdf", get(viewer::report_pdf))
        .route("/shared/exam/series/{series}/images/{n}", get(viewer::image))
        .route("/shared/exam/series/{series}/images/{n}/dicom", get(viewer::deidentified_instance))
        .route("/downloads/{token}", post(download::download))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The pages a link opens.
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/s/{token}", get(pages::share_page))
        .route("/d/{token}", get(pages::download_page))
        .route("/shared/view", get(pages::view))
}

/// Keyed hash of a link token; `kind` keeps share and download tokens apart.
pub fn link_hash(archive: &Archive, kind: &str, token: &str) -> Vec<u8> {
    super::patients::keyed(archive, kind, token)
}

/// Keyed hash of a download's security code, bound to its link.
pub fn download_code_hash(archive: &Archive, download_id: &str, code: &str) -> Vec<u8> {
    super::patients::keyed(archive, "download-code", &format!("{download_id}\0{code}"))
}

/// The rate-limit bucket of an address's failures at links (wrong passwords, wrong codes,
/// unknown tokens).
fn failures_from(archive: &Archive, context: &RequestContext) -> Vec<u8> {
    super::patients::keyed(archive, "link-failures-from", &context.client_ip.to_string())
}

fn audit_context(context: &RequestContext) -> AuditContext {
    AuditContext { client_ip: Some(context.client_ip.to_string()), request_id: Some(context.request_id.clone()) }
}

/// A token that names no link, or one malformed: counted against the address, and the same
/// answer whatever the reason (nothing tells whether a token exists).
async fn unknown_link(archive: &Archive, context: &RequestContext) -> Result<ApiError, ApiError> {
    archive.repo.record_events(vec![failures_from(archive, context)], archive.clock.now(), Vec::new()).await?;
    Ok(ApiError::new(
        StatusCode::NOT_FOUND,
        "link_not_found",
        "this link does not exist; check that it was copied whole",
    ))
}

/// Refuses an address that failed too often this hour, before it may try another link.
async fn check_address(archive: &Archive, context: &RequestContext, limit: u32) -> Result<(), ApiError> {
    let since = archive.clock.now() - chrono::Duration::hours(1);
    if archive.repo.count_events(&failures_from(archive, context), since).await? >= limit {
        return Err(ApiError::rate_limited(3600));
    }
    Ok(())
}

/// The exam a link opens, only while its owner may still see it (member matched, the
/// organization's service on, an adult member still consenting) and still consents to
/// processing health data (S33).
async fn owners_exam(
    archive: &Archive,
    account_id: &AccountId,
    member_id: &MemberId,
    exam_id: &str,
) -> Result<cloudfilm_store::patients::ExamRow, ApiError> {
    let unavailable = || ApiError::new(StatusCode::GONE, "exam_unavailable", "this exam is no longer available");
    if !archive.repo.consents(account_id).await?.state.permits_processing() {
        return Err(unavailable());
    }
    // An adult held by the owner must still consent (issue 13 item 14): ending it closes links.
    let today = archive.clock.now().date_naive();
    let members = archive.repo.members(account_id).await?;
    let member = members.iter().find(|m| &m.id == member_id).ok_or_else(unavailable)?;
    if !crate::patients::holding::member_consent(member, today).opens_exams() {
        return Err(unavailable());
    }
    archive.repo.visible_exams(account_id, Some(member_id), Some(exam_id)).await?.pop().ok_or_else(unavailable)
}

/// Whether a token has the shape links are issued with (43 URL-safe characters for 32 bytes).
fn well_formed(token: &str) -> bool {
    (32..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A link's body: JSON from scripts and API clients, or the page's HTML form; `.1` tells
/// which, so a refusal can answer the form with a page.
pub struct LinkBody<T>(pub T, pub bool);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for LinkBody<T> {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            match axum::Form::<T>::from_request(request, state).await {
                Ok(axum::Form(value)) => Ok(LinkBody(value, true)),
                Err(_) => Err(ApiError::bad_request("invalid_form", "the form is incomplete").into_response()),
            }
        } else {
            let crate::patients::Body(value) =
                crate::patients::Body::<T>::from_request(request, state).await.map_err(IntoResponse::into_response)?;
            Ok(LinkBody(value, false))
        }
    }
}
