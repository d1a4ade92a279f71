//! [`Blobs`]: the encrypting layer over a [`BlobStore`], with the steps the ingest pipeline
//! drives — [`create`](Blobs::create) a pending object (encrypted as bytes arrive, into the
//! store's staging area), [`put`](Blobs::put) a batch durably, commit the index, then
//! [`settle`](Blobs::settle) — and the readers of stored objects. Nothing but ciphertext
//! reaches a store.

use super::{BlobStore, Recovered};
use crate::error::{Result, StoreError};
use cloudfilm_crypto::blob::BlobSummary;
use cloudfilm_crypto::{BlobReader, BlobWriter, KeyRing};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::sync::Arc;

/// Objects of the store's listing checked against the index in one query by recovery.
const RECOVERY_PAGE: usize = 500;

#[derive(Clone)]
pub struct Blobs {
    ring: Arc<KeyRing>,
    store: Arc<dyn BlobStore>,
}

/// An object being written to the staging area.
pub struct PendingBlob {
    pub id: String,
    store: Arc<dyn BlobStore>,
    /// Open only while the object is written: a finished one holds no file descriptor, so one
    /// request of thousands of instances holds only those being written.
    writer: Option<BlobWriter<File>>,
    /// The store may hold a copy (a put was attempted).
    put: bool,
    /// Dropping an unkept object removes it.
    keep: bool,
}

impl Blobs {
    pub fn new(ring: Arc<KeyRing>, store: Arc<dyn BlobStore>) -> Blobs {
        Blobs { ring, store }
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// Lets other processes open the store once recovery is done (or was not needed).
    pub fn share(&self) -> Result<()> {
        self.store.staging().share()
    }

    /// Starts a new object under a fresh random id.
    pub fn create(&self) -> Result<PendingBlob> {
        let id = cloudfilm_crypto::random::hex_id();
        let file = self.store.staging().create(&id)?;
        // The writer emits whole 64 KiB segments: no buffering needed between it and the file.
        // Its header is written at once: a disk that fails it leaves no empty file behind.
        let writer = BlobWriter::new(&self.ring, &id, file).inspect_err(|_| {
            let _ = self.store.staging().remove(&id);
        })?;
        Ok(PendingBlob { id, store: self.store.clone(), writer: Some(writer), put: false, keep: false })
    }

    /// Makes a batch of finished objects durable in the store, before the index names them.
    pub async fn put(&self, blobs: &mut [&mut PendingBlob]) -> Result<()> {
        let ids: Vec<String> = blobs
            .iter_mut()
            .map(|b| {
                b.put = true;
                b.id.clone()
            })
            .collect();
        self.store.put(&ids).await
    }

    /// After the index commit: moves the object into place (local) or drops its staged copy
    /// (S3). A failure leaves a readable object that the next recovery finishes.
    pub async fn settle(&self, id: &str) -> Result<()> {
        self.store.settle(id).await
    }

    /// Removes an object that will not be committed (a duplicate, a failure).
    pub async fn discard(&self, mut blob: PendingBlob) {
        blob.keep = true;
        let _ = blob.store.staging().remove(&blob.id);
        if blob.put
            && let Err(e) = self.store.delete(&blob.id).await
        {
            tracing::warn!(error = %e, "an unused object stays in the store until recovery removes it");
        }
    }

    /// Opens a stored object for random-access reading, on a blocking thread.
    pub fn open_blob(&self, id: &str) -> Result<BlobReader<Box<dyn super::ReadSeek>>> {
        let source = self.store.open_sync(id)?;
        Ok(BlobReader::open(&self.ring, id, source)?)
    }

    /// Reads a whole object and checks it against its recorded SHA-256 (S3), on a blocking
    /// thread.
    pub fn read_verified(&self, id: &str, sha256: &str) -> Result<Vec<u8>> {
        let mut reader = self.open_blob(id)?;
        let mut out = Vec::with_capacity(reader.plaintext_len() as usize);
        reader.read_to_end(&mut out)?;
        if cloudfilm_crypto::sha256_hex(&out) != sha256 {
            return Err(StoreError::Integrity);
        }
        Ok(out)
    }

    /// Finishes crashed writes: referenced objects still staged are settled (the others are
    /// simply in place); unreferenced ones older than the store's grace period are deleted,
    /// younger ones left for a later pass. The listing is checked against the index a page
    /// at a time (`referenced` answers which ids of a page the index holds), so a bucket of a
    /// million objects costs a thousand index queries, not a million.
    pub async fn recover<F, Fut>(&self, referenced: F) -> Result<Recovered>
    where
        F: Fn(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = Result<HashSet<String>>>,
    {
        self.recover_in_pages(referenced, RECOVERY_PAGE).await
    }

    pub(crate) async fn recover_in_pages<F, Fut>(&self, referenced: F, page_size: usize) -> Result<Recovered>
    where
        F: Fn(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = Result<HashSet<String>>>,
    {
        let grace = chrono::Duration::from_std(self.store.recovery_grace()).unwrap_or(chrono::Duration::MAX);
        let now = chrono::Utc::now();
        let mut report = Recovered::default();
        let mut pages = self.store.list_for_recovery().try_chunks(page_size);
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| e.1)?;
            let held = referenced(page.iter().map(|o| o.id.clone()).collect()).await?;
            for object in page {
                if held.contains(&object.id) {
                    if self.store.staging().open_file(&object.id)?.is_some() {
                        self.store.settle(&object.id).await?;
                        report.settled += 1;
                    } else {
                        report.kept += 1;
                    }
                } else if grace.is_zero() || now.signed_duration_since(object.last_modified) >= grace {
                    self.store.delete(&object.id).await?;
                    report.deleted += 1;
                } else {
                    report.young += 1;
                }
            }
        }
        Ok(report)
    }

    /// A cheap check that the store answers.
    pub async fn check(&self) -> Result<()> {
        self.store.check().await
    }
}

impl PendingBlob {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.writer.as_mut().expect("not finished").write_all(data).map_err(Into::into)
    }

    /// Seals the last segment, flushes it to the staged file (not yet durable) and closes it.
    pub fn finish(&mut self) -> Result<BlobSummary> {
        let writer = self.writer.take().expect("finished once");
        let (file, summary) = writer.finish()?;
        self.store.staging().written(&file);
        Ok(summary)
    }

    /// The index now references the object: it outlives this handle.
    pub fn keep(mut self) -> String {
        self.keep = true;
        std::mem::take(&mut self.id)
    }
}

impl Drop for PendingBlob {
    /// An abandoned object (an error, a cancelled request) leaves nothing behind: its staged
    /// file goes now, a copy in the store in the background (or at the next recovery).
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        self.writer = None;
        let _ = self.store.staging().remove(&self.id);
        if self.put
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (store, id) = (self.store.clone(), std::mem::take(&mut self.id));
            runtime.spawn(async move {
                let _ = store.delete(&id).await;
            });
        }
    }
}
