//! `cloudfilm serve --blobs s3://…` against a real S3 server (s3s-fs on 127.0.0.1): a STOW-RS
//! instance comes back byte-identical, only ciphertext reaches the bucket, nothing stays in
//! the spool; a bucket that does not exist stops the start with a message naming it and no
//! secret.

mod common;
use cloudfilm_store::blobs::s3_fixture::{KEY_ID, S3Server, SECRET};
use common::*;
use std::process::Command;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_instance_stored_in_s3_comes_back_byte_identical() {
    let Some(s3) = S3Server::start() else { return };
    let bucket = s3.bucket("films");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{bucket}?endpoint={}&region=us-east-1", s3.endpoint);
    let env = [("CLOUDFILM_BLOBS", url.as_str()), ("AWS_ACCESS_KEY_ID", KEY_ID), ("AWS_SECRET_ACCESS_KEY", SECRET)];
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &env);
    let instances = study(21, 2);
    let stored = stow(&server, &key, &[&instances[0], &instances[1]]);
    assert_eq!(stored.status, 200);
    let back = parts(get(&server, &key, &instance_path(&instances[0])));
    assert_eq!(back.len(), 1);
    assert!(back[0] == instances[0], "byte-identical");
    let frame = get(&server, &key, &format!("{}/frames/1", instance_path(&instances[1])));
    assert_eq!(frame.status(), 200);
    let health = client().get(format!("{}/healthz", server.url)).send().unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<serde_json::Value>().unwrap(), serde_json::json!({"database": "ok", "blobs": "ok"}));

    let objects = files_under(&s3.root.path().join(&bucket).join("objects"));
    assert_eq!(objects.len(), 2, "one object per instance in the bucket");
    let uid = sop_uid(&instances[0]);
    for object in &objects {
        let bytes = std::fs::read(object).unwrap();
        assert!(!contains(&bytes, uid.as_bytes()) && !contains(&bytes, b"DICM"), "only ciphertext in the bucket");
    }
    assert!(files_under(&dir.path().join("spool")).is_empty(), "the spool is emptied after the commit");
    let local = dir.path().join("blobs/objects");
    assert!(!local.exists() || files_under(&local).is_empty(), "nothing went to the local blob directory");

    drop(s3);
    let health = client().get(format!("{}/healthz", server.url)).send().unwrap();
    assert_eq!(health.status(), 503, "the bucket is gone");
    assert_eq!(
        health.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"database": "ok", "blobs": "unreachable"})
    );
    server.stop();
}

#[test]
fn a_bucket_that_does_not_exist_stops_the_start_cleanly() {
    let Some(s3) = S3Server::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://no-such-bucket?endpoint={}&region=us-east-1", s3.endpoint);
    let out = Command::new(BIN)
        .arg("--data")
        .arg(dir.path())
        .args(["--blobs", &url, "serve", "--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0"])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("CLOUDFILM_LOG", "info")
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "the start fails");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"no-such-bucket\" does not exist"), "{stderr}");
    assert!(stderr.contains(&s3.endpoint), "names where: {stderr}");
    assert!(!stderr.contains(SECRET) && !stderr.contains(KEY_ID), "no credential in the output: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty(), "no banner");
}

#[test]
fn s3_credentials_are_never_printed_by_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--data")
        .arg(dir.path())
        .args(["--blobs", "s3://films?endpoint=http://127.0.0.1:3900&region=garage", "config"])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("blobs = \"s3://films?endpoint=http://127.0.0.1:3900&region=garage\""), "{printed}");
    assert!(!printed.contains(SECRET) && !printed.contains(KEY_ID), "{printed}");
}
