//! STOW-RS (PS3.18 §10.5): `multipart/related; type="application/dicom"`, streamed part by
//! part into encrypted spools, committed together; per-instance results in the response.

use super::{base_url, path_uid};
use crate::app::AppState;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::ingest::{self, Disposition, IngestResult, Spool, SpoolError, reason};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudfilm_store::ImportContext;
use serde_json::{Value, json};

pub async fn store(
    state: State<AppState>,
    auth: OrgAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    receive(state, auth, None, headers, body).await
}

pub async fn store_in_study(
    state: State<AppState>,
    auth: OrgAuth,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let study = path_uid(&study)?;
    receive(state, auth, Some(study), headers, body).await
}

/// The boundary of a `multipart/related` body whose parts are `application/dicom`.
fn boundary(headers: &HeaderMap) -> Result<String, ApiError> {
    use cloudfilm_core::stow_content_type::{StowContentType, stow_boundary};
    let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    stow_boundary(raw).map_err(|e| match e {
        StowContentType::NotMultipartRelated | StowContentType::NotDicomParts => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", e.to_string())
        }
        StowContentType::Unparsable if raw.is_empty() => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            StowContentType::NotMultipartRelated.to_string(),
        ),
        StowContentType::Unparsable => ApiError::bad_request("bad_content_type", e.to_string()),
        StowContentType::NoBoundary => ApiError::bad_request("missing_boundary", e.to_string()),
    })
}

fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::FieldSizeExceeded { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "instance_too_large",
            format!("an instance is larger than the limit of {limit} bytes"),
        ),
        multer::Error::StreamSizeExceeded { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request is larger than the limit of {limit} bytes"),
        ),
        other => ApiError::bad_request(
            "malformed_multipart",
            format!("the multipart body is malformed: {other}; nothing was stored"),
        ),
    }
}

async fn receive(
    State(state): State<AppState>,
    auth: OrgAuth,
    expected_study: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let archive = &state.archive;
    let limits = &archive.config.limits;
    let boundary = boundary(&headers)?;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new().whole_stream(limits.max_request_bytes).per_field(limits.max_instance_bytes),
    );
    let mut multipart = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut received = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if received.len() >= limits.max_parts {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_parts",
                format!("a request may carry at most {} instances; nothing was stored", limits.max_parts),
            ));
        }
        let part_type = field.content_type().map(|m| m.essence_str().to_ascii_lowercase());
        if part_type.as_deref().is_some_and(|t| t != "application/dicom") {
            while field.chunk().await.map_err(multipart_error)?.is_some() {}
            received.push(Err(IngestResult::failed(
                reason::CANNOT_UNDERSTAND,
                format!("part {} is {}, not application/dicom", received.len() + 1, part_type.unwrap_or_default()),
            )));
            continue;
        }
        // Out of space: this instance fails with 0xA700 (S2), its bytes are read and dropped,
        // and the request goes on so that the response names every instance.
        let mut spool = match Spool::new(archive) {
            Ok(spool) => Ok(spool),
            Err(e) if e.is_out_of_resources() => Err(e),
            Err(e) => return Err(e.into()),
        };
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            let Ok(writing) = spool.as_mut() else { continue };
            match writing.write(&chunk) {
                Ok(()) => {}
                Err(SpoolError::TooLarge(limit)) => {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "instance_too_large",
                        format!("an instance is larger than the limit of {limit} bytes; nothing was stored"),
                    ));
                }
                Err(SpoolError::Store(e)) if e.is_out_of_resources() => spool = Err(e),
                Err(SpoolError::Store(e)) => return Err(e.into()),
            }
        }
        received.push(match spool {
            Ok(spool) => ingest::inspect(archive, spool).await,
            Err(e) => Err(ingest::store_failure(&e)),
        });
    }
    if received.is_empty() {
        return Err(ApiError::bad_request("empty_request", "the request carries no instance"));
    }
    let count = received.len();
    let context = ImportContext {
        actor: auth.actor(),
        client_ip: Some(auth.context.client_ip.to_string()),
        request_id: Some(auth.context.request_id.clone()),
        interface: "stow-rs".into(),
        rejected: Vec::new(),
    };
    let results = match ingest::commit(archive, auth.org.id, received, expected_study.as_deref(), context).await {
        Ok(results) => results,
        Err(e) if e.is_out_of_resources() => {
            let all = (0..count).map(|_| ingest::store_failure(&e)).collect::<Vec<_>>();
            return Ok(respond(&all, &base_url(&state, &headers, &auth.context), StatusCode::INSUFFICIENT_STORAGE));
        }
        Err(e) => return Err(e.into()),
    };
    let stored = results.iter().filter(|r| r.succeeded()).count();
    let full =
        results.iter().any(|r| matches!(r.disposition, Disposition::Failed { reason: reason::OUT_OF_RESOURCES, .. }));
    // Any instance refused for lack of space: 507 with the 0xA700 reasons in the body (S2).
    let status = match (stored, results.len() - stored) {
        (_, 0) => StatusCode::OK,
        _ if full => StatusCode::INSUFFICIENT_STORAGE,
        (0, _) => StatusCode::CONFLICT,
        _ => StatusCode::ACCEPTED,
    };
    Ok(respond(&results, &base_url(&state, &headers, &auth.context), status))
}

/// The Store Instances Response Module (PS3.18 Table 10.5.3-1) as DICOM JSON.
fn respond(results: &[IngestResult], base: &str, status: StatusCode) -> Response {
    let us = |v: u16| json!({ "vr": "US", "Value": [v] });
    let ui = |v: &Option<String>| match v {
        Some(v) => json!({ "vr": "UI", "Value": [v] }),
        None => json!({ "vr": "UI" }),
    };
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let mut item = serde_json::Map::new();
        item.insert("00081150".into(), ui(&r.sop_class_uid));
        item.insert("00081155".into(), ui(&r.sop_instance_uid));
        match &r.disposition {
            Disposition::Stored | Disposition::Duplicate => {
                if let (Some(study), Some(series), Some(sop)) = (&r.study_uid, &r.series_uid, &r.sop_instance_uid) {
                    let url = format!("{base}/studies/{study}/series/{series}/instances/{sop}");
                    item.insert("00081190".into(), json!({ "vr": "UR", "Value": [url] }));
                }
                referenced.push(Value::Object(item));
            }
            Disposition::Failed { reason, message } => {
                item.insert("00081197".into(), us(*reason));
                failed.push(Value::Object(item));
                warnings.push(format!("instance {}: {message}", i + 1));
            }
        }
    }
    let mut body = serde_json::Map::new();
    let mut studies: Vec<&String> =
        results.iter().filter(|r| r.succeeded()).filter_map(|r| r.study_uid.as_ref()).collect();
    studies.dedup();
    if let [study] = studies.as_slice() {
        body.insert("00081190".into(), json!({ "vr": "UR", "Value": [format!("{base}/studies/{study}")] }));
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({ "vr": "SQ", "Value": failed }));
    }
    if !referenced.is_empty() {
        body.insert("00081199".into(), json!({ "vr": "SQ", "Value": referenced }));
    }
    let mut response = (status, serde_json::to_vec(&Value::Object(body)).expect("JSON serializes")).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    if !warnings.is_empty() {
        let mut text: String = warnings.join("; ").chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).collect();
        text.truncate(2000);
        if let Ok(value) = HeaderValue::from_str(&format!("299 cloudfilm \"{}\"", text.replace('"', "'"))) {
            headers.insert(header::WARNING, value);
        }
    }
    response
}
