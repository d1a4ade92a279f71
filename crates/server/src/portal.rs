//! The patient portal's files (web/), embedded in the binary so that it runs without a build
//! step or a file tree: `/` serves the page, `/static/{file}` its script modules and styles.
//! The page's CSP allows scripts and styles from this origin only (no inline script).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// (name, media type, content) of every file under `/static/`.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../../web/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../../../web/api.js")),
    ("dom.js", "text/javascript; charset=utf-8", include_str!("../../../web/dom.js")),
    ("i18n.js", "text/javascript; charset=utf-8", include_str!("../../../web/i18n.js")),
    ("viewer.js", "text/javascript; charset=utf-8", include_str!("../../../web/viewer.js")),
    ("share.js", "text/javascript; charset=utf-8", include_str!("../../../web/share.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../../web/style.css")),
];

const INDEX: &str = include_str!("../../../web/index.html");

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/static/{file}", get(file))
}

async fn index() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, media_type, content)) => {
            ([(header::CONTENT_TYPE, *media_type), (header::CACHE_CONTROL, "no-cache")], *content).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
