//! The OpenAPI 3.1 document of the JSON APIs under `/api/v1` (the patient API, the share and
//! download links, the hospitals' report upload), generated from the handlers' `#[utoipa::path]`
//! attributes and the types they serialize, and served at `GET /api/v1/openapi.json`.
//!
//! Each handler documents what it answers itself; what the shared extractors answer is added
//! here to every operation that uses them, read from the operation's security requirements and
//! request body (one rule each, in [`conventions`]): a session's 401 and CSRF 403, a JSON
//! body's 400/408/413/415/422, the storage's 500/503/507, and `Retry-After` on every 429.

use crate::error::ErrorBody;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cloudfilm",
        description = "The JSON APIs of the cloudfilm archive: the patient API (session cookie \
            `cf_session`; every state-changing request carries `X-CSRF-Token` with the value of the \
            `cf_csrf` cookie), share and download links (no account), and report text from hospitals \
            (organization key). Errors answer `{\"error\": {\"code\", \"message\"}}`; times are \
            RFC 3339 UTC; personal values come back masked unless stated."
    ),
    servers((url = "/", description = "this server")),
    paths(
        crate::patients::auth::send_code,
        crate::patients::auth::login,
        crate::patients::auth::logout,
        crate::patients::auth::send_step_up_code,
        crate::patients::auth::step_up,
        crate::patients::account::policy,
        crate::patients::account::me,
        crate::patients::account::give_consent,
        crate::patients::account::withdraw_health_data,
        crate::patients::members::list,
        crate::patients::members::add,
        crate::patients::members::remove,
        crate::patients::members::reveal_id_number,
        crate::patients::members::manual_match,
        crate::patients::exams::list,
        crate::patients::holding::request,
        crate::patients::holding::confirm,
        crate::patients::holding::list,
        crate::patients::holding::end,
        crate::patients::holding::approve,
        crate::patients::exams::detail,
        crate::patients::exams::report_pdf,
        crate::patients::exams::image,
        crate::patients::sharing::list_shares,
        crate::patients::sharing::create_share,
        crate::patients::sharing::revoke_share,
        crate::patients::sharing::create_download,
        crate::patients::sharing::access_log,
        crate::patients::sharing::transfers,
        crate::patients::rights::list_requests,
        crate::patients::rights::file_request,
        crate::patients::rights::export,
        crate::patients::reports::attach,
        crate::shared::unlock::unlock,
        crate::shared::viewer::detail,
        crate::shared::viewer::report_pdf,
        crate::shared::viewer::image,
        crate::shared::viewer::deidentified_instance,
        crate::shared::download::download,
        serve,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Logging in with a one-time code; step-up"),
        (name = "account", description = "The account, consent, access and transfer logs"),
        (name = "members", description = "Family members, matching, and adults' consent to being held"),
        (name = "exams", description = "Exams, reports and rendered images"),
        (name = "sharing", description = "Shares behind a password and download links behind a security code"),
        (name = "rights", description = "Data-subject requests and the export of the account's data"),
        (name = "shared", description = "What a share or download link opens (no account)"),
        (name = "hospital", description = "Report text from hospitals (organization key)"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let cookie = |name, description| {
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(name, description)))
        };
        components.add_security_scheme(
            "patient_session",
            cookie("cf_session", "The patient session, set at login (HttpOnly, SameSite=Strict)"),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The value of the `cf_csrf` cookie set with the session; required on every state-changing request \
                 made with the session cookie",
            ))),
        );
        components.add_security_scheme(
            "share_session",
            cookie("cf_share", "A share-scoped session, set by unlocking a share with its password"),
        );
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("An organization's API key".into());
        components.add_security_scheme("org_key", SecurityScheme::Http(bearer));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description =
            Some("The key id (before the key's first `.`) as user name, the whole key as password".into());
        components.add_security_scheme("org_key_basic", SecurityScheme::Http(basic));
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_string());

/// The OpenAPI document as JSON.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    conventions(&mut doc);
    doc
}

/// `GET /api/v1/openapi.json` (no login needed).
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi_document", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json",
        body = Object)))]
pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

/// What the shared extractors and layers answer, added to each operation that uses them.
fn conventions(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, operation) in item.iter_mut() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let schemes: Vec<Vec<String>> = operation
                .get("security")
                .and_then(Value::as_array)
                .map(|reqs| reqs.iter().filter_map(Value::as_object).map(|r| r.keys().cloned().collect()).collect())
                .unwrap_or_default();
            let uses = |name: &str| schemes.iter().any(|r| r.iter().any(|s| s == name));
            let json_body = operation.pointer("/requestBody/content/application~1json").is_some();
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            if uses("patient_session") {
                add(responses, 401, "`unauthenticated` (log in first) or `session_expired`");
            }
            if uses("csrf_token") {
                add(responses, 403, "`csrf`: the request lacks a valid `X-CSRF-Token` header");
            }
            if uses("share_session") {
                add(responses, 401, "`share_password_required` (unlock the share first) or `session_expired`");
                add(responses, 410, "`share_revoked`, `share_expired` or `exam_unavailable`: the share is gone");
            }
            if uses("org_key") {
                add(responses, 401, "`unauthorized`: a valid API key is required (with `WWW-Authenticate` challenges)");
                add(responses, 403, "`address_not_allowed`: the key may not be used from this address");
            }
            if json_body {
                add(responses, 400, "`invalid_json`: the body is not JSON");
                add(responses, 408, "`body_timeout`: the request body came too slowly");
                add(responses, 413, "`body_too_large`: the body is larger than this endpoint accepts");
                add(responses, 415, "`json_required`: send the body as application/json");
                add(responses, 422, "`invalid_body`: a required field is missing or has the wrong type");
            }
            add(responses, 500, "`internal` or `integrity_failure`: the server failed (the request id is in the logs)");
            add(responses, 503, "`storage_unavailable`: the archive's storage cannot be reached; nothing changed");
            add(responses, 507, "`storage_full`: the archive is out of storage space");
            if let Some(limited) = responses.get_mut("429").and_then(Value::as_object_mut) {
                let headers = limited.entry("headers").or_insert_with(|| json!({}));
                headers["Retry-After"] = json!({
                    "description": "Seconds to wait before trying again",
                    "schema": { "type": "integer", "minimum": 1 },
                });
            }
        }
    }
}

/// Adds an error answer (`description` names its codes) to an operation's responses, or its
/// codes to the description of the answer with that status.
fn add(responses: &mut Map<String, Value>, status: u16, description: &str) {
    let error_body = json!({ "schema": { "$ref": "#/components/schemas/ErrorBody" } });
    match responses.get_mut(&status.to_string()).and_then(Value::as_object_mut) {
        Some(response) => {
            let before = response.get("description").and_then(Value::as_str).unwrap_or_default();
            let merged = if before.is_empty() { description.to_owned() } else { format!("{before}; {description}") };
            response.insert("description".into(), Value::String(merged));
            let content = response.entry("content").or_insert_with(|| json!({}));
            if let Some(content) = content.as_object_mut() {
                content.entry("application/json").or_insert(error_body);
            }
        }
        None => {
            let response = json!({ "description": description, "content": { "application/json": error_body } });
            responses.insert(status.to_string(), response);
        }
    }
}

// ---- what several handlers answer --------------------------------------------------------

pub const NOT_FOUND: &str = "`not_found`: no such resource (the same answer for another account's)";
pub const RATE_LIMITED: &str = "`rate_limited`: too many attempts; wait `Retry-After` seconds";
pub const SMS_UNAVAILABLE: &str = "`sms_unavailable`: the text message could not be sent";
pub const CONSENT_REQUIRED: &str =
    "`consent_required`: accept the privacy policy and consent to processing health data first";
pub const MEMBER_CONSENT_REQUIRED: &str = "`member_consent_required` (the adult has not agreed to be held in this \
    account) or `consent_required` (the account's own consent)";
pub const LINK_NOT_FOUND: &str = "`link_not_found`: no such link (the same answer for any unknown token)";
pub const NO_REPORT: &str = "`not_found` (no PDF report) or `no_report` (it cannot be read)";
pub const NO_SUCH_IMAGE: &str = "`not_found` (no such series, image or frame)";
pub const INVALID_RENDERING: &str = "`invalid_rendering_parameter`: `window`, `viewport` or `quality` is invalid";
pub const CANNOT_RENDER_406: &str = "`not_acceptable` (Accept names neither image/jpeg nor image/png) or `cannot_render` (this transfer \
     syntax is not rendered here)";
pub const CANNOT_RENDER_422: &str = "`cannot_render` or `cannot_decode`: the frame could not be rendered";
pub const FRAME_TOO_LARGE: &str = "`frame_too_large`: larger than the renderer's limit";

// ---- parameters ------------------------------------------------------------------------------

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct MemberPath {
    /// A member's id.
    #[param(min_length = 1)]
    id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct HoldingPath {
    /// A holding's id (the member's id in the holding account).
    #[param(min_length = 1)]
    id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ExamPath {
    /// An exam's id.
    #[param(min_length = 1)]
    id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SharePath {
    /// A share's id.
    #[param(min_length = 1)]
    id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TokenPath {
    /// The secret token of the link.
    #[param(min_length = 1)]
    token: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ImagePath {
    /// An exam's id.
    #[param(min_length = 1)]
    id: String,
    /// The series, 1-based as the exam's detail lists them.
    #[param(minimum = 1)]
    series: u64,
    /// The image in the series, 1-based.
    #[param(minimum = 1)]
    n: u64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SharedImagePath {
    /// The series, 1-based as the shared exam lists them.
    #[param(minimum = 1)]
    series: u64,
    /// The image in the series, 1-based.
    #[param(minimum = 1)]
    n: u64,
}

/// How a frame is rendered.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RenderQuery {
    /// `center,width[,function]`: the VOI window (width ≥ 1; function `linear`, `linear-exact` or `sigmoid`).
    #[param(example = "40,400")]
    window: Option<String>,
    /// `width,height` in pixels, each 1 to 8192: the largest size of the image.
    #[param(example = "512,512")]
    viewport: Option<String>,
    /// JPEG quality, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    quality: Option<u8>,
    /// The frame, 1-based (the first by default).
    #[param(minimum = 1)]
    frame: Option<u32>,
}

/// Bytes of the media type the response names.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::String).content_media_type("application/octet-stream").into()
    }
}

impl ToSchema for Binary {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(METHOD, path)` of every route of a router, read from its `Debug` form (axum has no
    /// public list): each `RouteId(n)` is named once with its path in the router's node and
    /// once with its method router in the routes.
    fn routes_of<S>(router: &axum::Router<S>, prefix: &str) -> BTreeSet<(String, String)> {
        let text = format!("{router:?}");
        // The router's own routes, before its fallback router (which has none here).
        let own = text.split("fallback_router:").next().expect("a router");
        let (routes, node) = own.split_once("node: Node").expect("axum's Router Debug names its node");
        let paths: Vec<(String, String)> = node
            .split("RouteId(")
            .skip(1)
            .map(|entry| {
                let (id, rest) = entry.split_once("): \"").expect("`RouteId(n): \"path\"`");
                (id.to_owned(), rest.split('"').next().expect("a quoted path").to_owned())
            })
            .collect();
        let mut found = BTreeSet::new();
        for (id, path) in paths {
            let start = routes.find(&format!("RouteId({id}): ")).expect("every path has its route");
            let endpoint = &routes[start..];
            let endpoint = &endpoint[..endpoint[1..].find("RouteId(").map_or(endpoint.len(), |i| i + 1)];
            for method in ["get", "post", "put", "patch", "delete"] {
                let field = format!(" {method}: ");
                let at = endpoint.find(&field).unwrap_or_else(|| panic!("no `{method}` in {endpoint}"));
                if !endpoint[at + field.len()..].starts_with("None") {
                    found.insert((method.to_uppercase(), format!("{prefix}{path}")));
                }
            }
        }
        found
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut found = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
        found
    }

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let mut routes = routes_of(&crate::patients::routes(), "/api/v1");
        routes.extend(routes_of(&crate::shared::api_routes(), "/api/v1"));
        assert!(routes.len() >= 38, "the router's routes were not read: {routes:?}");
        routes.insert(("GET".into(), PATH.into()));
        let documented = documented();
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(missing.is_empty(), "routes without a #[utoipa::path] in openapi.rs: {missing:?}");
        assert!(extra.is_empty(), "documented operations that no route serves: {extra:?}");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_reference_resolved() {
        let doc = document();
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")), "{}", doc["openapi"]);
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("an external reference {r}"));
            assert!(doc.pointer(pointer).is_some(), "{r} resolves to nothing");
        }
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_owned()), "operationId {id} is not unique");
            }
        }
        let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
        for name in ["patient_session", "csrf_token", "share_session", "org_key", "org_key_basic"] {
            assert!(schemes.contains_key(name), "no security scheme {name}");
        }
    }

    fn collect_refs(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => refs.push(r.clone()),
                        _ => collect_refs(v, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
            _ => {}
        }
    }

    #[test]
    fn operations_document_what_their_extractors_answer() {
        let doc = document();
        let op = |method: &str, path: &str| doc["paths"][path][method].clone();
        // A state-changing patient call: the session's 401, the CSRF token's 403, the body's 4xx.
        let add_member = op("post", "/api/v1/members");
        for status in ["201", "400", "401", "403", "409", "413", "415", "422", "500", "503"] {
            assert!(add_member["responses"][status].is_object(), "POST /members lacks {status}");
        }
        assert!(add_member["responses"]["403"]["description"].as_str().unwrap().contains("`csrf`"));
        assert!(add_member["responses"]["403"]["description"].as_str().unwrap().contains("`consent_required`"));
        assert_eq!(add_member["security"], json!([{ "csrf_token": [], "patient_session": [] }]));
        // A read needs no CSRF token; a login needs no session.
        assert_eq!(op("get", "/api/v1/me")["security"], json!([{ "patient_session": [] }]));
        assert!(op("post", "/api/v1/auth/login")["security"].is_null());
        assert!(op("get", "/api/v1/policy")["responses"]["401"].is_null());
        // Rate-limited answers say when to come back.
        assert!(op("post", "/api/v1/auth/otp")["responses"]["429"]["headers"]["Retry-After"].is_object());
        // Binary answers name their media types.
        let image = op("get", "/api/v1/exams/{id}/series/{series}/images/{n}");
        let content = image["responses"]["200"]["content"].as_object().unwrap();
        assert_eq!(content.keys().collect::<Vec<_>>(), ["image/jpeg", "image/png"]);
        let download = op("post", "/api/v1/downloads/{token}");
        assert!(download["responses"]["200"]["content"]["application/zip"].is_object());
    }
}
