//! One STOW-RS request of more instances than the server may open files: each instance's
//! spool file is closed once written, so the request succeeds under a small RLIMIT_NOFILE.

mod common;
use common::*;

#[test]
fn a_request_of_more_instances_than_open_files_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start_with_open_files(dir.path(), &[], Some(128));
    let instances = study(77, 300);
    let refs: Vec<&[u8]> = instances.iter().map(Vec::as_slice).collect();
    let stow = stow(&server, &key, &refs);
    assert_eq!(stow.status, 200, "{}", stow.json);
    assert_eq!(stow.stored(), 300);
    assert_eq!(qido(&server, &key, &format!("/studies/{}/instances", study_uid(&instances[0]))).len(), 300);
    server.stop();
}
