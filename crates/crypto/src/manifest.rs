//! Signed manifests of downloaded exams: every file of a download package with its size and
//! SHA-256, signed by the archive's Ed25519 key, so that a patient can show the files are the
//! hospital's originals. The package holds `MANIFEST.json` and, beside it, `MANIFEST.sig` (the
//! hex signature of the manifest's exact bytes).

use crate::signing::{self, ArchiveSigner};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT: &str = "cloudfilm-manifest/1";
pub const MANIFEST_PATH: &str = "MANIFEST.json";
pub const SIGNATURE_PATH: &str = "MANIFEST.sig";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// The organization's code and the exam's opaque id (no personal value).
    pub organization: String,
    pub exam: String,
    pub created_at: String,
    /// The signing key, hex (the one to trust is the archive's published key, not this copy).
    pub public_key: String,
    pub files: Vec<FileEntry>,
}

/// What a size and digest of a file in a package are.
pub type Digests = BTreeMap<String, (u64, String)>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest cannot be read: {0}")]
    Unreadable(String),
    #[error("the manifest's signature does not verify with this public key")]
    BadSignature,
    #[error("{0} is listed in the manifest but missing from the package")]
    Missing(String),
    #[error("{0} is in the package but not in the manifest")]
    Unlisted(String),
    #[error("{0} differs from the file the manifest lists")]
    Changed(String),
}

impl Manifest {
    pub fn new(
        organization: &str,
        exam: &str,
        created_at: &str,
        signer: &ArchiveSigner,
        files: Vec<FileEntry>,
    ) -> Self {
        Manifest {
            format: FORMAT.into(),
            organization: organization.into(),
            exam: exam.into(),
            created_at: created_at.into(),
            public_key: hex::encode(signer.public_key()),
            files,
        }
    }

    /// The manifest's bytes and their signature file.
    pub fn signed(&self, signer: &ArchiveSigner) -> (Vec<u8>, Vec<u8>) {
        let bytes = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        let signature = signature_file(signer, &bytes);
        (bytes, signature)
    }
}

/// The signature file of `signed` bytes: the hex Ed25519 signature and a newline.
pub fn signature_file(signer: &ArchiveSigner, signed: &[u8]) -> Vec<u8> {
    format!("{}\n", hex::encode(signer.sign(signed))).into_bytes()
}

/// Checks a package against its manifest: the signature with `public_key`, then every file
/// (`files` holds each path of the package but the manifest and its signature).
pub fn verify(
    manifest: &[u8],
    signature: &[u8],
    public_key: &[u8; 32],
    files: &Digests,
) -> Result<Manifest, ManifestError> {
    check_signature(manifest, signature, public_key)?;
    let parsed: Manifest = serde_json::from_slice(manifest).map_err(|e| ManifestError::Unreadable(e.to_string()))?;
    if parsed.format != FORMAT {
        return Err(ManifestError::Unreadable(format!("unknown format {:?}", parsed.format)));
    }
    check_files(&parsed.files, files)?;
    Ok(parsed)
}

/// Checks a signature file (hex, as [`Manifest::signed`] writes it) over `signed` bytes.
pub fn check_signature(signed: &[u8], signature: &[u8], public_key: &[u8; 32]) -> Result<(), ManifestError> {
    let signature = std::str::from_utf8(signature)
        .ok()
        .and_then(|s| hex::decode(s.trim()).ok())
        .ok_or(ManifestError::BadSignature)?;
    if !signing::verify(public_key, signed, &signature) {
        return Err(ManifestError::BadSignature);
    }
    Ok(())
}

/// Checks that the files present are exactly those listed, each of its listed size and SHA-256.
pub fn check_files(listed: &[FileEntry], files: &Digests) -> Result<(), ManifestError> {
    for entry in listed {
        match files.get(&entry.path) {
            None => return Err(ManifestError::Missing(entry.path.clone())),
            Some((size, sha256)) if *size != entry.size || *sha256 != entry.sha256 => {
                return Err(ManifestError::Changed(entry.path.clone()));
            }
            Some(_) => {}
        }
    }
    let listed: std::collections::BTreeSet<&str> = listed.iter().map(|e| e.path.as_str()).collect();
    if let Some(extra) = files.keys().find(|path| !listed.contains(path.as_str())) {
        return Err(ManifestError::Unlisted(extra.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyRing, sha256_hex};

    fn package() -> (ArchiveSigner, Vec<u8>, Vec<u8>, Digests) {
        let signer = ArchiveSigner::new(&KeyRing::generate());
        let files: Vec<(&str, &[u8])> = vec![("DICOMDIR", b"dir"), ("DICOM/S1/I1", b"one"), ("DICOM/S1/I2", b"two")];
        let entries = files
            .iter()
            .map(|(p, b)| FileEntry { path: p.to_string(), size: b.len() as u64, sha256: sha256_hex(b) })
            .collect();
        let manifest = Manifest::new("H1", "0f3c", "2026-11-23T10:00:00Z", &signer, entries);
        let (bytes, signature) = manifest.signed(&signer);
        let digests = files.iter().map(|(p, b)| (p.to_string(), (b.len() as u64, sha256_hex(b)))).collect();
        (signer, bytes, signature, digests)
    }

    #[test]
    fn a_package_verifies_and_every_change_is_named() {
        let (signer, bytes, signature, digests) = package();
        let key = signer.public_key();
        assert_eq!(verify(&bytes, &signature, &key, &digests).unwrap().files.len(), 3);

        let mut changed = digests.clone();
        changed.insert("DICOM/S1/I2".into(), (3, sha256_hex(b"twO")));
        assert_eq!(verify(&bytes, &signature, &key, &changed), Err(ManifestError::Changed("DICOM/S1/I2".into())));
        let mut missing = digests.clone();
        missing.remove("DICOMDIR");
        assert_eq!(verify(&bytes, &signature, &key, &missing), Err(ManifestError::Missing("DICOMDIR".into())));
        let mut extra = digests.clone();
        extra.insert("DICOM/S1/I3".into(), (1, sha256_hex(b"x")));
        assert_eq!(verify(&bytes, &signature, &key, &extra), Err(ManifestError::Unlisted("DICOM/S1/I3".into())));

        let mut edited = bytes.clone();
        let at = edited.len() / 2;
        edited[at] ^= 1;
        assert_eq!(verify(&edited, &signature, &key, &digests), Err(ManifestError::BadSignature));
        let other = ArchiveSigner::new(&KeyRing::generate()).public_key();
        assert_eq!(verify(&bytes, &signature, &other, &digests), Err(ManifestError::BadSignature));
    }
}
