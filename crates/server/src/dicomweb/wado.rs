//! WADO-RS (PS3.18 §10.4): instances as stored, metadata, frames (as stored or uncompressed),
//! rendered frames, thumbnails and the pixel data bulk data.

use super::accept::{self, MediaRange};
use super::{base_url, frame_media_type, is_native, multipart, path_uid};
use crate::Archive;
use crate::app::AppState;
use crate::auth::OrgAuth;
use crate::error::ApiError;
use crate::read_ahead::{OpenAhead, Opened};
use crate::retrieve;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::instance::{InstanceRow, PixelLayout};
use cloudfilm_dicom::render::{self, ImageFormat, RenderOptions};
use std::collections::HashMap;
use std::sync::Arc;

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

type Params = Query<HashMap<String, String>>;

/// What a WADO-RS path names: a study, a series of it or one instance, and for instances a
/// frame list or a bulk data tag. UIDs are validated before any use.
pub struct Target {
    study: String,
    series: Option<String>,
    sop: Option<String>,
    frames: Option<String>,
    tag: Option<String>,
}

impl FromRequestParts<AppState> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("invalid_path", "the path does not parse"))?;
        let uid = |key: &str| params.get(key).map(|v| path_uid(v)).transpose();
        Ok(Target {
            study: uid("study")?.ok_or_else(|| ApiError::bad_request("invalid_path", "no study in the path"))?,
            series: uid("series")?,
            sop: uid("sop")?,
            frames: params.get("frames").cloned(),
            tag: params.get("tag").cloned(),
        })
    }
}

/// The instances a path names, or 404 (also for another organization's study).
async fn rows(state: &AppState, auth: &OrgAuth, target: &Target) -> Result<Vec<InstanceRow>, ApiError> {
    let rows = state
        .archive
        .repo
        .instances(auth.org.id, &target.study, target.series.as_deref(), target.sop.as_deref())
        .await?;
    if rows.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(rows)
}

async fn audit_access(state: &AppState, auth: &OrgAuth, rows: &[InstanceRow], what: String) -> Result<(), ApiError> {
    let study = &rows[0].study_uid;
    let event = auth.event(Action::InstancesAccessed, format!("study:{study}"), Outcome::Success).with_detail(what);
    Ok(state.archive.repo.audit(vec![event]).await?)
}

/// Records an integrity failure found while reading (S3).
fn alert_integrity(archive: &Archive, auth: &OrgAuth, row: &InstanceRow) {
    record_integrity_alert(archive, integrity_event(auth, row));
}

fn integrity_event(auth: &OrgAuth, row: &InstanceRow) -> AuditEvent {
    auth.event(
        Action::SecurityAlert,
        format!("study:{}", row.study_uid),
        Outcome::Failure("stored instance failed its integrity check".into()),
    )
    .with_detail(format!("instance {}", row.sop_uid))
}

/// Records that stored bytes failed their check (S3); called from blocking tasks.
pub fn record_integrity_alert(archive: &Archive, event: AuditEvent) {
    tracing::error!(
        request_id = event.request_id.as_deref().unwrap_or("-"),
        "a stored instance failed its integrity check"
    );
    let _ = tokio::runtime::Handle::current().block_on(archive.repo.audit(vec![event]));
}

fn instance_url(base: &str, row: &InstanceRow) -> String {
    format!("{base}/studies/{}/series/{}/instances/{}", row.study_uid, row.series_uid, row.sop_uid)
}

// ---- instances -------------------------------------------------------------------------

/// A study, a series or an instance, as stored (multipart/related; type="application/dicom").
pub async fn instances(
    State(state): State<AppState>,
    auth: OrgAuth,
    target: Target,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rows = rows(&state, &auth, &target).await?;
    let ranges = accept::parse(&headers);
    let as_stored = ranges.iter().any(|r| {
        r.accepts("application/dicom") && rows.iter().all(|row| r.allows_transfer_syntax(&row.transfer_syntax))
    });
    // Otherwise an uncompressed syntax asked for by name: decoded or re-encoded losslessly.
    let convert_to = (!as_stored)
        .then(|| {
            ranges.iter().filter(|r| r.accepts("application/dicom")).find_map(|r| {
                r.transfer_syntax
                    .as_deref()
                    .filter(|ts| *ts != "*" && cloudfilm_dicom::transcode::can_produce(ts))
                    .map(str::to_owned)
            })
        })
        .flatten();
    if !as_stored && convert_to.is_none() {
        return Err(ApiError::not_acceptable(
            "instances are served as stored (transfer-syntax=*) or converted to an uncompressed transfer syntax; compressing is not offered",
        ));
    }
    audit_access(&state, &auth, &rows, format!("wado-rs: {} instance(s)", rows.len())).await?;
    let archive = state.archive.clone();
    let base = base_url(&state, &headers, &auth.context);
    if let Some(ts) = convert_to {
        return Ok(converted_instances(archive, auth, rows, base, ts));
    }
    // The first bytes are read before the answer starts: a store that does not answer gets a
    // clean 503 (an altered blob its error and alert), not a 200 cut short. The next instances
    // are opened meanwhile, a few ahead of the one being sent.
    let mut ahead = OpenAhead::start(archive.clone(), rows);
    let (row, opening) = ahead.next_async().await.expect("a target has at least one instance");
    let opened = opened(&archive, &auth, &row, opening).await?;
    let mut first = Some((row, Ok(opened)));
    Ok(multipart::stream("application/dicom", None, move |w| {
        while let Some((row, opened)) = first.take().or_else(|| ahead.next_blocking()) {
            let Opened { mut chunks, first: first_chunk } = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    if matches!(e, retrieve::RetrieveError::Store(cloudfilm_store::StoreError::Integrity)) {
                        alert_integrity(&archive, &auth, &row);
                    }
                    return Err(std::io::Error::other(e));
                }
            };
            if !w.part_header("application/dicom", Some(&instance_url(&base, &row))) {
                return Ok(());
            }
            let mut pending = first_chunk;
            loop {
                match pending.take().map_or_else(|| chunks.next_chunk(), |chunk| Ok(Some(chunk))) {
                    Ok(Some(chunk)) => {
                        if !w.send(chunk) {
                            return Ok(());
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if matches!(e, cloudfilm_store::StoreError::Integrity) {
                            alert_integrity(&archive, &auth, &row);
                        }
                        return Err(std::io::Error::other(e));
                    }
                }
            }
            w.part_end();
        }
        Ok(())
    }))
}

/// The first instance of an answer as it opened; an altered blob is recorded (durably, before
/// the error answer) as a security alert.
async fn opened(
    archive: &Arc<Archive>,
    auth: &OrgAuth,
    row: &InstanceRow,
    opened: Result<Opened, retrieve::RetrieveError>,
) -> Result<Opened, ApiError> {
    if let Err(retrieve::RetrieveError::Store(cloudfilm_store::StoreError::Integrity)) = &opened {
        let event = integrity_event(auth, row);
        tracing::error!(
            request_id = event.request_id.as_deref().unwrap_or("-"),
            "a stored instance failed its integrity check"
        );
        archive.repo.audit(vec![event]).await?;
    }
    Ok(opened?)
}

/// The instances converted to `ts`, each whole in memory (bounded by the instance limit).
fn converted_instances(
    archive: Arc<Archive>,
    auth: OrgAuth,
    rows: Vec<InstanceRow>,
    base: String,
    ts: String,
) -> Response {
    let part_ts = ts.clone();
    multipart::stream("application/dicom", Some(&part_ts), move |w| {
        let limit = archive.config.limits.max_instance_bytes;
        for row in &rows {
            // Held while the instance is read and converted, not while the client reads it.
            let permit = archive.blocking_decode_permit();
            let bytes = retrieve::whole(&archive, row).inspect_err(|e| {
                if matches!(e, retrieve::RetrieveError::Store(cloudfilm_store::StoreError::Integrity)) {
                    alert_integrity(&archive, &auth, row);
                }
            });
            let converted = bytes
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|bytes| {
                    cloudfilm_dicom::transcode::transcode_part10(&bytes, &ts, limit)
                        .map_err(|e| std::io::Error::other(e.to_string()))
                })
                .map_err(|e| std::io::Error::other(format!("instance {}: {e}", row.sop_uid)))?;
            drop(permit);
            if !w.part_header("application/dicom", Some(&instance_url(&base, row))) || !w.send(converted) {
                return Ok(());
            }
            w.part_end();
        }
        Ok(())
    })
}

// ---- metadata --------------------------------------------------------------------------

/// DICOM JSON metadata of a study, a series or an instance.
pub async fn metadata(
    State(state): State<AppState>,
    auth: OrgAuth,
    target: Target,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rows = rows(&state, &auth, &target).await?;
    let ranges = accept::parse(&headers);
    if !ranges.iter().any(|r| r.accepts("application/dicom+json") || r.accepts("application/json")) {
        return Err(ApiError::not_acceptable("metadata is served as application/dicom+json"));
    }
    audit_access(&state, &auth, &rows, format!("wado-rs metadata: {} instance(s)", rows.len())).await?;
    let archive = state.archive.clone();
    let base = base_url(&state, &headers, &auth.context);
    let auth2 = auth.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<serde_json::Value>, ApiError> {
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let header = retrieve::header(&archive, row).inspect_err(|e| {
                if matches!(e, retrieve::RetrieveError::Store(cloudfilm_store::StoreError::Integrity)) {
                    alert_integrity(&archive, &auth2, row);
                }
            })?;
            let has_pixels = !matches!(row.layout, PixelLayout::None);
            out.push(cloudfilm_dicom::json::metadata_json(&header, has_pixels, &instance_url(&base, row)));
        }
        Ok(out)
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let mut response = (StatusCode::OK, serde_json::to_vec(&body).expect("JSON serializes")).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/dicom+json"));
    Ok(response)
}

// ---- frames ----------------------------------------------------------------------------

/// How frames go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameMode {
    /// The stored bytes, in the stored transfer syntax's media type.
    AsStored(&'static str),
    /// Decoded to little-endian samples (`application/octet-stream`).
    Uncompressed,
}

fn frame_mode(ranges: &[MediaRange], row: &InstanceRow) -> Option<FrameMode> {
    let ts = row.transfer_syntax.as_str();
    let stored_le = is_native(ts) && ts != "1.2.840.10008.1.2.2" && !matches!(row.layout, PixelLayout::Whole);
    for r in ranges {
        if stored_le
            && r.accepts("application/octet-stream")
            && (r.allows_transfer_syntax(EXPLICIT_LE) || r.allows_transfer_syntax(ts))
        {
            return Some(FrameMode::AsStored("application/octet-stream"));
        }
        if !is_native(ts) && !matches!(row.layout, PixelLayout::Whole) {
            let media = frame_media_type(ts);
            if r.accepts(media) && r.allows_transfer_syntax(ts) && media != "application/octet-stream" {
                return Some(FrameMode::AsStored(media));
            }
        }
        // `transfer-syntax=*`: any syntax will do, so a compressed frame goes out as stored.
        if r.transfer_syntax.as_deref() == Some("*")
            && r.accepts("application/octet-stream")
            && !is_native(ts)
            && !matches!(row.layout, PixelLayout::Whole)
        {
            return Some(FrameMode::AsStored("application/octet-stream"));
        }
        if r.accepts("application/octet-stream")
            && r.allows_transfer_syntax(EXPLICIT_LE)
            && cloudfilm_dicom::transfer::can_decode_pixels(ts)
        {
            return Some(FrameMode::Uncompressed);
        }
    }
    None
}

fn parse_frames(list: &str, count: u32) -> Result<Vec<u32>, ApiError> {
    let frames: Vec<u32> =
        list.split(',').map(|f| f.trim().parse::<u32>().ok().filter(|n| *n >= 1)).collect::<Option<_>>().ok_or_else(
            || ApiError::bad_request("invalid_frame_list", "frames are listed as 1-based numbers separated by commas"),
        )?;
    if frames.is_empty() || frames.len() > 10_000 {
        return Err(ApiError::bad_request("invalid_frame_list", "list between 1 and 10000 frames"));
    }
    if let Some(missing) = frames.iter().find(|n| **n > count) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_frame",
            format!("frame {missing} does not exist (the instance has {count})"),
        ));
    }
    Ok(frames)
}

pub fn frame_count(row: &InstanceRow) -> u32 {
    match row.layout {
        PixelLayout::None => 0,
        ref layout => layout.frame_count().unwrap_or(row.attrs.frames.max(1)),
    }
}

pub async fn frames(
    State(state): State<AppState>,
    auth: OrgAuth,
    target: Target,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = rows(&state, &auth, &target).await?.remove(0);
    let frames = parse_frames(target.frames.as_deref().unwrap_or_default(), frame_count(&row))?;
    send_frames(&state, auth, row, frames, &headers).await
}

/// The pixel data bulk data a metadata response points to: all frames.
pub async fn bulkdata(
    State(state): State<AppState>,
    auth: OrgAuth,
    target: Target,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = rows(&state, &auth, &target).await?.remove(0);
    let is_pixels = target.tag.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("7FE00010"));
    if !is_pixels || matches!(row.layout, PixelLayout::None) {
        return Err(ApiError::not_found());
    }
    let frames = (1..=frame_count(&row)).collect();
    send_frames(&state, auth, row, frames, &headers).await
}

/// Refuses to decode a frame whose declared geometry exceeds the decoder's limit: in samples,
/// and in bytes (as many as the limit's samples at 16 bits), before any decoder allocates.
fn frame_fits(archive: &Archive, row: &InstanceRow) -> Result<(), ApiError> {
    let pixels = u64::from(row.attrs.rows.unwrap_or(0))
        * u64::from(row.attrs.columns.unwrap_or(0))
        * u64::from(row.attrs.samples_per_pixel.unwrap_or(1));
    let bytes = pixels * u64::from(row.attrs.bits_allocated.unwrap_or(8)).div_ceil(8).max(1);
    let limit = archive.config.limits.max_render_pixels;
    if pixels > limit || bytes > limit.saturating_mul(2) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "frame_too_large",
            "the frame is larger than the decoder's limit; ask for it as stored",
        ));
    }
    Ok(())
}

/// One frame's bytes in the chosen mode.
fn frame_bytes(
    archive: &Archive,
    auth: &OrgAuth,
    row: &InstanceRow,
    number: u32,
    mode: FrameMode,
) -> Result<Vec<u8>, ApiError> {
    let (header, source) = retrieve::frame(archive, row, number).inspect_err(|e| {
        if matches!(e, retrieve::RetrieveError::Store(cloudfilm_store::StoreError::Integrity)) {
            alert_integrity(archive, auth, row);
        }
    })?;
    let stored = match mode {
        FrameMode::AsStored(_) => retrieve::stored_frame_bytes(&source),
        FrameMode::Uncompressed => None,
    };
    match stored {
        Some(bytes) => Ok(bytes),
        None => frame_fits(archive, row).and_then(|()| {
            render::decode_raw(&header, source).map_err(|e| match e {
                render::RenderError::Unsupported(ts) => {
                    ApiError::not_acceptable(format!("frames in {ts} cannot be decoded here; ask for them as stored"))
                }
                other => {
                    tracing::warn!(error = %other, "a frame could not be decoded");
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "cannot_decode",
                        "this frame could not be decoded; ask for it as stored (type=\"*/*\")",
                    )
                }
            })
        }),
    }
}

async fn send_frames(
    state: &AppState,
    auth: OrgAuth,
    row: InstanceRow,
    frames: Vec<u32>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mode = frame_mode(&accept::parse(headers), &row).ok_or_else(|| {
        ApiError::not_acceptable(format!(
            "frames of this instance are available as {} (as stored){}",
            frame_media_type(&row.transfer_syntax),
            if cloudfilm_dicom::transfer::can_decode_pixels(&row.transfer_syntax) {
                " or application/octet-stream (uncompressed)"
            } else {
                ""
            }
        ))
    })?;
    let detail = format!("wado-rs frames: {} frame(s) of instance {}", frames.len(), row.sop_uid);
    audit_access(state, &auth, std::slice::from_ref(&row), detail).await?;
    let archive = state.archive.clone();
    // The first frame is made before answering, so a frame that cannot be decoded is a clean
    // error rather than a cut-off body; the others follow in the same codec.
    let first = {
        let (archive, auth, row) = (archive.clone(), auth.clone(), row.clone());
        let number = frames[0];
        tokio::task::spawn_blocking(move || frame_bytes(&archive, &auth, &row, number, mode))
            .await
            .map_err(|_| ApiError::internal())??
    };
    let (part_type, ts) = match mode {
        FrameMode::AsStored(media) if !is_native(&row.transfer_syntax) => (media, Some(row.transfer_syntax.clone())),
        _ => ("application/octet-stream", Some(EXPLICIT_LE.to_owned())),
    };
    // A compressed frame sent as stored under `application/octet-stream` names its syntax in
    // its part too: clients decode a part by its own Content-Type (OHIF's loader read such a
    // JPEG-LS frame as raw little-endian samples and drew nothing). Uncompressed parts (little
    // endian, the type's default) and typed ones (`image/jpeg`, `image/jls`, ...) stay as they are.
    let part_header = match &ts {
        Some(ts) if part_type == "application/octet-stream" && ts != EXPLICIT_LE => {
            format!("{part_type}; transfer-syntax={ts}")
        }
        _ => part_type.to_owned(),
    };
    Ok(multipart::stream(part_type, ts.as_deref(), move |w| {
        let mut next = Some(first);
        for (i, &number) in frames.iter().enumerate() {
            let bytes = match next.take() {
                Some(bytes) => bytes,
                None => frame_bytes(&archive, &auth, &row, number, mode)
                    .map_err(|e| std::io::Error::other(format!("frame {}: {}", i + 1, e.message)))?,
            };
            if !w.part_header(&part_header, None) || !w.send(bytes) || !w.part_end() {
                return Ok(());
            }
        }
        Ok(())
    }))
}

// ---- rendered and thumbnails --------------------------------------------------------

pub fn render_options(
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    thumbnail: bool,
) -> Result<RenderOptions, ApiError> {
    let bad = |e: render::RenderError| ApiError::bad_request("invalid_rendering_parameter", e.to_string());
    let ranges = accept::parse(headers);
    let format = ranges
        .iter()
        .find_map(|r| {
            if r.accepts("image/jpeg") {
                Some(ImageFormat::Jpeg)
            } else if r.accepts("image/png") {
                Some(ImageFormat::Png)
            } else {
                None
            }
        })
        .ok_or_else(|| ApiError::not_acceptable("rendered images are image/jpeg or image/png"))?;
    let window = params.get("window").map(|w| render::parse_window(w)).transpose().map_err(bad)?;
    let mut viewport = params.get("viewport").map(|v| render::parse_viewport(v)).transpose().map_err(bad)?;
    if thumbnail && viewport.is_none() {
        viewport = Some((128, 128));
    }
    let quality = params
        .get("quality")
        .map(|q| q.parse::<u8>().ok().filter(|q| (1..=100).contains(q)))
        .map(|q| q.ok_or_else(|| ApiError::bad_request("invalid_rendering_parameter", "quality is 1 to 100")))
        .transpose()?;
    Ok(RenderOptions { format, window, viewport, quality })
}

/// Renders frame `number` of `row` into the requested image; `integrity_alert` is recorded if
/// the stored bytes fail their check.
pub async fn render_frame(
    archive: &Arc<Archive>,
    integrity_alert: AuditEvent,
    row: InstanceRow,
    number: u32,
    options: RenderOptions,
) -> Result<Response, ApiError> {
    frame_fits(archive, &row)?;
    let _permit = archive.render_permits.acquire().await.map_err(|_| ApiError::internal())?;
    let archive = archive.clone();
    let format = options.format;
    let started = std::time::Instant::now();
    let image = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let (header, source) = retrieve::frame(&archive, &row, number).inspect_err(|e| {
            if matches!(e, retrieve::RetrieveError::Store(cloudfilm_store::StoreError::Integrity)) {
                record_integrity_alert(&archive, integrity_alert);
            }
        })?;
        render::render(&header, source, &options).map_err(|e| match e {
            render::RenderError::Unsupported(ts) => ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "cannot_render",
                format!("frames in {ts} cannot be rendered here; the original is available"),
            ),
            other => {
                tracing::warn!(error = %other, "a frame could not be rendered");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "cannot_render",
                    "this frame could not be rendered; the original is available",
                )
            }
        })
    })
    .await
    .map_err(|_| ApiError::internal())?;
    crate::metrics::rendered(image.is_ok(), started.elapsed());
    let mut response = (StatusCode::OK, image?).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    Ok(response)
}

/// An instance (its first frame) or one frame, rendered.
pub async fn rendered(
    State(state): State<AppState>,
    auth: OrgAuth,
    target: Target,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let row = rows(&state, &auth, &target).await?.remove(0);
    let frame = match &target.frames {
        None => 1,
        Some(list) => match parse_frames(list, frame_count(&row))?[..] {
            [frame] => frame,
            _ => return Err(ApiError::bad_request("invalid_frame_list", "a rendered frame request names one frame")),
        },
    };
    render_one(&state, auth, row, frame, &params, &headers, false).await
}

/// A small rendering: of a study or series (its middle image), an instance (its middle frame)
/// or the first listed frame.
pub async fn thumbnail(
    State(state): State<AppState>,
    auth: OrgAuth,
    target: Target,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rows = rows(&state, &auth, &target).await?;
    if target.sop.is_none() {
        return thumbnail_of(&state, auth, rows, &params, &headers).await;
    }
    let row = rows.into_iter().next().expect("rows() never answers empty");
    let frame = match &target.frames {
        Some(list) => parse_frames(list, frame_count(&row))?[0],
        None => frame_count(&row).div_ceil(2).max(1),
    };
    render_one(&state, auth, row, frame, &params, &headers, true).await
}

/// The middle image of the first series that has images.
async fn thumbnail_of(
    state: &AppState,
    auth: OrgAuth,
    rows: Vec<InstanceRow>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some(first) = rows.iter().find(|r| !matches!(r.layout, PixelLayout::None)) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no_pixel_data", "nothing here has images"));
    };
    let series: Vec<&InstanceRow> =
        rows.iter().filter(|r| r.series_uid == first.series_uid && !matches!(r.layout, PixelLayout::None)).collect();
    let row = series[series.len() / 2].clone();
    let middle = frame_count(&row).div_ceil(2).max(1);
    render_one(state, auth, row, middle, params, headers, true).await
}

async fn render_one(
    state: &AppState,
    auth: OrgAuth,
    row: InstanceRow,
    frame: u32,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    thumbnail: bool,
) -> Result<Response, ApiError> {
    if matches!(row.layout, PixelLayout::None) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no_pixel_data", "the instance has no pixel data"));
    }
    if frame > frame_count(&row) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no_such_frame", format!("frame {frame} does not exist")));
    }
    let options = render_options(params, headers, thumbnail)?;
    let what = if thumbnail { "thumbnail" } else { "rendered" };
    let accessed = [row.clone()];
    let audited =
        audit_access(state, &auth, &accessed, format!("wado-rs {what}: frame {frame} of instance {}", row.sop_uid));
    let alert = integrity_event(&auth, &row);
    // The frame renders while its audit entry commits; it is sent once both are done (S26).
    let ((), response) = tokio::try_join!(audited, render_frame(&state.archive, alert, row, frame, options))?;
    Ok(response)
}
