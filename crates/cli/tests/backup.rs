//! Backups (issue 18, point 3): a backup taken while the server ingests restores to an archive
//! that serves every instance acknowledged before it began byte-identical, whose audit chain
//! verifies; `backup verify` names a tampered, missing or planted file; a restore needs the
//! passphrase and an empty data directory.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "a long backup passphrase";

fn with_passphrase(data: &Path, args: &[&str], passphrase: &str) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env("CLOUDFILM_LOG", "warn")
        .env("CLOUDFILM_BACKUP_PASSPHRASE", passphrase)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `backup verify` of `dir`: (success, what it printed).
fn verify(dir: &Path) -> (bool, String) {
    let out = Command::new(BIN).args(["backup", "verify"]).arg(dir).output().expect("the binary runs");
    (out.status.success(), text(&out))
}

#[test]
fn a_backup_taken_during_ingest_restores_every_acknowledged_instance() {
    let live = tempfile::tempdir().unwrap();
    let key = org_with_key(live.path(), "H1");
    let instances: Arc<Vec<Vec<u8>>> = Arc::new((0..4).flat_map(|s| study(700 + s, 20)).collect());
    let server = Server::start(live.path(), &[]);

    // Ingest runs through the backup: batches of five, each acknowledged or not.
    let acknowledged: Arc<Mutex<BTreeMap<usize, ()>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (url, key, instances, acknowledged, stop) =
            (server.dicomweb(), key.clone(), instances.clone(), acknowledged.clone(), stop.clone());
        std::thread::spawn(move || {
            let client = client();
            let deadline = Instant::now() + Duration::from_secs(120);
            for chunk in (0..instances.len()).collect::<Vec<_>>().chunks(5) {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    return;
                }
                let batch: Vec<&[u8]> = chunk.iter().map(|&k| &instances[k][..]).collect();
                let sent = post_instances(&client, &url, &key, &batch);
                if sent.is_ok_and(|r| r.status() == 200) {
                    acknowledged.lock().unwrap().extend(chunk.iter().map(|&k| (k, ())));
                }
            }
        })
    };
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(started.elapsed() < Duration::from_secs(60), "ingest acknowledged 20 instances within a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: Vec<usize> = acknowledged.lock().unwrap().keys().copied().collect();
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b1");
    let out = with_passphrase(live.path(), &["backup", "--to", backup.to_str().unwrap()], PASSPHRASE);
    assert!(out.status.success(), "backup: {}", text(&out));
    let during = acknowledged.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    server.stop();
    let held: usize = text(&out).split("backup of ").nth(1).and_then(|t| t.split(' ').next()?.parse().ok()).unwrap();
    eprintln!("acknowledged: {} before the backup, {during} when it ended; the backup holds {held}", before.len());
    assert!(during > before.len(), "ingest went on while the backup was taken");
    assert!(held >= before.len(), "the backup holds at least what was acknowledged before it began");
    assert!(cli(live.path(), &["audit", "verify"]).status.success(), "the live chain holds the backup's record");
    let live_log = audit_log(live.path());
    assert!(live_log.iter().any(|(_, e)| e.contains("backup of")), "taking the backup is audited");

    // Nothing in the backup is readable without the passphrase.
    let sealed = std::fs::read_to_string(backup.join("keyring.sealed")).unwrap();
    let ring = std::fs::read_to_string(live.path().join("keyring.json")).unwrap();
    let secret = ring.split("\"secret\": \"").nth(1).unwrap().split('"').next().unwrap();
    assert!(!sealed.contains(secret), "the key ring travels sealed");
    let (ok, said) = verify(&backup);
    assert!(ok, "an untouched backup verifies: {said}");

    // Restored, every instance acknowledged before the backup began reads back byte-identical,
    // and whatever else it holds is whole.
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("data");
    let out = with_passphrase(&target, &["restore", "--from", backup.to_str().unwrap()], PASSPHRASE);
    assert!(out.status.success(), "restore: {}", text(&out));
    assert!(cli(&target, &["audit", "verify"]).status.success(), "the restored chain verifies");
    let server = Server::start(&target, &[]);
    for &k in &before {
        let back = parts(get(&server, &key, &instance_path(&instances[k])));
        assert_eq!(back, vec![instances[k].clone()], "acknowledged instance {k} comes back byte-identical");
    }
    let by_uid: BTreeMap<String, usize> = instances.iter().enumerate().map(|(k, b)| (sop_uid(b), k)).collect();
    let listed = qido(&server, &key, "/instances?limit=5000");
    assert!(listed.len() >= before.len());
    for item in &listed {
        let k = by_uid[item["00080018"]["Value"][0].as_str().unwrap()];
        assert_eq!(parts(get(&server, &key, &instance_path(&instances[k]))), vec![instances[k].clone()]);
    }
    server.stop();
    let restored_log = audit_log(&target);
    assert!(restored_log.iter().any(|(_, e)| e.contains("restored from a backup")), "the restore is audited");

    // A second restore into the same (now full) directory is refused, nothing changed.
    let out = with_passphrase(&target, &["restore", "--from", backup.to_str().unwrap()], PASSPHRASE);
    assert!(!out.status.success() && text(&out).contains("exists"), "{}", text(&out));
    assert_eq!(audit_log(&target).len(), restored_log.len());

    // A wrong passphrase restores nothing.
    let elsewhere = restored.path().join("other");
    let out = with_passphrase(&elsewhere, &["restore", "--from", backup.to_str().unwrap()], "not the passphrase!");
    assert!(!out.status.success() && text(&out).contains("wrong passphrase"), "{}", text(&out));
    assert!(!elsewhere.join("index.db").exists() && !elsewhere.join("keyring.json").exists());

    // Tampering is named: a flipped byte in a blob, the index, a removed blob, a planted file.
    let blob = files_under(&backup.join("blobs")).into_iter().next().unwrap();
    let name = blob.strip_prefix(&backup).unwrap().to_str().unwrap().to_owned();
    let original = std::fs::read(&blob).unwrap();
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x01;
    std::fs::write(&blob, &flipped).unwrap();
    let (ok, said) = verify(&backup);
    assert!(!ok && said.contains(&name), "a flipped blob byte is named: {said}");
    std::fs::remove_file(&blob).unwrap();
    let (ok, said) = verify(&backup);
    assert!(!ok && said.contains(&name) && said.contains("missing"), "a removed blob is named: {said}");
    std::fs::write(&blob, &original).unwrap();
    std::fs::write(backup.join("blobs/extra"), b"planted").unwrap();
    let (ok, said) = verify(&backup);
    assert!(!ok && said.contains("blobs/extra"), "a planted file is named: {said}");
    std::fs::remove_file(backup.join("blobs/extra")).unwrap();
    let index = std::fs::read(backup.join("index.db")).unwrap();
    let mut edited = index.clone();
    let at = edited.len() - 100;
    edited[at] ^= 0x20;
    std::fs::write(backup.join("index.db"), &edited).unwrap();
    let (ok, said) = verify(&backup);
    assert!(!ok && said.contains("index.db"), "an edited index is named: {said}");
    std::fs::write(backup.join("index.db"), &index).unwrap();
    // The manifest itself: any edit breaks its signature.
    let manifest = std::fs::read_to_string(backup.join("backup.json")).unwrap();
    std::fs::write(backup.join("backup.json"), manifest.replacen("\"instances\": ", "\"instances\": 1", 1)).unwrap();
    let (ok, said) = verify(&backup);
    assert!(!ok && said.contains("backup.json"), "an edited manifest is named: {said}");
    std::fs::write(backup.join("backup.json"), &manifest).unwrap();
    assert!(verify(&backup).0, "put back, the backup verifies again");
}

#[test]
fn a_backup_needs_a_passphrase_of_some_length_and_an_empty_target() {
    let live = tempfile::tempdir().unwrap();
    org_with_key(live.path(), "H1");
    let to = live.path().join("backup");
    let out = cli(live.path(), &["backup", "--to", to.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("CLOUDFILM_BACKUP_PASSPHRASE"), "{}", text(&out));
    let out = with_passphrase(live.path(), &["backup", "--to", to.to_str().unwrap()], "short");
    assert!(!out.status.success() && text(&out).contains("at least 12"), "{}", text(&out));
    let out = with_passphrase(live.path(), &["backup", "--to", live.path().to_str().unwrap()], PASSPHRASE);
    assert!(!out.status.success() && text(&out).contains("not empty"), "{}", text(&out));
    let out = with_passphrase(live.path(), &["backup", "--to", to.to_str().unwrap()], PASSPHRASE);
    assert!(out.status.success(), "{}", text(&out));
    // Checked with another key than the archive's, the backup does not pass.
    let wrong = "0".repeat(64);
    let out = Command::new(BIN).args(["backup", "verify", "--public-key", &wrong]).arg(&to).output().unwrap();
    assert!(!out.status.success() && text(&out).contains("backup.json"), "{}", text(&out));
}
