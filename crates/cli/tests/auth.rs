//! Organization credentials: Bearer and Basic, unknown / revoked / wrong keys, address
//! allowlists, and organizations that never see each other's studies.

mod common;
use common::*;

fn status(server: &Server, auth: Option<&str>, path: &str) -> u16 {
    let mut request = client().get(format!("{}{path}", server.dicomweb()));
    if let Some(value) = auth {
        request = request.header("Authorization", value);
    }
    request.send().unwrap().status().as_u16()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[test]
fn keys_are_checked_on_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let key_id = key.split('.').next().unwrap().to_owned();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(status(&server, None, "/studies"), 401);
    assert_eq!(status(&server, Some(&format!("Bearer {key}")), "/studies"), 200);
    assert_eq!(status(&server, Some(&basic(&key_id, &key)), "/studies"), 200);
    assert_eq!(status(&server, Some(&basic("someone", &key)), "/studies"), 401, "the user must be the key id");
    assert_eq!(status(&server, Some(&format!("Bearer {key_id}.wrongsecret")), "/studies"), 401);
    assert_eq!(status(&server, Some("Bearer cfk0000000000000000.abc"), "/studies"), 401);
    assert_eq!(status(&server, Some("Bearer "), "/studies"), 401);
    assert_eq!(status(&server, Some("Digest x"), "/studies"), 401);

    cli_ok(dir.path(), &["apikey", "revoke", &key_id]);
    assert_eq!(status(&server, Some(&format!("Bearer {key}")), "/studies"), 401, "revocation is immediate");
    server.stop();
}

#[test]
fn allowlists_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    org_with_key(dir.path(), "H1");
    let elsewhere = new_key(dir.path(), "H1", &["10.0.0.0/8"]);
    let local = new_key(dir.path(), "H1", &["10.0.0.0/8", "127.0.0.0/8"]);
    let server = Server::start(dir.path(), &[]);
    assert_eq!(status(&server, Some(&format!("Bearer {elsewhere}")), "/studies"), 403);
    assert_eq!(status(&server, Some(&format!("Bearer {local}")), "/studies"), 200);
    server.stop();
}

#[test]
fn organizations_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let h1 = org_with_key(dir.path(), "H1");
    let h2 = org_with_key(dir.path(), "H2");
    let server = Server::start(dir.path(), &[]);
    let instances = study(7, 2);
    assert_eq!(stow(&server, &h1, &[&instances[0], &instances[1]]).status, 200);
    let path = instance_path(&instances[0]);
    let study_path = format!("/studies/{}", study_uid(&instances[0]));
    let missing = "/studies/1.2.3.4.5.6.7.8";

    for p in [
        path.clone(),
        format!("{path}/metadata"),
        format!("{path}/frames/1"),
        format!("{path}/rendered"),
        format!("{path}/thumbnail"),
        study_path.clone(),
        format!("{study_path}/metadata"),
        format!("{study_path}/thumbnail"),
        format!("{study_path}/series"),
    ] {
        let theirs = get(&server, &h2, &p);
        let absent = get(&server, &h2, &p.replace(&study_uid(&instances[0]), &missing[9..]));
        if p.ends_with("/series") {
            assert_eq!(theirs.json::<Vec<serde_json::Value>>().unwrap().len(), 0, "{p}");
            continue;
        }
        assert_eq!(theirs.status(), 404, "{p}");
        let (theirs, absent) = (theirs.text().unwrap(), absent.text().unwrap());
        assert_eq!(theirs, absent, "{p}: another's study looks exactly like a missing one");
        assert_eq!(get(&server, &h1, &p).status(), 200, "{p} for its owner");
    }
    assert!(qido(&server, &h2, "/studies").is_empty());
    assert!(qido(&server, &h2, "/studies?PatientName=ZHANG*").is_empty());
    assert!(qido(&server, &h2, "/instances").is_empty());
    // The same instance can be stored by the other organization, independently.
    assert_eq!(stow(&server, &h2, &[&instances[0]]).status, 200);
    assert_eq!(qido(&server, &h2, "/instances").len(), 1);
    assert_eq!(qido(&server, &h1, "/instances").len(), 2);
    server.stop();
}
