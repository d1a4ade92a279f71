//! A client without a key cannot grow the audit chain at will: wrong-key refusals from one
//! address are audited once a minute, the rest counted into one summary entry.

mod common;
use common::*;

fn refusal_entries(data: &std::path::Path) -> Vec<String> {
    audit_log(data).into_iter().map(|(_, c)| c).filter(|c| c.contains("wrong API key")).collect()
}

#[test]
fn wrong_keys_are_counted_not_each_audited() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let url = format!("{}/studies", server.dicomweb());
    for n in 0..300 {
        let response = http.get(&url).bearer_auth(format!("nokey{n}.secret")).send().unwrap();
        assert_eq!(response.status(), 401);
    }
    let (_, wrong_secret) = key.split_once('.').unwrap();
    let response =
        http.get(&url).bearer_auth(format!("{}.x{wrong_secret}", key.split('.').next().unwrap())).send().unwrap();
    assert_eq!(response.status(), 401, "a known key id with a wrong secret is refused too");
    // The right key still works for everyone.
    assert!(qido(&server, &key, "/studies").is_empty());
    server.stop();

    let entries = refusal_entries(dir.path());
    assert_eq!(entries.len(), 2, "the first refusal and one summary: {entries:#?}");
    assert!(entries[0].contains("\"actor\":\"key:nokey0\""), "{}", entries[0]);
    assert!(entries[1].contains("300 more refusal(s) from this address"), "{}", entries[1]);
    assert!(entries[1].contains("127.0.0.1"), "the summary names the address: {}", entries[1]);
    assert!(cli(dir.path(), &["audit", "verify"]).status.success());
}
