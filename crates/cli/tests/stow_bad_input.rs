//! STOW-RS against bad input: every refusal is a clear 4xx or a per-instance failure with its
//! reason, nothing is partly stored, and the server keeps serving.

mod common;
use common::*;
use dicom_dictionary_std::tags;

/// Replaces every occurrence of `from` by `to` (same length) in a file's bytes.
fn substitute(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut i = 0;
    while let Some(pos) = out[i..].windows(from.len()).position(|w| w == from.as_bytes()) {
        out[i + pos..i + pos + from.len()].copy_from_slice(to.as_bytes());
        i += pos + from.len();
    }
    out
}

/// Replaces only the last occurrence (the data set's copy, after the file meta's).
fn substitute_last(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let pos = out.windows(from.len()).rposition(|w| w == from.as_bytes()).unwrap();
    out[pos..pos + from.len()].copy_from_slice(to.as_bytes());
    out
}

fn without(bytes: &[u8], tag: dicom_core::Tag) -> Vec<u8> {
    let mut obj = dicom_object::OpenFileOptions::new().from_reader(&bytes[128..]).unwrap();
    obj.remove_element(tag);
    let mut out = Vec::new();
    obj.write_all(&mut out).unwrap();
    out
}

fn count_instances(server: &Server, key: &str) -> usize {
    qido(server, key, "/instances").len()
}

#[test]
fn each_bad_instance_fails_alone_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let good = study(1, 9);
    let sop = sop_uid(&good[2]);
    let traversal = |uid: &str| format!("../../{}", "x".repeat(uid.len() - 6));
    let traversal_in_meta = substitute(&good[2], &sop, &traversal(&sop));
    let sop6 = sop_uid(&good[6]);
    let traversal_in_dataset = substitute_last(&good[6], &sop6, &traversal(&sop6));
    let unknown_ts = substitute(&good[3], "1.2.840.10008.1.2.1\0", "1.2.3.4.5.6.7.8.9.10");
    let no_study = without(&good[4], tags::STUDY_INSTANCE_UID);
    let truncated = good[5][..good[5].len() / 2].to_vec();
    let parts: Vec<(&str, &[u8])> = vec![
        ("application/dicom", &good[0]),
        ("application/dicom", b"this is not DICOM at all"),
        ("text/plain", b"hello"),
        ("application/dicom", &traversal_in_meta),
        ("application/dicom", &traversal_in_dataset),
        ("application/dicom", &unknown_ts),
        ("application/dicom", &no_study),
        ("application/dicom", &truncated),
        ("application/dicom", &good[1]),
    ];
    let r = stow_parts(&server, &key, "/studies", &parts);
    assert_eq!(r.status, 202, "some stored, some failed");
    assert_eq!(r.stored(), 2);
    assert_eq!(r.failure_reasons(), vec![0xC000, 0xC000, 0xC000, 0xA900, 0xC122, 0xA900, 0xC000]);
    for reason in [
        "not a DICOM Part-10 file",
        "not application/dicom",
        "Invalid UID in file meta",
        "invalid SOP Instance UID",
        "unsupported transfer syntax",
        "Study Instance UID",
        "truncated",
    ] {
        assert!(r.warning.contains(reason), "{reason:?} in {}", r.warning);
    }
    assert_eq!(count_instances(&server, &key), 2, "only the two good instances are stored");
    // Nothing of the refused instances remains, not even a temporary file.
    let tmp = std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count();
    assert_eq!(tmp, 0);
    // A request with only bad instances stores nothing: 409.
    let r = stow(&server, &key, &[&truncated]);
    assert_eq!((r.status, r.failure_reasons()), (409, vec![0xC000]));
    server.stop();
}

#[test]
fn broken_requests_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let good = study(2, 3);
    let url = format!("{}/studies", server.dicomweb());
    let post = |content_type: &str, body: Vec<u8>| {
        client().post(&url).bearer_auth(&key).header("Content-Type", content_type).body(body).send().unwrap()
    };
    let (content_type, body) = multipart(&[("application/dicom", &good[0]), ("application/dicom", &good[1])]);

    // The closing boundary is missing: the body ends in the middle of a part.
    let cut = body[..body.len() - 200].to_vec();
    let r = post(&content_type, cut);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("malformed_multipart"));

    // A boundary that never appears.
    let r = post("multipart/related; type=\"application/dicom\"; boundary=nowhere", body.clone());
    assert_eq!(r.status(), 400);

    // No boundary at all; not multipart; other part types.
    assert_eq!(post("multipart/related; type=\"application/dicom\"", body.clone()).status(), 400);
    assert_eq!(post("application/dicom", good[0].clone()).status(), 415);
    assert_eq!(post("multipart/related; type=\"application/dicom+json\"; boundary=x", body.clone()).status(), 415);
    assert_eq!(post(&content_type, Vec::new()).status(), 400);

    assert_eq!(count_instances(&server, &key), 0, "nothing of a broken request is stored");
    assert_eq!(std::fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(), 0);
    // The server still serves.
    assert_eq!(post(&content_type, body).status(), 200);
    assert_eq!(count_instances(&server, &key), 2);
    server.stop();
}

#[test]
fn bodies_over_the_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let instances = study(3, 4);
    let size = instances[0].len();
    let limits = [
        ("CLOUDFILM_LIMITS__MAX_INSTANCE_BYTES", (size - 1).to_string()),
        ("CLOUDFILM_LIMITS__MAX_REQUEST_BYTES", (size * 3).to_string()),
        ("CLOUDFILM_LIMITS__MAX_PARTS", "3".to_string()),
    ];
    for (i, (name, value)) in limits.iter().enumerate() {
        let server = Server::start(dir.path(), &[(name, value)]);
        let all: Vec<&[u8]> = instances.iter().map(Vec::as_slice).collect();
        let r = stow(&server, &key, &all);
        assert_eq!(r.status, 413, "{name}");
        assert_eq!(count_instances(&server, &key), 0, "{name}: nothing stored");
        if i == 0 {
            assert!(get(&server, &key, "/studies").status().is_success(), "still serving");
        }
        server.stop();
    }
}

#[test]
fn repeated_instances_are_idempotent_and_conflicts_keep_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let instances = study(4, 2);
    assert_eq!(stow(&server, &key, &[&instances[0], &instances[1]]).status, 200);
    let again = stow(&server, &key, &[&instances[0]]);
    assert_eq!((again.status, again.stored()), (200, 1), "identical bytes: success");

    // Same SOP Instance UID, different bytes (another accession number).
    let changed = substitute(&instances[0], "ACC4", "ACC5");
    let r = stow(&server, &key, &[&changed]);
    assert_eq!((r.status, r.failure_reasons()), (409, vec![0x0111]));
    let back = parts(get(&server, &key, &instance_path(&instances[0])));
    assert_eq!(back, vec![instances[0].clone()], "the first version is kept, byte for byte");
    assert_eq!(count_instances(&server, &key), 2);
    server.stop();
}

#[test]
fn storing_into_a_named_study_refuses_other_studies() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let a = study(5, 1);
    let b = study(6, 1);
    let path = format!("/studies/{}", study_uid(&a[0]));
    let r = stow_parts(&server, &key, &path, &[("application/dicom", &a[0]), ("application/dicom", &b[0])]);
    assert_eq!((r.status, r.failure_reasons()), (202, vec![0xA900]));
    assert_eq!(r.json["00081190"]["Value"][0].as_str().unwrap(), format!("{}{path}", server.dicomweb()));
    let bad_path = stow_parts(&server, &key, "/studies/1.2.x", &[("application/dicom", &a[0])]);
    assert_eq!(bad_path.status, 400);
    server.stop();
}
