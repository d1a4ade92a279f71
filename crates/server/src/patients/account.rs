//! The account: the privacy policy, the account as the patient sees it (phone masked), and
//! consent — the policy version accepted and the separate consent to process health data,
//! each event kept with its time; withdrawal takes effect at once (S33).

use super::json::Body;
use super::session::Signed;
use crate::Archive;
use crate::app::AppState;
use crate::error::ApiError;
use crate::error::ErrorBody;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::AccountId;
use cloudfilm_core::clock::stamp;
use cloudfilm_core::consent::{POLICY_TEXT, POLICY_VERSION};
use cloudfilm_core::masking::mask_phone;
use cloudfilm_store::patients::ConsentChange;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The privacy policy in force.
#[derive(Serialize, ToSchema)]
pub struct Policy {
    #[schema(value_type = String)]
    pub version: &'static str,
    #[schema(value_type = String)]
    pub text: &'static str,
}

/// `GET /api/v1/policy` (no login needed).
#[utoipa::path(get, path = "/api/v1/policy", operation_id = "policy", tag = "account",
    responses((status = 200, description = "The privacy policy in force", body = Policy)))]
pub async fn policy() -> axum::Json<Policy> {
    axum::Json(Policy { version: POLICY_VERSION, text: POLICY_TEXT })
}

/// The account as responses show it (phone masked).
#[derive(Serialize, ToSchema)]
pub struct AccountView {
    #[schema(value_type = String)]
    pub id: AccountId,
    /// Masked: `138****8000`.
    pub phone: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub consents: ConsentsView,
    /// Whether this login made the account (login answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_account: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentsView {
    #[schema(value_type = String)]
    pub current_policy_version: &'static str,
    /// The policy version accepted last, if any.
    pub policy_version: Option<String>,
    /// Whether the separate consent to process health data stands.
    pub health_data: bool,
    /// Both given for the policy in force: the patient endpoints open.
    pub complete: bool,
    pub events: Vec<ConsentEventView>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentEventView {
    /// `privacy_policy` or `health_data`.
    pub kind: String,
    pub policy_version: String,
    pub granted: bool,
    #[schema(format = DateTime)]
    pub at: String,
}

/// The account as responses show it.
pub async fn account_view(archive: &Archive, account_id: &AccountId) -> Result<AccountView, ApiError> {
    let account = archive.repo.account(account_id).await?.ok_or_else(ApiError::not_found)?;
    let consents = archive.repo.consents(account_id).await?;
    let events = consents
        .events
        .iter()
        .map(|e| ConsentEventView {
            kind: e.kind.clone(),
            policy_version: e.policy_version.clone(),
            granted: e.granted,
            at: stamp(e.at),
        })
        .collect();
    Ok(AccountView {
        id: account.id,
        phone: mask_phone(&account.phone),
        created_at: stamp(account.created_at),
        consents: ConsentsView {
            current_policy_version: POLICY_VERSION,
            policy_version: consents.state.policy_version.clone(),
            health_data: consents.state.health_data,
            complete: consents.state.permits_processing(),
            events,
        },
        new_account: None,
    })
}

/// `GET /api/v1/me`.
#[utoipa::path(get, path = "/api/v1/me", operation_id = "me", tag = "account", security(("patient_session" = [])),
    responses((status = 200, description = "The account, phone masked, with its consents", body = AccountView)))]
pub async fn me(State(state): State<AppState>, signed: Signed) -> Result<axum::Json<AccountView>, ApiError> {
    Ok(axum::Json(account_view(&state.archive, &signed.account_id).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct ConsentRequest {
    /// The version of the policy read (`GET /api/v1/policy`).
    policy_version: String,
    /// The separate consent to process health data.
    health_data: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentGiven {
    pub account: AccountView,
}

async fn record_consent(archive: &Archive, signed: &Signed, kind: &str, granted: bool) -> Result<(), ApiError> {
    let change = ConsentChange {
        account_id: signed.account_id.clone(),
        kind: kind.to_owned(),
        policy_version: POLICY_VERSION.to_owned(),
        granted,
        now: archive.clock.now(),
    };
    let what = match (kind, granted) {
        ("privacy_policy", _) => format!("privacy policy {POLICY_VERSION} accepted"),
        (_, true) => format!("consent to process health data given (policy {POLICY_VERSION})"),
        (_, false) => "consent to process health data withdrawn".to_owned(),
    };
    let event = signed
        .event(Action::PatientRecord, format!("account:{}", signed.account_id), Outcome::Success)
        .with_detail(what);
    Ok(archive.repo.consent(change, vec![event]).await?)
}

/// `POST /api/v1/me/consents {"policy_version", "health_data"}` → 201 with the account.
#[utoipa::path(post, path = "/api/v1/me/consents",
    operation_id = "give_consent", tag = "account", request_body = ConsentRequest,
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "Recorded", body = ConsentGiven),
        (status = 409, description = "`policy_outdated`: another policy version is in force", body = ErrorBody),
    ))]
pub async fn give_consent(
    State(state): State<AppState>,
    signed: Signed,
    Body(request): Body<ConsentRequest>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    if request.policy_version != POLICY_VERSION {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "policy_outdated",
            format!("the privacy policy in force is version {POLICY_VERSION}; read it and accept that version"),
        ));
    }
    record_consent(archive, &signed, "privacy_policy", true).await?;
    if request.health_data {
        record_consent(archive, &signed, "health_data", true).await?;
    }
    let account = account_view(archive, &signed.account_id).await?;
    Ok((StatusCode::CREATED, axum::Json(ConsentGiven { account })).into_response())
}

/// `DELETE /api/v1/me/consents/health_data` → 204; from now on exams are refused.
#[utoipa::path(delete, path = "/api/v1/me/consents/health_data", operation_id = "withdraw_health_data", tag = "account",
    security(("patient_session" = [], "csrf_token" = [])),
    responses((status = 204, description = "Withdrawn, at once")))]
pub async fn withdraw_health_data(State(state): State<AppState>, signed: Signed) -> Result<StatusCode, ApiError> {
    record_consent(&state.archive, &signed, "health_data", false).await?;
    Ok(StatusCode::NO_CONTENT)
}
