//! What a share-scoped session sees: its one exam's detail, report and rendered images, and,
//! for a de-identified share, the instances de-identified by the PS3.15 basic profile (UIDs
//! remapped consistently within the share). Every view goes into the audit chain, the owner's
//! access log and the transfer log; a revoked or expired share ends its sessions at once.

use super::unlock::{gone, session_token};
use super::{audit_context, link_hash};
use crate::Archive;
use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::{
    Binary, CANNOT_RENDER_406, CANNOT_RENDER_422, FRAME_TOO_LARGE, INVALID_RENDERING, NO_REPORT, NO_SUCH_IMAGE,
    RenderQuery, SharedImagePath,
};
use crate::patients::PathParams;
use crate::patients::exams::{
    ExamDetail, SeriesView, deidentified_series, exam_detail, frame_param, image_row, pdf_report, rendered,
};
use crate::retrieve;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::share::ShareState;
use cloudfilm_store::patients::ExamRow;
use cloudfilm_store::sharing::{Access, ShareRow, Transfer};
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

/// A request of a live share-scoped session, with its share and exam.
pub struct ShareViewer {
    pub share: ShareRow,
    pub exam: ExamRow,
    pub context: RequestContext,
}

impl FromRequestParts<AppState> for ShareViewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let archive = &state.archive;
        let context = parts.extensions.get::<RequestContext>().cloned().expect("the request context layer runs first");
        let unauthenticated = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "share_password_required",
                "open the share link with its password first",
            )
        };
        let token = session_token(&state.archive, &parts.headers).ok_or_else(unauthenticated)?;
        let session = archive
            .repo
            .share_session(&link_hash(archive, "share-session", token))
            .await?
            .ok_or_else(unauthenticated)?;
        let now = archive.clock.now();
        match archive.config.patients.share.state(&session.share.record, now) {
            ShareState::Revoked => return Err(gone("share_revoked", "this share was revoked by its owner")),
            ShareState::Expired => return Err(gone("share_expired", "this share has expired")),
            ShareState::Active | ShareState::Locked => {}
        }
        if now >= session.expires_at {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired", "open the share link again"));
        }
        let share = &session.share;
        let exam = super::owners_exam(archive, &share.account_id, &share.member_id, &share.exam_id).await?;
        Ok(ShareViewer { share: session.share, exam, context })
    }
}

impl ShareViewer {
    fn actor(&self) -> String {
        format!("share:{}", self.share.id)
    }

    fn event(&self, action: Action, outcome: Outcome, detail: String) -> AuditEvent {
        AuditEvent::new(action, self.actor(), format!("exam:{}", self.share.exam_id), outcome)
            .with_detail(detail)
            .from_client(Some(self.context.client_ip.to_string()), Some(self.context.request_id.clone()))
    }

    /// Records a view in the audit chain, the owner's access log and the transfer log, durably,
    /// before anything is answered.
    pub async fn record(&self, archive: &Archive, action: Action, what: &str) -> Result<(), ApiError> {
        let now = archive.clock.now();
        let ctx = audit_context(&self.context);
        let access = Access {
            account_id: self.share.account_id.clone(),
            at: now,
            actor: format!("share recipient (share {})", self.share.id),
            action: what.to_owned(),
            object: format!("exam {}", self.share.exam_id),
            client_ip: ctx.client_ip.clone(),
        };
        let transfer = Transfer {
            at: now,
            account_id: self.share.account_id.clone(),
            sender: Transfer::sender(&self.exam.org_name, &self.exam.org_code),
            receiver: Transfer::receiver("share recipient", &self.share.id, ctx.client_ip.as_deref()),
            category: cloudfilm_store::sharing::share_category(self.share.deidentified).into(),
            result: format!("delivered: {what}"),
        };
        let event = self.event(action, Outcome::Success, what.to_owned());
        archive.repo.log(vec![access], vec![transfer], vec![event]).await?;
        Ok(())
    }

    fn alert(&self) -> AuditEvent {
        self.event(
            Action::SecurityAlert,
            Outcome::Failure("stored instance failed its integrity check".into()),
            "share view".into(),
        )
    }
}

/// The shared exam: as its owner sees it for a share of the original, or de-identified.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SharedExam {
    Original(SharedOriginal),
    Deidentified(SharedDeidentified),
}

/// A share of the original exam.
#[derive(Serialize, ToSchema)]
pub struct SharedOriginal {
    #[serde(flatten)]
    pub detail: ExamDetail,
    /// `false` here.
    pub deidentified: bool,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A de-identified share: no date, descriptions, organization or report.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedDeidentified {
    /// The image modalities, e.g. `CT/MR`.
    pub modality: String,
    pub report: NoReport,
    pub series: Vec<SeriesView>,
    /// `true` here.
    pub deidentified: bool,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A de-identified share has no report.
#[derive(Serialize, ToSchema)]
pub struct NoReport {
    /// `false`.
    pub available: bool,
}

/// `GET /api/v1/shared/exam`: the shared exam's detail (no report for a de-identified share).
#[utoipa::path(get, path = "/api/v1/shared/exam",
    operation_id = "shared_exam", tag = "shared", security(("share_session" = [])),
    responses((status = 200, description = "The shared exam", body = SharedExam)))]
pub async fn detail(State(state): State<AppState>, viewer: ShareViewer) -> Result<axum::Json<SharedExam>, ApiError> {
    let archive = &state.archive;
    let body = shared_exam(archive, &viewer).await?;
    viewer.record(archive, Action::PatientRecord, "viewed the exam through the share").await?;
    Ok(axum::Json(body))
}

/// The shared exam as a share-scoped session sees it (the caller records the view).
pub(crate) async fn shared_exam(
    archive: &std::sync::Arc<Archive>,
    viewer: &ShareViewer,
) -> Result<SharedExam, ApiError> {
    let expires_at = cloudfilm_core::clock::stamp(viewer.share.record.expires_at);
    Ok(if viewer.share.deidentified {
        let (modality, series) = deidentified_series(archive, &viewer.exam).await?;
        let report = NoReport { available: false };
        SharedExam::Deidentified(SharedDeidentified { modality, report, series, deidentified: true, expires_at })
    } else {
        let detail = exam_detail(archive, &viewer.exam, "/api/v1/shared/exam/report.pdf").await?;
        SharedExam::Original(SharedOriginal { detail, deidentified: false, expires_at })
    })
}

/// `GET /api/v1/shared/exam/report.pdf` (not for a de-identified share).
#[utoipa::path(get, path = "/api/v1/shared/exam/report.pdf",
    operation_id = "shared_report_pdf", tag = "shared", security(("share_session" = [])),
    responses(
        (status = 200, description = "The hospital's PDF report, inline", content((Binary = "application/pdf"))),
        (status = 404, description = NO_REPORT, body = ErrorBody),
    ))]
pub async fn report_pdf(State(state): State<AppState>, viewer: ShareViewer) -> Result<Response, ApiError> {
    if viewer.share.deidentified {
        return Err(ApiError::not_found());
    }
    viewer.record(&state.archive, Action::PatientRecord, "read the PDF report through the share").await?;
    pdf_report(&state.archive, &viewer.exam).await
}

/// `GET /api/v1/shared/exam/series/{s}/images/{n}`: a rendered frame.
#[utoipa::path(get, path = "/api/v1/shared/exam/series/{series}/images/{n}",
    operation_id = "shared_image", tag = "shared",
    params(SharedImagePath, RenderQuery), security(("share_session" = [])),
    responses(
        (status = 200, description = "The frame rendered", content((Binary = "image/jpeg"), (Binary = "image/png"))),
        (status = 400, description = INVALID_RENDERING, body = ErrorBody),
        (status = 404, description = NO_SUCH_IMAGE, body = ErrorBody),
        (status = 406, description = CANNOT_RENDER_406, body = ErrorBody),
        (status = 413, description = FRAME_TOO_LARGE, body = ErrorBody),
        (status = 422, description = CANNOT_RENDER_422, body = ErrorBody),
    ))]
pub async fn image(
    State(state): State<AppState>,
    viewer: ShareViewer,
    PathParams((series_no, image_no)): PathParams<(usize, usize)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let row = image_row(archive, &viewer.exam, series_no, image_no).await?;
    let frame = frame_param(&row, &params)?;
    let event = viewer.event(
        Action::InstancesAccessed,
        Outcome::Success,
        format!("image {series_no}/{image_no} frame {frame} viewed through the share"),
    );
    archive.repo.audit(vec![event]).await?;
    rendered(archive, row, frame, &params, &headers, viewer.alert()).await
}

/// `GET /api/v1/shared/exam/series/{s}/images/{n}/dicom`: the instance de-identified, for a
/// de-identified share only (a share of the original is for viewing; originals are
/// downloaded by the account holder behind a security code).
#[utoipa::path(get, path = "/api/v1/shared/exam/series/{series}/images/{n}/dicom",
    operation_id = "shared_deidentified_instance", tag = "shared",
    params(SharedImagePath), security(("share_session" = [])),
    responses(
        (status = 200, description = "The instance de-identified (PS3.15 basic profile)",
            content((Binary = "application/dicom"))),
        (status = 404, description = "`not_found`: no such image, or the share is of the original", body = ErrorBody),
        (status = 422, description = "`cannot_decode`: the stored instance cannot be read here", body = ErrorBody),
    ))]
pub async fn deidentified_instance(
    State(state): State<AppState>,
    viewer: ShareViewer,
    PathParams((series_no, image_no)): PathParams<(usize, usize)>,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    if !viewer.share.deidentified {
        return Err(ApiError::not_found());
    }
    let row = image_row(archive, &viewer.exam, series_no, image_no).await?;
    viewer.record(archive, Action::Export, &format!("downloaded de-identified image {series_no}/{image_no}")).await?;
    let reader = archive.clone();
    let share_id = viewer.share.id.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let original = retrieve::whole(&reader, &row)?;
        let uids = ShareUids { archive: &reader, share_id: &share_id };
        cloudfilm_dicom::deid::deidentify_bytes(&original, &uids).map_err(|e| {
            tracing::error!(error = %e, "an instance could not be de-identified");
            ApiError::internal()
        })
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"image-{series_no}-{image_no}.dcm\"")).expect("ascii"),
    );
    Ok(response)
}

/// UIDs of a de-identified share: `2.25.` and 128 bits of a keyed hash of the share and the
/// original UID, so the same UID maps alike across the share's instances and differently in
/// another share.
struct ShareUids<'a> {
    archive: &'a Archive,
    share_id: &'a str,
}

impl cloudfilm_dicom::deid::UidMapper for ShareUids<'_> {
    fn map(&self, uid: &str) -> String {
        let digest = crate::patients::keyed(self.archive, "deid-uid", &format!("{}\0{uid}", self.share_id));
        let mut n = [0u8; 16];
        n.copy_from_slice(&digest[..16]);
        format!("2.25.{}", u128::from_be_bytes(n))
    }
}
