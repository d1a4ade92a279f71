//! The HTTP application: routes, request ids, security headers, logs without personal data.

use crate::archive::Archive;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::forwarded;
use cloudfilm_core::refusals::Refusal;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tracing::Instrument;

#[derive(Clone)]
pub struct AppState {
    pub archive: Arc<Archive>,
    /// The port the server is bound to, for URLs when a client's Host header omits it.
    pub port: u16,
    /// Reverse proxies whose forwarding headers are believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

/// Who is calling and which request this is; set on every request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The client: the socket's peer, or the first untrusted hop behind trusted proxies.
    pub client_ip: IpAddr,
    /// Whether the client reached us (or the first trusted proxy) over HTTPS.
    pub https: bool,
    /// The request came through a trusted proxy (its Host header is the public one).
    pub via_proxy: bool,
}

pub fn router(archive: Arc<Archive>, port: u16) -> Router {
    // Validated when the configuration loaded.
    let trusted_proxies = Arc::new(archive.config.http.trusted_proxy_networks().unwrap_or_default());
    let state = AppState { archive, port, trusted_proxies };
    let mut dicomweb = crate::dicomweb::routes();
    // Validated when the configuration loaded; an origin that fails here gets no CORS.
    if let Ok(Some(cors)) =
        crate::cors::Cors::new(&state.archive.config.http.cors_origins, state.archive.config.http.cors_credentials)
    {
        dicomweb = dicomweb.layer(middleware::from_fn_with_state(cors, crate::cors::gate));
    }
    Router::new()
        .nest("/dicom-web", dicomweb)
        .nest("/api/v1", crate::patients::routes().merge(crate::shared::api_routes()))
        .route(crate::openapi::PATH, axum::routing::get(crate::openapi::serve))
        .merge(crate::shared::page_routes())
        .merge(crate::portal::routes())
        .merge(crate::ohif::routes(&state.archive.config.http.ohif_dir))
        .route(
            "/healthz",
            axum::routing::get(|axum::extract::State(state): axum::extract::State<AppState>| {
                crate::health::healthz(state.archive)
            }),
        )
        .route(
            "/readyz",
            axum::routing::get(|axum::extract::State(state): axum::extract::State<AppState>| {
                crate::health::readyz(state.archive)
            }),
        )
        .route(SIGNING_KEY_PATH, axum::routing::get(signing_key))
        .layer(middleware::from_fn_with_state(state.clone(), crate::body_pace::limit))
        .layer(middleware::from_fn_with_state(state.clone(), context_and_headers))
        // A layer of the router wraps each route, so it sees the route's template.
        .layer(middleware::from_fn(crate::metrics::track))
        .with_state(state)
}

/// Where the archive's Ed25519 public key is published (hex): it checks download manifests
/// (`cloudfilm verify-manifest`) and signed audit heads.
pub const SIGNING_KEY_PATH: &str = "/.well-known/cloudfilm-signing-key";

async fn signing_key(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let key = format!("{}\n", hex::encode(state.archive.signer.public_key()));
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], key).into_response()
}

/// The server's own URL (configured `http.public_url`, else from the Host header), without a
/// trailing slash: the base of DICOMweb URLs and of share and download links.
pub fn site_url(state: &AppState, headers: &axum::http::HeaderMap, context: &RequestContext) -> String {
    let configured = state.archive.config.http.public_url.trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    // Some clients (python-requests on chunked uploads) send the host without its port.
    let has_port =
        host.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())) && !host.ends_with(']');
    let scheme = if context.https { "https" } else { "http" };
    let default_port = if context.https { 443 } else { 80 };
    // Behind a proxy the Host it passes on is the public one, its port included.
    if has_port || state.port == default_port || context.via_proxy {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{}", state.port)
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives the request an id and a client address, logs it without its query string (which
/// can hold patient names) and without a path no route knows, and sets the security headers
/// of every response (S17).
async fn context_and_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = cloudfilm_crypto::random::hex_id()[..16].to_owned();
    let peer =
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let client = client_behind_proxies(&state, peer, request.headers());
    let own_tls = request.extensions().get::<crate::http_server::Transport>().is_some_and(|t| t.tls);
    let https = own_tls || client.https == Some(true);
    let context =
        RequestContext { request_id: request_id.clone(), client_ip: client.ip, https, via_proxy: client.via_proxy };
    if client.spoofed {
        note_spoofed_forwarding(&state, &context);
    }
    request.extensions_mut().insert(context);
    let method = request.method().clone();
    // A path no route knows is whatever a client sent: it is not written down.
    let path = match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(_) => redacted(request.uri().path()),
        None => "[no route]".to_owned(),
    };
    let started = std::time::Instant::now();
    // Everything logged while the request is served carries its id.
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = next.run(request).instrument(span).await;
    tracing::info!(
        request_id = %request_id,
        %method,
        path = %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID.clone(), HeaderValue::from_str(&request_id).expect("hex"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages set their own, as strict as they can be.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    // Served over TLS (here, or at the proxy): browsers must keep to HTTPS for a year.
    if https || state.archive.config.patients.secure_cookies {
        headers
            .insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    response
}

/// The client of a request from `peer`: forwarding headers are believed only from trusted
/// proxies (`http.trusted_proxies`).
fn client_behind_proxies(state: &AppState, peer: IpAddr, headers: &axum::http::HeaderMap) -> forwarded::Client {
    let joined = |name: &HeaderName| -> Option<String> {
        let values: Vec<&str> = headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("\u{fffd}")).collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    let (forwarded, xff, proto) = (
        joined(&header::FORWARDED),
        joined(&HeaderName::from_static("x-forwarded-for")),
        joined(&HeaderName::from_static("x-forwarded-proto")),
    );
    let headers = forwarded::ForwardingHeaders {
        forwarded: forwarded.as_deref(),
        x_forwarded_for: xff.as_deref(),
        x_forwarded_proto: proto.as_deref(),
    };
    forwarded::client(peer, &state.trusted_proxies, headers)
}

/// Forwarding headers from an address that is not a trusted proxy were ignored; the attempt is
/// audited as a security alert (the first of a window per address, then counted), off the
/// request's path.
fn note_spoofed_forwarding(state: &AppState, context: &RequestContext) {
    let why = "forwarding headers from an address that is not a trusted proxy were ignored";
    let event = AuditEvent::new(Action::SecurityAlert, "http", "http", Outcome::Failure(why.to_owned()))
        .from_client(Some(context.client_ip.to_string()), Some(context.request_id.clone()));
    let (archive, address) = (state.archive.clone(), context.client_ip);
    tokio::spawn(async move {
        let refusal = Refusal { object: "http", reason: why };
        if let Err(e) = archive.audit_refusal(refusal, address, event).await {
            tracing::error!(error = %e, "a spoofed forwarding header could not be audited");
        }
    });
}

/// A path as logs may show it: the secret tokens of share and download links replaced (S16).
fn redacted(path: &str) -> String {
    const LINKS: [&str; 4] = ["/s/", "/d/", "/api/v1/shared/", "/api/v1/downloads/"];
    for prefix in LINKS {
        if let Some(rest) = path.strip_prefix(prefix) {
            let (token, tail) = rest.split_once('/').map_or((rest, ""), |(t, tail)| (t, tail));
            if token != "exam" && !token.is_empty() {
                let sep = if tail.is_empty() { "" } else { "/" };
                return format!("{prefix}[token]{sep}{tail}");
            }
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_tokens_never_reach_the_logs() {
        assert_eq!(super::redacted("/s/abcDEF_-123"), "/s/[token]");
        assert_eq!(super::redacted("/api/v1/shared/abc/unlock"), "/api/v1/shared/[token]/unlock");
        assert_eq!(super::redacted("/api/v1/downloads/abc"), "/api/v1/downloads/[token]");
        assert_eq!(super::redacted("/api/v1/shared/exam/series/1/images/2"), "/api/v1/shared/exam/series/1/images/2");
        assert_eq!(super::redacted("/dicom-web/studies"), "/dicom-web/studies");
    }
}
