//! What an account holder does with an exam beyond viewing it: shares behind a password
//! (create, list with state and views, revoke), download links behind a security code sent to
//! the account's phone, and the access log of who opened their data (DESIGN §2, §3).

use super::exams::visible_exam;
use super::json::Body;
use super::keyed;
use super::session::{Patient, Signed};
use crate::Archive;
use crate::app::{AppState, site_url};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::{ExamPath, MEMBER_CONSENT_REQUIRED, NOT_FOUND, RATE_LIMITED, SMS_UNAVAILABLE, SharePath};
use crate::shared::{download_code_hash, link_hash};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::PhoneNumber;
use cloudfilm_core::clock::stamp;
use cloudfilm_core::masking::mask_phone;
use cloudfilm_core::share::ShareState;
use cloudfilm_store::sharing::{NewDownload, NewShare};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// Hours the share stays open (1 to 720 by default).
    #[schema(example = 24)]
    valid_hours: i64,
    /// What the recipient must enter.
    #[schema(example = "tulip-river-42")]
    password: String,
    /// Share a copy de-identified by the PS3.15 basic profile instead of the original.
    #[serde(default)]
    deidentified: bool,
    /// Text the account holder the first time the share is opened.
    #[serde(default = "yes")]
    notify: bool,
}

fn yes() -> bool {
    true
}

/// A new share: its link is shown once.
#[derive(Serialize, ToSchema)]
pub struct CreatedShare {
    pub id: String,
    /// The link as a QR code (SVG).
    pub qr_svg: Option<String>,
    /// The link (`/s/{token}`); it is not kept.
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub deidentified: bool,
    pub notify: bool,
}

/// `POST /api/v1/exams/{id}/shares` → 201 `{"id", "url", "expires_at", ...}`.
#[utoipa::path(post, path = "/api/v1/exams/{id}/shares",
    operation_id = "create_share", tag = "sharing", params(ExamPath),
    request_body = ShareRequest, security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "Shared", body = CreatedShare),
        (status = 403, description = MEMBER_CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
        (status = 422, description = "`invalid_validity`, `password_too_short` or `password_too_long` \
            (the share policy's limits)", body = ErrorBody),
    ))]
pub async fn create_share(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(exam_id): Path<String>,
    headers: HeaderMap,
    Body(request): Body<ShareRequest>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let (member_id, exam) = visible_exam(archive, &signed, &exam_id).await?;
    let now = archive.clock.now();
    let expires_at = archive
        .config
        .patients
        .share
        .request(request.valid_hours, &request.password, now)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    let password = request.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || cloudfilm_crypto::password::hash(&password))
        .await
        .map_err(|_| ApiError::internal())?;
    let token = cloudfilm_crypto::random::token::<32>();
    let share = NewShare {
        id: cloudfilm_crypto::random::hex_id(),
        token_hash: link_hash(archive, "share-link", &token),
        account_id: signed.account_id.clone(),
        member_id,
        study_pk: exam.study_pk,
        password_hash,
        deidentified: request.deidentified,
        notify_owner: request.notify,
        expires_at,
    };
    let id = share.id.clone();
    let event = signed
        .event(Action::SecurityAttributesChanged, format!("exam:{exam_id}"), Outcome::Success)
        .with_detail(format!(
            "share:{id} created, valid until {}{}",
            stamp(expires_at),
            if request.deidentified { ", de-identified copy" } else { "" }
        ));
    archive.repo.create_share(share, now, vec![event]).await?;
    let url = format!("{}/s/{token}", site_url(&state, &headers, &signed.context));
    let body = CreatedShare {
        id,
        qr_svg: qr_svg(&url),
        url,
        expires_at: stamp(expires_at),
        deidentified: request.deidentified,
        notify: request.notify,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// A share as its owner sees it.
#[derive(Serialize, ToSchema)]
pub struct ShareView {
    pub id: String,
    /// `active`, `locked`, `expired` or `revoked`.
    #[schema(value_type = String)]
    pub state: ShareState,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// Until when wrong passwords keep it locked.
    #[schema(format = DateTime)]
    pub locked_until: Option<String>,
    pub views: i64,
    #[schema(format = DateTime)]
    pub first_opened_at: Option<String>,
    pub deidentified: bool,
    pub notify: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ShareList {
    /// Newest first.
    pub shares: Vec<ShareView>,
}

/// `GET /api/v1/exams/{id}/shares`: the account's shares of this exam, newest first.
#[utoipa::path(get, path = "/api/v1/exams/{id}/shares", operation_id = "list_shares", tag = "sharing", params(ExamPath),
    security(("patient_session" = [])),
    responses(
        (status = 200, description = "The account's shares of this exam", body = ShareList),
        (status = 403, description = MEMBER_CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn list_shares(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(exam_id): Path<String>,
) -> Result<axum::Json<ShareList>, ApiError> {
    let archive = &state.archive;
    let (_, exam) = visible_exam(archive, &signed, &exam_id).await?;
    let now = archive.clock.now();
    let policy = &archive.config.patients.share;
    let shares = archive
        .repo
        .shares(&signed.account_id, exam.study_pk)
        .await?
        .iter()
        .map(|s| ShareView {
            id: s.id.clone(),
            state: policy.state(&s.record, now),
            created_at: stamp(s.record.created_at),
            expires_at: stamp(s.record.expires_at),
            revoked_at: s.record.revoked_at.map(stamp),
            locked_until: s.record.locked_until.filter(|t| *t > now).map(stamp),
            views: s.views,
            first_opened_at: s.first_opened_at.map(stamp),
            deidentified: s.deidentified,
            notify: s.notify_owner,
        })
        .collect();
    Ok(axum::Json(ShareList { shares }))
}

/// `DELETE /api/v1/shares/{id}` → 204; the share and the sessions it opened end at once.
#[utoipa::path(delete, path = "/api/v1/shares/{id}", operation_id = "revoke_share", tag = "sharing", params(SharePath),
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Revoked, at once"),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn revoke_share(
    State(state): State<AppState>,
    signed: Signed,
    Path(share_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let archive = &state.archive;
    let event = signed.event(Action::SecurityAttributesChanged, format!("share:{share_id}"), Outcome::Success);
    let now = archive.clock.now();
    if archive.repo.revoke_share(signed.account_id.clone(), share_id, now, vec![event]).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// `POST /api/v1/exams/{id}/downloads` → 201 `{"id", "url", "expires_at"}`; the security code
/// goes to the account's phone. 403 `download_disabled` where the organization disallows it.
#[utoipa::path(post, path = "/api/v1/exams/{id}/downloads",
    operation_id = "create_download", tag = "sharing", params(ExamPath),
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "A download link; the security code went to the account's phone",
            body = CreatedDownload),
        (status = 403, description = "`download_disabled` (the organization does not offer downloads), \
            `step_up_required` (a fresh one-time code first), `member_consent_required` or `consent_required`",
            body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
        (status = 503, description = SMS_UNAVAILABLE, body = ErrorBody),
    ))]
pub async fn create_download(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(exam_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let (member_id, exam) = visible_exam(archive, &signed, &exam_id).await?;
    if !exam.download_enabled {
        return Err(download_disabled());
    }
    if !signed.stepped_up {
        return Err(super::session::step_up_required("before creating a download link"));
    }
    let now = archive.clock.now();
    let policy = &archive.config.patients.download;
    // Each link sends a text message: bounded per account like one-time codes.
    let bucket = keyed(archive, "download-links-of", signed.account_id.as_str());
    let limit = archive.config.patients.otp.sends_per_phone_hour;
    if !archive.repo.take_attempt(vec![bucket], limit, now - Duration::hours(1), now).await? {
        return Err(ApiError::rate_limited(3600));
    }
    let account = archive.repo.account(&signed.account_id).await?.ok_or_else(ApiError::not_found)?;
    let phone = PhoneNumber::parse(&account.phone).map_err(|_| ApiError::internal())?;
    let (id, token, code) =
        (cloudfilm_crypto::random::hex_id(), cloudfilm_crypto::random::token::<32>(), security_code(archive));
    let download = NewDownload {
        id: id.clone(),
        token_hash: link_hash(archive, "download-link", &token),
        account_id: signed.account_id.clone(),
        member_id,
        study_pk: exam.study_pk,
        code_hash: download_code_hash(archive, &id, &code),
    };
    let event = signed
        .event(Action::SecurityAttributesChanged, format!("exam:{exam_id}"), Outcome::Success)
        .with_detail(format!("download:{id} created; security code sent to the account's phone"));
    archive.repo.create_download(download, now, vec![event]).await?;
    let minutes = policy.ttl_secs / 60;
    let text = format!(
        "【cloudfilm】下载安全码 {code}，{minutes} 分钟内有效，请勿告诉他人。Your cloudfilm download security code is {code}, valid for {minutes} minutes. Do not share it."
    );
    super::send_text(archive, &phone, crate::sms::SmsKind::DownloadCode, &text).await?;
    let body = CreatedDownload {
        id,
        url: format!("{}/d/{token}", site_url(&state, &headers, &signed.context)),
        expires_at: stamp(policy.expires_at(now)),
        code_sent_to: mask_phone(phone.as_str()),
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// A new download link: shown once.
#[derive(Serialize, ToSchema)]
pub struct CreatedDownload {
    pub id: String,
    /// The link (`/d/{token}`); it is not kept.
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The phone the security code went to, masked.
    pub code_sent_to: String,
}

/// The link as a QR code (SVG), for the owner to show a phone; made once, as the link
/// itself is not kept.
fn qr_svg(url: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M).ok()?;
    Some(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build())
}

fn security_code(archive: &Archive) -> String {
    cloudfilm_crypto::random::digits(archive.config.patients.download.code_digits.max(6) as usize)
}

pub fn download_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "download_disabled",
        "the organization that made this exam does not offer downloads of the original images",
    )
}

/// A transfer of the account's data to someone else.
#[derive(Serialize, ToSchema)]
pub struct TransferView {
    #[schema(format = DateTime)]
    pub at: String,
    pub sender: String,
    pub receiver: String,
    /// The data category.
    pub category: String,
    pub result: String,
}

#[derive(Serialize, ToSchema)]
pub struct TransferList {
    /// Newest first.
    pub transfers: Vec<TransferView>,
}

/// `GET /api/v1/me/transfers`: every transfer of this account's data to someone else
/// (sender, receiver, data category, result, time), newest first.
#[utoipa::path(get, path = "/api/v1/me/transfers",
    operation_id = "transfers", tag = "account", security(("patient_session" = [])),
    responses((status = 200, description = "The transfer log", body = TransferList)))]
pub async fn transfers(State(state): State<AppState>, signed: Signed) -> Result<axum::Json<TransferList>, ApiError> {
    let archive = &state.archive;
    let transfers = archive
        .repo
        .transfers(&signed.account_id, 500)
        .await?
        .iter()
        .map(|t| TransferView {
            at: stamp(t.at),
            sender: t.sender.clone(),
            receiver: t.receiver.clone(),
            category: t.category.clone(),
            result: t.result.clone(),
        })
        .collect();
    let event = signed.event(Action::AuditLogUsed, "transfer-log", Outcome::Success);
    archive.repo.audit(vec![event]).await?;
    Ok(axum::Json(TransferList { transfers }))
}

/// One access to the account's data.
#[derive(Serialize, ToSchema)]
pub struct AccessView {
    #[schema(format = DateTime)]
    pub at: String,
    pub who: String,
    pub what: String,
    pub object: String,
    pub client_ip: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessLog {
    /// Newest first.
    pub entries: Vec<AccessView>,
}

/// `GET /api/v1/me/access-log`: who opened this account's data, newest first.
#[utoipa::path(get, path = "/api/v1/me/access-log",
    operation_id = "access_log", tag = "account", security(("patient_session" = [])),
    responses((status = 200, description = "Who opened this account's data", body = AccessLog)))]
pub async fn access_log(State(state): State<AppState>, signed: Signed) -> Result<axum::Json<AccessLog>, ApiError> {
    let archive = &state.archive;
    let entries = archive
        .repo
        .access_log(&signed.account_id, 500)
        .await?
        .iter()
        .map(|a| AccessView {
            at: stamp(a.at),
            who: a.actor.clone(),
            what: a.action.clone(),
            object: a.object.clone(),
            client_ip: a.client_ip.clone(),
        })
        .collect();
    let event = signed.event(Action::AuditLogUsed, "access-log", Outcome::Success);
    archive.repo.audit(vec![event]).await?;
    Ok(axum::Json(AccessLog { entries }))
}
