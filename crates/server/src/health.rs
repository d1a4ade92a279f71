//! `GET /healthz`: 200 `{"database": "ok", "blobs": "ok"}` when both stores answer, else 503
//! naming what does not (the reason goes to the log, never to the client).

use crate::archive::Archive;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn healthz(archive: Arc<Archive>) -> Response {
    let database = tokio::time::timeout(TIMEOUT, archive.repo.check());
    let blobs = tokio::time::timeout(TIMEOUT, archive.blobs.check());
    let (database, blobs) = tokio::join!(database, blobs);
    let database =
        state("database", database.map_err(|_| "no answer".to_owned()).and_then(|r| r.map_err(|e| e.to_string())));
    let blobs = state("blobs", blobs.map_err(|_| "no answer".to_owned()).and_then(|r| r.map_err(|e| e.to_string())));
    let status = if database == "ok" && blobs == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(serde_json::json!({ "database": database, "blobs": blobs }))).into_response()
}

fn state(what: &str, result: Result<(), String>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(store = what, error = %e, "health check failed");
            "unreachable"
        }
    }
}
