//! One story for every [`BlobStore`](super::BlobStore): put, ranged reads, delete, fresh ids,
//! recovery — run against the local directory and against a real S3 server.

use super::s3_fixture::S3Server;
use super::{Blobs, LocalBlobStore, PendingBlob, Recovered};
use crate::error::StoreError;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed).collect()
}

async fn write(blobs: &Blobs, data: &[u8]) -> (PendingBlob, String) {
    let mut blob = blobs.create().unwrap();
    for chunk in data.chunks(100_000) {
        blob.write(chunk).unwrap();
    }
    let summary = blob.finish().unwrap();
    (blob, summary.sha256)
}

/// The blocking readers, as the server calls them: on a blocking thread.
async fn read(blobs: &Blobs, id: &str, sha: &str) -> Result<Vec<u8>, StoreError> {
    let (blobs, id, sha) = (blobs.clone(), id.to_owned(), sha.to_owned());
    tokio::task::spawn_blocking(move || blobs.read_verified(&id, &sha)).await.unwrap()
}

async fn read_range(blobs: &Blobs, id: &str, offset: u64, len: usize) -> Vec<u8> {
    let (blobs, id) = (blobs.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || blobs.open_blob(&id).unwrap().read_range(offset, len).unwrap()).await.unwrap()
}

async fn story(blobs: Blobs) {
    // Put, read before and after settling, ranges of plaintext and ciphertext.
    let data = pattern(3 << 20, 7);
    let (mut blob, sha) = write(&blobs, &data).await;
    blobs.put(&mut [&mut blob]).await.unwrap();
    let id = blob.keep();
    assert_eq!(read(&blobs, &id, &sha).await.unwrap(), data, "readable before it is settled");
    blobs.settle(&id).await.unwrap();
    assert_eq!(read(&blobs, &id, &sha).await.unwrap(), data);
    for (offset, len) in [(0u64, 10usize), (65_530, 20), (2_500_000, 300_000), ((3 << 20) - 5, 5)] {
        let got = read_range(&blobs, &id, offset, len).await;
        assert_eq!(got, &data[offset as usize..offset as usize + len], "range {offset}+{len}");
    }
    let chunk = blobs.store().read(&id, 0..80).await.unwrap();
    assert_eq!(chunk.bytes.len(), 80);
    assert!(chunk.object_len > data.len() as u64, "ciphertext: header and tags");
    assert!(!chunk.bytes.windows(16).any(|w| data.windows(16).take(1000).any(|d| d == w)), "no plaintext stored");
    let tail = blobs.store().read(&id, chunk.object_len - 10..chunk.object_len + 100).await.unwrap();
    assert_eq!(tail.bytes.len(), 10, "clamped to the end");
    assert!(matches!(read(&blobs, &id, "00").await, Err(StoreError::Integrity)));
    assert!(matches!(read(&blobs, "../../etc/passwd", &sha).await, Err(StoreError::NotFound)));

    // Fresh ids; a staged file is never created twice.
    let (a, _) = write(&blobs, b"one").await;
    let (b, _) = write(&blobs, b"one").await;
    assert_ne!(a.id, b.id);
    assert!(blobs.store().staging().create(&a.id).is_err(), "create-only");
    drop((a, b));

    // Delete, twice.
    blobs.store().delete(&id).await.unwrap();
    assert!(matches!(read(&blobs, &id, &sha).await, Err(StoreError::NotFound)));
    blobs.store().delete(&id).await.unwrap();

    // A discarded object (a duplicate) is gone; so is an abandoned one, eventually.
    let (mut dup, dup_sha) = write(&blobs, b"duplicate").await;
    blobs.put(&mut [&mut dup]).await.unwrap();
    let dup_id = dup.id.clone();
    blobs.discard(dup).await;
    assert!(matches!(read(&blobs, &dup_id, &dup_sha).await, Err(StoreError::NotFound)));
    let (mut gone, gone_sha) = write(&blobs, b"abandoned").await;
    blobs.put(&mut [&mut gone]).await.unwrap();
    let gone_id = gone.id.clone();
    drop(gone);
    let mut waited = 0;
    while read(&blobs, &gone_id, &gone_sha).await.is_ok() {
        assert!(waited < 100, "an abandoned object stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }

    // A crash between put and settle: the referenced object is finished, the other removed.
    let (mut kept, kept_sha) = write(&blobs, &pattern(200_000, 1)).await;
    let (mut orphan, orphan_sha) = write(&blobs, &pattern(100, 2)).await;
    blobs.put(&mut [&mut kept, &mut orphan]).await.unwrap();
    let (kept, orphan) = (kept.keep(), orphan.keep());
    let referenced: HashSet<String> = [kept.clone()].into();
    let report = blobs
        .recover(|ids| std::future::ready(Ok(ids.into_iter().filter(|id| referenced.contains(id)).collect())))
        .await
        .unwrap();
    assert_eq!(report, Recovered { settled: 1, kept: 0, deleted: 1, young: 0 });
    assert_eq!(read(&blobs, &kept, &kept_sha).await.unwrap(), pattern(200_000, 1));
    assert!(matches!(read(&blobs, &orphan, &orphan_sha).await, Err(StoreError::NotFound)));
    assert!(blobs.store().staging().open_file(&kept).unwrap().is_none(), "nothing left staged");

    blobs.check().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_story() {
    let dir = tempfile::tempdir().unwrap();
    let (store, alone) = LocalBlobStore::open(dir.path()).unwrap();
    assert!(alone);
    story(Blobs::new(Arc::new(cloudfilm_crypto::KeyRing::generate()), Arc::new(store))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_story() {
    let Some(server) = S3Server::start() else { return };
    let spool = tempfile::tempdir().unwrap();
    let bucket = server.bucket("story");
    story(server.blobs(&bucket, &spool.path().join("spool"), Duration::ZERO).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_story() {
    let Some(garage) = super::garage_fixture::Garage::start() else { return };
    let spool = tempfile::tempdir().unwrap();
    story(garage.blobs(&spool.path().join("spool"), Duration::ZERO).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_large_objects_go_in_parts_and_read_in_windows() {
    let Some(server) = S3Server::start() else { return };
    let spool = tempfile::tempdir().unwrap();
    let (s3, _) = server.store(&server.bucket("large"), &spool.path().join("spool"), Duration::ZERO).await;
    let ring = Arc::new(cloudfilm_crypto::KeyRing::generate());
    let blobs = Blobs::new(ring.clone(), Arc::new(s3.clone()));
    let data = pattern(21 << 20, 3);
    let (mut blob, sha) = write(&blobs, &data).await;
    blobs.put(&mut [&mut blob]).await.unwrap();
    let id = blob.keep();
    blobs.settle(&id).await.unwrap();
    assert!(blobs.store().staging().open_file(&id).unwrap().is_none(), "the spool is removed once settled");
    let frame = read_range(&blobs, &id, 17 << 20, 512 * 1024).await;
    assert_eq!(frame, &data[17 << 20..(17 << 20) + 512 * 1024]);
    // A frame deep inside fetches the first window and one around itself, not the object.
    let (store, ring, key) = (s3.clone(), ring.clone(), id.clone());
    let fetched = tokio::task::spawn_blocking(move || {
        let reader = store.reader(&key).unwrap();
        let fetched = reader.fetched();
        let mut blob = cloudfilm_crypto::BlobReader::open(&ring, &key, reader).unwrap();
        assert_eq!(blob.read_range(17 << 20, 512 * 1024).unwrap(), &data[17 << 20..(17 << 20) + 512 * 1024]);
        fetched.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await
    .unwrap();
    assert!(fetched <= 2 << 20, "a frame read fetched {fetched} bytes of a 21 MiB object");
    assert_eq!(read(&blobs, &id, &sha).await.unwrap(), pattern(21 << 20, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_node_reads_what_it_stored_or_read_whole_from_its_own_cache() {
    let Some(server) = S3Server::start() else { return };
    let bucket = server.bucket("cached");
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ring = Arc::new(cloudfilm_crypto::KeyRing::generate());
    let node = |store: super::S3BlobStore| Blobs::new(ring.clone(), Arc::new(store));
    let a = node(server.store_cached(&bucket, &a_dir.path().join("spool"), &a_dir.path().join("cache")).await);
    let plain_dir = tempfile::tempdir().unwrap();
    let (bucket_only, _) = server.store(&bucket, &plain_dir.path().join("spool"), Duration::ZERO).await;
    let data = pattern(3 << 20, 9);
    let (mut blob, sha) = write(&a, &data).await;
    a.put(&mut [&mut blob]).await.unwrap();
    let id = blob.keep();
    a.settle(&id).await.unwrap();
    let stored = bucket_only.read(&id, 0..(16 << 20)).await.unwrap().bytes;

    // The bucket's copy goes: the node that stored it still reads its own; another cannot.
    use super::BlobStore;
    bucket_only.delete(&id).await.unwrap();
    assert_eq!(read(&a, &id, &sha).await.unwrap(), data, "served from the writer's cache");
    let b_cache = b_dir.path().join("cache");
    let b = node(server.store_cached(&bucket, &b_dir.path().join("spool"), &b_cache).await);
    assert!(matches!(read(&b, &id, &sha).await, Err(StoreError::NotFound)));

    // Read whole once from the bucket, then from the reader's own copy.
    std::fs::write(bucket_only.staging().path(&id), &stored).unwrap();
    bucket_only.put(std::slice::from_ref(&id)).await.unwrap();
    bucket_only.settle(&id).await.unwrap();
    assert_eq!(read(&b, &id, &sha).await.unwrap(), data, "read from the bucket");
    bucket_only.delete(&id).await.unwrap();
    assert_eq!(read(&b, &id, &sha).await.unwrap(), data, "kept what it read whole");
    assert!(b_cache.join(&id).exists());

    // A restart empties the cache; a delete removes the copy.
    drop(b);
    let b = node(server.store_cached(&bucket, &b_dir.path().join("spool"), &b_cache).await);
    assert!(matches!(read(&b, &id, &sha).await, Err(StoreError::NotFound)), "nothing kept over a restart");
    a.store().delete(&id).await.unwrap();
    assert!(matches!(read(&a, &id, &sha).await, Err(StoreError::NotFound)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_recovery_leaves_young_orphans_to_other_nodes() {
    let Some(server) = S3Server::start() else { return };
    let spool = tempfile::tempdir().unwrap();
    let blobs = server.blobs(&server.bucket("young"), &spool.path().join("spool"), Duration::from_secs(3600)).await;
    let (mut blob, sha) = write(&blobs, b"another node has not committed yet").await;
    blobs.put(&mut [&mut blob]).await.unwrap();
    let id = blob.keep();
    blobs.settle(&id).await.unwrap();
    let report = blobs.recover(|_| std::future::ready(Ok(Default::default()))).await.unwrap();
    assert_eq!(report, Recovered { settled: 0, kept: 0, deleted: 0, young: 1 });
    assert!(read(&blobs, &id, &sha).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_missing_bucket_or_endpoint_is_a_clear_error() {
    let Some(server) = S3Server::start() else { return };
    let spool = tempfile::tempdir().unwrap();
    let options = |bucket: &str, endpoint: &str| super::s3::S3Options {
        bucket: bucket.into(),
        endpoint: Some(endpoint.into()),
        region: None,
        credentials: super::s3::Credentials::new(super::s3_fixture::KEY_ID, super::s3_fixture::SECRET),
        spool: spool.path().join("spool"),
        grace: Duration::ZERO,
        cache: None,
    };
    let missing = super::S3BlobStore::open(options("nosuchbucket", &server.endpoint)).await.err().unwrap();
    assert!(missing.contains("\"nosuchbucket\" does not exist"), "{missing}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable =
        super::S3BlobStore::open(options("films", &format!("http://127.0.0.1:{port}"))).await.err().unwrap();
    assert!(unreachable.starts_with("not reachable"), "{unreachable}");
    for m in [&missing, &unreachable] {
        assert!(!m.contains(super::s3_fixture::SECRET) && !m.contains(super::s3_fixture::KEY_ID), "{m}");
    }
}
