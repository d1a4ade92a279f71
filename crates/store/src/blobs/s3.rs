//! The S3-compatible blob store (AWS S3, Garage, s3s …) through `object_store`: the
//! ciphertext of a new object is spooled to this node's `DATA/spool/`, PUT (multipart when
//! large) before the index commit, and the spool file removed after it. Objects live under
//! `objects/<id>`. Reads are ranged GETs with read-ahead ([`super::s3_reader`]).
//!
//! Uniqueness comes from fresh random ids, never from a conditional PUT: Garage ignores
//! `If-None-Match`, and a retried PUT whose first attempt landed would fail one.

use super::cache::ReadCache;
use super::s3_reader::RangeReader;
use super::staging::valid_id;
use super::store::audit_head_name;
use super::{BlobStore, Chunk, ObjectInfo, ReadSeek, Staging};
use crate::error::{Result, StoreError, classify_io};
use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Unreferenced objects younger than this are left alone by recovery: another node may be
/// between its PUT and its index commit (a large batch is PUT whole before it commits).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Objects up to this size go in one PUT; larger ones in parts of [`PART_SIZE`].
const SINGLE_PUT_MAX: u64 = 8 << 20;
const PART_SIZE: usize = 8 << 20;
/// Parts of one object in flight at once.
const PART_CONCURRENCY: usize = 2;
/// Objects of one batch PUT at once.
const PUT_CONCURRENCY: usize = 4;
/// How long the check at start and `/healthz` wait for an answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
const PREFIX: &str = "objects";
/// Where signed audit heads are kept (outside [`PREFIX`], so recovery never sees them).
const HEADS_PREFIX: &str = "audit-heads";

/// S3 credentials, from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`; never printed.
pub struct Credentials {
    key_id: String,
    secret: zeroize::Zeroizing<String>,
}

impl Credentials {
    pub fn new(key_id: &str, secret: &str) -> Credentials {
        Credentials { key_id: key_id.to_owned(), secret: zeroize::Zeroizing::new(secret.to_owned()) }
    }

    pub fn from_env() -> std::result::Result<Credentials, String> {
        match (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
            (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Ok(Credentials::new(&id, &secret)),
            _ => Err("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

#[derive(Debug)]
pub struct S3Options {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub credentials: Credentials,
    /// This node's spool directory (under its data directory).
    pub spool: PathBuf,
    pub grace: Duration,
    /// This node's copy of recent objects ([`ReadCache`]): its directory and bound in bytes.
    pub cache: Option<(PathBuf, u64)>,
}

#[derive(Clone)]
pub struct S3BlobStore {
    client: Arc<AmazonS3>,
    staging: Staging,
    describe: String,
    grace: Duration,
    /// Redacted from every message that leaves this module.
    key_id: String,
    cache: Option<Arc<ReadCache>>,
}

impl S3BlobStore {
    /// Connects and checks that the bucket answers; the flag tells whether this process has
    /// the spool alone (then what a crash left there is removed: objects it had PUT without a
    /// commit are unreferenced, and recovery deletes them from the bucket after the grace).
    pub async fn open(options: S3Options) -> std::result::Result<(S3BlobStore, bool), String> {
        let S3Options { bucket, endpoint, region, credentials, spool, grace, cache } = options;
        crate::tls::install_provider();
        let retry =
            RetryConfig { backoff: BackoffConfig::default(), max_retries: 4, retry_timeout: Duration::from_secs(30) };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_region(region.as_deref().unwrap_or("us-east-1"))
            .with_access_key_id(&credentials.key_id)
            .with_secret_access_key(credentials.secret.as_str())
            .with_retry(retry)
            .with_client_options(ClientOptions::new().with_connect_timeout(Duration::from_secs(5)));
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let describe = match &endpoint {
            Some(endpoint) => format!("s3://{bucket} at {endpoint}"),
            None => format!("s3://{bucket} (AWS)"),
        };
        let key_id = credentials.key_id.clone();
        let client = builder.build().map_err(|e| redact(&explain(&e), &key_id))?;
        let lock = PathBuf::from(format!("{}.lock", spool.display()));
        let (staging, alone) = Staging::open(&spool, &lock, false).map_err(|e| format!("the spool directory: {e}"))?;
        if alone {
            for (id, _) in staging.entries().map_err(|e| format!("the spool directory: {e}"))? {
                let _ = staging.remove(&id);
            }
        }
        // Only a process alone with its data directory keeps copies (see `cache.rs`).
        let cache = match cache {
            Some((dir, bytes)) if alone && bytes > 0 => Some(Arc::new(
                ReadCache::open(&dir, bytes).map_err(|e| format!("the cache directory {}: {e}", dir.display()))?,
            )),
            _ => None,
        };
        let store = S3BlobStore { client: Arc::new(client), staging, describe, grace, key_id, cache };
        store.probe().await.map_err(|e| match e {
            Probe::NoBucket => format!("the bucket {bucket:?} does not exist"),
            Probe::Failed(reason) => format!("not reachable: {reason}"),
        })?;
        Ok((store, alone))
    }

    fn key(id: &str) -> ObjectPath {
        ObjectPath::from(format!("{PREFIX}/{id}"))
    }

    /// One listing request that returns nothing (it starts after every id).
    async fn probe(&self) -> std::result::Result<(), Probe> {
        let prefix = ObjectPath::from(PREFIX);
        let offset = ObjectPath::from(format!("{PREFIX}/~"));
        let mut listing = self.client.list_with_offset(Some(&prefix), &offset);
        match tokio::time::timeout(CHECK_TIMEOUT, listing.next()).await {
            Err(_) => Err(Probe::Failed(format!("no answer within {} s", CHECK_TIMEOUT.as_secs()))),
            Ok(None | Some(Ok(_))) => Ok(()),
            Ok(Some(Err(e))) => {
                let text = e.to_string();
                if text.contains("<Code>NoSuchBucket</Code>") || text.contains("status code: 404") {
                    Err(Probe::NoBucket)
                } else {
                    Err(Probe::Failed(self.clean(&e)))
                }
            }
        }
    }

    fn clean(&self, e: &object_store::Error) -> String {
        redact(&explain(e), &self.key_id)
    }

    fn error(&self, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound,
            // Whatever else the bucket answers (or not), it is worth a retry later.
            e => StoreError::Unavailable(format!("{}: {}", self.describe, self.clean(&e))),
        }
    }

    async fn put_one(&self, id: &str) -> Result<()> {
        let path = self.staging.path(id);
        let mut file = tokio::fs::File::open(&path).await.map_err(classify_io)?;
        let len = file.metadata().await.map_err(classify_io)?.len();
        let key = S3BlobStore::key(id);
        if len <= SINGLE_PUT_MAX {
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes).await.map_err(classify_io)?;
            self.client.put(&key, PutPayload::from(bytes)).await.map_err(|e| self.error(e))?;
            return Ok(());
        }
        let upload = self.client.put_multipart(&key).await.map_err(|e| self.error(e))?;
        let mut upload = Upload(Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)));
        let writer = upload.0.as_mut().expect("open");
        let mut buf = vec![0u8; 1 << 20];
        loop {
            writer.wait_for_capacity(PART_CONCURRENCY).await.map_err(|e| self.error(e))?;
            let n = file.read(&mut buf).await.map_err(classify_io)?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]);
        }
        let writer = upload.0.take().expect("open");
        writer.finish().await.map(|_| ()).map_err(|e| self.error(e))
    }

    /// The client and key, for the blocking reader.
    pub(super) fn reader(&self, id: &str) -> Result<RangeReader> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Io(std::io::Error::other("S3 reads need the archive's runtime")))?;
        let client: Arc<dyn ObjectStore> = self.client.clone();
        let this = self.clone();
        let keep = self.cache.clone().map(|cache| (cache, id.to_owned()));
        RangeReader::open(runtime, client, S3BlobStore::key(id), Box::new(move |e| this.error(e)), keep)
    }
}

/// A multipart upload that is aborted (in the background) unless it finished: after an error,
/// and when the request that wrote it is cancelled, no incomplete upload is left to the bucket.
struct Upload(Option<WriteMultipart>);

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = writer.abort().await;
            });
        }
    }
}

enum Probe {
    NoBucket,
    Failed(String),
}

/// What went wrong, without the response body (it can echo the access key id, the string
/// to sign, …): the S3 error code, the HTTP status, or the innermost transport error.
fn explain(e: &object_store::Error) -> String {
    let text = e.to_string();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.chars().filter(|c| c.is_ascii_alphanumeric()).take(64).collect::<String>());
    let status = text.split_once("status code: ").map(|(_, rest)| rest.split(':').next().unwrap_or("").trim());
    match (e, status, code) {
        (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }, _, code) => {
            format!(
                "access denied{} (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                code.map(|c| format!(" ({c})")).unwrap_or_default()
            )
        }
        (_, Some(status), Some(code)) => format!("the store answered {status} ({code})"),
        (_, Some(status), None) => format!("the store answered {status}"),
        _ => {
            let mut inner: &dyn std::error::Error = e;
            while let Some(source) = inner.source() {
                inner = source;
            }
            let detail = inner.to_string();
            let detail: String = detail.lines().next().unwrap_or("").chars().take(200).collect();
            format!("no usable answer: {detail}")
        }
    }
}

fn redact(message: &str, key_id: &str) -> String {
    if key_id.is_empty() { message.to_owned() } else { message.replace(key_id, "[access key id]") }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn staging(&self) -> &Staging {
        &self.staging
    }

    async fn put(&self, ids: &[String]) -> Result<()> {
        futures::stream::iter(ids.to_vec())
            .map(|id| async move { self.put_one(&id).await })
            .buffer_unordered(PUT_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn settle(&self, id: &str) -> Result<()> {
        if valid_id(id) && self.cache.as_ref().is_some_and(|cache| cache.adopt(&self.staging.path(id), id)) {
            return Ok(());
        }
        self.staging.remove(id)
    }

    async fn read(&self, id: &str, range: Range<u64>) -> Result<Chunk> {
        if !valid_id(id) {
            return Err(StoreError::NotFound);
        }
        let local = match self.staging.open_file(id)? {
            Some(file) => Some(file),
            None => self.cache.as_ref().and_then(|cache| cache.open_file(id)),
        };
        if let Some(file) = local {
            let range = range.clone();
            return tokio::task::spawn_blocking(move || super::local::read_file_range(file, range))
                .await
                .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        }
        if range.start >= range.end {
            let meta = self.client.head(&S3BlobStore::key(id)).await.map_err(|e| self.error(e))?;
            return Ok(Chunk { bytes: bytes::Bytes::new(), object_len: meta.size });
        }
        let options = GetOptions { range: Some(GetRange::Bounded(range.clone())), ..Default::default() };
        match self.client.get_opts(&S3BlobStore::key(id), options).await {
            Ok(result) => {
                let object_len = result.meta.size;
                let bytes = result.bytes().await.map_err(|e| self.error(e))?;
                Ok(Chunk { bytes, object_len })
            }
            // A range starting at or past the end: nothing there, but the object exists.
            Err(e) if e.to_string().contains("416") || e.to_string().contains("StartTooLarge") => {
                let meta = self.client.head(&S3BlobStore::key(id)).await.map_err(|e| self.error(e))?;
                Ok(Chunk { bytes: bytes::Bytes::new(), object_len: meta.size })
            }
            Err(e) => Err(self.error(e)),
        }
    }

    fn open_sync(&self, id: &str) -> Result<Box<dyn ReadSeek>> {
        if !valid_id(id) {
            return Err(StoreError::NotFound);
        }
        // Not PUT yet (read back while it is inspected), or not yet settled.
        if let Some(file) = self.staging.open_file(id)? {
            return Ok(Box::new(file));
        }
        if let Some(file) = self.cache.as_ref().and_then(|cache| cache.open_file(id)) {
            return Ok(Box::new(file));
        }
        Ok(Box::new(self.reader(id)?))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.staging.remove(id)?;
        if let Some(cache) = &self.cache {
            cache.remove(id);
        }
        match self.client.delete(&S3BlobStore::key(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    fn list_for_recovery(&self) -> BoxStream<'_, Result<ObjectInfo>> {
        let prefix = ObjectPath::from(PREFIX);
        self.client
            .list(Some(&prefix))
            .filter_map(move |item| async move {
                match item {
                    Ok(meta) => {
                        let id = meta.location.filename().unwrap_or("").to_owned();
                        let ours = valid_id(&id) && meta.location.as_ref() == format!("{PREFIX}/{id}");
                        ours.then_some(Ok(ObjectInfo { id, last_modified: meta.last_modified }))
                    }
                    Err(e) => Some(Err(self.error(e))),
                }
            })
            .boxed()
    }

    fn recovery_grace(&self) -> Duration {
        self.grace
    }

    async fn check(&self) -> Result<()> {
        self.probe().await.map_err(|e| {
            let reason = match e {
                Probe::NoBucket => "the bucket does not exist".to_owned(),
                Probe::Failed(reason) => reason,
            };
            StoreError::Io(std::io::Error::other(format!("{}: {reason}", self.describe)))
        })
    }

    async fn keep_audit_head(&self, tree_size: u64, head: &[u8]) -> Result<()> {
        let key = ObjectPath::from(format!("{HEADS_PREFIX}/{}", audit_head_name(tree_size)));
        self.client.put(&key, head.to_vec().into()).await.map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn kept_audit_heads(&self) -> Result<Vec<bytes::Bytes>> {
        let prefix = ObjectPath::from(HEADS_PREFIX);
        let listed: Vec<_> = self.client.list(Some(&prefix)).try_collect().await.map_err(|e| self.error(e))?;
        futures::stream::iter(listed)
            .map(|meta| async move {
                let got = self.client.get(&meta.location).await.map_err(|e| self.error(e))?;
                got.bytes().await.map_err(|e| self.error(e))
            })
            .buffered(PUT_CONCURRENCY)
            .try_collect()
            .await
    }
}
