//! Logging in with a phone number and a one-time code (S11), logging out, and stepping up
//! with a fresh code before revealing unmasked values (S13).

use super::json::Body;
use super::session::{Signed, cleared_cookies, fresh_session, session_cookies};
use super::{code_hash, keyed, phone_token};
use crate::Archive;
use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::{RATE_LIMITED, SMS_UNAVAILABLE};
use crate::sms::SmsKind;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::PhoneNumber;
use cloudfilm_core::otp::OtpPurpose;
use cloudfilm_store::patients::{AuditContext, CodeOutcome, IssueCode, Login, StepUp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// A mainland mobile number (spaces, hyphens, `+86`/`0086` allowed).
    #[schema(example = "13800138000")]
    phone: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "13800138000")]
    phone: String,
    /// The 6-digit code sent to the phone.
    #[schema(example = "123456")]
    code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct StepUpRequest {
    /// The 6-digit code sent to the account's phone.
    #[schema(example = "123456")]
    code: String,
}

/// A one-time code went out.
#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    /// Seconds the code stays valid.
    pub expires_in: i64,
    /// Seconds before another code may be asked for.
    pub resend_after: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LoggedIn {
    pub account: super::account::AccountView,
}

#[derive(Serialize, ToSchema)]
pub struct SteppedUp {
    /// Minutes the step-up lasts.
    pub stepped_up_for_minutes: i64,
}

/// Wrong, expired or used-up codes (and the limits on them), as login and step-up answer.
const CODE_REFUSED: &str = "`invalid_code`, `code_expired` or `code_exhausted`: the code is refused";

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
    let body = CodeSent { expires_in: policy.ttl_secs, resend_after: policy.resend_secs };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// `POST /api/v1/auth/otp {"phone"}` → 202; a code goes out by text message.
#[utoipa::path(post, path = "/api/v1/auth/otp",
    operation_id = "send_login_code", tag = "auth", request_body = CodeRequest,
    responses(
        (status = 202, description = "A code went out (the same answer for every valid phone)", body = CodeSent),
        (status = 422, description = "`invalid_phone`: not a mainland mobile number", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
        (status = 503, description = SMS_UNAVAILABLE, body = ErrorBody),
    ))]
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
#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in (the account is made at the first login)", body = LoggedIn,
            headers(("Set-Cookie" = String, description = "`cf_session` (HttpOnly) and `cf_csrf` (readable)"))),
        (status = 401, description = CODE_REFUSED, body = ErrorBody),
        (status = 422, description = "`invalid_phone` or `invalid_code`", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    ))]
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
    let mut account = super::account::account_view(archive, &account_id).await?;
    account.new_account = Some(created);
    let mut response = (StatusCode::OK, axum::Json(LoggedIn { account })).into_response();
    for cookie in session_cookies(archive, &fresh) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `POST /api/v1/auth/logout` → 204; the session is revoked server-side.
#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth",
    security(("patient_session" = [], "csrf_token" = [])),
    responses((status = 204, description = "Logged out; the cookies are cleared")))]
pub async fn logout(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let event = signed.event(Action::Logout, "patient-portal", Outcome::Success).with_detail("logout");
    archive.repo.revoke_session(signed.token_hash.clone(), archive.clock.now(), vec![event]).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for cookie in cleared_cookies(archive) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

async fn account_phone(archive: &Archive, signed: &Signed) -> Result<PhoneNumber, ApiError> {
    let account = archive.repo.account(&signed.account_id).await?.ok_or_else(ApiError::internal)?;
    PhoneNumber::parse(&account.phone).map_err(|_| ApiError::internal())
}

/// `POST /api/v1/auth/step-up/otp` → 202; a code goes to the account's phone.
#[utoipa::path(post, path = "/api/v1/auth/step-up/otp", operation_id = "send_step_up_code", tag = "auth",
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 202, description = "A code went to the account's phone", body = CodeSent),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
        (status = 503, description = SMS_UNAVAILABLE, body = ErrorBody),
    ))]
pub async fn send_step_up_code(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let phone = account_phone(&state.archive, &signed).await?;
    issue_and_send(&state.archive, &phone, OtpPurpose::StepUp, &signed.context).await
}

/// `POST /api/v1/auth/step-up {"code"}` → 200 with a new, stepped-up session (S12, S13).
#[utoipa::path(post, path = "/api/v1/auth/step-up",
    operation_id = "step_up", tag = "auth", request_body = StepUpRequest,
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Stepped up: a new session", body = SteppedUp,
            headers(("Set-Cookie" = String, description = "new `cf_session` and `cf_csrf`"))),
        (status = 401, description = CODE_REFUSED, body = ErrorBody),
        (status = 422, description = "`invalid_code`: not a code", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    ))]
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
    let mut response = (StatusCode::OK, axum::Json(SteppedUp { stepped_up_for_minutes: minutes })).into_response();
    for cookie in session_cookies(archive, &fresh) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}
