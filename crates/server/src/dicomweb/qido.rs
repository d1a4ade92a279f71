//! QIDO-RS (PS3.18 §10.6) at study, series and instance level, and the nested forms.

use super::{base_url, path_uid};
use crate::app::AppState;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, Outcome};
use cloudfilm_core::OrgId;
use cloudfilm_core::instance::ResultRow;
use cloudfilm_core::query::{Level, Query};
use cloudfilm_dicom::json;
use cloudfilm_dicom::query::{QidoError, parse_qido};
use std::sync::Arc;

pub async fn studies(s: State<AppState>, a: OrgAuth, q: RawQuery, h: HeaderMap) -> Result<Response, ApiError> {
    search(s, a, Level::Study, None, None, q, h).await
}

pub async fn series(s: State<AppState>, a: OrgAuth, q: RawQuery, h: HeaderMap) -> Result<Response, ApiError> {
    search(s, a, Level::Series, None, None, q, h).await
}

pub async fn instances(s: State<AppState>, a: OrgAuth, q: RawQuery, h: HeaderMap) -> Result<Response, ApiError> {
    search(s, a, Level::Instance, None, None, q, h).await
}

pub async fn series_in_study(
    s: State<AppState>,
    a: OrgAuth,
    Path(study): Path<String>,
    q: RawQuery,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    search(s, a, Level::Series, Some(path_uid(&study)?), None, q, h).await
}

pub async fn instances_in_study(
    s: State<AppState>,
    a: OrgAuth,
    Path(study): Path<String>,
    q: RawQuery,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    search(s, a, Level::Instance, Some(path_uid(&study)?), None, q, h).await
}

pub async fn instances_in_series(
    s: State<AppState>,
    a: OrgAuth,
    Path((study, series)): Path<(String, String)>,
    q: RawQuery,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    search(s, a, Level::Instance, Some(path_uid(&study)?), Some(path_uid(&series)?), q, h).await
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().all(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|r| {
                let t = r.split(';').next().unwrap_or("").trim();
                matches!(t, "application/dicom+json" | "application/json" | "*/*" | "application/*" | "")
            })
        })
    })
}

fn qido_error(e: QidoError) -> ApiError {
    ApiError::bad_request("invalid_query", e.to_string())
}

async fn search(
    State(state): State<AppState>,
    auth: OrgAuth,
    level: Level,
    study: Option<String>,
    series: Option<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !accepts_json(&headers) {
        return Err(ApiError::not_acceptable("QIDO-RS answers in application/dicom+json"));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::bad_request("invalid_query", "the query string does not parse"))?;
    let (query, warnings) = parse_qido(level, study, series, &params).map_err(qido_error)?;
    let archive = state.archive.clone();
    let rows = archive.repo.query(auth.org.id, &query).await?;
    let extras = extra_headers(&archive, auth.org.id, &query, &rows).await?;
    let matched: Vec<&str> = query.filters.iter().map(|f| f.attr.keyword()).collect();
    let object = match (&query.study_uid, &query.series_uid) {
        (Some(study), Some(series)) => format!("study:{study}/series:{series}"),
        (Some(study), None) => format!("study:{study}"),
        _ => format!("org:{}", auth.org.code),
    };
    let event = auth.event(Action::Query, object, Outcome::Success).with_detail(format!(
        "qido-rs {level} level: {} result(s); matched on [{}]",
        rows.len(),
        matched.join(", ")
    ));
    // The answer is built while the audit entry commits, and sent only once it has (S26).
    let audit = tokio::spawn({
        let archive = archive.clone();
        async move { archive.repo.audit(vec![event]).await }
    });
    let base = base_url(&state, &headers, &auth.context);
    let attrs = json::returned_attrs(&query);
    let results: Vec<json::ResultJson> = rows
        .iter()
        .zip(&extras)
        .map(|(row, extra)| json::result_json(row, &query, &attrs, &base, extra.as_ref()))
        .collect();
    let body = serde_json::to_vec(&results).expect("JSON serializes");
    audit.await.map_err(|_| ApiError::internal())??;
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    if !warnings.is_empty()
        && let Ok(v) = HeaderValue::from_str(&format!("299 cloudfilm \"{}\"", warnings.join("; ")))
    {
        response.headers_mut().insert(header::WARNING, v);
    }
    Ok(response)
}

/// For `includefield` of attributes the index does not hold: the stored header of the
/// instance (or of the first instance of the study or series).
async fn extra_headers(
    archive: &Arc<crate::Archive>,
    org_id: OrgId,
    query: &Query,
    rows: &[ResultRow],
) -> Result<Vec<Option<dicom_object::mem::InMemDicomObject>>, ApiError> {
    let wanted = !json::unindexed_tags(query).is_empty()
        || (query.include == cloudfilm_core::query::Include::All && query.level == Level::Instance);
    if !wanted {
        return Ok(vec![None; rows.len()]);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let instance = match &row.instance {
            Some(i) => Some(i.clone()),
            None => {
                let series = row.series.as_ref().map(|s| s.series_uid.as_str());
                archive.repo.instances(org_id, &row.study.study_uid, series, None).await?.into_iter().next()
            }
        };
        let Some(instance) = instance else {
            out.push(None);
            continue;
        };
        let archive = archive.clone();
        let header = tokio::task::spawn_blocking(move || crate::retrieve::header(&archive, &instance))
            .await
            .map_err(|_| ApiError::internal())??;
        out.push(Some(header.into_inner()));
    }
    Ok(out)
}
