//! The local blob store: one encrypted file per object, named by its random id, under
//! `blobs/objects/ab/cd/<id>`.
//!
//! Writing is crash-safe in three steps (S1): the object is written and fsync'd under `tmp/`
//! together with its directory ([`put`](BlobStore::put); one `syncfs` for a batch); the index
//! commits the row naming it; then it is renamed into place ([`settle`](BlobStore::settle)). A
//! reader that finds the row before the rename looks in `tmp/`. At start, recovery moves
//! referenced temporaries into place and deletes the rest, so nothing half-written survives a
//! crash and nothing blocks a retry.

use super::staging::valid_id;
use super::store::audit_head_name;
use super::{BlobStore, Chunk, ObjectInfo, ReadSeek, Staging};
use crate::error::{Result, StoreError, classify_io};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    staging: Staging,
}

impl LocalBlobStore {
    /// Opens the store at `root`, creating it. The flag tells whether no other process has it
    /// open, in which case recovery may run.
    pub fn open(root: &Path) -> Result<(LocalBlobStore, bool)> {
        fs::create_dir_all(root.join("objects")).map_err(classify_io)?;
        let (staging, alone) = Staging::open(&root.join("tmp"), &root.join("tmp.lock"), true)?;
        Ok((LocalBlobStore { root: root.to_owned(), staging }, alone))
    }

    fn final_path(&self, id: &str) -> PathBuf {
        self.root.join("objects").join(&id[..2]).join(&id[2..4]).join(id)
    }

    /// The object's file: in place, else still under `tmp/`.
    fn open_file(&self, id: &str) -> Result<File> {
        if !valid_id(id) {
            return Err(StoreError::NotFound);
        }
        match File::open(self.final_path(id)) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.staging.open_file(id)?.ok_or(StoreError::NotFound)
            }
            Err(e) => Err(classify_io(e)),
        }
    }

    fn make_durable(&self, ids: &[String]) -> Result<()> {
        match ids {
            [] => Ok(()),
            [one] => {
                File::open(self.staging.path(one)).and_then(|f| f.sync_all()).map_err(classify_io)?;
                self.staging.sync_dir()
            }
            _ => self.staging.sync_filesystem(),
        }
    }

    /// Moves a committed object into place.
    fn publish(&self, id: &str) -> Result<()> {
        if !valid_id(id) {
            return Err(StoreError::NotFound);
        }
        let target = self.final_path(id);
        let parent = target.parent().expect("nested path");
        if !parent.exists() {
            fs::create_dir_all(parent).map_err(classify_io)?;
        }
        match fs::rename(self.staging.path(id), &target) {
            // Already in place (a second settle, or recovery after a settled crash).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && target.exists() => Ok(()),
            other => other.map_err(classify_io),
        }
    }

    fn heads_dir(&self) -> PathBuf {
        self.root.join("audit-heads")
    }

    /// Written beside, fsync'd, renamed into place and the directory fsync'd.
    fn write_head(&self, tree_size: u64, head: &[u8]) -> Result<()> {
        let dir = self.heads_dir();
        fs::create_dir_all(&dir).map_err(classify_io)?;
        let name = audit_head_name(tree_size);
        let partial = dir.join(format!("{name}.partial"));
        let mut file = File::create(&partial).map_err(classify_io)?;
        file.write_all(head).and_then(|()| file.sync_all()).map_err(classify_io)?;
        fs::rename(&partial, dir.join(name)).map_err(classify_io)?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(classify_io)
    }

    fn read_heads(&self) -> Result<Vec<bytes::Bytes>> {
        let entries = match fs::read_dir(self.heads_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(classify_io(e)),
        };
        let mut heads = Vec::new();
        for entry in entries {
            let path = entry.map_err(classify_io)?.path();
            if path.extension().is_some_and(|e| e == "json") {
                heads.push(fs::read(path).map_err(classify_io)?.into());
            }
        }
        Ok(heads)
    }

    fn read_range(&self, id: &str, range: Range<u64>) -> Result<Chunk> {
        read_file_range(self.open_file(id)?, range)
    }

    fn remove(&self, id: &str) -> Result<()> {
        self.staging.remove(id)?;
        match fs::remove_file(self.final_path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(classify_io(e)),
            _ => Ok(()),
        }
    }
}

/// Reads `range` of a file, clamped to its end.
pub(super) fn read_file_range(mut file: File, range: Range<u64>) -> Result<Chunk> {
    let object_len = file.metadata().map_err(classify_io)?.len();
    let (start, end) = (range.start.min(object_len), range.end.min(object_len));
    let mut bytes = vec![0u8; end.saturating_sub(start) as usize];
    file.seek(SeekFrom::Start(start)).map_err(classify_io)?;
    file.read_exact(&mut bytes).map_err(classify_io)?;
    Ok(Chunk { bytes: bytes.into(), object_len })
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Io(std::io::Error::other(e)))?
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn staging(&self) -> &Staging {
        &self.staging
    }

    async fn put(&self, ids: &[String]) -> Result<()> {
        let (store, ids) = (self.clone(), ids.to_vec());
        blocking(move || store.make_durable(&ids)).await
    }

    async fn settle(&self, id: &str) -> Result<()> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || store.publish(&id)).await
    }

    async fn read(&self, id: &str, range: Range<u64>) -> Result<Chunk> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || store.read_range(&id, range)).await
    }

    fn open_sync(&self, id: &str) -> Result<Box<dyn ReadSeek>> {
        Ok(Box::new(self.open_file(id)?))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || store.remove(&id)).await
    }

    fn list_for_recovery(&self) -> BoxStream<'_, Result<ObjectInfo>> {
        let entries = self.staging.entries().map(|entries| {
            entries.into_iter().map(|(id, modified)| Ok(ObjectInfo { id, last_modified: modified.into() }))
        });
        match entries {
            Ok(entries) => Box::pin(futures::stream::iter(entries)),
            Err(e) => Box::pin(futures::stream::once(async { Err(e) })),
        }
    }

    fn recovery_grace(&self) -> Duration {
        Duration::ZERO
    }

    async fn check(&self) -> Result<()> {
        let objects = self.root.join("objects");
        blocking(move || fs::metadata(&objects).map(|_| ()).map_err(classify_io)).await
    }

    async fn keep_audit_head(&self, tree_size: u64, head: &[u8]) -> Result<()> {
        let (store, head) = (self.clone(), head.to_vec());
        blocking(move || store.write_head(tree_size, &head)).await
    }

    async fn kept_audit_heads(&self) -> Result<Vec<bytes::Bytes>> {
        let store = self.clone();
        blocking(move || store.read_heads()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::Blobs;
    use cloudfilm_crypto::KeyRing;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Blobs) {
        let dir = tempfile::tempdir().unwrap();
        let (store, alone) = LocalBlobStore::open(dir.path()).unwrap();
        assert!(alone);
        (dir, Blobs::new(Arc::new(KeyRing::generate()), Arc::new(store)))
    }

    #[tokio::test]
    async fn write_publish_read() {
        let (_dir, blobs) = store();
        let mut blob = blobs.create().unwrap();
        blob.write(b"hello ").unwrap();
        blob.write(b"world").unwrap();
        let summary = blob.finish().unwrap();
        blobs.put(&mut [&mut blob]).await.unwrap();
        let id = blob.keep();
        assert_eq!(blobs.read_verified(&id, &summary.sha256).unwrap(), b"hello world", "readable before publish");
        blobs.settle(&id).await.unwrap();
        assert_eq!(blobs.read_verified(&id, &summary.sha256).unwrap(), b"hello world");
        assert!(matches!(blobs.read_verified(&id, "00"), Err(StoreError::Integrity)));
        assert!(matches!(blobs.open_blob("../../etc/passwd"), Err(StoreError::NotFound)));
    }

    #[tokio::test]
    async fn recovery_publishes_referenced_and_removes_the_rest() {
        let (_dir, blobs) = store();
        let mut keep = blobs.create().unwrap();
        keep.write(b"kept").unwrap();
        keep.finish().unwrap();
        let mut drop_me = blobs.create().unwrap();
        drop_me.write(b"orphan").unwrap();
        drop_me.finish().unwrap();
        let (keep_id, drop_id) = (keep.keep(), drop_me.keep());
        let referenced: HashSet<String> = [keep_id.clone()].into();
        let report = blobs
            .recover(|ids| std::future::ready(Ok(ids.into_iter().filter(|id| referenced.contains(id)).collect())))
            .await
            .unwrap();
        assert_eq!((report.settled, report.deleted), (1, 1));
        assert!(blobs.open_blob(&keep_id).is_ok());
        assert!(matches!(blobs.open_blob(&drop_id), Err(StoreError::NotFound)));
    }

    #[tokio::test]
    async fn recovery_asks_the_index_a_page_of_the_listing_at_a_time() {
        let (_dir, blobs) = store();
        let mut ids = Vec::new();
        for n in 0..5u8 {
            let mut blob = blobs.create().unwrap();
            blob.write(&[n]).unwrap();
            blob.finish().unwrap();
            ids.push(blob.keep());
        }
        let referenced: HashSet<String> = ids[..2].iter().cloned().collect();
        let asked = std::sync::Mutex::new(Vec::new());
        let report = blobs
            .recover_in_pages(
                |page| {
                    asked.lock().unwrap().push(page.len());
                    std::future::ready(Ok(page.into_iter().filter(|id| referenced.contains(id)).collect()))
                },
                2,
            )
            .await
            .unwrap();
        assert_eq!(*asked.lock().unwrap(), vec![2, 2, 1], "five objects, pages of two");
        assert_eq!((report.settled, report.deleted), (2, 3));
        assert!(ids[..2].iter().all(|id| blobs.open_blob(id).is_ok()));
        assert!(ids[2..].iter().all(|id| matches!(blobs.open_blob(id), Err(StoreError::NotFound))));
    }

    #[test]
    fn only_a_lone_opener_may_recover() {
        let dir = tempfile::tempdir().unwrap();
        let (first, alone) = LocalBlobStore::open(dir.path()).unwrap();
        assert!(alone);
        first.staging().share().unwrap();
        let (_second, alone) = LocalBlobStore::open(dir.path()).unwrap();
        assert!(!alone, "another opener holds the store");
        drop(first);
    }

    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let (dir, blobs) = store();
        let mut blob = blobs.create().unwrap();
        blob.write(b"partial").unwrap();
        drop(blob);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
