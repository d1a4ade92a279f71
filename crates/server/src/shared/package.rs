//! The download package, streamed as a zip without holding the study in memory: the original
//! instances byte-identical as stored (each checked against its hash as it goes; only a
//! non-zero 128-byte preamble is written as zeros, S8, and the manifest lists what was sent), a DICOMDIR
//! (PS3.10 media directory) so common viewers open the package, and `MANIFEST.json` with every
//! file's size and SHA-256, signed by the archive's Ed25519 key (`MANIFEST.sig`). A failure
//! mid-way breaks the stream rather than delivering an incomplete package.

use crate::Archive;
use crate::app::RequestContext;
use crate::retrieve::{self, InstanceChunks};
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cloudfilm_core::clock::stamp;
use cloudfilm_crypto::manifest::{FileEntry, MANIFEST_PATH, Manifest, SIGNATURE_PATH};
use cloudfilm_dicom::dicomdir::{self, DirectoryEntry};
use cloudfilm_store::patients::ExamRow;
use cloudfilm_store::sharing::{Access, DOWNLOAD_CATEGORY, DownloadRow, Transfer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;

/// Bytes gathered before a piece of the zip goes out.
const PIECE: usize = 256 * 1024;

/// What goes into a package: files given whole (JSON of an export), then each exam's
/// instances with a DICOMDIR under its folder (`""` for the package root).
pub struct Contents {
    pub files: Vec<(String, Vec<u8>)>,
    pub exams: Vec<(String, ExamRow)>,
    /// The manifest's `organization` and `exam` values.
    pub organization: String,
    pub label: String,
}

/// What to record once the package has gone out (or failed).
pub enum Purpose {
    Download { context: RequestContext, link: DownloadRow },
    Export { event: cloudfilm_audit::AuditEvent },
}

/// Starts streaming a package as `file_name`; records the outcome when it ends.
pub fn stream(archive: Arc<Archive>, file_name: &str, contents: Contents, purpose: Purpose) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let disposition = format!("attachment; filename=\"{file_name}\"");
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let result = write_package(&archive, &runtime, &contents, ChannelWriter { tx: tx.clone(), piece: Vec::new() });
        let outcome = match &result {
            Ok(files) => format!("delivered: {files} files"),
            Err(e) => {
                tracing::error!(error = %e, "a package failed while streaming");
                let _ = tx.blocking_send(Err(std::io::Error::other("the package could not be completed")));
                if failed_integrity(e) {
                    crate::dicomweb::wado::record_integrity_alert(&archive, integrity_event(&contents, &purpose));
                }
                format!("failed: {e}")
            }
        };
        let _ = runtime.block_on(record(&archive, &contents, purpose, outcome));
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("an ASCII file name"));
    response
}

/// Whether stored bytes failed their check (S3) while the package was written.
fn failed_integrity(e: &anyhow::Error) -> bool {
    use cloudfilm_store::StoreError;
    e.chain().any(|cause| {
        matches!(cause.downcast_ref::<StoreError>(), Some(StoreError::Integrity))
            || matches!(
                cause.downcast_ref::<retrieve::RetrieveError>(),
                Some(retrieve::RetrieveError::Store(StoreError::Integrity))
            )
    })
}

/// The security alert of a package cut short by an instance that failed its check.
fn integrity_event(contents: &Contents, purpose: &Purpose) -> cloudfilm_audit::AuditEvent {
    use cloudfilm_audit::{Action, AuditEvent, Outcome};
    let (actor, client_ip, request_id) = match purpose {
        Purpose::Download { context, link } => {
            (format!("download:{}", link.id), Some(context.client_ip.to_string()), Some(context.request_id.clone()))
        }
        Purpose::Export { event } => (event.actor.clone(), event.client_ip.clone(), event.request_id.clone()),
    };
    let object = contents.exams.first().map(|(_, exam)| format!("exam:{}", exam.exam_id)).unwrap_or_default();
    AuditEvent::new(
        Action::SecurityAlert,
        actor,
        object,
        Outcome::Failure("stored instance failed its integrity check".into()),
    )
    .from_client(client_ip, request_id)
    .with_detail("package cut short: an instance failed its integrity check")
}

fn tokio_stream_of(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Writes the whole package; the number of DICOM files in it.
fn write_package(
    archive: &Archive,
    runtime: &tokio::runtime::Handle,
    contents: &Contents,
    out: ChannelWriter,
) -> anyhow::Result<usize> {
    let mut zip = zip::ZipWriter::new_stream(out);
    let mut files = Vec::new();
    for (path, bytes) in &contents.files {
        add_file(&mut zip, &mut files, path, bytes)?;
    }
    let mut instances = 0;
    for (folder, exam) in &contents.exams {
        instances += write_exam(archive, runtime, exam, folder, &mut zip, &mut files)?;
    }
    let manifest =
        Manifest::new(&contents.organization, &contents.label, &stamp(archive.clock.now()), &archive.signer, files);
    let (manifest_bytes, signature) = manifest.signed(&archive.signer);
    for (path, bytes) in [(MANIFEST_PATH, &manifest_bytes), (SIGNATURE_PATH, &signature)] {
        zip.start_file(path, options(bytes.len() as u64))?;
        zip.write_all(bytes)?;
    }
    zip.finish()?.into_inner().flush()?;
    Ok(instances)
}

/// One exam's instances under `folder` (`DICOM/S0001/I00001`…) and its DICOMDIR beside them.
fn write_exam(
    archive: &Archive,
    runtime: &tokio::runtime::Handle,
    exam: &ExamRow,
    folder: &str,
    zip: &mut PackageWriter,
    files: &mut Vec<FileEntry>,
) -> anyhow::Result<usize> {
    let rows = runtime.block_on(archive.repo.instances(exam.org_id, &exam.study_uid, None, None))?;
    let mut headers = Vec::with_capacity(rows.len());
    let (mut series_no, mut instance_no, mut last_series) = (0usize, 0usize, None::<String>);
    for row in &rows {
        if last_series.as_deref() != Some(row.series_uid.as_str()) {
            (series_no, instance_no, last_series) = (series_no + 1, 0, Some(row.series_uid.clone()));
        }
        instance_no += 1;
        let file_id = vec!["DICOM".to_owned(), format!("S{series_no:04}"), format!("I{instance_no:05}")];
        let path = format!("{folder}{}", file_id.join("/"));
        headers.push((file_id, retrieve::header(archive, row)?));
        zip.start_file(path.as_str(), options(row.size))?;
        let mut chunks = InstanceChunks::open(archive, row)?;
        let mut rehash = None;
        let mut first = true;
        while let Some(mut chunk) = chunks.next_chunk()? {
            if std::mem::take(&mut first) && zero_preamble(&mut chunk) {
                rehash = Some(Sha256::new());
            }
            if let Some(hasher) = rehash.as_mut() {
                hasher.update(&chunk);
            }
            zip.write_all(&chunk)?;
        }
        let sha256 = rehash.map_or_else(|| row.sha256.clone(), |h| hex::encode(h.finalize()));
        files.push(FileEntry { path, size: row.size, sha256 });
    }
    let entries: Vec<DirectoryEntry> =
        headers.iter().map(|(file_id, header)| DirectoryEntry { file_id: file_id.clone(), header }).collect();
    let directory = dicomdir::build(&entries, "CLOUDFILM")?;
    add_file(zip, files, &format!("{folder}DICOMDIR"), &directory)?;
    Ok(rows.len())
}

/// Zeroes a Part-10 preamble that is not zero already (S8: a preamble can make a file that
/// is also an executable); whether it changed anything.
fn zero_preamble(first_chunk: &mut [u8]) -> bool {
    let is_part10 = first_chunk.get(128..132) == Some(b"DICM".as_slice());
    if !is_part10 || first_chunk[..128].iter().all(|b| *b == 0) {
        return false;
    }
    first_chunk[..128].fill(0);
    true
}

fn options(size: u64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(size >= u64::from(u32::MAX))
}

type PackageWriter = zip::ZipWriter<zip::write::StreamWriter<ChannelWriter>>;

/// Adds a file given whole, listed in the manifest.
fn add_file(zip: &mut PackageWriter, files: &mut Vec<FileEntry>, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    zip.start_file(path, options(bytes.len() as u64))?;
    zip.write_all(bytes)?;
    files.push(FileEntry {
        path: path.to_owned(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    });
    Ok(())
}

async fn record(
    archive: &Archive,
    contents: &Contents,
    purpose: Purpose,
    outcome: String,
) -> Result<(), crate::error::ApiError> {
    let now = archive.clock.now();
    let (access, transfers, audit) = match purpose {
        Purpose::Download { context, link } => {
            let exam = &contents.exams[0].1;
            let access = Access {
                account_id: link.account_id.clone(),
                at: now,
                actor: format!("download link holder (download {})", link.id),
                action: format!("downloaded the original DICOM ({outcome})"),
                object: format!("exam {}", exam.exam_id),
                client_ip: Some(context.client_ip.to_string()),
            };
            let transfer = Transfer {
                at: now,
                account_id: link.account_id.clone(),
                sender: Transfer::sender(&exam.org_name, &exam.org_code),
                receiver: Transfer::receiver("download link holder", &link.id, Some(&context.client_ip.to_string())),
                category: DOWNLOAD_CATEGORY.into(),
                result: outcome,
            };
            (vec![access], vec![transfer], Vec::new())
        }
        Purpose::Export { event } => {
            (Vec::new(), Vec::new(), vec![event.with_detail(format!("account export {outcome}"))])
        }
    };
    archive.repo.log(access, transfers, audit).await?;
    Ok(())
}

/// Sends what the zip writer writes to the response, a piece at a time; a client that went
/// away ends the writing.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    piece: Vec<u8>,
}

impl ChannelWriter {
    fn send_piece(&mut self) -> std::io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::take(&mut self.piece));
        self.tx.blocking_send(Ok(piece)).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.piece.extend_from_slice(buf);
        if self.piece.len() >= PIECE {
            self.send_piece()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_piece()
    }
}
