//! The local directory where a new object's ciphertext is written before the store has it:
//! `blobs/tmp/` for the local store, `DATA/spool/` for S3. A shared lock on a file beside it is
//! held for as long as the store is open, so that only a process holding it alone treats what
//! it finds there as left over from a crash (another process's files are writes in flight).

use crate::error::{Result, StoreError, classify_io};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Object ids are 32 lowercase hex digits (128 random bits): nothing else names a file.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[derive(Clone)]
pub struct Staging {
    dir: PathBuf,
    lock: Arc<File>,
    /// Whether finished files should start going to disk at once (they are about to be
    /// fsync'd); an S3 spool is read back once and never synced.
    writeback: bool,
}

impl Staging {
    /// Creates the directory and takes the lock at `lock_path`; the flag tells whether this
    /// process is alone (it keeps an exclusive lock until [`share`](Self::share)).
    pub fn open(dir: &Path, lock_path: &Path, writeback: bool) -> Result<(Staging, bool)> {
        fs::create_dir_all(dir).map_err(classify_io)?;
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(lock_path).map_err(classify_io)?;
        let alone = lock.try_lock().is_ok();
        if !alone {
            lock.lock_shared().map_err(classify_io)?;
        }
        Ok((Staging { dir: dir.to_owned(), lock: Arc::new(lock), writeback }, alone))
    }

    /// Lets other processes open the store once recovery is done (or was not needed).
    pub fn share(&self) -> Result<()> {
        self.lock.lock_shared().map_err(classify_io)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Creates the staged file of a new object (never an existing one).
    pub fn create(&self, id: &str) -> Result<File> {
        OpenOptions::new().write(true).create_new(true).open(self.path(id)).map_err(classify_io)
    }

    /// The staged file of `id`, if there is one.
    pub fn open_file(&self, id: &str) -> Result<Option<File>> {
        if !valid_id(id) {
            return Ok(None);
        }
        match File::open(self.path(id)) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(classify_io(e)),
        }
    }

    /// Removes the staged file of `id`; a missing one is not an error.
    pub fn remove(&self, id: &str) -> Result<()> {
        if !valid_id(id) {
            return Err(StoreError::NotFound);
        }
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(classify_io(e)),
            _ => Ok(()),
        }
    }

    /// The staged objects with their modification times; files that are not named by an id
    /// (nothing of ours) are removed.
    pub fn entries(&self) -> Result<Vec<(String, SystemTime)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(classify_io)? {
            let entry = entry.map_err(classify_io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if valid_id(&name) {
                let modified = entry.metadata().and_then(|m| m.modified()).map_err(classify_io)?;
                out.push((name, modified));
            } else {
                fs::remove_file(entry.path()).map_err(classify_io)?;
            }
        }
        Ok(out)
    }

    /// A staged file is complete: when it will be fsync'd, its pages start going to disk now
    /// without waiting, so the durable sync of its batch finds little left to do.
    pub fn written(&self, file: &File) {
        if self.writeback {
            start_writeback(file);
        }
    }

    /// Makes the directory's entries durable (after the files' own fsync).
    pub fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(classify_io)
    }

    /// Makes everything written on the directory's file system durable at once: one journal
    /// commit and device flush for a batch instead of one per file.
    pub fn sync_filesystem(&self) -> Result<()> {
        let dir = File::open(&self.dir).map_err(classify_io)?;
        syncfs(&dir)
    }
}

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
