//! This node's copy of recently written and read objects' ciphertext (`DATA/cache/`), so that
//! a study just stored or just opened is read from the local disk instead of the bucket.
//!
//! Objects never change under their id (fresh random ids, create-only), so a copy never goes
//! stale; it is ciphertext like the bucket's, decrypted and checked chunk by chunk above the
//! store as any read is. The cache is bounded in bytes (the least recently used copies go
//! first) and emptied at every start, so that no copy torn by a crash is ever served and
//! nothing outlives the process's own bookkeeping. A process that shares its data directory
//! with another (a command run beside `serve`) uses no cache.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The default bound of the cache (`cache=` in the `s3://` URL).
pub const DEFAULT_CAPACITY: u64 = 1 << 30;

pub struct ReadCache {
    dir: PathBuf,
    capacity: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// id → (length, last use)
    entries: HashMap<String, (u64, u64)>,
    /// last use → id, oldest first
    by_use: BTreeMap<u64, String>,
    total: u64,
    clock: u64,
}

impl State {
    fn touch(&mut self, id: &str) -> bool {
        self.clock += 1;
        let clock = self.clock;
        let Some((_, used)) = self.entries.get_mut(id) else { return false };
        let previous = std::mem::replace(used, clock);
        self.by_use.remove(&previous);
        self.by_use.insert(clock, id.to_owned());
        true
    }

    fn forget(&mut self, id: &str) {
        if let Some((len, used)) = self.entries.remove(id) {
            self.by_use.remove(&used);
            self.total -= len;
        }
    }
}

impl ReadCache {
    /// Empties `dir` (creating it) and starts a cache of at most `capacity` bytes there.
    pub fn open(dir: &Path, capacity: u64) -> std::io::Result<ReadCache> {
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        fs::create_dir_all(dir)?;
        Ok(ReadCache { dir: dir.to_owned(), capacity, state: Mutex::new(State::default()) })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Takes the file at `from` (a spooled object just stored) as the copy of `id`; `false`
    /// when it could not be moved (the caller removes it).
    pub fn adopt(&self, from: &Path, id: &str) -> bool {
        let Ok(meta) = fs::metadata(from) else { return false };
        if meta.len() > self.capacity || fs::rename(from, self.path(id)).is_err() {
            return false;
        }
        self.admitted(id, meta.len());
        true
    }

    /// Starts a copy of `id`, `len` bytes long, written part by part as the object is read from
    /// the bucket (on disk, not in memory); `None` when it would not be kept. The copy counts
    /// once its last byte is written; one dropped before that leaves nothing.
    pub fn begin(self: &Arc<Self>, id: &str, len: u64) -> Option<CacheFill> {
        if len > self.capacity || self.state.lock().expect("cache").entries.contains_key(id) {
            return None;
        }
        let temporary = self.dir.join(format!("{id}.part-{:016x}", rand_suffix()));
        let file = File::create(&temporary).ok()?;
        Some(CacheFill { cache: self.clone(), id: id.to_owned(), temporary, file: Some(file), len, written: 0 })
    }

    fn admitted(&self, id: &str, len: u64) {
        let mut evict = Vec::new();
        {
            let mut state = self.state.lock().expect("cache");
            state.forget(id);
            state.clock += 1;
            let clock = state.clock;
            state.entries.insert(id.to_owned(), (len, clock));
            state.by_use.insert(clock, id.to_owned());
            state.total += len;
            while state.total > self.capacity {
                let Some((_, oldest)) = state.by_use.pop_first() else { break };
                if let Some((len, _)) = state.entries.remove(&oldest) {
                    state.total -= len;
                }
                evict.push(oldest);
            }
        }
        for id in evict {
            let _ = fs::remove_file(self.path(&id));
        }
    }

    /// The copy of `id`, if this node has one.
    pub fn open_file(&self, id: &str) -> Option<File> {
        if !self.state.lock().expect("cache").touch(id) {
            return None;
        }
        match File::open(self.path(id)) {
            Ok(file) => Some(file),
            Err(_) => {
                self.state.lock().expect("cache").forget(id);
                None
            }
        }
    }

    /// Drops the copy of `id` (the object is deleted).
    pub fn remove(&self, id: &str) {
        self.state.lock().expect("cache").forget(id);
        let _ = fs::remove_file(self.path(id));
    }

    #[cfg(test)]
    fn held(&self) -> u64 {
        self.state.lock().expect("cache").total
    }
}

/// A copy being written ([`ReadCache::begin`]).
pub struct CacheFill {
    cache: Arc<ReadCache>,
    id: String,
    temporary: PathBuf,
    file: Option<File>,
    len: u64,
    written: u64,
}

impl CacheFill {
    /// Appends the next part; the last one admits the copy. `false` once the copy is given up
    /// (a write failed, or more bytes came than announced): the rest is not needed.
    pub fn append(&mut self, part: &[u8]) -> bool {
        let Some(file) = self.file.as_mut() else { return false };
        self.written += part.len() as u64;
        if self.written > self.len || file.write_all(part).is_err() {
            self.file = None;
            return false;
        }
        if self.written == self.len {
            self.file = None;
            if fs::rename(&self.temporary, self.cache.path(&self.id)).is_ok() {
                self.cache.admitted(&self.id, self.len);
            }
        }
        true
    }
}

impl Drop for CacheFill {
    fn drop(&mut self) {
        // Gone already when the copy was admitted.
        let _ = fs::remove_file(&self.temporary);
    }
}

/// A suffix that keeps two writers of one id apart (the id itself is already random).
fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    (std::process::id() as u64) << 32 | NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Parses the `cache=` size of an `s3://` URL: a count of bytes with an optional binary unit
/// (`0`, `512MiB`, `2GiB`, `1TiB`); `0` turns the cache off.
pub fn parse_size(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> String {
        format!("{n:032x}")
    }

    fn insert(cache: &Arc<ReadCache>, id: &str, parts: &[&[u8]]) {
        let len = parts.iter().map(|p| p.len() as u64).sum();
        if let Some(mut fill) = cache.begin(id, len) {
            assert!(parts.iter().all(|part| fill.append(part)));
        }
    }

    #[test]
    fn keeps_the_most_recently_used_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ReadCache::open(&dir.path().join("cache"), 10).unwrap());
        insert(&cache, &id(1), &[b"aaaa"]);
        insert(&cache, &id(2), &[b"bb", b"bb"]);
        assert!(cache.open_file(&id(1)).is_some(), "1 is now the most recent");
        insert(&cache, &id(3), &[b"cccc"]);
        assert!(cache.open_file(&id(2)).is_none(), "the least recently used went");
        assert_eq!(std::io::read_to_string(cache.open_file(&id(1)).unwrap()).unwrap(), "aaaa");
        assert_eq!(std::io::read_to_string(cache.open_file(&id(3)).unwrap()).unwrap(), "cccc");
        assert_eq!(cache.held(), 8);
        assert!(!dir.path().join("cache").join(id(2)).exists(), "its file is gone too");
        insert(&cache, &id(4), &[&[0u8; 11]]);
        assert!(cache.open_file(&id(4)).is_none(), "larger than the whole cache: not kept");
        cache.remove(&id(1));
        assert!(cache.open_file(&id(1)).is_none());
        assert_eq!(cache.held(), 4);
    }

    #[test]
    fn a_copy_counts_once_whole_and_a_copy_left_halfway_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(ReadCache::open(&dir.path().join("cache"), 1 << 20).unwrap());
        let mut fill = cache.begin(&id(1), 6).unwrap();
        assert!(fill.append(b"abc"));
        assert!(cache.open_file(&id(1)).is_none(), "not before its last byte");
        assert!(fill.append(b"def"));
        drop(fill);
        assert_eq!(std::io::read_to_string(cache.open_file(&id(1)).unwrap()).unwrap(), "abcdef");
        assert!(cache.begin(&id(1), 6).is_none(), "held already");

        let mut fill = cache.begin(&id(2), 6).unwrap();
        assert!(fill.append(b"abc"));
        drop(fill);
        assert!(cache.open_file(&id(2)).is_none());
        let mut fill = cache.begin(&id(3), 2).unwrap();
        assert!(!fill.append(b"abc"), "more than announced");
        drop(fill);
        assert!(cache.open_file(&id(3)).is_none());
        let files: Vec<_> = fs::read_dir(dir.path().join("cache")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, vec![std::ffi::OsString::from(id(1))], "no part file stays");
        assert_eq!(cache.held(), 6);
    }

    #[test]
    fn adopts_a_spooled_file_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let spooled = dir.path().join("spooled");
        fs::write(&spooled, b"ciphertext").unwrap();
        let cache = ReadCache::open(&dir.path().join("cache"), 1 << 20).unwrap();
        assert!(cache.adopt(&spooled, &id(7)));
        assert!(!spooled.exists(), "moved, not copied");
        assert_eq!(std::io::read_to_string(cache.open_file(&id(7)).unwrap()).unwrap(), "ciphertext");
        drop(cache);
        let cache = ReadCache::open(&dir.path().join("cache"), 1 << 20).unwrap();
        assert!(cache.open_file(&id(7)).is_none());
        assert_eq!(fs::read_dir(dir.path().join("cache")).unwrap().count(), 0, "emptied at start");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        for bad in ["", "GiB", "2 GiB", "2gb", "-1", "1.5GiB", "99999999999TiB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
