//! Opening a share: the recipient's password against the share's Argon2id hash (checked off
//! the async threads, outside the writer), the verdict taken inside the single writer from
//! the share's and the address's wrong passwords; the right password opens a session scoped
//! to this one share (cookie `cf_share`), and the owner's first-open notice goes out.

use super::{LinkBody, audit_context, check_address, failures_from, link_hash, unknown_link, well_formed};
use crate::Archive;
use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::{LINK_NOT_FOUND, TokenPath};
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cloudfilm_core::AccountId;
use cloudfilm_core::PhoneNumber;
use cloudfilm_core::clock::stamp;
use cloudfilm_core::masking::mask_phone;
use cloudfilm_core::share::{ShareState, UnlockVerdict};
use cloudfilm_store::sharing::{Unlock, Unlocked};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const SHARE_COOKIE: &str = "cf_share";

#[derive(Deserialize, ToSchema)]
pub struct UnlockRequest {
    #[schema(example = "tulip-river-42")]
    password: String,
}

/// A share-scoped session opened.
#[derive(Serialize, ToSchema)]
pub struct ShareOpened {
    /// When the share-scoped session ends.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Where the shared exam is read: `/api/v1/shared/exam`.
    #[schema(value_type = String)]
    pub exam: &'static str,
}

/// A share-scoped session: the cookie value and when it ends.
pub struct Opened {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/shared/{token}/unlock {"password"}` → 200 and the share-scoped session
/// cookie; the form of the page `/s/{token}` posts here too and is sent on to `/shared/view`
/// (refusals of the form answer with the page again, as HTML).
#[utoipa::path(post, path = "/api/v1/shared/{token}/unlock",
    operation_id = "unlock_share", tag = "shared", params(TokenPath),
    request_body(content((UnlockRequest = "application/json"), (UnlockRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Opened: a share-scoped session (JSON requests)", body = ShareOpened,
            headers(("Set-Cookie" = String, description = "`cf_share` (HttpOnly)"))),
        (status = 303, description = "Opened (form requests): on to `/shared/view`",
            headers(("Location" = String), ("Set-Cookie" = String, description = "`cf_share` (HttpOnly)"))),
        (status = 400, description = "`invalid_form`: the form lacks a field", body = ErrorBody),
        (status = 401, description = "`wrong_password`",
            content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 404, description = LINK_NOT_FOUND, content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 410, description = "`share_expired` or `share_revoked`",
            content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 422, description = "`password_too_long`",
            content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 429, description = "`share_locked` (too many wrong passwords for this share) or `rate_limited` (\
            too many failures from this address)", content((ErrorBody = "application/json"), (String = "text/html"))),
    ))]
pub async fn unlock(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    Path(token): Path<String>,
    LinkBody(request, from_form): LinkBody<UnlockRequest>,
) -> Result<Response, Response> {
    let archive = &state.archive;
    let page = |e: ApiError| if from_form { super::pages::share_refused(&token, e) } else { e.into_response() };
    let opened = open_share(archive, &context, &token, &request.password).await.map_err(page)?;
    let cookie = session_cookie(archive, &opened);
    let mut response = if from_form {
        (StatusCode::SEE_OTHER, [(header::LOCATION, "/shared/view")]).into_response()
    } else {
        axum::Json(ShareOpened { expires_at: stamp(opened.expires_at), exam: "/api/v1/shared/exam" }).into_response()
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

fn session_cookie(archive: &Archive, opened: &Opened) -> HeaderValue {
    let max_age = (opened.expires_at - archive.clock.now()).num_seconds().max(1);
    let attributes = format!("Max-Age={max_age}; HttpOnly; SameSite=Strict");
    crate::patients::set_cookie(archive, SHARE_COOKIE, &opened.token, &attributes)
}

async fn open_share(
    archive: &std::sync::Arc<Archive>,
    context: &RequestContext,
    token: &str,
    password: &str,
) -> Result<Opened, ApiError> {
    let policy = archive.config.patients.share.clone();
    check_address(archive, context, policy.wrong_passwords_per_ip_hour).await?;
    let share = match well_formed(token) {
        true => archive.repo.share_by_token(&link_hash(archive, "share-link", token)).await?,
        false => None,
    };
    let Some(share) = share else { return Err(unknown_link(archive, context).await?) };
    if password.chars().count() > policy.max_password_chars {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "password_too_long", "the password is too long"));
    }
    // Only an active share is worth the hash's cost; the writer decides on the others.
    let active = policy.state(&share.record, archive.clock.now()) == ShareState::Active;
    let (password, stored) = (password.to_owned(), share.password_hash.clone());
    let matches = active
        && tokio::task::spawn_blocking(move || cloudfilm_crypto::password::verify(&password, &stored))
            .await
            .map_err(|_| ApiError::internal())?;
    let session_token = cloudfilm_crypto::random::token::<32>();
    let op = Unlock {
        share_id: share.id.clone(),
        password_matches: matches,
        ip_bucket: failures_from(archive, context),
        session_token_hash: link_hash(archive, "share-session", &session_token),
        policy: policy.clone(),
        now: archive.clock.now(),
        ctx: audit_context(context),
    };
    let Some(Unlocked { verdict, notify_owner, session_expires_at }) = archive.repo.unlock(op).await? else {
        return Err(unknown_link(archive, context).await?);
    };
    match verdict {
        UnlockVerdict::Opened => {
            if notify_owner {
                notify_first_open(archive, &share.account_id).await;
            }
            Ok(Opened { token: session_token, expires_at: session_expires_at.expect("an opened share has a session") })
        }
        UnlockVerdict::Wrong { locks: false } => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong_password", "the password is wrong"))
        }
        UnlockVerdict::Wrong { locks: true } | UnlockVerdict::Locked { .. } => {
            let retry = match verdict {
                UnlockVerdict::Locked { retry_after_secs } => retry_after_secs,
                _ => policy.lock_secs,
            };
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "share_locked",
                "too many wrong passwords: this share is locked for an hour",
            );
            e.retry_after = Some(retry.max(1) as u64);
            Err(e)
        }
        UnlockVerdict::AddressLimited => Err(ApiError::rate_limited(3600)),
        UnlockVerdict::Expired => Err(gone("share_expired", "this share has expired; ask its owner for a new link")),
        UnlockVerdict::Revoked => Err(gone("share_revoked", "this share was revoked by its owner")),
    }
}

pub fn gone(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::GONE, code, message)
}

/// Tells the account holder, once, that a share was opened (no personal data in the text).
async fn notify_first_open(archive: &Archive, account_id: &AccountId) {
    let phone = match archive.repo.account(account_id).await {
        Ok(Some(account)) => PhoneNumber::parse(&account.phone).ok(),
        _ => None,
    };
    let Some(phone) = phone else { return };
    let text = "【cloudfilm】您分享的检查已被首次打开。如非本人授意，请在 cloudfilm 中撤销该分享。A share of your exam was opened for the first time. If you did not expect this, revoke the share in cloudfilm.";
    if let Err(e) = archive.sms.send(&phone, crate::sms::SmsKind::ShareOpened, text).await {
        tracing::warn!(error = %e, to = %mask_phone(phone.as_str()), "a share notice could not be sent");
    }
}

/// The share-scoped session a request carries, if any.
pub fn session_token<'a>(archive: &Archive, headers: &'a HeaderMap) -> Option<&'a str> {
    crate::patients::archive_cookie(archive, headers, SHARE_COOKIE)
}
