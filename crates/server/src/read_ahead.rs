//! Whole instances streamed one after the other (a study by WADO-RS, a download package) are
//! opened a few ahead of the one being sent, each on its own blocking thread: with an object
//! store every open is a round trip, and overlapping them keeps the answer flowing instead of
//! waiting for each GET in turn. At most [`DEPTH`] are open ahead, so memory stays bounded
//! (each holds its first chunk and its reader's window).

use crate::archive::Archive;
use crate::retrieve::{InstanceChunks, RetrieveError};
use cloudfilm_core::instance::InstanceRow;
use cloudfilm_store::StoreError;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Instances open at once ahead of the one being sent.
pub const DEPTH: usize = 3;

/// An instance opened and its first chunk read (for a small instance: all of it, hash checked).
pub struct Opened {
    pub chunks: InstanceChunks,
    pub first: Option<Vec<u8>>,
}

pub type OpenResult = (InstanceRow, Result<Opened, RetrieveError>);

pub struct OpenAhead {
    archive: Arc<Archive>,
    runtime: tokio::runtime::Handle,
    rows: std::vec::IntoIter<InstanceRow>,
    opening: VecDeque<(InstanceRow, JoinHandle<Result<Opened, RetrieveError>>)>,
}

impl OpenAhead {
    /// Starts opening the first instances at once; must be called on the archive's runtime.
    pub fn start(archive: Arc<Archive>, rows: Vec<InstanceRow>) -> OpenAhead {
        let mut ahead = OpenAhead {
            archive,
            runtime: tokio::runtime::Handle::current(),
            rows: rows.into_iter(),
            opening: VecDeque::with_capacity(DEPTH),
        };
        ahead.top_up();
        ahead
    }

    fn top_up(&mut self) {
        while self.opening.len() < DEPTH {
            let Some(row) = self.rows.next() else { return };
            let (archive, for_open) = (self.archive.clone(), row.clone());
            self.opening.push_back((row, self.runtime.spawn_blocking(move || open(&archive, &for_open))));
        }
    }

    /// The next instance, waiting for it on an async task.
    pub async fn next_async(&mut self) -> Option<OpenResult> {
        let (row, handle) = self.opening.pop_front()?;
        self.top_up();
        Some((row, joined(handle.await)))
    }

    /// The next instance, waiting for it on a blocking thread.
    pub fn next_blocking(&mut self) -> Option<OpenResult> {
        let (row, handle) = self.opening.pop_front()?;
        self.top_up();
        Some((row, joined(self.runtime.block_on(handle))))
    }
}

fn open(archive: &Archive, row: &InstanceRow) -> Result<Opened, RetrieveError> {
    let mut chunks = InstanceChunks::open(archive, row)?;
    let first = chunks.next_chunk()?;
    Ok(Opened { chunks, first })
}

/// A panic on the opening thread goes on here; a read cancelled by the runtime's shutdown is an
/// error.
fn joined(result: Result<Result<Opened, RetrieveError>, tokio::task::JoinError>) -> Result<Opened, RetrieveError> {
    match result {
        Ok(opened) => opened,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(RetrieveError::Store(StoreError::Io(std::io::Error::other("the read was cancelled")))),
    }
}
