//! Holding an adult (issue 13 item 14, API.md "Lifecycle"): an account sees the exams of an
//! adult it holds as parent, spouse or other (or of a child who has turned 18) only with that
//! adult's own yes — a code sent to the phone on the hospital's record for them, or an
//! approval from their own account. The adult sees who holds them and ends a holding at once;
//! every request, grant and end lands in both accounts' access logs and in the audit chain.
//! The account holder themself and minors held by their guardian need no consent.

use super::auth::{audit_context, presented_code};
use super::json::Body;
use super::keyed;
use super::members::{MemberView, member_view, own_member};
use super::session::{Patient, Signed};
use crate::Archive;
use crate::app::AppState;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::{CONSENT_REQUIRED, HoldingPath, MemberPath, NOT_FOUND, RATE_LIMITED, SMS_UNAVAILABLE};
use crate::sms::SmsKind;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::clock::stamp;
use cloudfilm_core::masking::mask_phone;
use cloudfilm_core::matching::name_agrees;
use cloudfilm_core::member::{MemberConsent, consent_state, holding_state};
use cloudfilm_core::otp::OtpPurpose;
use cloudfilm_core::{AccountId, MemberId};
use cloudfilm_core::{PhoneNumber, ResidentId};
use cloudfilm_store::patients::{
    CodeOutcome, ConfirmMemberConsent, HolderRecord, MemberRecord, RequestMemberConsent, SetHolding,
};
use cloudfilm_store::sharing::Access;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Consent codes sent to one phone in a day, whoever asks (on top of the limits of every code).
const CONSENT_SENDS_PER_PHONE_DAY: u32 = 5;

/// The consent state of one of the account's members on `today`.
pub fn member_consent(member: &MemberRecord, today: NaiveDate) -> MemberConsent {
    let id = ResidentId::parse(&member.id_number, today).ok();
    consent_state(member.relation, id.as_ref(), &member.consent, today)
}

/// 403 until the adult said yes.
pub fn consent_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "member_consent_required",
        "this adult has not agreed to be held in your account: ask for their consent \
         (a code goes to the phone on the hospital's record) or for their approval in their own account",
    )
}

/// The member's exams may be read now, or 403 `member_consent_required`.
pub fn ensure_open(member: &MemberRecord, today: NaiveDate) -> Result<(), ApiError> {
    if member_consent(member, today).opens_exams() { Ok(()) } else { Err(consent_required()) }
}

/// Records a read of a member's data through this account: the audit event and, for an adult
/// held with their consent who has an account of their own, a line in that account's access
/// log (`what` was done, to `object`), so the adult sees every look the holder takes.
pub async fn record_read(
    archive: &Archive,
    signed: &Signed,
    member_id: &MemberId,
    event: AuditEvent,
    what: &str,
    object: String,
) -> Result<(), ApiError> {
    let member = own_member(archive, &signed.account_id, member_id).await?;
    let now = archive.clock.now();
    let adult = match member_consent(&member, now.date_naive()) {
        MemberConsent::Given => archive.repo.self_account_of(&member.id_token).await?,
        _ => None,
    };
    let Some(adult) = adult.filter(|a| *a != signed.account_id) else {
        return Ok(archive.repo.audit(vec![event]).await?);
    };
    let ip = signed.context.client_ip.to_string();
    let line = access(&adult, now, holder_actor(member_id, member.relation.as_str()), what.to_owned(), object, &ip);
    Ok(archive.repo.log(vec![line], Vec::new(), vec![event]).await?)
}

fn conflict(code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// The member may be asked for a consent (an adult not yet consenting, matched once).
fn ensure_askable(member: &MemberRecord, today: NaiveDate) -> Result<(), ApiError> {
    match member_consent(member, today) {
        MemberConsent::NotNeeded => {
            Err(conflict("consent_not_needed", "the account holder and children under 18 need no consent of their own"))
        }
        MemberConsent::Given => Err(conflict("consent_given", "this member already agreed")),
        _ if member.matched_at.is_none() => Err(conflict(
            "match_first",
            "link one of this member's exams first: the code goes to the phone on that hospital record",
        )),
        _ => Ok(()),
    }
}

/// The mobile number on the newest hospital record whose name and resident ID agree with the
/// member's (Patient's Telephone Numbers), if any.
async fn record_phone(archive: &Archive, member: &MemberRecord) -> Result<Option<PhoneNumber>, ApiError> {
    let mut candidates: Vec<_> = archive
        .repo
        .match_candidates(&member.id_token)
        .await?
        .into_iter()
        .filter(|c| c.patient_name.as_deref().is_some_and(|n| name_agrees(&member.name, n)))
        .collect();
    candidates.sort_by(|a, b| (&b.study_date, b.study_pk).cmp(&(&a.study_date, a.study_pk)));
    Ok(candidates.iter().flat_map(|c| c.patient_phones.iter()).find_map(|p| PhoneNumber::parse(p).ok()))
}

/// Codes of a member's consent are kept under a token of the member (not of the phone), so a
/// code answers only the holding it was asked for.
fn code_token(archive: &Archive, member_id: &MemberId) -> Vec<u8> {
    keyed(archive, "member-consent-code", member_id.as_str())
}

fn code_hash(archive: &Archive, member_id: &MemberId, code: &str) -> Vec<u8> {
    archive.sealer.secret_hash(&format!("otp\0{}\0{member_id}\0{code}", OtpPurpose::MemberConsent.as_str()))
}

fn access(
    account_id: &AccountId,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    object: String,
    ip: &str,
) -> Access {
    Access { account_id: account_id.to_owned(), at, actor, action, object, client_ip: Some(ip.to_owned()) }
}

/// The lines a holding event writes: one in the holder's log and, when the adult has an
/// account of their own, one in theirs.
fn both_logs(
    holder_account: &AccountId,
    adult_account: Option<&AccountId>,
    member_id: &MemberId,
    now: DateTime<Utc>,
    ip: &str,
    holder_line: (String, String),
    adult_line: (String, String),
) -> Vec<Access> {
    let mut lines = vec![access(holder_account, now, holder_line.0, holder_line.1, format!("member {member_id}"), ip)];
    if let Some(adult) = adult_account.filter(|a| *a != holder_account) {
        lines.push(access(adult, now, adult_line.0, adult_line.1, format!("holding {member_id}"), ip));
    }
    lines
}

fn holder_actor(member_id: &MemberId, relation: &str) -> String {
    format!("another account holding you as {relation} (holding {member_id})")
}

/// A member's consent code went out.
#[derive(Serialize, ToSchema)]
pub struct ConsentCodeSent {
    /// Seconds the code stays valid.
    pub expires_in: i64,
    /// Seconds before another code may be asked for.
    pub resend_after: i64,
    /// Where it went: `hospital_record_phone`.
    #[schema(value_type = String)]
    pub sent_to: &'static str,
}

/// Why a member cannot be asked for a consent (`ensure_askable`).
const NOT_ASKABLE: &str = "`consent_not_needed`, `consent_given` or `match_first`";

/// `POST /api/v1/members/{id}/consent-request` → 202; a code goes to the phone on the hospital's
/// record for this adult. 409 `no_phone_on_record` when no record carries a mobile number
/// (their approval from their own account remains).
#[utoipa::path(post, path = "/api/v1/members/{id}/consent-request",
    operation_id = "request_member_consent", tag = "members", params(MemberPath),
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 202, description = "A code went to the phone on the hospital's record", body = ConsentCodeSent),
        (status = 403, description = CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
        (status = 409, description = "`no_phone_on_record`, or not askable: `consent_not_needed`, \
            `consent_given` or `match_first`", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
        (status = 503, description = SMS_UNAVAILABLE, body = ErrorBody),
    ))]
pub async fn request(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(member_id): Path<MemberId>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let now = archive.clock.now();
    let member = own_member(archive, &signed.account_id, &member_id).await?;
    ensure_askable(&member, now.date_naive())?;
    let phone = record_phone(archive, &member).await?.ok_or_else(|| {
        conflict(
            "no_phone_on_record",
            "the hospital's record for this person has no mobile number: ask them to approve in their own \
             cloudfilm account (Members, who can see my exams)",
        )
    })?;
    if !archive.sms.configured() {
        return Err(super::sms_unavailable());
    }
    let phone_bucket = keyed(archive, "member-consent-sends-to", phone.as_str());
    if archive.repo.count_events(&phone_bucket, now - Duration::hours(24)).await? >= CONSENT_SENDS_PER_PHONE_DAY {
        return Err(ApiError::rate_limited(3600));
    }
    let relation = member.relation.as_str();
    let adult = archive.repo.self_account_of(&member.id_token).await?;
    let ip = signed.context.client_ip.to_string();
    let lines = both_logs(
        &signed.account_id,
        adult.as_ref(),
        &member_id,
        now,
        &ip,
        (
            "you".into(),
            format!(
                "asked the consent of your {relation} member: a code was sent to the phone on the hospital's record"
            ),
        ),
        (
            holder_actor(&member_id, relation),
            "asked to see your exams: a code was sent to the phone on your hospital record".into(),
        ),
    );
    let code = cloudfilm_crypto::random::digits(6);
    let policy = archive.config.patients.otp.clone();
    let op = RequestMemberConsent {
        account_id: signed.account_id.clone(),
        member_id: member_id.clone(),
        code_token: code_token(archive, &member_id),
        code_hash: code_hash(archive, &member_id, &code),
        ip_bucket: keyed(archive, "otp-sends-from", &ip),
        phone_bucket,
        policy: policy.clone(),
        now,
        ctx: audit_context(&signed.context),
        access: lines,
    };
    match archive.repo.request_member_consent(op).await? {
        Ok(Ok(())) => {}
        Ok(Err(retry_after)) => return Err(ApiError::rate_limited(retry_after)),
        Err(_) => return Err(ApiError::not_found()),
    }
    let account = archive.repo.account(&signed.account_id).await?.ok_or_else(ApiError::internal)?;
    let asker = mask_phone(&account.phone);
    let minutes = policy.ttl_secs / 60;
    let text = format!(
        "【cloudfilm】授权码 {code}：账户 {asker} 申请以家庭成员身份查看您的检查记录。仅在您同意时把此码告诉对方，{minutes} 分钟内有效；\
         不同意请忽略。Code {code}: the cloudfilm account {asker} asks to see your exams as family. Give it only if you agree; \
         valid {minutes} minutes."
    );
    super::send_text(archive, &phone, SmsKind::MemberConsentCode, &text).await?;
    let body = ConsentCodeSent {
        expires_in: policy.ttl_secs,
        resend_after: policy.resend_secs,
        sent_to: "hospital_record_phone",
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// Tells the adult's own account phone that a holding opened by the code (the record's phone
/// may not be theirs any more): who holds them, and where to end it. A failure to send is
/// logged (masked) and does not undo the consent.
async fn notify_adult(archive: &Archive, adult_account: &AccountId, holder_account: &AccountId) {
    let (Ok(Some(adult)), Ok(Some(holder))) =
        (archive.repo.account(adult_account).await, archive.repo.account(holder_account).await)
    else {
        return;
    };
    let Ok(phone) = PhoneNumber::parse(&adult.phone) else { return };
    let asker = mask_phone(&holder.phone);
    let text = format!(
        "【cloudfilm】账户 {asker} 已凭授权码可以查看您的检查记录。如非您本人同意，请在云胶片\u{201c}谁可以查看我的检查\u{201d}中结束。\
         The cloudfilm account {asker} can now see your exams by the consent code; if you did not agree, end it under \
         Who can see my exams."
    );
    let _ = super::send_text(archive, &phone, SmsKind::LinkNotice, &text).await;
}

#[derive(Deserialize, ToSchema)]
pub struct ConsentCode {
    /// The code the adult was sent.
    #[schema(example = "123456")]
    code: String,
}

fn code_refused(outcome: CodeOutcome) -> ApiError {
    let refused = |code, message| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    match outcome {
        CodeOutcome::Expired => refused("code_expired", "the code has expired; ask for a new one"),
        CodeOutcome::Exhausted => refused("code_exhausted", "too many wrong codes; ask for a new one"),
        CodeOutcome::Throttled => ApiError::rate_limited(3600),
        _ => refused("invalid_code", "the code is wrong or no longer valid; check it or ask for a new one"),
    }
}

/// `POST /api/v1/members/{id}/consent {"code"}` → 200 with the member, whose exams open now.
#[utoipa::path(post, path = "/api/v1/members/{id}/consent",
    operation_id = "confirm_member_consent", tag = "members", params(MemberPath),
    request_body = ConsentCode, security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The adult consented: their exams open", body = MemberView),
        (status = 403, description = CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
        (status = 409, description = NOT_ASKABLE, body = ErrorBody),
        (status = 422, description = "`invalid_code`, `code_expired` or `code_exhausted`", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(member_id): Path<MemberId>,
    Body(request): Body<ConsentCode>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let now = archive.clock.now();
    let member = own_member(archive, &signed.account_id, &member_id).await?;
    ensure_askable(&member, now.date_naive())?;
    let code = presented_code(&request.code)?;
    let relation = member.relation.as_str();
    let adult = archive.repo.self_account_of(&member.id_token).await?;
    let ip = signed.context.client_ip.to_string();
    let lines = both_logs(
        &signed.account_id,
        adult.as_ref(),
        &member_id,
        now,
        &ip,
        (
            "you".into(),
            format!("your {relation} member consented by the code sent to their phone: their exams are open"),
        ),
        (
            holder_actor(&member_id, relation),
            "now sees your exams: you consented by the code sent to your phone (end it under who can see my exams)"
                .into(),
        ),
    );
    let op = ConfirmMemberConsent {
        account_id: signed.account_id.clone(),
        member_id: member_id.clone(),
        code_token: code_token(archive, &member_id),
        code_hash: code_hash(archive, &member_id, code),
        ip_bucket: keyed(archive, "code-failures-from", &ip),
        policy: archive.config.patients.otp.clone(),
        now,
        ctx: audit_context(&signed.context),
        access: lines,
    };
    let outcome = archive.repo.confirm_member_consent(op).await?;
    if !matches!(outcome, CodeOutcome::Accepted { .. }) {
        return Err(code_refused(outcome));
    }
    if let Some(adult) = adult.filter(|a| *a != signed.account_id) {
        notify_adult(archive, &adult, &signed.account_id).await;
    }
    let member = own_member(archive, &signed.account_id, &member_id).await?;
    Ok((StatusCode::OK, axum::Json(member_view(&member, now.date_naive()))).into_response())
}

/// An account that holds this account's holder, and where the holding's consent stands.
#[derive(Serialize, ToSchema)]
pub struct HolderView {
    /// The holding's id.
    #[schema(value_type = String)]
    pub id: MemberId,
    /// How the holder relates to this person: `child`, `parent`, `spouse` or `other`.
    #[schema(value_type = String)]
    pub relation: &'static str,
    /// The holding account's phone, masked.
    pub holder_phone: String,
    #[schema(format = DateTime)]
    pub added_at: String,
    /// `required`, `requested`, `given` or `ended`.
    #[schema(value_type = String)]
    pub consent: &'static str,
    /// How the consent was given (`code`, `account`).
    pub consent_via: Option<String>,
    #[schema(format = DateTime)]
    pub requested_at: Option<String>,
    #[schema(format = DateTime)]
    pub consented_at: Option<String>,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
}

fn holder_view(h: &HolderRecord) -> HolderView {
    HolderView {
        id: h.member_id.clone(),
        relation: h.relation.as_str(),
        holder_phone: mask_phone(&h.account_phone),
        added_at: stamp(h.created_at),
        consent: holding_state(&h.consent).as_str(),
        consent_via: h.consent_via.clone(),
        requested_at: h.consent.requested_at.map(stamp),
        consented_at: h.consent.consented_at.map(stamp),
        ended_at: h.consent.ended_at.map(stamp),
    }
}

#[derive(Serialize, ToSchema)]
pub struct HolderList {
    /// This account's "self" member is matched (only then can others be seen holding it).
    pub self_verified: bool,
    pub holders: Vec<HolderView>,
}

/// `GET /api/v1/me/holders`: the accounts that hold this account's holder (found through the
/// matched "self" member), with where each holding's consent stands.
#[utoipa::path(get, path = "/api/v1/me/holders",
    operation_id = "list_holders", tag = "members", security(("patient_session" = [])),
    responses((status = 200, description = "Who holds this account's holder", body = HolderList)))]
pub async fn list(State(state): State<AppState>, signed: Signed) -> Result<axum::Json<HolderList>, ApiError> {
    let archive = &state.archive;
    let members = archive.repo.members(&signed.account_id).await?;
    let verified =
        members.iter().any(|m| m.relation == cloudfilm_core::member::Relation::Myself && m.matched_at.is_some());
    let holders = archive.repo.holders(&signed.account_id).await?;
    let event = signed
        .event(Action::Query, format!("account:{}", signed.account_id), Outcome::Success)
        .with_detail(format!("holders listed ({})", holders.len()));
    archive.repo.audit(vec![event]).await?;
    Ok(axum::Json(HolderList { self_verified: verified, holders: holders.iter().map(holder_view).collect() }))
}

/// Approves (`grant`) or ends one holding of this account's holder.
async fn set_holding(
    archive: &Archive,
    signed: &Signed,
    holding_id: &MemberId,
    grant: bool,
) -> Result<HolderRecord, ApiError> {
    let holder = archive
        .repo
        .holders(&signed.account_id)
        .await?
        .into_iter()
        .find(|h| h.member_id == *holding_id)
        .ok_or_else(ApiError::not_found)?;
    let now = archive.clock.now();
    let ip = signed.context.client_ip.to_string();
    let relation = holder.relation.as_str();
    let (mine, theirs, detail) = if grant {
        (
            "approved: this account now sees your exams".to_owned(),
            format!("your {relation} member approved from their own account: their exams are open"),
            "member consent given from the member's own account",
        )
    } else {
        (
            "ended by you: this account no longer sees your exams".to_owned(),
            format!("your {relation} member ended your access from their own account: their exams are closed"),
            "holding ended by the member's own account",
        )
    };
    let access = vec![
        access(&signed.account_id, now, holder_actor(holding_id, relation), mine, format!("holding {holding_id}"), &ip),
        access(&holder.account_id, now, "the member themself".into(), theirs, format!("member {holding_id}"), &ip),
    ];
    let event = signed
        .event(Action::PatientRecord, format!("member:{holding_id}"), Outcome::Success)
        .with_detail(format!("{detail} (holder account:{})", holder.account_id));
    let op = SetHolding {
        self_account_id: signed.account_id.clone(),
        holder_member_id: holding_id.clone(),
        grant,
        now,
        access,
    };
    if archive.repo.set_holding(op, vec![event]).await?.is_err() {
        return Err(ApiError::not_found());
    }
    archive
        .repo
        .holders(&signed.account_id)
        .await?
        .into_iter()
        .find(|h| h.member_id == *holding_id)
        .ok_or_else(ApiError::not_found)
}

/// `POST /api/v1/me/holders/{id}/approve` → 200 with the holding: the adult's own yes.
#[utoipa::path(post, path = "/api/v1/me/holders/{id}/approve",
    operation_id = "approve_holding", tag = "members", params(HoldingPath),
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "Approved: the holder sees this person's exams", body = HolderView),
        (status = 403, description = CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(holding_id): Path<MemberId>,
) -> Result<axum::Json<HolderView>, ApiError> {
    let holder = set_holding(&state.archive, &signed, &holding_id, true).await?;
    Ok(axum::Json(holder_view(&holder)))
}

/// `DELETE /api/v1/me/holders/{id}` → 204: the holding ends at once (its exams, shares and
/// links close); ending needs a session, not the consent to processing.
#[utoipa::path(delete, path = "/api/v1/me/holders/{id}",
    operation_id = "end_holding", tag = "members", params(HoldingPath),
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Ended, at once"),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn end(
    State(state): State<AppState>,
    signed: Signed,
    Path(holding_id): Path<MemberId>,
) -> Result<StatusCode, ApiError> {
    set_holding(&state.archive, &signed, &holding_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
