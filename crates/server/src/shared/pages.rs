//! The pages a link opens, plain HTML without scripts: the share's password form, the
//! download's security-code form (the zip then downloads natively, streamed), the shared
//! exam's view, and the same pages again with the reason when something was refused.

use super::viewer::ShareViewer;
use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The shared exam's page also runs the portal's viewer (a module from this origin; no inline
/// script).
const VIEW_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const VIEW_HEAD: &str =
    "<link rel=\"stylesheet\" href=\"/static/style.css\"><script type=\"module\" src=\"/static/share.js\"></script>";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;\
    color:#1b2733}h1{font-size:1.4rem}form{display:flex;gap:.5rem;flex-wrap:wrap}input{font-size:1.1rem;\
    padding:.5rem;flex:1;min-width:10rem}button{font-size:1.1rem;padding:.5rem 1rem}.error{color:#a40000;\
    font-weight:600}.series img{max-width:100%;background:#000;margin:.25rem 0}pre{white-space:pre-wrap}";

const SHARE_TITLE: &str = "分享的检查 · Shared exam";
const DOWNLOAD_TITLE: &str = "下载原始影像 · Download the original images";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// What a refusal says, in Chinese first and in the API's English.
fn refusal(error: &ApiError) -> String {
    let chinese = match error.code {
        "wrong_password" => "密码错误。",
        "share_locked" => "密码错误次数过多，该分享已锁定一小时。",
        "rate_limited" => "尝试次数过多，请稍后再试。",
        "share_expired" => "该分享已过期，请联系分享人重新分享。",
        "share_revoked" => "该分享已被分享人撤销。",
        "link_not_found" => "链接不存在，请确认链接完整。",
        "wrong_code" => "安全码错误。",
        "link_invalidated" => "安全码错误次数过多，该下载链接已失效，请重新申请。",
        "link_expired" => "下载链接已过期（有效期 30 分钟），请重新申请。",
        "download_disabled" => "该医院未开放原始影像下载。",
        "exam_unavailable" => "该检查已无法查看。",
        "session_expired" | "share_password_required" => "请重新打开分享链接并输入密码。",
        _ => "请求未能完成。",
    };
    format!("{chinese} {}", escape(&error.message))
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    page_with(status, title, body, "", CSP)
}

/// A page with more in its head (the viewer's script and styles) under its own CSP.
fn page_with(status: StatusCode, title: &str, body: &str, head: &str, csp: &'static str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{}</title>\
         {head}<style>{STYLE}</style></head><body><h1>{}</h1>{body}</body></html>",
        escape(title),
        escape(title)
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    response
}

/// Only a token of the shape links are issued with is put in a page.
fn safe_token(token: &str) -> &str {
    if super::well_formed(token) { token } else { "" }
}

fn share_form(token: &str, error: Option<&ApiError>) -> String {
    let message = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", refusal(e))).unwrap_or_default();
    format!(
        "<p>有人与您分享了一次医学检查，请输入对方告诉您的密码。<br>Someone shared a medical exam with you. \
         Enter the password they gave you.</p>{message}\
         <form method=\"post\" action=\"/api/v1/shared/{}/unlock\"><label for=\"password\">密码 Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"off\" required minlength=\"6\">\
         <button type=\"submit\">打开 Open</button></form>",
        safe_token(token)
    )
}

fn download_form(token: &str, error: Option<&ApiError>) -> String {
    let message = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", refusal(e))).unwrap_or_default();
    format!(
        "<p>请输入发送到账户手机的安全码。下载内容为原始 DICOM 文件、DICOMDIR 及医院签名的清单。<br>\
         Enter the security code sent to the account holder's phone. The download holds the original \
         DICOM files, a DICOMDIR for viewers and a manifest signed by the archive.</p>{message}\
         <form method=\"post\" action=\"/api/v1/downloads/{}\"><label for=\"code\">安全码 Security code</label>\
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <button type=\"submit\">下载 Download</button></form>",
        safe_token(token)
    )
}

/// `GET /s/{token}`: the share's password form (nothing about the share before the password).
pub async fn share_page(Path(token): Path<String>) -> Response {
    page(StatusCode::OK, SHARE_TITLE, &share_form(&token, None))
}

/// `GET /d/{token}`: the download's security-code form.
pub async fn download_page(Path(token): Path<String>) -> Response {
    page(StatusCode::OK, DOWNLOAD_TITLE, &download_form(&token, None))
}

/// The password form again with why it was refused; a link that is gone gets no form.
pub fn share_refused(token: &str, error: ApiError) -> Response {
    match error.status {
        StatusCode::GONE | StatusCode::NOT_FOUND => {
            page(error.status, SHARE_TITLE, &format!("<p class=\"error\">{}</p>", refusal(&error)))
        }
        status => page(status, SHARE_TITLE, &share_form(token, Some(&error))),
    }
}

pub fn download_refused(token: &str, error: ApiError) -> Response {
    match error.status {
        StatusCode::GONE | StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => {
            page(error.status, DOWNLOAD_TITLE, &format!("<p class=\"error\">{}</p>", refusal(&error)))
        }
        status => page(status, DOWNLOAD_TITLE, &download_form(token, Some(&error))),
    }
}

/// `GET /shared/view`: the shared exam, its report and its images.
pub async fn view(State(state): State<AppState>, viewer: Result<ShareViewer, ApiError>) -> Response {
    let viewer = match viewer {
        Ok(viewer) => viewer,
        Err(e) => return page(e.status, SHARE_TITLE, &format!("<p class=\"error\">{}</p>", refusal(&e))),
    };
    match view_body(&state, &viewer).await {
        Ok(body) => page_with(StatusCode::OK, SHARE_TITLE, &body, VIEW_HEAD, VIEW_CSP),
        Err(e) => page(e.status, SHARE_TITLE, &format!("<p class=\"error\">{}</p>", refusal(&e))),
    }
}

async fn view_body(state: &AppState, viewer: &ShareViewer) -> Result<String, ApiError> {
    let archive = &state.archive;
    let identified = !viewer.share.deidentified;
    let exam =
        serde_json::to_value(super::viewer::shared_exam(archive, viewer).await?).map_err(|_| ApiError::internal())?;
    viewer.record(archive, cloudfilm_audit::Action::PatientRecord, "viewed the exam through the share").await?;
    let text = |key: &str| exam.get(key).and_then(Value::as_str).map(escape).unwrap_or_default();
    let mut html = String::new();
    if identified {
        html += &format!(
            "<p>{} · {} · {}</p><p>{}</p>",
            text("organization"),
            text("modality"),
            text("date"),
            text("description")
        );
        let report = &exam["report"];
        if let Some(report_text) = report["text"].as_str() {
            html += &format!("<h2>Report</h2><pre>{}</pre>", escape(report_text));
        }
        if report["pdf"].is_string() {
            html += "<p><a href=\"/api/v1/shared/exam/report.pdf\">Report (PDF)</a></p>";
        }
    } else {
        html += &format!("<p>{} · de-identified copy</p>", text("modality"));
    }
    // The viewer (web/share.js) reads the series from here, without asking for the exam again.
    html += &format!(
        "<p><button type=\"button\" id=\"open-viewer\" class=\"primary\" data-series=\"{}\">查看影像 View images</button></p>",
        escape(&exam["series"].to_string())
    );
    for series in exam["series"].as_array().into_iter().flatten() {
        let id = series["id"].as_str().unwrap_or_default();
        let images = series["images"].as_u64().unwrap_or(0);
        html += &format!(
            "<section class=\"series\"><h2>Series {} · {} · {images} images</h2>",
            escape(id),
            series["modality"].as_str().map(escape).unwrap_or_default()
        );
        for n in 1..=images.min(100) {
            html += &format!(
                "<img loading=\"lazy\" alt=\"series {0} image {n}\" src=\"/api/v1/shared/exam/series/{0}/images/{n}\">",
                escape(id)
            );
        }
        html += "</section>";
    }
    Ok(html)
}
