//! Encryption at rest (issue point 5, S21–S24) and integrity on read (S3): nothing of a
//! stored patient is readable in the data directory, and an altered blob is never served.

mod common;
use common::*;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_data_directory_reveals_no_patient_value_and_no_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let instances = demo_instances(0.1);
    let all: Vec<&[u8]> = instances.iter().map(Vec::as_slice).collect();
    assert_eq!(stow(&server, &key, &all).status, 200);
    // Queries by name and ID number go through the sealed fields.
    assert_eq!(qido(&server, &key, "/studies?PatientName=ZHANG*").len(), 3);
    assert_eq!(qido(&server, &key, "/studies?OtherPatientIDs=11010519491231002X").len(), 3);
    server.stop();

    // A run of raw pixel bytes from the middle of the CR image's pixel data.
    let cr = instances.last().unwrap();
    let info = cloudfilm_dicom::inspect(&mut std::io::Cursor::new(cr)).unwrap();
    let Some(cloudfilm_dicom::PixelLayout::Native { offset, frame_len, .. }) = info.layout else { panic!() };
    let middle = (offset + frame_len / 2) as usize;
    let pixels = &cr[middle..middle + 64];

    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("name", b"ZHANG^SAN".to_vec()),
        ("ideographic name", "张^三".as_bytes().to_vec()),
        ("resident ID number", b"11010519491231002X".to_vec()),
        ("phone", b"13800138000".to_vec()),
        ("patient ID", b"MRN0001234".to_vec()),
        ("pixel run", pixels.to_vec()),
    ];
    let files = files_under(dir.path());
    assert!(files.len() > instances.len(), "blobs, database, key ring, audit heads");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for (what, needle) in &needles {
            assert!(!contains(&bytes, needle), "the {what} is readable in {}", file.display());
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keyring.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key ring is private");
    }
}

#[test]
fn an_altered_blob_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let instances = study(11, 2);
    assert_eq!(stow(&server, &key, &[&instances[0], &instances[1]]).status, 200);
    server.stop();

    // Flip one byte in the middle of every stored blob.
    let objects = files_under(&dir.path().join("blobs/objects"));
    assert_eq!(objects.len(), 2);
    for blob in &objects {
        let mut bytes = std::fs::read(blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(blob, bytes).unwrap();
    }
    let server = Server::start(dir.path(), &[]);
    let path = instance_path(&instances[0]);
    let response = get(&server, &key, &path);
    let body = response.bytes();
    assert!(body.is_err() || !contains(&body.unwrap(), &instances[0][..1000]), "no altered data is served whole");
    let rendered = get(&server, &key, &format!("{path}/frames/1/rendered"));
    assert_eq!(rendered.status(), 500);
    assert!(rendered.text().unwrap().contains("integrity_failure"));
    // The other instance's header is intact: metadata still reads.
    assert_eq!(get(&server, &key, &format!("{}/metadata", instance_path(&instances[1]))).status(), 200);
    server.stop();

    let verify = cli(dir.path(), &["audit", "verify"]);
    assert!(verify.status.success(), "the audit chain itself is intact");
    // The security alerts are in the chain.
    let db = dir.path().join("index.db");
    let alerts = count_events(&db, "110113");
    assert!(alerts >= 1, "integrity failures were audited");
}

fn count_events(db: &std::path::Path, event_id: &str) -> i64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
        let count = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE canonical LIKE ?")
            .bind(format!("%\"event_id\":\"{event_id}\"%"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        count
    })
}
