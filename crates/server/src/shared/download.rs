//! Opening a download link with its security code: the verdict is taken inside the single
//! writer (racing attempts are counted one after the other; after ten wrong codes the right
//! one still works, the eleventh wrong one ends the link for good), then the package streams.

use super::package::{self, Contents, Purpose};
use super::pages::download_refused;
use super::{LinkBody, audit_context, check_address, failures_from, link_hash, unknown_link, well_formed};
use crate::app::{AppState, RequestContext};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::{Binary, LINK_NOT_FOUND, TokenPath};
use crate::patients::sharing::download_disabled;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cloudfilm_core::download::DownloadVerdict;
use cloudfilm_store::sharing::TryDownload;
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[schema(as = DownloadCode)]
pub struct CodeRequest {
    /// The security code texted to the account holder.
    #[schema(example = "123456")]
    code: String,
}

/// `POST /api/v1/downloads/{token} {"code"}` → `application/zip` of the original DICOM files
/// with a DICOMDIR and a signed manifest; the page's form posts here too (refusals of the form
/// answer with the page again, as HTML).
#[utoipa::path(post, path = "/api/v1/downloads/{token}", operation_id = "download", tag = "shared", params(TokenPath),
    request_body(content((CodeRequest = "application/json"), (CodeRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The original DICOM files with a DICOMDIR and a signed manifest, streamed",
            content((Binary = "application/zip"))),
        (status = 400, description = "`invalid_form`: the form lacks a field", body = ErrorBody),
        (status = 401, description = "`wrong_code`", content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 403, description = "`download_disabled`: the organization no longer offers downloads",
            content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 404, description = LINK_NOT_FOUND, content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 410, description = "`link_expired` (after 30 minutes), `link_invalidated` (more than 10 wrong \
            codes) or `exam_unavailable`", content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 422, description = "`invalid_code`: enter the code",
            content((ErrorBody = "application/json"), (String = "text/html"))),
        (status = 429, description = "`rate_limited`: too many failures from this address",
            content((ErrorBody = "application/json"), (String = "text/html"))),
    ))]
pub async fn download(
    State(state): State<AppState>,
    Extension(context): Extension<RequestContext>,
    Path(token): Path<String>,
    LinkBody(request, from_form): LinkBody<CodeRequest>,
) -> Result<Response, Response> {
    let refused = |e: ApiError| if from_form { download_refused(&token, e) } else { e.into_response() };
    let (exam, link) = check_code(&state, &context, &token, &request.code).await.map_err(refused)?;
    let contents = Contents {
        files: Vec::new(),
        organization: exam.org_code.clone(),
        label: exam.exam_id.clone(),
        exams: vec![(String::new(), exam)],
    };
    let file_name = format!("exam-{}.zip", contents.label);
    Ok(package::stream(state.archive.clone(), &file_name, contents, Purpose::Download { context, link }))
}

async fn check_code(
    state: &AppState,
    context: &RequestContext,
    token: &str,
    code: &str,
) -> Result<(cloudfilm_store::patients::ExamRow, cloudfilm_store::sharing::DownloadRow), ApiError> {
    let archive = &state.archive;
    let policy = archive.config.patients.download.clone();
    check_address(archive, context, policy.wrong_codes_per_ip_hour).await?;
    let link = match well_formed(token) {
        true => archive.repo.download_by_token(&link_hash(archive, "download-link", token)).await?,
        false => None,
    };
    let Some(link) = link else { return Err(unknown_link(archive, context).await?) };
    let code = code.trim();
    if code.is_empty() || code.len() > 16 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
            "enter the security code from the text message",
        ));
    }
    let op = TryDownload {
        download_id: link.id.clone(),
        code_hash: super::download_code_hash(archive, &link.id, code),
        ip_bucket: failures_from(archive, context),
        policy,
        now: archive.clock.now(),
        ctx: audit_context(context),
    };
    let Some(verdict) = archive.repo.try_download(op).await? else {
        return Err(unknown_link(archive, context).await?);
    };
    match verdict {
        Some(DownloadVerdict::Accepted) => {}
        Some(DownloadVerdict::Wrong { invalidates: false }) => {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong_code", "the security code is wrong"));
        }
        Some(DownloadVerdict::Wrong { invalidates: true } | DownloadVerdict::Invalidated) => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "link_invalidated",
                "too many wrong security codes: this link no longer works; request a new one",
            ));
        }
        Some(DownloadVerdict::Expired) => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "link_expired",
                "this download link has expired (links live 30 minutes); request a new one",
            ));
        }
        None => return Err(ApiError::rate_limited(3600)),
    }
    let exam = super::owners_exam(archive, &link.account_id, &link.member_id, &link.exam_id).await?;
    if !exam.download_enabled {
        return Err(download_disabled());
    }
    Ok((exam, link))
}
