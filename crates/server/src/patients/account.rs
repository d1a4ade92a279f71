//! The account: the privacy policy, the account as the patient sees it (phone masked), and
//! consent — the policy version accepted and the separate consent to process health data,
//! each event kept with its time; withdrawal takes effect at once (S33).

use super::json::Body;
use super::session::Signed;
use crate::Archive;
use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::AccountId;
use cloudfilm_core::clock::stamp;
use cloudfilm_core::consent::{POLICY_TEXT, POLICY_VERSION};
use cloudfilm_core::masking::mask_phone;
use cloudfilm_store::patients::ConsentChange;
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/policy` (no login needed).
pub async fn policy() -> axum::Json<Value> {
    axum::Json(json!({ "version": POLICY_VERSION, "text": POLICY_TEXT }))
}

/// The account as responses show it.
pub async fn account_json(archive: &Archive, account_id: &AccountId) -> Result<Value, ApiError> {
    let account = archive.repo.account(account_id).await?.ok_or_else(ApiError::not_found)?;
    let consents = archive.repo.consents(account_id).await?;
    let events: Vec<Value> = consents
        .events
        .iter()
        .map(|e| json!({ "kind": e.kind, "policy_version": e.policy_version, "granted": e.granted, "at": stamp(e.at) }))
        .collect();
    Ok(json!({
        "id": account.id,
        "phone": mask_phone(&account.phone),
        "created_at": stamp(account.created_at),
        "consents": {
            "current_policy_version": POLICY_VERSION,
            "policy_version": consents.state.policy_version,
            "health_data": consents.state.health_data,
            "complete": consents.state.permits_processing(),
            "events": events,
        },
    }))
}

/// `GET /api/v1/me`.
pub async fn me(State(state): State<AppState>, signed: Signed) -> Result<axum::Json<Value>, ApiError> {
    Ok(axum::Json(account_json(&state.archive, &signed.account_id).await?))
}

#[derive(Deserialize)]
pub struct ConsentRequest {
    policy_version: String,
    health_data: bool,
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
    let body = account_json(archive, &signed.account_id).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "account": body }))).into_response())
}

/// `DELETE /api/v1/me/consents/health_data` → 204; from now on exams are refused.
pub async fn withdraw_health_data(State(state): State<AppState>, signed: Signed) -> Result<StatusCode, ApiError> {
    record_consent(&state.archive, &signed, "health_data", false).await?;
    Ok(StatusCode::NO_CONTENT)
}
