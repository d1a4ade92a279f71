//! Hospitals attach report text to one of their studies with their organization key:
//! `POST /api/v1/reports {"study_uid"? , "accession_number"?, "text"}` → 201. (SR and
//! encapsulated PDF reports arrive through STOW-RS or C-STORE like any instance.)

use super::json::Body;
use crate::app::AppState;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::error::ErrorBody;
use axum::extract::State;
use axum::http::StatusCode;
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::Uid;
use serde::Deserialize;
use utoipa::ToSchema;

/// Longest report text accepted (characters).
const MAX_REPORT_CHARS: usize = 32 * 1024;

/// Report text for one of the organization's studies, named by `study_uid` or
/// `accession_number`.
#[derive(Deserialize, ToSchema)]
pub struct ReportRequest {
    #[schema(example = "1.2.826.0.1.3680043.8.498.1")]
    study_uid: Option<String>,
    #[schema(example = "ACC-1")]
    accession_number: Option<String>,
    /// At most 32768 characters.
    text: String,
}

/// `POST /api/v1/reports` (organization credential) → 201.
#[utoipa::path(post, path = "/api/v1/reports",
    operation_id = "attach_report", tag = "hospital", request_body = ReportRequest,
    security(("org_key" = []), ("org_key_basic" = [])),
    responses(
        (status = 201, description = "Attached"),
        (status = 404, description = "`not_found`: no such study of this organization", body = ErrorBody),
        (status = 409, description = "`ambiguous_study`: name it by `study_uid`", body = ErrorBody),
        (status = 422, description = "`invalid_report` or `invalid_uid`", body = ErrorBody),
    ))]
pub async fn attach(
    State(state): State<AppState>,
    auth: OrgAuth,
    Body(request): Body<ReportRequest>,
) -> Result<StatusCode, ApiError> {
    let archive = &state.archive;
    let unprocessable = |code, message: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    let text = request.text.trim();
    if text.is_empty() || text.chars().count() > MAX_REPORT_CHARS {
        return Err(unprocessable("invalid_report", "text is required, at most 32768 characters"));
    }
    let study_uid = request
        .study_uid
        .as_deref()
        .map(|u| Uid::parse(u).map(|u| u.as_str().to_owned()))
        .transpose()
        .map_err(|_| unprocessable("invalid_uid", "study_uid is not a valid UID"))?;
    let accession = request.accession_number.as_deref().map(str::trim).filter(|a| !a.is_empty() && a.len() <= 64);
    if study_uid.is_none() && accession.is_none() {
        return Err(unprocessable("invalid_report", "name the study by study_uid or accession_number"));
    }
    let studies = archive.repo.org_studies(auth.org.id, study_uid.as_deref(), accession).await?;
    let study_pk = match studies[..] {
        [pk] => pk,
        [] => return Err(ApiError::not_found()),
        _ => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "ambiguous_study",
                "more than one study has this accession number; name it by study_uid",
            ));
        }
    };
    let object = match &study_uid {
        Some(uid) => format!("study:{uid}"),
        None => format!("study:pk{study_pk}"),
    };
    let event = auth.event(Action::Import, object, Outcome::Success).with_detail("report text attached");
    archive.repo.add_report(study_pk, text.to_owned(), archive.clock.now(), vec![event]).await?;
    Ok(StatusCode::CREATED)
}
