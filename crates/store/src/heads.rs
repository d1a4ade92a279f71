//! Signed tree heads of the audit log, appended to a file outside the database, so that a
//! database rolled back behind a kept head is detected.

use cloudfilm_audit::SignedHead;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

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
