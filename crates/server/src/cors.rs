//! CORS for DICOMweb (`[http] cors_origins`): a viewer served from a configured origin (the
//! usual OHIF deployment) may call `/dicom-web` from the browser. Only exact, configured
//! origins get `Access-Control-*` headers (credentials allowed unless `cors_credentials` is
//! off); every other request is
//! answered exactly as without CORS, so nothing is open by default. The patient API and the
//! pages are never under CORS: their session cookie is `SameSite=Strict` and stays same-origin.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The configured origins and the CORS answer they get.
#[derive(Clone)]
pub struct Cors {
    origins: Arc<[HeaderValue]>,
    layer: CorsLayer,
}

/// Why a configured origin is refused at start.
#[derive(Debug, thiserror::Error)]
#[error("http.cors_origins: {0:?} is not an origin (scheme://host[:port], no path, no wildcard)")]
pub struct BadOrigin(pub String);

/// An origin as browsers send it: `http` or `https`, a host, an optional port, nothing else.
fn is_origin(value: &str) -> bool {
    let Some((scheme, authority)) = value.split_once("://") else { return false };
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && authority.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

impl Cors {
    /// `None` when no origin is configured: no CORS at all. `credentials`: whether the
    /// browser may send the user's credentials (HTTP authentication, cookies) with them.
    pub fn new(origins: &[String], credentials: bool) -> Result<Option<Cors>, BadOrigin> {
        if origins.is_empty() {
            return Ok(None);
        }
        let origins = origins
            .iter()
            .map(|o| is_origin(o).then(|| HeaderValue::from_str(o).ok()).flatten().ok_or_else(|| BadOrigin(o.clone())))
            .collect::<Result<Arc<[HeaderValue]>, BadOrigin>>()?;
        let layer = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT, header::CACHE_CONTROL])
            .expose_headers([
                header::WARNING,
                header::CONTENT_LOCATION,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                HeaderName::from_static("x-request-id"),
            ])
            .allow_credentials(credentials)
            .max_age(Duration::from_secs(600));
        Ok(Some(Cors { origins, layer }))
    }

    fn allows(&self, request: &Request) -> bool {
        request.headers().get(header::ORIGIN).is_some_and(|o| self.origins.contains(o))
    }
}

/// Middleware: configured origins through tower-http's CORS (preflight answered there),
/// everything else untouched but marked `Vary: Origin` for caches.
pub async fn gate(State(cors): State<Cors>, request: Request, next: Next) -> Response {
    if cors.allows(&request) {
        return match cors.layer.layer(next).oneshot(request).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
    }
    let mut response = next.run(request).await;
    response.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::Cors;

    #[test]
    fn only_plain_origins_are_configurable() {
        assert!(Cors::new(&[], true).unwrap().is_none());
        assert!(
            Cors::new(&["https://viewer.example.org".into(), "http://127.0.0.1:3000".into()], true).unwrap().is_some()
        );
        for bad in [
            "*",
            "viewer.example.org",
            "https://viewer.example.org/",
            "https://a.example/path",
            "ftp://a.b",
            "https://",
        ] {
            assert!(Cors::new(&[bad.to_owned()], true).is_err(), "{bad}");
        }
    }
}
