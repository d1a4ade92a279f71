//! The local blob store: one encrypted file per instance, named by a random id (never by a
//! DICOM value), under `blobs/ab/cd/<id>`.
//!
//! Writing is crash-safe in three steps (S1): the blob is written and fsync'd under `tmp/`
//! together with its directory; the index commits the row naming it; then the blob is renamed
//! into place. A reader that finds the row before the rename looks in `tmp/`. At start,
//! [`LocalBlobStore::recover`] moves referenced temporaries into place and deletes the rest, so
//! nothing half-written survives a crash and nothing blocks a retry.

use crate::error::{Result, StoreError, classify_io};
use cloudfilm_crypto::blob::BlobSummary;
use cloudfilm_crypto::{BlobReader, BlobWriter, KeyRing};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    ring: Arc<KeyRing>,
    /// A shared lock on `tmp.lock` for as long as the store is open: temporaries are only
    /// recovered by a process that holds the lock alone.
    _lock: Arc<File>,
}

/// A blob being written under `tmp/`.
pub struct PendingBlob {
    pub id: String,
    path: PathBuf,
    /// Open only while the blob is written: a finished blob holds no file descriptor, so one
    /// request of thousands of instances holds only those being written.
    writer: Option<BlobWriter<File>>,
    /// Dropping an unpublished blob removes it.
    keep: bool,
}

/// Starts writing the file's pages to disk without waiting, so the durable sync of its batch
/// finds little left to do (the sync itself still waits for everything).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is valid for the duration of the call; failure only loses the hint.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File) {}

#[cfg(target_os = "linux")]
fn syncfs(file: &File) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is valid for the duration of the call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(classify_io(std::io::Error::last_os_error()))
    }
}

#[cfg(not(target_os = "linux"))]
fn syncfs(file: &File) -> Result<()> {
    file.sync_all().map_err(classify_io)
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl LocalBlobStore {
    /// Opens the store. The flag tells whether no other process has it open, in which case
    /// [`recover`](Self::recover) may run: another process's temporaries are writes in flight.
    pub fn open(root: &Path, ring: Arc<KeyRing>) -> Result<(LocalBlobStore, bool)> {
        fs::create_dir_all(root.join("tmp")).map_err(classify_io)?;
        fs::create_dir_all(root.join("objects")).map_err(classify_io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("tmp.lock"))
            .map_err(classify_io)?;
        let alone = lock.try_lock().is_ok();
        if !alone {
            lock.lock_shared().map_err(classify_io)?;
        }
        let store = LocalBlobStore { root: root.to_owned(), ring, _lock: Arc::new(lock) };
        Ok((store, alone))
    }

    /// Lets other processes open the store once recovery is done (or was not needed).
    pub fn share(&self) -> Result<()> {
        self._lock.lock_shared().map_err(classify_io)
    }

    fn tmp_path(&self, id: &str) -> PathBuf {
        self.root.join("tmp").join(id)
    }

    fn final_path(&self, id: &str) -> PathBuf {
        self.root.join("objects").join(&id[..2]).join(&id[2..4]).join(id)
    }

    /// Starts a new blob with a fresh random id.
    pub fn create(&self) -> Result<PendingBlob> {
        let id = cloudfilm_crypto::random::hex_id();
        let path = self.tmp_path(&id);
        let file = OpenOptions::new().write(true).create_new(true).open(&path).map_err(classify_io)?;
        // The writer emits whole 64 KiB segments: no buffering needed between it and the file.
        let writer = BlobWriter::new(&self.ring, &id, file)?;
        Ok(PendingBlob { id, path, writer: Some(writer), keep: false })
    }

    /// Makes temporaries durable: fsync of the `tmp/` directory (after their own fsync).
    pub fn sync_tmp_dir(&self) -> Result<()> {
        File::open(self.root.join("tmp")).and_then(|d| d.sync_all()).map_err(classify_io)
    }

    /// Makes a batch of finished blobs durable, with their directory entries: one file fsync
    /// and a directory fsync for a single blob, one `syncfs` of the store's file system for
    /// more (one journal commit and device flush instead of one per file).
    pub fn sync_batch(&self, blobs: &mut [&mut PendingBlob]) -> Result<()> {
        match blobs {
            [] => Ok(()),
            [one] => {
                one.sync()?;
                self.sync_tmp_dir()
            }
            _ => {
                let dir = File::open(self.root.join("tmp")).map_err(classify_io)?;
                syncfs(&dir)
            }
        }
    }

    /// Moves a committed blob into place.
    pub fn publish(&self, id: &str) -> Result<()> {
        let target = self.final_path(id);
        let parent = target.parent().expect("nested path");
        if !parent.exists() {
            fs::create_dir_all(parent).map_err(classify_io)?;
        }
        fs::rename(self.tmp_path(id), &target).map_err(classify_io)
    }

    /// Removes a blob that will not be committed (duplicate, failure).
    pub fn discard(&self, id: &str) {
        if valid_id(id) {
            let _ = fs::remove_file(self.tmp_path(id));
        }
    }

    /// Opens a stored blob for random-access reading.
    pub fn open_blob(&self, id: &str) -> Result<BlobReader<File>> {
        if !valid_id(id) {
            return Err(StoreError::NotFound);
        }
        let file = match File::open(self.final_path(id)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::open(self.tmp_path(id)).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound { StoreError::NotFound } else { classify_io(e) }
            })?,
            Err(e) => return Err(classify_io(e)),
        };
        Ok(BlobReader::open(&self.ring, id, file)?)
    }

    /// Reads a whole blob and checks it against its recorded SHA-256 (S3).
    pub fn read_verified(&self, id: &str, sha256: &str) -> Result<Vec<u8>> {
        let mut reader = self.open_blob(id)?;
        let mut out = Vec::with_capacity(reader.plaintext_len() as usize);
        reader.read_to_end(&mut out)?;
        if cloudfilm_crypto::sha256_hex(&out) != sha256 {
            return Err(StoreError::Integrity);
        }
        Ok(out)
    }

    /// Finishes crashed writes: referenced temporaries are published, the others deleted.
    pub fn recover(&self, referenced: impl Fn(&str) -> bool) -> Result<(usize, usize)> {
        let (mut published, mut deleted) = (0, 0);
        for entry in fs::read_dir(self.root.join("tmp")).map_err(classify_io)? {
            let entry = entry.map_err(classify_io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if valid_id(&name) && referenced(&name) {
                self.publish(&name)?;
                published += 1;
            } else {
                fs::remove_file(entry.path()).map_err(classify_io)?;
                deleted += 1;
            }
        }
        Ok((published, deleted))
    }
}

impl PendingBlob {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.writer.as_mut().expect("not finished").write_all(data).map_err(Into::into)
    }

    /// Seals the last segment, flushes it to the file (not yet durable) and closes it.
    pub fn finish(&mut self) -> Result<BlobSummary> {
        let writer = self.writer.take().expect("finished once");
        let (file, summary) = writer.finish()?;
        start_writeback(&file);
        Ok(summary)
    }

    /// Makes the finished file durable, reopened by its path (its directory is synced
    /// separately, once per batch).
    pub fn sync(&mut self) -> Result<()> {
        File::open(&self.path).and_then(|f| f.sync_all()).map_err(classify_io)
    }

    /// The index now references the blob: it outlives this handle.
    pub fn keep(mut self) -> String {
        self.keep = true;
        std::mem::take(&mut self.id)
    }
}

impl Drop for PendingBlob {
    /// An abandoned blob (an error, a duplicate, a cancelled request) leaves nothing behind.
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let (store, alone) = LocalBlobStore::open(dir.path(), Arc::new(KeyRing::generate())).unwrap();
        assert!(alone);
        (dir, store)
    }

    #[test]
    fn write_publish_read() {
        let (_dir, store) = store();
        let mut blob = store.create().unwrap();
        blob.write(b"hello ").unwrap();
        blob.write(b"world").unwrap();
        let summary = blob.finish().unwrap();
        blob.sync().unwrap();
        store.sync_tmp_dir().unwrap();
        let id = blob.keep();
        assert_eq!(store.read_verified(&id, &summary.sha256).unwrap(), b"hello world", "readable before publish");
        store.publish(&id).unwrap();
        assert_eq!(store.read_verified(&id, &summary.sha256).unwrap(), b"hello world");
        assert!(matches!(store.read_verified(&id, "00"), Err(StoreError::Integrity)));
        assert!(matches!(store.open_blob("../../etc/passwd"), Err(StoreError::NotFound)));
    }

    #[test]
    fn recovery_publishes_referenced_and_removes_the_rest() {
        let (_dir, store) = store();
        let mut keep = store.create().unwrap();
        keep.write(b"kept").unwrap();
        keep.finish().unwrap();
        let mut drop_me = store.create().unwrap();
        drop_me.write(b"orphan").unwrap();
        drop_me.finish().unwrap();
        let keep_id = keep.id.clone();
        assert_eq!(store.recover(|id| id == keep_id).unwrap(), (1, 1));
        assert!(store.open_blob(&keep.id).is_ok());
        assert!(matches!(store.open_blob(&drop_me.id), Err(StoreError::NotFound)));
    }

    #[test]
    fn only_a_lone_opener_may_recover() {
        let (dir, first) = store();
        first.share().unwrap();
        let (_second, alone) = LocalBlobStore::open(dir.path(), Arc::new(KeyRing::generate())).unwrap();
        assert!(!alone, "another opener holds the store");
        drop(first);
    }

    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let (dir, store) = store();
        let mut blob = store.create().unwrap();
        blob.write(b"partial").unwrap();
        drop(blob);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
