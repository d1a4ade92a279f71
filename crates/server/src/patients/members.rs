//! Members: the account holder ("self") and family, each with a name and a resident ID number
//! (GB 11643), shown masked; the unmasked number needs a fresh step-up. The first match of a
//! member is manual and must agree with the hospital's own record (DESIGN §2).

use super::json::Body;
use super::keyed;
use super::session::{Patient, Signed};
use crate::Archive;
use crate::app::AppState;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::{CONSENT_REQUIRED, MemberPath, NOT_FOUND, RATE_LIMITED};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::ResidentId;
use cloudfilm_core::clock::stamp;
use cloudfilm_core::masking::{mask_id_number, mask_name};
use cloudfilm_core::matching::{MatchClaim, fold, name_agrees};
use cloudfilm_core::member::{Household, MemberRuleError, Relation, clean_name, may_add};
use cloudfilm_core::resident_id::Sex;
use cloudfilm_core::{AccountId, MemberId};
use cloudfilm_store::patients::{MemberConflict, MemberRecord, NewMember};
use cloudfilm_store::sealed::TokenKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// A member as responses show it: name and ID number masked.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    #[schema(value_type = String)]
    pub id: MemberId,
    /// Masked: `张*`, `张*丰`.
    pub name: String,
    /// Masked: the first 4 and the last 4 characters shown.
    pub id_number: String,
    /// `self`, `child`, `parent`, `spouse` or `other`.
    #[schema(value_type = String)]
    pub relation: &'static str,
    /// The ID number is valid.
    pub verified: bool,
    /// A manual match succeeded once: exams are matched automatically.
    pub matched: bool,
    #[schema(format = DateTime)]
    pub matched_at: Option<String>,
    pub age: Option<u32>,
    /// `male` or `female`, from the ID number.
    #[schema(value_type = Option<String>)]
    pub sex: Option<&'static str>,
    /// The member's own consent to being held: `not_needed`, `required`, `requested`, `given` or
    /// `ended`.
    #[schema(value_type = String)]
    pub consent: &'static str,
}

pub fn member_view(member: &MemberRecord, today: chrono::NaiveDate) -> MemberView {
    let resident = ResidentId::parse(&member.id_number, today).ok();
    MemberView {
        id: member.id.clone(),
        name: mask_name(&member.name),
        id_number: mask_id_number(&member.id_number),
        relation: member.relation.as_str(),
        verified: resident.is_some(),
        matched: member.matched_at.is_some(),
        matched_at: member.matched_at.map(stamp),
        age: resident.as_ref().map(|r| r.age_on(today)),
        sex: resident.as_ref().map(|r| match r.sex() {
            Sex::Male => "male",
            Sex::Female => "female",
        }),
        consent: super::holding::member_consent(member, today).as_str(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

/// The account's member with this id, or the 404 every other id gets (S15).
pub async fn own_member(
    archive: &Archive,
    account_id: &AccountId,
    member_id: &MemberId,
) -> Result<MemberRecord, ApiError> {
    archive.repo.members(account_id).await?.into_iter().find(|m| &m.id == member_id).ok_or_else(ApiError::not_found)
}

/// `GET /api/v1/members`.
#[utoipa::path(get, path = "/api/v1/members",
    operation_id = "list_members", tag = "members", security(("patient_session" = [])),
    responses(
        (status = 200, description = "The account's members, masked", body = MemberList),
        (status = 403, description = CONSENT_REQUIRED, body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>, Patient(signed): Patient) -> Result<axum::Json<MemberList>, ApiError> {
    let today = state.archive.clock.now().date_naive();
    let members = state.archive.repo.members(&signed.account_id).await?;
    Ok(axum::Json(MemberList { members: members.iter().map(|m| member_view(m, today)).collect() }))
}

#[derive(Deserialize, ToSchema)]
pub struct NewMemberRequest {
    #[schema(example = "张三")]
    name: String,
    /// A resident ID number (GB 11643).
    #[schema(example = "11010519491231002X")]
    id_number: String,
    /// `self`, `child`, `parent`, `spouse` or `other`.
    #[schema(example = "self")]
    relation: String,
}

fn rule_error(e: MemberRuleError) -> ApiError {
    let code = match e {
        MemberRuleError::Name => "invalid_name",
        MemberRuleError::MinorNeedsGuardian | MemberRuleError::MinorSelf => "minor_needs_guardian",
        MemberRuleError::SelfFirst => "self_first",
        MemberRuleError::SecondSelf => return ApiError::new(StatusCode::CONFLICT, "self_exists", e.to_string()),
    };
    unprocessable(code, e.to_string())
}

/// `POST /api/v1/members {"name", "id_number", "relation"}` → 201 with the member (masked).
#[utoipa::path(post, path = "/api/v1/members",
    operation_id = "add_member", tag = "members", request_body = NewMemberRequest,
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "Added (masked)", body = MemberView),
        (status = 403, description = CONSENT_REQUIRED, body = ErrorBody),
        (status = 409, description = "`duplicate_member`, `self_exists` or `self_elsewhere`", body = ErrorBody),
        (status = 422, description = "`invalid_name`, `invalid_relation`, `invalid_id_number`, \
            `minor_needs_guardian` or `self_first`", body = ErrorBody),
    ))]
pub async fn add(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Body(request): Body<NewMemberRequest>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let now = archive.clock.now();
    let today = now.date_naive();
    let name = clean_name(&request.name).map_err(rule_error)?;
    let relation = Relation::parse(&request.relation)
        .ok_or_else(|| unprocessable("invalid_relation", "relation is one of self, child, parent, spouse, other"))?;
    let id = ResidentId::parse(&fold(&request.id_number), today)
        .map_err(|e| unprocessable("invalid_id_number", e.to_string()))?;
    let members = archive.repo.members(&signed.account_id).await?;
    let holder = members
        .iter()
        .find(|m| m.relation == Relation::Myself)
        .and_then(|m| ResidentId::parse(&m.id_number, today).ok());
    may_add(&Household { holder }, relation, &id, today).map_err(rule_error)?;
    let member = NewMember {
        id: MemberId::new(cloudfilm_crypto::random::hex_id()),
        relation,
        name,
        id_number: id.as_str().to_owned(),
        id_token: archive.sealer.token(TokenKind::ResidentId, id.as_str()),
    };
    let member_id = member.id.clone();
    let event = signed
        .event(Action::PatientRecord, format!("member:{member_id}"), Outcome::Success)
        .with_detail(format!("member added as {}", relation.as_str()));
    if let Err(conflict) = archive.repo.add_member(signed.account_id.clone(), member, now, vec![event]).await? {
        return Err(match conflict {
            MemberConflict::Duplicate => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_member", "this person is already one of your members")
            }
            MemberConflict::SecondSelf => {
                ApiError::new(StatusCode::CONFLICT, "self_exists", "your account already has its \"self\" member")
            }
            MemberConflict::SelfElsewhere => ApiError::new(
                StatusCode::CONFLICT,
                "self_elsewhere",
                "this ID number is already the account holder of another account",
            ),
            MemberConflict::NotFound => ApiError::not_found(),
        });
    }
    let added = own_member(archive, &signed.account_id, &member_id).await?;
    Ok((StatusCode::CREATED, axum::Json(member_view(&added, today))).into_response())
}

/// `DELETE /api/v1/members/{id}` → 204.
#[utoipa::path(delete, path = "/api/v1/members/{id}",
    operation_id = "remove_member", tag = "members", params(MemberPath),
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    signed: Signed,
    Path(member_id): Path<MemberId>,
) -> Result<StatusCode, ApiError> {
    let archive = &state.archive;
    let event = signed
        .event(Action::PatientRecord, format!("member:{member_id}"), Outcome::Success)
        .with_detail("member removed");
    if archive.repo.remove_member(signed.account_id.clone(), member_id, vec![event]).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// A member's name and ID number unmasked.
#[derive(Serialize, ToSchema)]
pub struct RevealedMember {
    #[schema(value_type = String)]
    pub id: MemberId,
    pub name: String,
    pub id_number: String,
}

/// `GET /api/v1/members/{id}/id-number`: the unmasked name and number, after a step-up.
#[utoipa::path(get, path = "/api/v1/members/{id}/id-number",
    operation_id = "reveal_id_number", tag = "members", params(MemberPath),
    security(("patient_session" = [])),
    responses(
        (status = 200, description = "Unmasked (recorded in the audit chain)", body = RevealedMember),
        (status = 403, description = "`step_up_required` (a fresh one-time code first) or `consent_required`",
            body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn reveal_id_number(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(member_id): Path<MemberId>,
) -> Result<axum::Json<RevealedMember>, ApiError> {
    let archive = &state.archive;
    let member = own_member(archive, &signed.account_id, &member_id).await?;
    if !signed.stepped_up {
        return Err(super::session::step_up_required("to see the full number"));
    }
    let event = signed
        .event(Action::PatientRecord, format!("member:{member_id}"), Outcome::Success)
        .with_detail("unmasked ID number shown after step-up");
    archive.repo.audit(vec![event]).await?;
    Ok(axum::Json(RevealedMember { id: member.id, name: member.name, id_number: member.id_number }))
}

/// What the patient knows of one of the member's exams (at least one).
#[derive(Deserialize, ToSchema)]
pub struct MatchRequest {
    #[schema(example = "ACC-1")]
    accession_number: Option<String>,
    /// `YYYY-MM-DD` (or `YYYYMMDD`).
    #[schema(example = "2026-01-05")]
    exam_date: Option<String>,
    /// The organization's name or code.
    organization: Option<String>,
}

/// A manual match's result.
#[derive(Serialize, ToSchema)]
pub struct MatchResult {
    /// The member's exams now visible (empty while an adult's own consent is missing).
    pub matched: Vec<String>,
    /// The member's consent when it still keeps the exams closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub consent: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_required: Option<bool>,
}

/// `POST /api/v1/members/{id}/match` → 200 `{"matched": [exam ids]}`, or the same 404 whatever
/// did not agree; every attempt counts toward hourly limits per account and per address.
#[utoipa::path(post, path = "/api/v1/members/{id}/match",
    operation_id = "match_member", tag = "members", params(MemberPath),
    request_body = MatchRequest, security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The hospital's record agrees", body = MatchResult),
        (status = 403, description = CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = "`no_match` (nothing agrees) or `not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_match`: name the exam by at least one valid field", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    ))]
pub async fn manual_match(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(member_id): Path<MemberId>,
    Body(request): Body<MatchRequest>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let now = archive.clock.now();
    let limit = archive.config.patients.match_attempts_per_hour;
    let buckets = vec![
        keyed(archive, "match-attempts-of", signed.account_id.as_str()),
        keyed(archive, "match-attempts-from", &signed.context.client_ip.to_string()),
    ];
    let claim = MatchClaim::parse(
        request.accession_number.as_deref(),
        request.exam_date.as_deref(),
        request.organization.as_deref(),
    )
    .map_err(|e| unprocessable("invalid_match", e.to_string()))?;
    // Counted before anything is looked at, in one step with the check: attempts arriving at
    // several nodes at once cannot pass the limit together.
    if !archive.repo.take_attempt(buckets, limit, now - Duration::hours(1), now).await? {
        return Err(ApiError::rate_limited(3600));
    }
    let member = own_member(archive, &signed.account_id, &member_id).await?;
    let candidates = archive.repo.match_candidates(&member.id_token).await?;
    let agreed = candidates.iter().find(|c| {
        claim.fits(c.accession_number.as_deref(), c.study_date.as_deref(), &c.org_name, &c.org_code)
            && c.patient_name.as_deref().is_some_and(|n| name_agrees(&member.name, n))
    });
    let object = format!("member:{member_id}");
    let Some(agreed) = agreed else {
        let event = signed
            .event(Action::PatientRecord, object, Outcome::Failure("manual match: no record agrees".into()))
            .with_detail("manual match attempt");
        archive.repo.audit(vec![event]).await?;
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_match",
            "no exam of this member matches these details with the member's name and ID number",
        ));
    };
    let event =
        signed.event(Action::PatientRecord, object, Outcome::Success).with_detail(if member.matched_at.is_some() {
            "manual match confirmed again"
        } else {
            "first manual match: automatic matching enabled"
        });
    archive.repo.mark_matched(member_id.clone(), agreed.study_pk, now, vec![event]).await?;
    let consent = super::holding::member_consent(&member, now.date_naive());
    if !consent.opens_exams() {
        // The record agreed; the adult's own yes is still needed before anything is shown.
        let body = MatchResult { matched: Vec::new(), consent: Some(consent.as_str()), consent_required: Some(true) };
        return Ok((StatusCode::OK, axum::Json(body)).into_response());
    }
    let exams = archive.repo.visible_exams(&signed.account_id, Some(&member_id), None).await?;
    let matched = exams.into_iter().map(|e| e.exam_id).collect();
    Ok((StatusCode::OK, axum::Json(MatchResult { matched, consent: None, consent_required: None })).into_response())
}
