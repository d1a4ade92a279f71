//! The organization credential (API.md): `Authorization: Bearer <key>`, or HTTP Basic with the
//! key id as user name and the whole key as password. Every request is checked against the
//! key's keyed hash, its revocation and its CIDR allowlist; refusals are audited (the first of
//! a minute per address, the rest counted into one summary entry).

use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::refusals::Refusal;
use cloudfilm_crypto::blind::constant_time_eq;
use cloudfilm_store::Org;

/// An authenticated organization request.
#[derive(Debug, Clone)]
pub struct OrgAuth {
    pub org: Org,
    pub key_id: String,
    pub context: RequestContext,
}

impl OrgAuth {
    /// The audit actor: organization and key, never a person.
    pub fn actor(&self) -> String {
        format!("org:{}/key:{}", self.org.code, self.key_id)
    }

    pub fn event(&self, action: Action, object: impl Into<String>, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(action, self.actor(), object, outcome)
            .from_client(Some(self.context.client_ip.to_string()), Some(self.context.request_id.clone()))
    }
}

/// The presented key, from either scheme.
fn presented_key(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        return (password.split('.').next() == Some(user)).then(|| password.to_owned());
    }
    None
}

impl FromRequestParts<AppState> for OrgAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<RequestContext>().cloned().expect("the request context layer runs first");
        let refuse = |key_id: &str, why: &str| {
            AuditEvent::new(
                Action::SecurityAlert,
                format!("key:{key_id}"),
                "dicom-web",
                Outcome::Failure(why.to_owned()),
            )
            .from_client(Some(context.client_ip.to_string()), Some(context.request_id.clone()))
        };
        let Some(key) = presented_key(parts) else {
            return Err(ApiError::unauthorized());
        };
        let key_id: String = key.split('.').next().unwrap_or_default().chars().take(40).collect();
        let record = state.archive.repo.api_key(&key_id).await?;
        let valid = record
            .as_ref()
            .is_some_and(|r| !r.revoked && constant_time_eq(&state.archive.sealer.secret_hash(&key), &r.secret_hash));
        let Some(record) = record.filter(|_| valid) else {
            let shown = if key_id.bytes().all(|b| b.is_ascii_alphanumeric()) { key_id.as_str() } else { "invalid" };
            let why = "unknown, revoked or wrong API key";
            let refusal = Refusal { object: "dicom-web", reason: why };
            state.archive.audit_refusal(refusal, context.client_ip, refuse(shown, why)).await?;
            return Err(ApiError::unauthorized());
        };
        if !record.allow.is_empty() {
            let allowed = record
                .allow
                .iter()
                .filter_map(|net| net.parse::<ipnet::IpNet>().ok())
                .any(|net| net.contains(&context.client_ip));
            if !allowed {
                let why = "API key used from an address outside its allowlist";
                let refusal = Refusal { object: "dicom-web", reason: why };
                state.archive.audit_refusal(refusal, context.client_ip, refuse(&key_id, why)).await?;
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "address_not_allowed",
                    "this API key may not be used from this address",
                ));
            }
        }
        Ok(OrgAuth { org: record.org, key_id, context })
    }
}
