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
use crate::error::ErrorBody;
use crate::openapi::{
    Binary, CANNOT_RENDER_406, CANNOT_RENDER_422, ExamPath, FRAME_TOO_LARGE, INVALID_RENDERING, ImagePath,
    MEMBER_CONSENT_REQUIRED, MemberPath, NO_REPORT, NO_SUCH_IMAGE, NOT_FOUND, RenderQuery,
};
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
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

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

/// An exam as a member's list shows it.
#[derive(Serialize, ToSchema)]
pub struct ExamSummary {
    pub id: String,
    /// The organization's name.
    pub organization: String,
    /// The image modalities, e.g. `CT/MR`.
    pub modality: String,
    /// `YYYY-MM-DD` (as stored when it is not a DICOM date).
    pub date: Option<String>,
    pub description: Option<String>,
    pub accession_number: Option<String>,
}

fn exam_summary(exam: &ExamRow) -> ExamSummary {
    ExamSummary {
        id: exam.exam_id.clone(),
        organization: exam.org_name.clone(),
        modality: image_modalities(&exam.modalities),
        date: display_date(&exam.date),
        description: exam.description.clone(),
        accession_number: exam.accession_number.clone(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ExamList {
    /// Newest first.
    pub exams: Vec<ExamSummary>,
}

/// `GET /api/v1/members/{id}/exams`.
#[utoipa::path(get, path = "/api/v1/members/{id}/exams", operation_id = "list_exams", tag = "exams", params(MemberPath),
    security(("patient_session" = [])),
    responses(
        (status = 200, description = "The member's exams, newest first", body = ExamList),
        (status = 403, description = MEMBER_CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(member_id): Path<MemberId>,
) -> Result<axum::Json<ExamList>, ApiError> {
    let archive = &state.archive;
    let member = own_member(archive, &signed.account_id, &member_id).await?;
    ensure_open(&member, archive.clock.now().date_naive())?;
    let exams = archive.repo.visible_exams(&signed.account_id, Some(&member_id), None).await?;
    let event = signed
        .event(Action::Query, format!("member:{member_id}"), Outcome::Success)
        .with_detail(format!("exam list viewed ({} exams)", exams.len()));
    let what = format!("viewed your exam list ({} exams)", exams.len());
    record_read(archive, &signed, &member_id, event, &what, "your exams".into()).await?;
    Ok(axum::Json(ExamList { exams: exams.iter().map(exam_summary).collect() }))
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

/// A window a viewer may start from.
#[derive(Serialize, ToSchema)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

/// An image series of an exam.
#[derive(Serialize, ToSchema)]
pub struct SeriesView {
    /// 1-based, as image URLs name the series.
    pub id: String,
    pub modality: Option<String>,
    pub number: Option<i64>,
    /// Images in the series.
    pub images: usize,
    /// Frames of each image.
    pub frames: Vec<u32>,
    /// The window the first image proposes.
    pub window: Option<Window>,
    /// Identified views only (absent from a de-identified share).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Identified views only (absent from a de-identified share).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub body_part: Option<Option<String>>,
}

/// The report of an exam.
#[derive(Serialize, ToSchema)]
pub struct ReportView {
    /// Text or a PDF exists.
    pub available: bool,
    pub text: Option<String>,
    /// The PDF report's URL.
    pub pdf: Option<String>,
}

/// An exam's detail as the patient, or the recipient of a share of the original, sees it.
#[derive(Serialize, ToSchema)]
pub struct ExamDetail {
    #[serde(flatten)]
    pub exam: ExamSummary,
    pub time: Option<String>,
    pub report: ReportView,
    pub series: Vec<SeriesView>,
}

/// The image series of an exam (from its instances `rows`); a de-identified view (`identified`
/// false) leaves out the descriptions, as the PS3.15 basic profile does.
async fn series_views(
    archive: &std::sync::Arc<Archive>,
    rows: &[InstanceRow],
    summaries: &[SeriesSummary],
    identified: bool,
) -> Result<Vec<SeriesView>, ApiError> {
    let series = image_series(rows, summaries);
    let windows = default_windows(archive, &series).await?;
    Ok(series
        .iter()
        .zip(windows)
        .enumerate()
        .map(|(i, (images, window))| {
            let summary = summaries.iter().find(|s| s.series_uid == images[0].series_uid);
            SeriesView {
                id: (i + 1).to_string(),
                modality: summary.and_then(|s| s.modality.clone()),
                number: summary.and_then(|s| s.number),
                images: images.len(),
                frames: images.iter().map(|r| r.attrs.frames.max(1)).collect(),
                window: window.map(|(center, width)| Window { center, width }),
                description: identified.then(|| summary.and_then(|s| s.description.clone())),
                body_part: identified.then(|| summary.and_then(|s| s.body_part.clone())),
            }
        })
        .collect())
}

/// An exam's detail: what it is, its image series and its report.
pub(crate) async fn exam_detail(
    archive: &std::sync::Arc<Archive>,
    exam: &ExamRow,
    report_pdf_url: &str,
) -> Result<ExamDetail, ApiError> {
    let (rows, summaries) = contents(archive, exam).await?;
    let series = series_views(archive, &rows, &summaries, true).await?;
    let (texts, has_pdf) = report_of(archive, exam, &rows).await?;
    let report = ReportView {
        available: !texts.is_empty() || has_pdf,
        text: (!texts.is_empty()).then(|| texts.join("\n\n")),
        pdf: has_pdf.then(|| report_pdf_url.to_owned()),
    };
    Ok(ExamDetail { exam: exam_summary(exam), time: exam.time.clone(), report, series })
}

/// A de-identified view of an exam: its modalities and image series, without the date, the
/// descriptions and the organization.
pub(crate) async fn deidentified_series(
    archive: &std::sync::Arc<Archive>,
    exam: &ExamRow,
) -> Result<(String, Vec<SeriesView>), ApiError> {
    let (rows, summaries) = contents(archive, exam).await?;
    Ok((image_modalities(&exam.modalities), series_views(archive, &rows, &summaries, false).await?))
}

/// An exam as the patient sees it.
#[derive(Serialize, ToSchema)]
pub struct PatientExam {
    #[serde(flatten)]
    pub detail: ExamDetail,
    /// The member through whom the exam is seen.
    #[schema(value_type = String)]
    pub member_id: MemberId,
    /// The organization offers downloads of the original DICOM.
    pub download_allowed: bool,
    #[schema(format = DateTime)]
    pub viewed_at: String,
}

/// `GET /api/v1/exams/{id}`: the exam with its report and image series.
#[utoipa::path(get, path = "/api/v1/exams/{id}", operation_id = "exam_detail", tag = "exams", params(ExamPath),
    security(("patient_session" = [])),
    responses(
        (status = 200, description = "The exam with its report and image series", body = PatientExam),
        (status = 403, description = MEMBER_CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NOT_FOUND, body = ErrorBody),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    Patient(signed): Patient,
    Path(exam_id): Path<String>,
) -> Result<axum::Json<PatientExam>, ApiError> {
    let archive = &state.archive;
    let (member_id, exam) = visible_exam(archive, &signed, &exam_id).await?;
    let detail = exam_detail(archive, &exam, &format!("/api/v1/exams/{exam_id}/report.pdf")).await?;
    let event = signed
        .event(Action::PatientRecord, format!("exam:{exam_id}"), Outcome::Success)
        .with_detail(format!("exam viewed through member:{member_id}"));
    record_read(archive, &signed, &member_id, event, "viewed the exam", format!("exam {exam_id}")).await?;
    Ok(axum::Json(PatientExam {
        detail,
        member_id,
        download_allowed: exam.download_enabled,
        viewed_at: stamp(archive.clock.now()),
    }))
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
#[utoipa::path(get, path = "/api/v1/exams/{id}/series/{series}/images/{n}", operation_id = "exam_image", tag = "exams",
    params(ImagePath, RenderQuery), security(("patient_session" = [])),
    responses(
        (status = 200, description = "The frame rendered", content((Binary = "image/jpeg"), (Binary = "image/png"))),
        (status = 400, description = INVALID_RENDERING, body = ErrorBody),
        (status = 403, description = MEMBER_CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NO_SUCH_IMAGE, body = ErrorBody),
        (status = 406, description = CANNOT_RENDER_406, body = ErrorBody),
        (status = 413, description = FRAME_TOO_LARGE, body = ErrorBody),
        (status = 422, description = CANNOT_RENDER_422, body = ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/api/v1/exams/{id}/report.pdf",
    operation_id = "exam_report_pdf", tag = "exams", params(ExamPath),
    security(("patient_session" = [])),
    responses(
        (status = 200, description = "The hospital's PDF report, inline", content((Binary = "application/pdf"))),
        (status = 403, description = MEMBER_CONSENT_REQUIRED, body = ErrorBody),
        (status = 404, description = NO_REPORT, body = ErrorBody),
    ))]
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
