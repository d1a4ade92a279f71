//! `cloudfilm verify-manifest` on packages built like downloads: a signed manifest of every
//! file; any changed, missing or added file, any flipped byte, or another key fails it.

mod common;

use cloudfilm_crypto::manifest::{FileEntry, MANIFEST_PATH, Manifest, SIGNATURE_PATH};
use cloudfilm_crypto::signing::ArchiveSigner;
use cloudfilm_crypto::{KeyRing, sha256_hex};
use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{BIN, Server};

fn files() -> Vec<(String, Vec<u8>)> {
    vec![
        ("DICOMDIR".into(), b"DICM media directory".to_vec()),
        ("DICOM/S0001/I0001".into(), (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect()),
        ("DICOM/S0001/I0002".into(), (0..1_000u32).map(|i| (i % 13) as u8).collect()),
    ]
}

/// A zip of `files` with the manifest that `signed` lists, signed by `signer`.
fn package(path: &Path, signer: &ArchiveSigner, signed: &[(String, Vec<u8>)], files: &[(String, Vec<u8>)]) {
    let entries = signed
        .iter()
        .map(|(p, b)| FileEntry { path: p.clone(), size: b.len() as u64, sha256: sha256_hex(b) })
        .collect();
    let (manifest, signature) = Manifest::new("H1", "0f3c9a", "2026-11-23T10:00:00Z", signer, entries).signed(signer);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [(MANIFEST_PATH.to_owned(), manifest), (SIGNATURE_PATH.to_owned(), signature)]
        .into_iter()
        .chain(files.iter().cloned())
    {
        zip.start_file(name, options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn verify(path: &Path, key: &str) -> (bool, String) {
    let out = Command::new(BIN).arg("verify-manifest").arg(path).args(["--public-key", key]).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_package_verifies_and_any_change_fails() {
    let dir = tempfile::tempdir().unwrap();
    let signer = ArchiveSigner::new(&KeyRing::generate());
    let key = hex::encode(signer.public_key());
    let good = dir.path().join("exam.zip");
    package(&good, &signer, &files(), &files());
    let (ok, out) = verify(&good, &key);
    assert!(ok, "{out}");
    assert!(out.contains("ok: 3 files"), "{out}");
    let key_file = dir.path().join("archive.pub");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    assert!(verify(&good, key_file.to_str().unwrap()).0, "the key from a file");

    // One byte changed inside an instance, the zip rebuilt around it.
    let mut changed = files();
    changed[1].1[12_345] ^= 0x01;
    let path = dir.path().join("changed.zip");
    package(&path, &signer, &files(), &changed);
    let (ok, out) = verify(&path, &key);
    assert!(!ok && out.contains("DICOM/S0001/I0001 differs"), "{out}");

    // One byte flipped in the zip file itself.
    let mut raw = std::fs::read(&good).unwrap();
    let at = raw.len() / 2;
    raw[at] ^= 0x01;
    let path = dir.path().join("flipped.zip");
    std::fs::write(&path, raw).unwrap();
    assert!(!verify(&path, &key).0, "a flipped byte fails");

    let path = dir.path().join("missing.zip");
    package(&path, &signer, &files(), &files()[..2]);
    let (ok, out) = verify(&path, &key);
    assert!(!ok && out.contains("missing"), "{out}");

    let mut extra = files();
    extra.push(("DICOM/S0001/I0003".into(), b"added".to_vec()));
    let path = dir.path().join("extra.zip");
    package(&path, &signer, &files(), &extra);
    let (ok, out) = verify(&path, &key);
    assert!(!ok && out.contains("not in the manifest"), "{out}");

    let other = hex::encode(ArchiveSigner::new(&KeyRing::generate()).public_key());
    let (ok, out) = verify(&good, &other);
    assert!(!ok && out.contains("signature"), "{out}");
}

#[test]
fn the_archive_publishes_its_signing_key() {
    let key_of = |data: &Path| {
        let server = Server::start(data, &[]);
        let response =
            common::client().get(format!("{}/.well-known/cloudfilm-signing-key", server.url)).send().unwrap();
        assert_eq!(response.status(), 200);
        let key = response.text().unwrap().trim().to_owned();
        server.stop();
        key
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let key = key_of(a.path());
    assert!(key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    assert_eq!(key_of(a.path()), key, "the same archive keeps its key across restarts");
    assert_ne!(key_of(b.path()), key, "another archive has another key");
}
