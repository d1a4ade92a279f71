//! `GET /healthz`: 200 `{"database": "ok", "blobs": "ok"}` when both stores answer, else 503
//! naming what does not (the reason goes to the log, never to the client).
//! `GET /readyz`: 200 `{"ready": true}` when this node can take traffic — both stores answer
//! and it is not stopping — else 503 `{"ready": false, "not_ready": [...]}`.

use crate::archive::Archive;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

pub async fn healthz(archive: Arc<Archive>) -> Response {
    let (database, blobs) = stores(&archive).await;
    let status = if database == "ok" && blobs == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(serde_json::json!({ "database": database, "blobs": blobs }))).into_response()
}

pub async fn readyz(archive: Arc<Archive>) -> Response {
    let mut not_ready = Vec::new();
    if archive.stopping.load(Ordering::Relaxed) {
        not_ready.push("stopping");
    } else {
        let (database, blobs) = stores(&archive).await;
        if database != "ok" {
            not_ready.push("database");
        }
        if blobs != "ok" {
            not_ready.push("blobs");
        }
    }
    if not_ready.is_empty() {
        return (StatusCode::OK, axum::Json(serde_json::json!({ "ready": true }))).into_response();
    }
    let body = serde_json::json!({ "ready": false, "not_ready": not_ready });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Whether the database and the blob store answer, each `ok` or `unreachable`.
async fn stores(archive: &Archive) -> (&'static str, &'static str) {
    let database = tokio::time::timeout(TIMEOUT, archive.repo.check());
    let blobs = tokio::time::timeout(TIMEOUT, archive.blobs.check());
    let (database, blobs) = tokio::join!(database, blobs);
    let database =
        state("database", database.map_err(|_| "no answer".to_owned()).and_then(|r| r.map_err(|e| e.to_string())));
    let blobs = state("blobs", blobs.map_err(|_| "no answer".to_owned()).and_then(|r| r.map_err(|e| e.to_string())));
    (database, blobs)
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
