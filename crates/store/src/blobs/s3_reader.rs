//! A blocking `Read + Seek` over an S3 object, for the decrypting reader on blocking threads:
//! ranged GETs with read-ahead. The first GET takes up to [`FIRST`] bytes (a small object in
//! one request, and the length of any); a read elsewhere fetches a window from there, which
//! doubles while reading goes on in order, up to [`LARGEST`], so a frame of a large
//! multi-frame object fetches about itself and a whole object streams in a few large GETs.
//!
//! An object read from its start to its end in order (a whole instance sent, a single frame
//! rendered) is written to this node's [`ReadCache`] as its windows arrive, when there is one
//! (on disk: a reader holds no more than its current window in memory).
//!
//! The GETs run on the archive's runtime through `Handle::block_on`: every caller is on a
//! `spawn_blocking` thread (the readers of `retrieve.rs`, the inspect step of ingest), never on
//! an async worker, where `block_on` would panic.

use super::cache::{CacheFill, ReadCache};
use crate::error::{Result, StoreError};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const FIRST: u64 = 1 << 20;
const SMALLEST: u64 = 1 << 20;
const LARGEST: u64 = 4 << 20;
/// Objects up to this size are copied to the cache while they are read in order.
const KEEP_MAX: u64 = 64 << 20;

type ErrorMap = Box<dyn Fn(object_store::Error) -> StoreError + Send>;

pub struct RangeReader {
    runtime: tokio::runtime::Handle,
    client: Arc<dyn ObjectStore>,
    key: ObjectPath,
    map_error: ErrorMap,
    len: u64,
    position: u64,
    window_start: u64,
    window: bytes::Bytes,
    next_size: u64,
    /// Bytes fetched so far (shared, so that it can be read after the reader moved on).
    fetched: Arc<AtomicU64>,
    /// The cache's copy being written while the object is read in order from its start
    /// (given up as soon as reading leaves the order), and how far it goes.
    copy: Option<CacheFill>,
    copied: u64,
}

impl RangeReader {
    /// Fetches the first window (and learns the object's length).
    pub fn open(
        runtime: tokio::runtime::Handle,
        client: Arc<dyn ObjectStore>,
        key: ObjectPath,
        map_error: ErrorMap,
        keep: Option<(Arc<ReadCache>, String)>,
    ) -> Result<RangeReader> {
        let mut reader = RangeReader {
            runtime,
            client,
            key,
            map_error,
            len: 0,
            position: 0,
            window_start: 0,
            window: bytes::Bytes::new(),
            next_size: SMALLEST,
            fetched: Arc::new(AtomicU64::new(0)),
            copy: None,
            copied: 0,
        };
        let (bytes, len) = reader.get(0, FIRST)?;
        reader.window = bytes;
        reader.len = len;
        if len <= KEEP_MAX {
            reader.copy = keep.and_then(|(cache, id)| cache.begin(&id, len));
        }
        reader.copy_window();
        Ok(reader)
    }

    /// The window just fetched continues the cache's copy: append it (the last one completes
    /// the copy); any other window ends the copy.
    fn copy_window(&mut self) {
        let Some(copy) = self.copy.as_mut() else { return };
        if self.copied != self.window_start || !copy.append(&self.window) {
            self.copy = None;
            return;
        }
        self.copied += self.window.len() as u64;
        if self.copied == self.len {
            self.copy = None;
        }
    }

    /// The count of bytes fetched by this reader.
    #[cfg(test)]
    pub fn fetched(&self) -> Arc<AtomicU64> {
        self.fetched.clone()
    }

    fn get(&self, start: u64, size: u64) -> Result<(bytes::Bytes, u64)> {
        let options = GetOptions { range: Some(GetRange::Bounded(start..start + size)), ..Default::default() };
        let (client, key) = (self.client.clone(), self.key.clone());
        let (bytes, len) = self
            .runtime
            .block_on(async move {
                let result = client.get_opts(&key, options).await?;
                let len = result.meta.size;
                Ok((result.bytes().await?, len))
            })
            .map_err(|e| (self.map_error)(e))?;
        self.fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok((bytes, len))
    }

    fn fill(&mut self) -> io::Result<()> {
        let window_end = self.window_start + self.window.len() as u64;
        self.next_size = if self.position == window_end { (self.next_size * 2).min(LARGEST) } else { SMALLEST };
        let size = self.next_size.min(self.len - self.position);
        let (bytes, len) = self.get(self.position, size).map_err(io::Error::other)?;
        if len != self.len || bytes.len() as u64 != size {
            return Err(io::Error::other("the object changed while it was read"));
        }
        self.window_start = self.position;
        self.window = bytes;
        self.copy_window();
        Ok(())
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.position >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if self.position < self.window_start || self.position >= window_end {
            self.fill()?;
        }
        let within = (self.position - self.window_start) as usize;
        let n = (self.window.len() - within).min(buf.len());
        buf[..n].copy_from_slice(&self.window[within..within + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.position as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.position = target as u64;
        Ok(self.position)
    }
}
