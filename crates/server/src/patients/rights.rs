//! The data subject's rights (DESIGN §3): requests with a due date on the working-day calendar
//! (S34), and the export of the account's data — JSON and the original DICOM of every exam it
//! may see — as one signed zip, after a fresh step-up (it holds unmasked values). These rights
//! outlast a withdrawn consent (PIPL art. 15, 44–47): they need a session, not the consent.

use super::json::Body;
use super::session::{Signed, step_up_required};
use crate::app::AppState;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::Binary;
use crate::shared::package::{self, Contents, Purpose};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::clock::stamp;
use cloudfilm_core::rights::RequestKind;
use cloudfilm_store::patients::DataRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct NewRequest {
    /// `access`, `copy`, `correction`, `deletion`, `withdraw_consent` or `access_log`.
    #[schema(example = "correction")]
    kind: String,
    /// At most 2000 characters.
    #[serde(default)]
    detail: String,
}

/// A data-subject request with its status and due date.
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub kind: String,
    /// `open`, `in_progress`, `done` or `refused`.
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// On the working-day calendar.
    #[schema(format = Date)]
    pub due_date: String,
}

fn request_view(r: &DataRequest) -> RequestView {
    RequestView {
        id: r.id.clone(),
        kind: r.kind.clone(),
        status: r.status.clone(),
        created_at: stamp(r.created_at),
        due_date: r.due_date.to_string(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestView>,
}

/// `POST /api/v1/me/requests {"kind", "detail"}` → 201 with the due date.
#[utoipa::path(post, path = "/api/v1/me/requests",
    operation_id = "file_request", tag = "rights", request_body = NewRequest,
    security(("patient_session" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "Filed, with its due date", body = RequestView),
        (status = 422, description = "`invalid_kind` or `detail_too_long`", body = ErrorBody),
    ))]
pub async fn file_request(
    State(state): State<AppState>,
    signed: Signed,
    Body(body): Body<NewRequest>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let kinds = RequestKind::ALL.map(RequestKind::as_str).join(", ");
    let kind = RequestKind::parse(&body.kind).ok_or_else(|| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_kind", format!("the kind is one of {kinds}"))
    })?;
    if body.detail.chars().count() > 2000 {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "detail_too_long", "at most 2000 characters"));
    }
    let now = archive.clock.now();
    let request = DataRequest {
        id: cloudfilm_crypto::random::hex_id(),
        account_id: signed.account_id.clone(),
        kind: kind.as_str().into(),
        detail: body.detail,
        created_at: now,
        due_date: archive.config.patients.calendar.due_date(kind, now.date_naive()),
        status: "open".into(),
    };
    let view = request_view(&request);
    let event = signed
        .event(Action::PatientRecord, format!("request:{}", request.id), Outcome::Success)
        .with_detail(format!("data-subject request filed: {}", kind.as_str()));
    archive.repo.file_request(request, vec![event]).await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// `GET /api/v1/me/requests`: the account's requests with status and due date.
#[utoipa::path(get, path = "/api/v1/me/requests",
    operation_id = "list_requests", tag = "rights", security(("patient_session" = [])),
    responses((status = 200, description = "The account's requests", body = RequestList)))]
pub async fn list_requests(State(state): State<AppState>, signed: Signed) -> Result<axum::Json<RequestList>, ApiError> {
    let requests = state.archive.repo.data_requests(&signed.account_id).await?;
    Ok(axum::Json(RequestList { requests: requests.iter().map(request_view).collect() }))
}

/// `GET /api/v1/me/export`: the account's data as a zip (after a step-up).
#[utoipa::path(get, path = "/api/v1/me/export",
    operation_id = "export", tag = "rights", security(("patient_session" = [])),
    responses(
        (status = 200, description = "The account's data (JSON, and the original DICOM of every exam it may \
            see) as a signed zip, streamed", content((Binary = "application/zip"))),
        (status = 403, description = "`step_up_required`: a fresh one-time code first", body = ErrorBody),
    ))]
pub async fn export(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let archive = &state.archive;
    if !signed.stepped_up {
        return Err(step_up_required("before exporting your data"));
    }
    let repo = &archive.repo;
    let account = repo.account(&signed.account_id).await?.ok_or_else(ApiError::not_found)?;
    let consents = repo.consents(&signed.account_id).await?;
    let members = repo.members(&signed.account_id).await?;
    let mut exams = Vec::new();
    let mut listed = Vec::new();
    let today = archive.clock.now().date_naive();
    let open = |m: &&cloudfilm_store::patients::MemberRecord| {
        m.matched_at.is_some() && super::holding::member_consent(m, today).opens_exams()
    };
    for member in members.iter().filter(open) {
        for exam in repo.visible_exams(&signed.account_id, Some(&member.id), None).await? {
            if exams.iter().any(|(_, e): &(String, cloudfilm_store::patients::ExamRow)| e.exam_id == exam.exam_id) {
                continue;
            }
            listed.push(json!({
                "id": exam.exam_id, "member_id": member.id, "organization": exam.org_name,
                "modalities": exam.modalities, "date": exam.date, "description": exam.description,
                "accession_number": exam.accession_number, "folder": format!("exams/{}/", exam.exam_id),
            }));
            exams.push((format!("exams/{}/", exam.exam_id), exam));
        }
    }
    let json_file = |name: &str, value: Value| (name.to_owned(), serde_json::to_vec_pretty(&value).expect("JSON"));
    let files = vec![
        json_file(
            "account.json",
            json!({
                "id": account.id, "phone": account.phone, "created_at": stamp(account.created_at),
                "consents": consents.events.iter().map(|e| json!({ "kind": e.kind, "policy_version": e.policy_version, "granted": e.granted, "at": stamp(e.at) })).collect::<Vec<_>>(),
            }),
        ),
        json_file(
            "members.json",
            json!(
                members
                    .iter()
                    .map(|m| json!({
                        "id": m.id, "name": m.name, "id_number": m.id_number, "relation": m.relation.as_str(),
                        "created_at": stamp(m.created_at), "matched_at": m.matched_at.map(stamp),
                    }))
                    .collect::<Vec<_>>()
            ),
        ),
        json_file("exams.json", json!(listed)),
        json_file(
            "access-log.json",
            json!(repo.access_log(&signed.account_id, 100_000).await?.iter().map(|a| json!({
            "at": stamp(a.at), "who": a.actor, "what": a.action, "object": a.object, "client_ip": a.client_ip,
        })).collect::<Vec<_>>()),
        ),
        json_file(
            "transfers.json",
            json!(repo.transfers(&signed.account_id, 100_000).await?.iter().map(|t| json!({
            "at": stamp(t.at), "sender": t.sender, "receiver": t.receiver, "category": t.category, "result": t.result,
        })).collect::<Vec<_>>()),
        ),
        json_file(
            "requests.json",
            json!(repo.data_requests(&signed.account_id).await?.iter().map(request_view).collect::<Vec<_>>()),
        ),
    ];
    let event = signed.event(Action::Export, format!("account:{}", signed.account_id), Outcome::Success);
    archive
        .repo
        .audit(vec![event.clone().with_detail(format!("account export started ({} exams)", exams.len()))])
        .await?;
    let contents =
        Contents { files, exams, organization: String::new(), label: format!("account {}", signed.account_id) };
    Ok(package::stream(archive.clone(), "cloudfilm-export.zip", contents, Purpose::Export { event }))
}
