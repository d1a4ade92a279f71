//! Durability (S1, issue point 7): kill -9 at random moments during ingest; every acknowledged
//! instance comes back byte-identical, nothing half-stored is visible, no orphan blob or row
//! remains after restart, and nothing blocks a retry.
//!
//! `CLOUDFILM_CRASH_CYCLES` sets the number of crashes (default 12; run hundreds by hand).

mod common;
use common::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn kill_9_during_ingest_loses_nothing_acknowledged() {
    let cycles: usize = std::env::var("CLOUDFILM_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("crash test seed {seed}, {cycles} cycles");
    let mut rng = cloudfilm_dicom::synth::SplitMix64(seed);
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let instances: Arc<Vec<Vec<u8>>> = Arc::new((0..4).flat_map(|s| study(100 + s, 40)).collect());
    let acknowledged: Arc<Mutex<BTreeMap<usize, ()>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(600);

    for cycle in 0..cycles {
        assert!(Instant::now() < deadline, "the crash loop is bounded in time");
        let server = Server::start(dir.path(), &[]);
        // After a restart, nothing half-written is left waiting.
        assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(), 0, "cycle {cycle}");
        let url = server.dicomweb();
        let (instances, acknowledged, key) = (instances.clone(), acknowledged.clone(), key.clone());
        let start = rng.next_u64() as usize % instances.len();
        let batch = 1 + rng.next_u64() as usize % 4;
        let sender = std::thread::spawn(move || {
            let client = client();
            let mut i = start;
            loop {
                let indices: Vec<usize> = (0..batch).map(|k| (i + k) % instances.len()).collect();
                let parts: Vec<&[u8]> = indices.iter().map(|&k| instances[k].as_slice()).collect();
                let sent = post_instances(&client, &url, &key, &parts);
                match sent {
                    Ok(r) if r.status() == 200 => {
                        let mut ack = acknowledged.lock().unwrap();
                        for k in indices {
                            ack.insert(k, ());
                        }
                    }
                    _ => return,
                }
                i = (i + batch) % instances.len();
            }
        });
        std::thread::sleep(Duration::from_millis(50 + rng.next_u64() % 700));
        server.kill9();
        sender.join().unwrap();
    }

    let server = Server::start(dir.path(), &[]);
    let acknowledged: Vec<usize> = acknowledged.lock().unwrap().keys().copied().collect();
    assert!(!acknowledged.is_empty(), "some instances were acknowledged before the crashes");
    for &k in &acknowledged {
        let back = parts(get(&server, &key, &instance_path(&instances[k])));
        assert_eq!(back, vec![instances[k].clone()], "acknowledged instance {k} comes back byte-identical");
    }
    // Whatever the index shows is whole: every listed instance reads back completely.
    let listed = qido(&server, &key, "/instances?limit=5000");
    let by_uid: BTreeMap<String, usize> = instances.iter().enumerate().map(|(k, b)| (sop_uid(b), k)).collect();
    for item in &listed {
        let uid = item["00080018"]["Value"][0].as_str().unwrap();
        let k = by_uid[uid];
        assert_eq!(parts(get(&server, &key, &instance_path(&instances[k]))), vec![instances[k].clone()]);
    }
    // No orphan: one blob per indexed instance, nothing in tmp/.
    assert_eq!(files_under(&dir.path().join("blobs/objects")).len(), listed.len());
    assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(), 0);
    // Nothing blocks a retry: everything can be sent again.
    for chunk in instances.chunks(20) {
        let slices: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        assert_eq!(stow(&server, &key, &slices).status, 200);
    }
    assert_eq!(qido(&server, &key, "/instances?limit=5000").len(), instances.len());
    server.stop();
    assert!(cli(dir.path(), &["audit", "verify"]).status.success(), "the audit chain survived the crashes");
}
