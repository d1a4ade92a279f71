//! What operators watch, in Prometheus' text format on a listener of its own (`--metrics
//! ADDR`, `[metrics] listen`): requests by route and status with their latency, DIMSE
//! associations and operations, ingest, rendered frames, the audit chain, the database pool
//! and writer queue, text messages.
//!
//! Never personal data and never a label per patient, study, account or link: every label
//! value comes from a fixed set in this code (route *templates*, not paths; interfaces,
//! operations and outcomes named here). Without `--metrics` no recorder is installed and every
//! call below costs next to nothing.

use crate::archive::Archive;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Latency buckets (seconds): from a cached QIDO to a large retrieve.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls answer the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder =
        PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| anyhow::anyhow!("metrics recorder: {e}"))?;
    describe();
    gauge!("cloudfilm_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("cloudfilm_http_requests_total", "HTTP requests answered, by method, route template and status");
    describe_histogram!(
        "cloudfilm_http_request_duration_seconds",
        Unit::Seconds,
        "time to the response head, by method and route template"
    );
    describe_counter!("cloudfilm_dimse_associations_total", "DIMSE associations requested, by outcome");
    describe_counter!("cloudfilm_dimse_operations_total", "DIMSE operations, by operation and outcome");
    describe_counter!("cloudfilm_ingest_instances_total", "instances received, by interface and outcome");
    describe_counter!("cloudfilm_ingest_bytes_total", Unit::Bytes, "bytes of instances stored, by interface");
    describe_counter!("cloudfilm_rendered_frames_total", "frames rendered to JPEG or PNG, by outcome");
    describe_histogram!("cloudfilm_render_duration_seconds", Unit::Seconds, "time to decode and encode one frame");
    describe_gauge!("cloudfilm_audit_entries", "entries in the audit chain");
    describe_gauge!("cloudfilm_audit_head_tree_size", "entries covered by the newest signed audit head");
    describe_gauge!("cloudfilm_audit_head_age_seconds", Unit::Seconds, "age of the newest signed audit head");
    describe_gauge!("cloudfilm_db_pool_connections", "connections of the index's read pool, by state");
    describe_gauge!("cloudfilm_db_writer_queue", "transactions waiting for the index's single writer (SQLite)");
    describe_counter!("cloudfilm_sms_total", "text messages, by kind and outcome");
}

/// Middleware: counts and times every request under its route template (`/dicom-web/studies/{study}`);
/// a request no route matched is `unmatched`, so no client-chosen path becomes a label.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    record_request(method, route.as_deref().unwrap_or("unmatched"), response.status(), started.elapsed());
    response
}

fn record_request(method: &'static str, route: &str, status: StatusCode, took: Duration) {
    let route = route.to_owned();
    counter!("cloudfilm_http_requests_total", "method" => method, "route" => route.clone(), "status" => status.as_str().to_owned())
        .increment(1);
    histogram!("cloudfilm_http_request_duration_seconds", "method" => method, "route" => route)
        .record(took.as_secs_f64());
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// A DIMSE association: `accepted`, `rejected` (negotiation refused it) or `busy`.
pub fn association(outcome: &'static str) {
    counter!("cloudfilm_dimse_associations_total", "outcome" => outcome).increment(1);
}

/// A DIMSE operation and whether it succeeded.
pub fn dimse_operation(operation: &'static str, succeeded: bool) {
    counter!("cloudfilm_dimse_operations_total", "operation" => operation, "outcome" => outcome(succeeded))
        .increment(1);
}

/// The instances of one ingest batch: how many were stored, duplicates and failed, and the
/// bytes stored. `interface` is the code's own name of the way in (`stow-rs`, `c-store`, ...).
pub fn ingested(interface: &str, stored: u64, duplicates: u64, failed: u64, bytes: u64) {
    let interface = interface_label(interface);
    for (outcome, n) in [("stored", stored), ("duplicate", duplicates), ("failed", failed)] {
        if n > 0 {
            counter!("cloudfilm_ingest_instances_total", "interface" => interface, "outcome" => outcome).increment(n);
        }
    }
    counter!("cloudfilm_ingest_bytes_total", "interface" => interface).increment(bytes);
}

fn interface_label(interface: &str) -> &'static str {
    match interface {
        "stow-rs" => "stow-rs",
        "c-store" => "c-store",
        "import" => "import",
        "demo" => "demo",
        _ => "other",
    }
}

/// One frame rendered (or not) and how long it took.
pub fn rendered(succeeded: bool, took: Duration) {
    counter!("cloudfilm_rendered_frames_total", "outcome" => outcome(succeeded)).increment(1);
    histogram!("cloudfilm_render_duration_seconds").record(took.as_secs_f64());
}

/// One text message handed to the provider.
pub fn sms(kind: crate::sms::SmsKind, sent: bool) {
    let outcome = if sent { "sent" } else { "failed" };
    counter!("cloudfilm_sms_total", "kind" => kind.label(), "outcome" => outcome).increment(1);
}

fn outcome(succeeded: bool) -> &'static str {
    if succeeded { "success" } else { "failure" }
}

/// Serves the metrics listener (`GET /metrics` only) until the process ends; with `tls` (the
/// archive's HTTPS certificate), over HTTPS only.
pub async fn serve(
    archive: Arc<Archive>,
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    tls: Option<Arc<crate::tls::ReloadableCertificate>>,
) {
    let app = axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state((archive, handle));
    let served = match tls {
        None => axum::serve(listener, app).await,
        Some(certificate) => axum::serve(crate::tls::TlsListener::new(listener, &certificate), app).await,
    };
    if let Err(e) = served {
        tracing::warn!(error = %e, "the metrics listener stopped");
    }
}

/// Reads the gauges that are states rather than events (the audit chain, the pool), then
/// answers everything recorded.
async fn scrape(State((archive, handle)): State<(Arc<Archive>, PrometheusHandle)>) -> Response {
    let pool = archive.repo.pool_state();
    gauge!("cloudfilm_db_pool_connections", "state" => "idle").set(pool.idle as f64);
    gauge!("cloudfilm_db_pool_connections", "state" => "in_use").set(pool.size.saturating_sub(pool.idle) as f64);
    if let Some(queue) = pool.writer_queue {
        gauge!("cloudfilm_db_writer_queue").set(queue as f64);
    }
    match tokio::time::timeout(Duration::from_secs(5), archive.repo.audit_state()).await {
        Ok(Ok(state)) => {
            gauge!("cloudfilm_audit_entries").set(state.entries as f64);
            if let Some(head) = state.newest_head {
                gauge!("cloudfilm_audit_head_tree_size").set(head.tree_size as f64);
                if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&head.at) {
                    let age = chrono::Utc::now().signed_duration_since(at).num_milliseconds().max(0);
                    gauge!("cloudfilm_audit_head_age_seconds").set(age as f64 / 1000.0);
                }
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: the audit chain's state could not be read"),
        Err(_) => tracing::warn!("metrics: the audit chain's state did not come within 5 s"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(f: impl FnOnce()) -> String {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    #[test]
    fn requests_are_labelled_by_route_template_and_status() {
        let text = recorded(|| {
            record_request("GET", "/dicom-web/studies/{study}", StatusCode::NOT_FOUND, Duration::from_millis(3));
            record_request("GET", "/dicom-web/studies/{study}", StatusCode::NOT_FOUND, Duration::from_millis(30));
        });
        assert!(
            text.contains(
                r#"cloudfilm_http_requests_total{method="GET",route="/dicom-web/studies/{study}",status="404"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("cloudfilm_http_request_duration_seconds_bucket{"), "a histogram, not a summary: {text}");
        assert!(text.contains(r#"le="0.005"} 1"#), "{text}");
    }

    #[test]
    fn ingest_labels_come_from_a_fixed_set() {
        let text = recorded(|| {
            ingested("stow-rs", 2, 1, 0, 1000);
            ingested("something a client chose", 1, 0, 0, 10);
        });
        assert!(text.contains(r#"cloudfilm_ingest_instances_total{interface="stow-rs",outcome="stored"} 2"#), "{text}");
        assert!(text.contains(r#"cloudfilm_ingest_instances_total{interface="other",outcome="stored"} 1"#), "{text}");
        assert!(!text.contains("outcome=\"failed\""), "no zero series: {text}");
        assert!(!text.contains("something"), "{text}");
    }

    #[test]
    fn unknown_methods_are_one_label() {
        assert_eq!(method_label(&Method::from_bytes(b"PROPFIND").unwrap()), "other");
    }
}
