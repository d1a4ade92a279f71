//! The ingest pipeline shared by STOW-RS, `cloudfilm import` and (later) C-STORE:
//! spool (encrypting as bytes arrive) → inspect → fsync → one index commit for the batch →
//! publish. Nothing is acknowledged before the blob and its index row are durable (S1), and
//! nothing of a refused or failed instance remains.

// A refusal (`IngestResult`) travels once per instance, by value; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use crate::archive::Archive;
use cloudfilm_core::OrgId;
use cloudfilm_core::instance::InstanceInfo;
use cloudfilm_crypto::blob::BlobSummary;
use cloudfilm_dicom::InspectError;
use cloudfilm_store::blobs::PendingBlob;
use cloudfilm_store::{ImportContext, NewInstance, StoreError, StoreOutcome};
use std::sync::Arc;

/// DICOM failure reasons used in STOW-RS responses and C-STORE statuses.
pub mod reason {
    /// Out of resources (disk full).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Data set does not match the SOP class / the target study.
    pub const DATASET_MISMATCH: u16 = 0xA900;
    /// Cannot understand.
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// Duplicate SOP Instance (same UID, different content).
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
}

/// An instance being received.
pub struct Spool {
    blob: PendingBlob,
    /// The first bytes of the instance, where its header is, kept for parsing.
    prefix: Vec<u8>,
    prefix_limit: usize,
    len: u64,
    max: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the instance is larger than the configured limit of {0} bytes")]
    TooLarge(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Spool {
    pub fn new(archive: &Archive) -> Result<Spool, StoreError> {
        Ok(Spool {
            blob: archive.blobs.create()?,
            prefix: Vec::new(),
            prefix_limit: archive.config.limits.inline_parse_bytes,
            len: 0,
            max: archive.config.limits.max_instance_bytes,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.len += chunk.len() as u64;
        if self.len > self.max {
            return Err(SpoolError::TooLarge(self.max));
        }
        self.blob.write(chunk)?;
        let room = self.prefix_limit.saturating_sub(self.prefix.len());
        self.prefix.extend_from_slice(&chunk[..room.min(chunk.len())]);
        Ok(())
    }
}

/// What happened to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Stored,
    /// The same bytes were already there: a success.
    Duplicate,
    Failed {
        reason: u16,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct IngestResult {
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub study_uid: Option<String>,
    pub series_uid: Option<String>,
    pub disposition: Disposition,
}

impl IngestResult {
    pub fn succeeded(&self) -> bool {
        matches!(self.disposition, Disposition::Stored | Disposition::Duplicate)
    }

    pub fn failed(reason: u16, message: impl Into<String>) -> IngestResult {
        IngestResult {
            sop_class_uid: None,
            sop_instance_uid: None,
            study_uid: None,
            series_uid: None,
            disposition: Disposition::Failed { reason, message: message.into() },
        }
    }
}

/// A received instance, inspected.
pub struct Candidate {
    blob: PendingBlob,
    summary: BlobSummary,
    info: InstanceInfo,
}

impl Candidate {
    pub fn sop_instance_uid(&self) -> &str {
        &self.info.sop_instance_uid
    }
}

/// Finishes the spool and inspects the instance: from the prefix kept in memory, reading
/// back from the encrypted spool only what lies beyond it (large headers, fragment tables).
pub async fn inspect(archive: &Arc<Archive>, spool: Spool) -> Result<Candidate, IngestResult> {
    inspect_spool(archive, spool, true).await
}

/// As [`inspect`], for data sets behind a file meta the archive wrote itself (C-STORE): their
/// SOP identifiers must be in the data set.
pub async fn inspect_strict(archive: &Arc<Archive>, spool: Spool) -> Result<Candidate, IngestResult> {
    inspect_spool(archive, spool, false).await
}

async fn inspect_spool(archive: &Arc<Archive>, spool: Spool, fill_from_meta: bool) -> Result<Candidate, IngestResult> {
    let archive = archive.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let Spool { mut blob, prefix, .. } = spool;
        let summary = blob.finish().map_err(|e| store_failure(&e))?;
        let mut reader = PrefixReader {
            prefix: &prefix,
            total: summary.plaintext_len,
            position: 0,
            rest: None,
            archive: &archive,
            id: &blob.id,
        };
        let max_inflated = archive.config.limits.max_inflated_bytes;
        match cloudfilm_dicom::inspect::inspect_bounded(&mut reader, fill_from_meta, max_inflated) {
            Ok(info) => Ok(Candidate { blob, summary, info }),
            Err(e) => Err(inspect_failure(&e)),
        }
    })
    .await;
    outcome.unwrap_or_else(|e| Err(IngestResult::failed(reason::PROCESSING_FAILURE, format!("internal error: {e}"))))
}

/// The plaintext of a spooled instance: its prefix from memory, the rest decrypted on demand.
struct PrefixReader<'a> {
    prefix: &'a [u8],
    total: u64,
    position: u64,
    rest: Option<cloudfilm_crypto::BlobReader<Box<dyn cloudfilm_store::blobs::ReadSeek>>>,
    archive: &'a Archive,
    id: &'a str,
}

impl std::io::Read for PrefixReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Seek;
        if self.position >= self.total {
            return Ok(0);
        }
        let n = if (self.position as usize) < self.prefix.len() {
            let from = &self.prefix[self.position as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else {
            if self.rest.is_none() {
                self.rest = Some(self.archive.blobs.open_blob(self.id).map_err(std::io::Error::other)?);
            }
            let rest = self.rest.as_mut().expect("opened");
            rest.seek(std::io::SeekFrom::Start(self.position))?;
            rest.read(buf)?
        };
        self.position += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for PrefixReader<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match pos {
            std::io::SeekFrom::Start(p) => p as i128,
            std::io::SeekFrom::End(d) => self.total as i128 + d as i128,
            std::io::SeekFrom::Current(d) => self.position as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.position = target as u64;
        Ok(self.position)
    }
}

fn inspect_failure(e: &InspectError) -> IngestResult {
    IngestResult::failed(e.failure_reason(), e.to_string())
}

pub fn store_failure(e: &StoreError) -> IngestResult {
    if let Some(why) = e.write_refusal() {
        if matches!(e, StoreError::Io(_)) {
            tracing::error!(error = %e, "an instance could not be written: the storage returned an I/O error");
        }
        IngestResult::failed(reason::OUT_OF_RESOURCES, why)
    } else {
        IngestResult::failed(reason::PROCESSING_FAILURE, "the archive could not write the instance")
    }
}

/// Either an inspected instance or the reason it was refused.
pub type Received = Result<Candidate, IngestResult>;

/// Makes the batch durable and indexes it; results come back in the order received.
/// `expected_study` refuses instances of another study (STOW-RS to `/studies/{uid}`).
pub async fn commit(
    archive: &Arc<Archive>,
    org_id: OrgId,
    received: Vec<Received>,
    expected_study: Option<&str>,
    mut context: ImportContext,
) -> Result<Vec<IngestResult>, StoreError> {
    let mut results: Vec<Option<IngestResult>> = Vec::with_capacity(received.len());
    let mut batch: Vec<(usize, Candidate)> = Vec::new();
    for (index, item) in received.into_iter().enumerate() {
        match item {
            Ok(candidate) if expected_study.is_some_and(|s| s != candidate.info.study_uid) => {
                let message = "the instance belongs to another study than the one in the request URL";
                context.rejected.push((Some(candidate.info.study_uid.clone()), message.into()));
                let failed = Disposition::Failed { reason: reason::DATASET_MISMATCH, message: message.into() };
                results.push(Some(describe(&candidate.info, failed)));
            }
            Ok(candidate) => {
                results.push(None);
                batch.push((index, candidate));
            }
            Err(result) => {
                let message = match &result.disposition {
                    Disposition::Failed { message, .. } => message.clone(),
                    _ => String::new(),
                };
                context.rejected.push((result.study_uid.clone(), message));
                results.push(Some(result));
            }
        }
    }

    // Blobs durable before the index names them.
    let mut batch = batch;
    {
        let mut pending: Vec<&mut PendingBlob> = batch.iter_mut().map(|(_, c)| &mut c.blob).collect();
        archive.blobs.put(&mut pending).await?;
    }

    let instances: Vec<NewInstance> = batch
        .iter()
        .map(|(_, c)| NewInstance {
            org_id,
            info: c.info.clone(),
            blob_id: c.blob.id.clone(),
            size: c.summary.plaintext_len,
            sha256: c.summary.sha256.clone(),
        })
        .collect();
    let interface = context.interface.clone();
    let outcomes = archive.repo.store_instances(instances, context).await?;

    let mut to_publish = Vec::new();
    let mut stored_bytes = 0;
    for ((index, candidate), outcome) in batch.into_iter().zip(outcomes) {
        let disposition = match outcome {
            StoreOutcome::Stored => Disposition::Stored,
            StoreOutcome::Duplicate => Disposition::Duplicate,
            StoreOutcome::Conflict => Disposition::Failed {
                reason: reason::DUPLICATE_SOP_INSTANCE,
                message: "another instance with this SOP Instance UID and different content is stored; it was kept"
                    .into(),
            },
        };
        results[index] = Some(describe(&candidate.info, disposition.clone()));
        // A blob not kept (a duplicate, a conflict) is removed as its handle drops: its staged
        // file at once, a copy the store holds in the background, so the answer does not wait.
        if disposition == Disposition::Stored {
            stored_bytes += candidate.summary.plaintext_len;
            to_publish.push(candidate.blob.keep());
        }
    }
    for id in to_publish {
        // The row is committed: a failed settle is finished by recovery, reads meanwhile find
        // the blob where it was staged.
        if let Err(e) = archive.blobs.settle(&id).await {
            tracing::warn!(error = %e, "a stored blob stays staged until the next start");
        }
    }
    let results: Vec<IngestResult> = results.into_iter().map(|r| r.expect("every item has a result")).collect();
    let count = |wanted: fn(&Disposition) -> bool| results.iter().filter(|r| wanted(&r.disposition)).count() as u64;
    crate::metrics::ingested(
        &interface,
        count(|d| *d == Disposition::Stored),
        count(|d| *d == Disposition::Duplicate),
        count(|d| matches!(d, Disposition::Failed { .. })),
        stored_bytes,
    );
    Ok(results)
}

fn describe(info: &InstanceInfo, disposition: Disposition) -> IngestResult {
    IngestResult {
        sop_class_uid: Some(info.sop_class_uid.clone()),
        sop_instance_uid: Some(info.sop_instance_uid.clone()),
        study_uid: Some(info.study_uid.clone()),
        series_uid: Some(info.series_uid.clone()),
        disposition,
    }
}

/// Spools and inspects an instance held in memory (generated studies).
pub async fn receive_bytes(archive: &Arc<Archive>, bytes: &[u8]) -> Received {
    let mut spool = Spool::new(archive).map_err(|e| store_failure(&e))?;
    spool.write(bytes).map_err(spool_failure)?;
    inspect(archive, spool).await
}

/// Spools and inspects a file, read in chunks.
pub async fn receive_file(archive: &Arc<Archive>, path: &std::path::Path) -> Received {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| IngestResult::failed(reason::CANNOT_UNDERSTAND, format!("cannot read the file: {e}")))?;
    let mut spool = Spool::new(archive).map_err(|e| store_failure(&e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| IngestResult::failed(reason::CANNOT_UNDERSTAND, format!("cannot read the file: {e}")))?;
        if n == 0 {
            break;
        }
        spool.write(&buf[..n]).map_err(spool_failure)?;
    }
    inspect(archive, spool).await
}

fn spool_failure(e: SpoolError) -> IngestResult {
    match e {
        SpoolError::TooLarge(_) => IngestResult::failed(reason::OUT_OF_RESOURCES, e.to_string()),
        SpoolError::Store(s) => store_failure(&s),
    }
}
