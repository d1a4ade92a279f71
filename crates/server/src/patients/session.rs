//! Patient sessions: the `cf_session` cookie (HttpOnly, SameSite=Strict, Secure when
//! configured) names a server-side session kept only as a keyed hash; `cf_csrf` is readable
//! by the page and must come back as `X-CSRF-Token` on every state-changing request (API.md).
//! [`Signed`] is a live session; [`Patient`] also needs the consent to process health data.

use super::keyed;
use crate::Archive;
use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::AccountId;
use cloudfilm_crypto::blind::constant_time_eq;
use cloudfilm_store::patients::NewSession;

pub const SESSION_COOKIE: &str = "cf_session";
pub const CSRF_COOKIE: &str = "cf_csrf";

/// A request with a live session.
#[derive(Debug, Clone)]
pub struct Signed {
    pub account_id: AccountId,
    pub token_hash: Vec<u8>,
    pub stepped_up: bool,
    pub context: RequestContext,
}

/// A request with a live session whose account consents to processing health data.
#[derive(Debug, Clone)]
pub struct Patient(pub Signed);

impl Signed {
    pub fn actor(&self) -> String {
        format!("account:{}", self.account_id)
    }

    pub fn event(&self, action: Action, object: impl Into<String>, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(action, self.actor(), object, outcome)
            .from_client(Some(self.context.client_ip.to_string()), Some(self.context.request_id.clone()))
    }
}

/// A cookie's name as this archive sets it: with Secure cookies (TLS here or at the proxy) it
/// carries the `__Host-` prefix, so browsers keep it to HTTPS, this host and `Path=/`.
pub fn cookie_name(archive: &Archive, base: &str) -> String {
    if archive.config.secure_cookies() { format!("__Host-{base}") } else { base.to_owned() }
}

/// A `Set-Cookie` value for `base` (named as [`cookie_name`] says), `Secure` when it must be.
pub fn set_cookie(archive: &Archive, base: &str, value: &str, attributes: &str) -> HeaderValue {
    let secure = if archive.config.secure_cookies() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{}={value}; Path=/; {attributes}{secure}", cookie_name(archive, base)))
        .expect("cookie values are url-safe tokens")
}

/// The value of the cookie `base` as this archive names it.
pub fn archive_cookie<'a>(archive: &Archive, headers: &'a HeaderMap, base: &str) -> Option<&'a str> {
    cookie(headers, &cookie_name(archive, base))
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// 403 until the session is confirmed with a fresh code (S13); `before` says what waits.
pub fn step_up_required(before: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "step_up_required",
        format!("confirm with a new one-time code (POST /api/v1/auth/step-up) {before}"),
    )
}

fn unauthenticated() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "log in with your phone number first")
}

/// A new session's secrets: the cookie values and what the database keeps of them.
pub struct FreshSession {
    pub token: String,
    pub csrf: String,
    pub stored: NewSession,
}

pub fn fresh_session(archive: &Archive) -> FreshSession {
    let token = cloudfilm_crypto::random::token::<32>();
    let csrf = cloudfilm_crypto::random::token::<32>();
    let stored = NewSession { token_hash: keyed(archive, "session", &token), csrf_hash: keyed(archive, "csrf", &csrf) };
    FreshSession { token, csrf, stored }
}

/// `Set-Cookie` values that start a session.
pub fn session_cookies(archive: &Archive, fresh: &FreshSession) -> [HeaderValue; 2] {
    [
        set_cookie(archive, SESSION_COOKIE, &fresh.token, "HttpOnly; SameSite=Strict"),
        set_cookie(archive, CSRF_COOKIE, &fresh.csrf, "SameSite=Strict"),
    ]
}

/// `Set-Cookie` values that end a session in the browser.
pub fn cleared_cookies(archive: &Archive) -> [HeaderValue; 2] {
    [
        set_cookie(archive, SESSION_COOKIE, "", "Max-Age=0; HttpOnly; SameSite=Strict"),
        set_cookie(archive, CSRF_COOKIE, "", "Max-Age=0; SameSite=Strict"),
    ]
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let archive = &state.archive;
        let context = parts.extensions.get::<RequestContext>().cloned().expect("the request context layer runs first");
        let token = archive_cookie(archive, &parts.headers, SESSION_COOKIE).ok_or_else(unauthenticated)?;
        let token_hash = keyed(archive, "session", token);
        let record = archive.repo.session(&token_hash).await?.ok_or_else(unauthenticated)?;
        let now = archive.clock.now();
        let policy = &archive.config.patients.session;
        if !policy.is_live(&record.times, now) {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired", "your session ended; log in again"));
        }
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let header_token = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let cookie_token = archive_cookie(archive, &parts.headers, CSRF_COOKIE).unwrap_or_default();
            let valid = !header_token.is_empty()
                && header_token == cookie_token
                && constant_time_eq(&keyed(archive, "csrf", header_token), &record.csrf_hash);
            if !valid {
                let event = AuditEvent::new(
                    Action::SecurityAlert,
                    format!("account:{}", record.account_id),
                    "patient-portal",
                    Outcome::Failure("state-changing request without a valid CSRF token".into()),
                )
                .from_client(Some(context.client_ip.to_string()), Some(context.request_id.clone()));
                archive.repo.audit(vec![event]).await?;
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "the request lacks a valid X-CSRF-Token header",
                ));
            }
        }
        if policy.needs_touch(&record.times, now) {
            archive.repo.touch_session(token_hash.clone(), now).await?;
        }
        Ok(Signed {
            account_id: record.account_id,
            stepped_up: policy.stepped_up(&record.times, now),
            token_hash,
            context,
        })
    }
}

impl FromRequestParts<AppState> for Patient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let signed = Signed::from_request_parts(parts, state).await?;
        let consents = state.archive.repo.consents(&signed.account_id).await?;
        if !consents.state.permits_processing() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "consent_required",
                "accept the privacy policy and consent to the processing of your health data first",
            ));
        }
        Ok(Patient(signed))
    }
}
