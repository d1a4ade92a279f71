//! Logging in with a phone number and a one-time code (S11), logging out, and stepping up
//! with a fresh code before revealing unmasked values (S13).

use super::json::Body;
use super::session::{Signed, cleared_cookies, fresh_session, session_cookies};
use super::{code_hash, keyed, phone_token};
use crate::Archive;
use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use crate::sms::SmsKind;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::PhoneNumber;
use cloudfilm_core::otp::OtpPurpose;
use cloudfilm_store::patients::{AuditContext, CodeOutcome, IssueCode, Login, StepUp};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct CodeRequest {
    phone: String,
}

#[derive(Deserialize)]
pub struct LoginRequest {
    phone: String,
    code: String,
}

#[derive(Deserialize)]
pub struct StepUpRequest {
    code: String,
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::parse(raw).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone", e.to_string()))
}

/// A presented code: anything up to 16 characters is checked (and counted when wrong).
pub(super) fn presented_code(raw: &str) -> Result<&str, ApiError> {
    let code = raw.trim();
    if code.is_empty() || code.chars().count() > 16 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_code", "the code has 6 digits"));
    }
    Ok(code)
}

pub(super) fn audit_context(context: &RequestContext) -> AuditContext {
    AuditContext { client_ip: Some(context.client_ip.to_string()), request_id: Some(context.request_id.clone()) }
}

/// Issues a code within the limits and sends it; the same answer whether the phone has an
/// account or not.
async fn issue_and_send(
    archive: &Archive,
    phone: &PhoneNumber,
    purpose: OtpPurpose,
    context: &RequestContext,
) -> Result<Response, ApiError> {
    if !archive.sms.configured() {
        return Err(super::sms_unavailable());
    }
    let policy = archive.config.patients.otp.clone();
    let code = cloudfilm_crypto::random::digits(6);
    let op = IssueCode {
        phone_token: phone_token(archive, phone),
        purpose,
        code_hash: code_hash(archive, purpose, phone, &code),
        ip_bucket: keyed(archive, "otp-sends-from", &context.client_ip.to_string()),
        policy: policy.clone(),
        now: archive.clock.now(),
        ctx: audit_context(context),
    };
    if let Err(retry_after) = archive.repo.issue_code(op).await? {
        return Err(ApiError::rate_limited(retry_after));
    }
    let minutes = policy.ttl_secs / 60;
    let text = format!(
        "【cloudfilm】验证码 {code}，{minutes} 分钟内有效，请勿告诉他人。Your cloudfilm code is {code}, valid for {minutes} minutes."
    );
    let kind = match purpose {
        OtpPurpose::Login => SmsKind::LoginCode,
        OtpPurpose::StepUp => SmsKind::StepUpCode,
        OtpPurpose::MemberConsent => SmsKind::MemberConsentCode,
    };
    super::send_text(archive, phone, kind, &text).await?;
    let body = json!({ "expires_in": policy.ttl_secs, "resend_after": policy.resend_secs });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// `POST /api/v1/auth/otp {"phone"}` → 202; a code goes out by text message.
pub async fn send_code(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    Body(request): Body<CodeRequest>,
) -> Result<Response, ApiError> {
    let phone = parse_phone(&request.phone)?;
    issue_and_send(&state.archive, &phone, OtpPurpose::Login, &context).await
}

fn code_refused(outcome: CodeOutcome) -> ApiError {
    let unauthorized = |code, message| ApiError::new(StatusCode::UNAUTHORIZED, code, message);
    match outcome {
        CodeOutcome::Wrong | CodeOutcome::NoCode => {
            unauthorized("invalid_code", "the code is wrong or no longer valid; check it or request a new one")
        }
        CodeOutcome::Expired => unauthorized("code_expired", "the code has expired; request a new one"),
        CodeOutcome::Exhausted => unauthorized("code_exhausted", "too many wrong codes; request a new one"),
        CodeOutcome::Throttled => ApiError::rate_limited(3600),
        CodeOutcome::Accepted { .. } => ApiError::internal(),
    }
}

/// `POST /api/v1/auth/login {"phone", "code"}` → 200 with the account and a new session.
pub async fn login(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    Body(request): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let phone = parse_phone(&request.phone)?;
    let code = presented_code(&request.code)?;
    let fresh = fresh_session(archive);
    let op = Login {
        phone_token: phone_token(archive, &phone),
        phone: phone.as_str().to_owned(),
        code_hash: code_hash(archive, OtpPurpose::Login, &phone, code),
        ip_bucket: keyed(archive, "code-failures-from", &context.client_ip.to_string()),
        new_account_id: cloudfilm_core::AccountId::new(cloudfilm_crypto::random::hex_id()),
        session: fresh.stored.clone(),
        policy: archive.config.patients.otp.clone(),
        now: archive.clock.now(),
        ctx: audit_context(&context),
    };
    let outcome = archive.repo.login(op).await?;
    let CodeOutcome::Accepted { account_id, created } = outcome else { return Err(code_refused(outcome)) };
    let mut body = super::account::account_json(archive, &account_id).await?;
    body["new_account"] = json!(created);
    let mut response = (StatusCode::OK, axum::Json(json!({ "account": body }))).into_response();
    for cookie in session_cookies(archive, &fresh) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `POST /api/v1/auth/logout` → 204; the session is revoked server-side.
pub async fn logout(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let event = signed.event(Action::Logout, "patient-portal", Outcome::Success).with_detail("logout");
    archive.repo.revoke_session(signed.token_hash.clone(), archive.clock.now(), vec![event]).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for cookie in cleared_cookies() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn account_phone(archive: &Archive, signed: &Signed) -> Result<PhoneNumber, ApiError> {
    let account = archive.repo.account(&signed.account_id).await?.ok_or_else(ApiError::internal)?;
    PhoneNumber::parse(&account.phone).map_err(|_| ApiError::internal())
}

/// `POST /api/v1/auth/step-up/otp` → 202; a code goes to the account's phone.
pub async fn send_step_up_code(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let phone = account_phone(&state.archive, &signed).await?;
    issue_and_send(&state.archive, &phone, OtpPurpose::StepUp, &signed.context).await
}

/// `POST /api/v1/auth/step-up {"code"}` → 204 with a new, stepped-up session (S12, S13).
pub async fn step_up(
    State(state): State<AppState>,
    signed: Signed,
    Body(request): Body<StepUpRequest>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let phone = account_phone(archive, &signed).await?;
    let code = presented_code(&request.code)?;
    let fresh = fresh_session(archive);
    let op = StepUp {
        account_id: signed.account_id.clone(),
        phone_token: phone_token(archive, &phone),
        code_hash: code_hash(archive, OtpPurpose::StepUp, &phone, code),
        ip_bucket: keyed(archive, "code-failures-from", &signed.context.client_ip.to_string()),
        old_token_hash: signed.token_hash.clone(),
        session: fresh.stored.clone(),
        policy: archive.config.patients.otp.clone(),
        now: archive.clock.now(),
        ctx: audit_context(&signed.context),
    };
    let outcome = archive.repo.step_up(op).await?;
    if !matches!(outcome, CodeOutcome::Accepted { .. }) {
        return Err(code_refused(outcome));
    }
    let minutes = archive.config.patients.session.step_up_minutes;
    let mut response = (StatusCode::OK, axum::Json(json!({ "stepped_up_for_minutes": minutes }))).into_response();
    for cookie in session_cookies(archive, &fresh) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}
