//! Signed tree heads of the audit log, kept outside the database, so that a database rolled
//! back behind a kept head is detected: in this node's heads file, and — for an index several
//! nodes share — in the object store, where whichever node is the sequencer keeps every head it
//! signs. A rollback of PostgreSQL (a restored dump, a replica promoted behind) reaches neither.

use crate::blobs::BlobStore;
use crate::error::{Result, StoreError};
use cloudfilm_audit::SignedHead;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where an archive's signed heads are kept outside its index. Together the copies hold every
/// head signed: the file alone for the embedded index (one process signs), the object store for a
/// shared one (each node's file holds only the heads it signed itself).
#[derive(Clone)]
pub struct HeadsOutside {
    file: PathBuf,
    store: Option<Arc<dyn BlobStore>>,
}

impl HeadsOutside {
    /// The copies for the index at `url`.
    pub fn for_index(url: &str, file: PathBuf, store: Arc<dyn BlobStore>) -> HeadsOutside {
        let shared = url.starts_with("postgres://") || url.starts_with("postgresql://");
        HeadsOutside { file, store: shared.then_some(store) }
    }

    /// This node's heads file only.
    pub fn file(file: PathBuf) -> HeadsOutside {
        HeadsOutside { file, store: None }
    }

    /// Keeps a new head in every copy, the object store first.
    pub async fn keep(&self, head: &SignedHead) -> Result<()> {
        if let Some(store) = &self.store {
            let json = serde_json::to_vec(head).expect("a head serializes");
            store.keep_audit_head(head.tree_size, &json).await?;
        }
        append(&self.file, head)?;
        Ok(())
    }

    /// Every head the copies hold, by tree size; one that does not parse is an error (it was
    /// tampered with).
    pub async fn read(&self) -> Result<Vec<SignedHead>> {
        let mut heads = read_all(&self.file)?;
        if let Some(store) = &self.store {
            for json in store.kept_audit_heads().await? {
                let head: SignedHead = serde_json::from_slice(&json).map_err(|e| {
                    StoreError::Database(format!("a signed head kept in {} does not parse: {e}", store.describe()))
                })?;
                if !heads.contains(&head) {
                    heads.push(head);
                }
            }
        }
        heads.sort_by_key(|h| h.tree_size);
        Ok(heads)
    }
}

pub fn append(path: &Path, head: &SignedHead) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut line = serde_json::to_string(head).expect("a head serializes");
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_all()
}

/// Every head in the file; a line that does not parse is an error (it was tampered with).
pub fn read_all(path: &Path) -> std::io::Result<Vec<SignedHead>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut heads = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let head = serde_json::from_str(&line).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line {} of {}: {e}", n + 1, path.display()))
        })?;
        heads.push(head);
    }
    Ok(heads)
}
