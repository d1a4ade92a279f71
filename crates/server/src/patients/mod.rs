//! The patient API under `/api/v1` (API.md): one-time-code login, sessions with CSRF
//! protection, consent, family members with real-name rules, manual and automatic matching,
//! exams with reports and rendered images. Every response masks personal values (S20).

pub(crate) mod account;
pub(crate) mod auth;
pub(crate) mod exams;
pub(crate) mod holding;
mod json;
pub(crate) mod members;
pub(crate) mod reports;
pub(crate) mod rights;
mod session;
pub(crate) mod sharing;

use crate::Archive;
use crate::app::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use cloudfilm_core::PhoneNumber;
use cloudfilm_core::otp::OtpPurpose;
use cloudfilm_store::sealed::TokenKind;

pub use json::{Body, PathParams};
pub use session::{Patient, Signed, archive_cookie, cookie, set_cookie};

/// Largest JSON body the patient API reads.
const MAX_BODY: usize = 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/otp", post(auth::send_code))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/step-up/otp", post(auth::send_step_up_code))
        .route("/auth/step-up", post(auth::step_up))
        .route("/policy", get(account::policy))
        .route("/me", get(account::me))
        .route("/me/consents", post(account::give_consent))
        .route("/me/consents/health_data", delete(account::withdraw_health_data))
        .route("/members", get(members::list).post(members::add))
        .route("/members/{id}", delete(members::remove))
        .route("/members/{id}/id-number", get(members::reveal_id_number))
        .route("/members/{id}/match", post(members::manual_match))
        .route("/members/{id}/exams", get(exams::list))
        .route("/members/{id}/consent-request", post(holding::request))
        .route("/members/{id}/consent", post(holding::confirm))
        .route("/me/holders", get(holding::list))
        .route("/me/holders/{id}", delete(holding::end))
        .route("/me/holders/{id}/approve", post(holding::approve))
        .route("/exams/{id}", get(exams::detail))
        .route("/exams/{id}/report.pdf", get(exams::report_pdf))
        .route("/exams/{id}/series/{series}/images/{n}", get(exams::image))
        .route("/exams/{id}/shares", get(sharing::list_shares).post(sharing::create_share))
        .route("/shares/{id}", delete(sharing::revoke_share))
        .route("/exams/{id}/downloads", post(sharing::create_download))
        .route("/me/access-log", get(sharing::access_log))
        .route("/me/transfers", get(sharing::transfers))
        .route("/me/requests", get(rights::list_requests).post(rights::file_request))
        .route("/me/export", get(rights::export))
        .route("/reports", post(reports::attach))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The blind-index token of a phone number (the same as hospital records carry).
fn phone_token(archive: &Archive, phone: &PhoneNumber) -> Vec<u8> {
    archive.sealer.token(TokenKind::MobilePhone, phone.as_str())
}

/// Keyed hash of a one-time code, bound to its phone and purpose.
fn code_hash(archive: &Archive, purpose: OtpPurpose, phone: &PhoneNumber, code: &str) -> Vec<u8> {
    archive.sealer.secret_hash(&format!("otp\0{}\0{}\0{}", purpose.as_str(), phone.as_str(), code))
}

/// Sends a text message; a provider failure is logged (phone masked) and answers 503.
async fn send_text(
    archive: &Archive,
    phone: &PhoneNumber,
    kind: crate::sms::SmsKind,
    text: &str,
) -> Result<(), crate::error::ApiError> {
    archive.sms.send(phone, kind, text).await.map_err(|e| {
        let to = cloudfilm_core::masking::mask_phone(phone.as_str());
        tracing::error!(error = %e, %to, kind = kind.as_str(), "a text message could not be sent");
        sms_unavailable()
    })
}

/// 503: text messages cannot be sent (a provider failure, or none is configured).
fn sms_unavailable() -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "sms_unavailable",
        "the text message could not be sent; try again shortly",
    )
}

/// Keyed hash of a secret or of a rate-limit key (`kind` separates the uses).
pub(crate) fn keyed(archive: &Archive, kind: &str, value: &str) -> Vec<u8> {
    archive.sealer.secret_hash(&format!("{kind}\0{value}"))
}
