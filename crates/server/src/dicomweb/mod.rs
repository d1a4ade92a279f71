//! DICOMweb (PS3.18) under `/dicom-web`: STOW-RS, QIDO-RS, WADO-RS.

mod accept;
mod multipart;
mod qido;
mod stow;
pub mod wado;

use crate::app::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use cloudfilm_core::Uid;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/studies", post(stow::store).get(qido::studies))
        .route("/series", get(qido::series))
        .route("/instances", get(qido::instances))
        .route("/studies/{study}", post(stow::store_in_study).get(wado::instances))
        .route("/studies/{study}/metadata", get(wado::metadata))
        .route("/studies/{study}/thumbnail", get(wado::thumbnail))
        .route("/studies/{study}/series", get(qido::series_in_study))
        .route("/studies/{study}/instances", get(qido::instances_in_study))
        .route("/studies/{study}/series/{series}", get(wado::instances))
        .route("/studies/{study}/series/{series}/metadata", get(wado::metadata))
        .route("/studies/{study}/series/{series}/thumbnail", get(wado::thumbnail))
        .route("/studies/{study}/series/{series}/instances", get(qido::instances_in_series))
        .route("/studies/{study}/series/{series}/instances/{sop}", get(wado::instances))
        .route("/studies/{study}/series/{series}/instances/{sop}/metadata", get(wado::metadata))
        .route("/studies/{study}/series/{series}/instances/{sop}/rendered", get(wado::rendered))
        .route("/studies/{study}/series/{series}/instances/{sop}/thumbnail", get(wado::thumbnail))
        .route("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}", get(wado::frames))
        .route("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered", get(wado::rendered))
        .route("/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/thumbnail", get(wado::thumbnail))
        .route("/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag}", get(wado::bulkdata))
}

/// A UID from the path, validated before any use (S7).
pub fn path_uid(raw: &str) -> Result<String, ApiError> {
    Uid::parse(raw)
        .map(|u| u.as_str().to_owned())
        .map_err(|e| ApiError::bad_request("invalid_uid", format!("invalid UID in the path: {e}")))
}

/// The DICOMweb base URL for RetrieveURL and BulkDataURI values.
pub fn base_url(state: &AppState, headers: &HeaderMap, context: &crate::app::RequestContext) -> String {
    format!("{}/dicom-web", crate::app::site_url(state, headers, context))
}

/// The media type a compressed frame is sent as (PS3.18 Table 8.7.3-2).
pub fn frame_media_type(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" | "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => {
            "image/jpeg"
        }
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => "image/jphc",
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        _ => "application/octet-stream",
    }
}

/// Whether frames in this transfer syntax are stored uncompressed.
pub fn is_native(transfer_syntax: &str) -> bool {
    matches!(
        transfer_syntax,
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99"
    )
}
