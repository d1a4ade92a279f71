//! Exams as a patient sees them: the list of a member (newest first), the detail with report
//! and series, rendered images and PDF reports. An exam is reachable only through a matched
//! member of the account, while its organization's service is on; any other id gets 404.

use super::PathParams;
use super::holding::{consent_required, ensure_open, member_consent, record_read};
use super::members::own_member;
use super::session::{Patient, Signed};
use crate::Archive;
use crate::app::AppState;
use crate::dicomweb::wado;
use crate::error::ApiError;
use crate::retrieve;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::MemberId;
use cloudfilm_core::clock::stamp;
use cloudfilm_core::instance::{InstanceRow, PixelLayout};
use cloudfilm_dicom::report;
use cloudfilm_store::patients::{ExamRow, SeriesSummary};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `YYYYMMDD` → `YYYY-MM-DD`; anything else as stored.
fn display_date(date: &Option<String>) -> Option<String> {
    date.as_deref().map(|d| match d.len() {
        8 if d.bytes().all(|b| b.is_ascii_digit()) => format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]),
        _ => d.to_owned(),
    })
}

/// The modalities of the images (`CT/MR`), without those of reports and other documents.
fn image_modalities(modalities: &str) -> String {
    let documents = ["SR", "DOC", "KO", "PR", "OT"];
    modalities.split('\\').filter(|m| !m.is_empty() && !documents.contains(m)).collect::<Vec<_>>().join("/")
}

fn exam_json(exam: &ExamRow) -> Value {
    json!({
        "id": exam.exam_id,
        "organization": exam.org_name,
        "modality": image_modalities(&exam.modalities),
        "date": display_date(&exam.date),
        "description": exam.description,
        "accession_number": exam.accession_number,
    })
}

/// `GET /api/v1/members/{id}/exams`.
pub async fn list(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(member_id): Path<MemberId>,
) -> Result<axum::Json<Value>, ApiError> {
    let archive = &state.archive;
    let member = own_member(archive, &signed.account_id, &member_id).await?;
    ensure_open(&member, archive.clock.now().date_naive())?;
    let exams = archive.repo.visible_exams(&signed.account_id, Some(&member_id), None).await?;
    let event = signed
        .event(Action::Query, format!("member:{member_id}"), Outcome::Success)
        .with_detail(format!("exam list viewed ({} exams)", exams.len()));
    let what = format!("viewed your exam list ({} exams)", exams.len());
    record_read(archive, &signed, &member_id, event, &what, "your exams".into()).await?;
    Ok(axum::Json(json!({ "exams": exams.iter().map(exam_json).collect::<Vec<_>>() })))
}

/// The exam with this id as one of the account's members sees it, with that member's id; 403
/// `member_consent_required` when only members without the consent they need would see it.
pub(crate) async fn visible_exam(
    archive: &Archive,
    signed: &Signed,
    exam_id: &str,
) -> Result<(MemberId, ExamRow), ApiError> {
    if exam_id.len() != 32 || !exam_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found());
    }
    let today = archive.clock.now().date_naive();
    let mut closed = Vec::new();
    for member in archive.repo.members(&signed.account_id).await? {
        if member.matched_at.is_none() {
            continue;
        }
        if !member_consent(&member, today).opens_exams() {
            closed.push(member.id);
            continue;
        }
        let mut found = archive.repo.visible_exams(&signed.account_id, Some(&member.id), Some(exam_id)).await?;
        if let Some(exam) = found.pop() {
            return Ok((member.id, exam));
        }
    }
    if !closed.is_empty() {
        let holders = archive.repo.exam_members_ignoring_consent(&signed.account_id, exam_id).await?;
        if holders.iter().any(|m| closed.contains(m)) {
            return Err(consent_required());
        }
    }
    Err(ApiError::not_found())
}

/// The exam's instances and its series, read once per request.
async fn contents(archive: &Archive, exam: &ExamRow) -> Result<(Vec<InstanceRow>, Vec<SeriesSummary>), ApiError> {
    let rows = archive.repo.instances(exam.org_id, &exam.study_uid, None, None).await?;
    Ok((rows, archive.repo.exam_series(exam.study_pk).await?))
}

/// The instances with pixel data, grouped by series in display order.
fn image_series(rows: &[InstanceRow], summaries: &[SeriesSummary]) -> Vec<Vec<InstanceRow>> {
    let mut series: Vec<Vec<InstanceRow>> = Vec::new();
    for summary in summaries {
        let images: Vec<InstanceRow> = rows
            .iter()
            .filter(|r| r.series_uid == summary.series_uid && !matches!(r.layout, PixelLayout::None))
            .cloned()
            .collect();
        if !images.is_empty() {
            series.push(images);
        }
    }
    series
}

/// Report text: what the hospital attached as JSON, then the text of SR instances; and
/// whether a PDF report exists.
async fn report_of(
    archive: &std::sync::Arc<Archive>,
    exam: &ExamRow,
    rows: &[InstanceRow],
) -> Result<(Vec<String>, bool), ApiError> {
    let mut texts: Vec<String> = archive.repo.reports(exam.study_pk).await?.into_iter().map(|r| r.body).collect();
    let has_pdf = rows.iter().any(|r| r.sop_class_uid == report::ENCAPSULATED_PDF);
    let structured: Vec<InstanceRow> =
        rows.iter().filter(|r| report::is_structured_report(&r.sop_class_uid)).take(8).cloned().collect();
    if !structured.is_empty() {
        let archive = archive.clone();
        let extracted = tokio::task::spawn_blocking(move || {
            structured
                .iter()
                .filter_map(|row| retrieve::header(&archive, row).ok())
                .map(|obj| report::sr_text(&obj))
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|_| ApiError::internal())?;
        texts.extend(extracted);
    }
    Ok((texts, has_pdf))
}

/// The window each series' first image proposes, for a viewer to start from.
async fn default_windows(
    archive: &std::sync::Arc<Archive>,
    series: &[Vec<InstanceRow>],
) -> Result<Vec<Option<(f64, f64)>>, ApiError> {
    let firsts: Vec<InstanceRow> = series.iter().map(|images| images[0].clone()).collect();
    let reader = archive.clone();
    tokio::task::spawn_blocking(move || {
        firsts
            .iter()
            .map(|row| retrieve::header(&reader, row).ok().and_then(|h| cloudfilm_dicom::render::default_window(&h)))
            .collect()
    })
    .await
    .map_err(|_| ApiError::internal())
}

/// An exam's detail: what it is, its image series and, when `with_report`, its report.
/// A de-identified view (`identified` false) leaves out the date, the descriptions and the
/// organization, as the PS3.15 basic profile does.
pub(crate) async fn exam_body(
    archive: &std::sync::Arc<Archive>,
    exam: &ExamRow,
    identified: bool,
    report_pdf_url: &str,
) -> Result<Value, ApiError> {
    let (rows, summaries) = contents(archive, exam).await?;
    let series = image_series(&rows, &summaries);
    let windows = default_windows(archive, &series).await?;
    let series_json: Vec<Value> = series
        .iter()
        .zip(windows)
        .enumerate()
        .map(|(i, (images, window))| {
            let summary = summaries.iter().find(|s| s.series_uid == images[0].series_uid);
            let mut entry = json!({
                "id": (i + 1).to_string(),
                "modality": summary.and_then(|s| s.modality.clone()),
                "number": summary.and_then(|s| s.number),
                "images": images.len(),
                "frames": images.iter().map(|r| r.attrs.frames.max(1)).collect::<Vec<_>>(),
                "window": window.map(|(center, width)| json!({ "center": center, "width": width })),
            });
            if identified {
                entry["description"] = json!(summary.and_then(|s| s.description.clone()));
                entry["body_part"] = json!(summary.and_then(|s| s.body_part.clone()));
            }
            entry
        })
        .collect();
    let mut body = if identified {
        let (texts, has_pdf) = report_of(archive, exam, &rows).await?;
        let mut body = exam_json(exam);
        body["time"] = json!(exam.time);
        body["report"] = json!({
            "available": !texts.is_empty() || has_pdf,
            "text": (!texts.is_empty()).then(|| texts.join("\n\n")),
            "pdf": has_pdf.then(|| report_pdf_url.to_owned()),
        });
        body
    } else {
        json!({ "modality": image_modalities(&exam.modalities), "report": { "available": false } })
    };
    body["series"] = json!(series_json);
    Ok(body)
}

/// `GET /api/v1/exams/{id}`: the exam with its report and image series.
pub async fn detail(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(exam_id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let archive = &state.archive;
    let (member_id, exam) = visible_exam(archive, &signed, &exam_id).await?;
    let mut body = exam_body(archive, &exam, true, &format!("/api/v1/exams/{exam_id}/report.pdf")).await?;
    let event = signed
        .event(Action::PatientRecord, format!("exam:{exam_id}"), Outcome::Success)
        .with_detail(format!("exam viewed through member:{member_id}"));
    record_read(archive, &signed, &member_id, event, "viewed the exam", format!("exam {exam_id}")).await?;
    body["member_id"] = json!(member_id);
    body["download_allowed"] = json!(exam.download_enabled);
    body["viewed_at"] = json!(stamp(archive.clock.now()));
    Ok(axum::Json(body))
}

/// Image `image_no` of series `series_no` (both 1-based, as the detail lists them).
pub(crate) async fn image_row(
    archive: &Archive,
    exam: &ExamRow,
    series_no: usize,
    image_no: usize,
) -> Result<InstanceRow, ApiError> {
    let (rows, summaries) = contents(archive, exam).await?;
    image_series(&rows, &summaries)
        .get(series_no.wrapping_sub(1))
        .and_then(|images| images.get(image_no.wrapping_sub(1)))
        .cloned()
        .ok_or_else(ApiError::not_found)
}

/// The frame `?frame=k` (default 1) of an image, checked against its frame count.
pub(crate) fn frame_param(row: &InstanceRow, params: &HashMap<String, String>) -> Result<u32, ApiError> {
    match params.get("frame") {
        None => Ok(1),
        Some(f) => {
            f.parse::<u32>().ok().filter(|f| (1..=wado::frame_count(row)).contains(f)).ok_or_else(ApiError::not_found)
        }
    }
}

/// Renders a frame for a viewer, never cached by shared caches.
pub(crate) async fn rendered(
    archive: &std::sync::Arc<Archive>,
    row: InstanceRow,
    frame: u32,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    alert: cloudfilm_audit::AuditEvent,
) -> Result<Response, ApiError> {
    let options = wado::render_options(params, headers, false)?;
    let mut response = wado::render_frame(archive, alert, row, frame, options).await?;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// `GET /api/v1/exams/{id}/series/{series}/images/{n}[?window=center,width][&frame=k]`.
pub async fn image(
    State(state): State<AppState>,
    Patient(signed): Patient,
    PathParams((exam_id, series_no, image_no)): PathParams<(String, usize, usize)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let (member_id, exam) = visible_exam(archive, &signed, &exam_id).await?;
    let row = image_row(archive, &exam, series_no, image_no).await?;
    let frame = frame_param(&row, &params)?;
    let event = signed
        .event(Action::InstancesAccessed, format!("exam:{exam_id}"), Outcome::Success)
        .with_detail(format!("image {series_no}/{image_no} frame {frame} viewed through member:{member_id}"));
    archive.repo.audit(vec![event]).await?;
    let alert = signed.event(
        Action::SecurityAlert,
        format!("exam:{exam_id}"),
        Outcome::Failure("stored instance failed its integrity check".into()),
    );
    rendered(archive, row, frame, &params, &headers, alert).await
}

/// `GET /api/v1/exams/{id}/report.pdf`: the hospital's PDF report.
pub async fn report_pdf(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(exam_id): Path<String>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let (member_id, exam) = visible_exam(archive, &signed, &exam_id).await?;
    let event = signed
        .event(Action::PatientRecord, format!("exam:{exam_id}"), Outcome::Success)
        .with_detail(format!("PDF report viewed through member:{member_id}"));
    record_read(archive, &signed, &member_id, event, "viewed the PDF report", format!("exam {exam_id}")).await?;
    pdf_report(archive, &exam).await
}

/// The hospital's PDF report of an exam, inline.
pub(crate) async fn pdf_report(archive: &std::sync::Arc<Archive>, exam: &ExamRow) -> Result<Response, ApiError> {
    let rows = archive.repo.instances(exam.org_id, &exam.study_uid, None, None).await?;
    let row = rows.into_iter().find(|r| r.sop_class_uid == report::ENCAPSULATED_PDF).ok_or_else(ApiError::not_found)?;
    let reader = archive.clone();
    let pdf = tokio::task::spawn_blocking(move || {
        retrieve::header(&reader, &row).ok().and_then(|o| report::encapsulated_pdf(&o))
    })
    .await
    .map_err(|_| ApiError::internal())?
    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no_report", "the report document could not be read"))?;
    let mut response = (StatusCode::OK, pdf).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline; filename=\"report.pdf\""));
    Ok(response)
}
