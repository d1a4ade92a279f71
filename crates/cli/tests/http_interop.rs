//! What stock HTTP peers need (issue 13 items 1, 3, 4): long multipart boundaries, CORS for a
//! viewer on another origin (configured origins only), and 401 challenges that can be used.

mod common;

use common::*;
use reqwest::Method;
use reqwest::blocking::Response;

const VIEWER: &str = "https://viewer.example.org";
const OTHER_VIEWER: &str = "http://127.0.0.1:3000";
const STRANGER: &str = "https://evil.example.net";

fn stow_with_boundary(server: &Server, key: &str, boundary: &str, quoted: bool, instance: &[u8]) -> Response {
    let mut body = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(instance);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let param = if quoted { format!("\"{boundary}\"") } else { boundary.to_owned() };
    client()
        .post(format!("{}/studies", server.dicomweb()))
        .bearer_auth(key)
        .header("Content-Type", format!("multipart/related; type=\"application/dicom\"; boundary={param}"))
        .body(body)
        .send()
        .unwrap()
}

fn error_code(response: Response) -> String {
    response.json::<serde_json::Value>().unwrap()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn boundaries_real_peers_send_are_accepted_and_garbage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let instances = study(31, 4);
    // Two UUIDs, as a widely used archive sends: 73 characters.
    let two_uuids = "2b5f0a3c-8d1e-4f6a-9b7c-0d1e2f3a4b5c-9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    assert_eq!(two_uuids.len(), 73);
    let response = stow_with_boundary(&server, &key, two_uuids, false, &instances[0]);
    assert_eq!(response.status(), 200, "a 73-character boundary");
    let longest = "=_".repeat(128);
    assert_eq!(stow_with_boundary(&server, &key, &longest, true, &instances[1]).status(), 200, "256 characters");
    let spaced = "MIME boundary (RFC 2046) with spaces";
    assert_eq!(stow_with_boundary(&server, &key, spaced, true, &instances[2]).status(), 200, "quoted, inner spaces");

    let too_long = "b".repeat(257);
    for (boundary, quoted) in [(too_long.as_str(), false), ("a*b", false), ("a@b<c>", true), ("trailing ", true)] {
        let response = stow_with_boundary(&server, &key, boundary, quoted, &instances[3]);
        assert_eq!(response.status(), 400, "{boundary:?}");
        assert_eq!(error_code(response), "missing_boundary", "{boundary:?}");
    }
    assert_eq!(qido(&server, &key, "/instances").len(), 3, "only the three valid requests stored");
    server.stop();
}

fn preflight(server: &Server, path: &str, origin: &str, method: &str) -> Response {
    client()
        .request(Method::OPTIONS, format!("{}{path}", server.url))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "authorization, accept")
        .send()
        .unwrap()
}

/// The study list, asked with the key from a page of `origin`.
fn studies_from(server: &Server, key: &str, origin: &str) -> Response {
    client().get(format!("{}/studies", server.dicomweb())).bearer_auth(key).header("Origin", origin).send().unwrap()
}

fn cors_headers(response: &Response) -> Vec<String> {
    response.headers().keys().map(|k| k.as_str().to_owned()).filter(|k| k.starts_with("access-control-")).collect()
}

fn header(response: &Response, name: &str) -> String {
    response.headers().get_all(name).iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>().join(", ")
}

#[test]
fn without_configured_origins_there_is_no_cors_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let response = preflight(&server, "/dicom-web/studies", VIEWER, "GET");
    assert_eq!(response.status(), 405);
    assert_eq!(cors_headers(&response), Vec::<String>::new());
    let response = studies_from(&server, &key, VIEWER);
    assert_eq!(response.status(), 200);
    assert_eq!(cors_headers(&response), Vec::<String>::new());
    server.stop();
}

#[test]
fn a_viewer_on_a_configured_origin_may_call_dicomweb_and_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let origins = format!("{VIEWER},{OTHER_VIEWER}");
    let server = Server::start(dir.path(), &[("CLOUDFILM_HTTP__CORS_ORIGINS", &origins)]);
    let instance = &study(32, 1)[0];
    assert_eq!(stow(&server, &key, &[instance]).status, 200);

    // The viewer's preflight, for every method DICOMweb uses.
    for origin in [VIEWER, OTHER_VIEWER] {
        for method in ["GET", "POST", "DELETE"] {
            let response = preflight(&server, &format!("/dicom-web{}", instance_path(instance)), origin, method);
            assert!(response.status().is_success(), "{origin} {method}: {}", response.status());
            assert_eq!(header(&response, "access-control-allow-origin"), origin);
            assert_eq!(header(&response, "access-control-allow-credentials"), "true");
            let methods = header(&response, "access-control-allow-methods");
            assert!(methods.contains(method), "{methods}");
            let headers = header(&response, "access-control-allow-headers").to_ascii_lowercase();
            for needed in ["authorization", "accept", "content-type"] {
                assert!(headers.contains(needed), "{headers}");
            }
            assert!(header(&response, "vary").to_ascii_lowercase().contains("origin"));
        }
    }
    // Its requests: the answer is readable, the STOW warning and request id exposed.
    let response = studies_from(&server, &key, VIEWER);
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), VIEWER);
    assert_eq!(header(&response, "access-control-allow-credentials"), "true");
    let exposed = header(&response, "access-control-expose-headers").to_ascii_lowercase();
    assert!(exposed.contains("warning") && exposed.contains("x-request-id"), "{exposed}");
    // A 401 is readable too, so the viewer can ask for a key.
    let response = client().get(format!("{}/studies", server.dicomweb())).header("Origin", VIEWER).send().unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "access-control-allow-origin"), VIEWER);

    // Any other origin, and the origin's look-alikes, get nothing.
    for stranger in [STRANGER, "https://viewer.example.org.evil.net", "http://viewer.example.org", "null"] {
        let response = preflight(&server, "/dicom-web/studies", stranger, "GET");
        assert_eq!(response.status(), 405, "{stranger}");
        assert_eq!(cors_headers(&response), Vec::<String>::new(), "{stranger}");
        let response =
            client().get(format!("{}/studies", server.dicomweb())).bearer_auth(&key).header("Origin", stranger).send();
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(cors_headers(&response), Vec::<String>::new(), "{stranger}");
    }
    // The patient API and the pages stay same-origin, even for a configured origin.
    for path in ["/api/v1/me", "/api/v1/auth/otp", "/"] {
        let response = preflight(&server, path, VIEWER, "POST");
        assert_eq!(cors_headers(&response), Vec::<String>::new(), "{path}");
    }
    let response = client().get(format!("{}/api/v1/policy", server.url)).header("Origin", VIEWER).send().unwrap();
    assert_eq!(cors_headers(&response), Vec::<String>::new());
    server.stop();
}

#[test]
fn credentials_are_allowed_only_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(
        dir.path(),
        &[("CLOUDFILM_HTTP__CORS_ORIGINS", VIEWER), ("CLOUDFILM_HTTP__CORS_CREDENTIALS", "false")],
    );
    let response = preflight(&server, "/dicom-web/studies", VIEWER, "GET");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(&response, "access-control-allow-origin"), VIEWER);
    assert!(response.headers().get("access-control-allow-credentials").is_none());
    let response = studies_from(&server, &key, VIEWER);
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), VIEWER);
    assert!(response.headers().get("access-control-allow-credentials").is_none());
    server.stop();
}

#[test]
fn an_origin_that_cannot_work_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    org_with_key(dir.path(), "H1");
    for bad in ["*", "https://viewer.example.org/", "viewer.example.org"] {
        let out = std::process::Command::new(BIN)
            .arg("--data")
            .arg(dir.path())
            .args(["serve", "--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0"])
            .env("CLOUDFILM_HTTP__CORS_ORIGINS", bad)
            .env("CLOUDFILM_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cors_origins"), "{bad}: {stderr}");
    }
}

fn challenges(response: &Response) -> Vec<String> {
    response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

#[test]
fn every_dicomweb_401_names_the_schemes_that_work() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let key = org_with_key(dir.path(), "H1");
    let server = Server::start(dir.path(), &[]);
    let url = format!("{}/studies", server.dicomweb());
    let basic = |user: &str, password: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    };
    let wrong = format!("{}.wrongsecret", key.split('.').next().unwrap());
    let refused = [
        client().get(&url).send().unwrap(),
        client().get(&url).bearer_auth("nope.nope").send().unwrap(),
        client().get(&url).bearer_auth(&wrong).send().unwrap(),
        client().get(&url).header("Authorization", basic("someone", &key)).send().unwrap(),
        client().post(&url).header("Content-Type", "multipart/related; boundary=x").body("x").send().unwrap(),
    ];
    for response in refused {
        assert_eq!(response.status(), 401);
        let found = challenges(&response);
        assert_eq!(found, vec!["Bearer realm=\"cloudfilm\"", "Basic realm=\"cloudfilm\", charset=\"UTF-8\""]);
    }
    // Both advertised schemes are accepted with the key: a stock client answering either
    // challenge gets in (Basic: the key id as user name, the whole key as password).
    let key_id = key.split('.').next().unwrap();
    assert_eq!(client().get(&url).bearer_auth(&key).send().unwrap().status(), 200);
    assert_eq!(client().get(&url).header("Authorization", basic(key_id, &key)).send().unwrap().status(), 200);
    let response = client().get(&url).basic_auth(key_id, Some(&key)).send().unwrap();
    assert_eq!(response.status(), 200, "reqwest's own Basic");

    // The patient API signs in by phone and code into a cookie: no HTTP scheme can answer it,
    // so its 401 advertises none (a Basic challenge would open the browser's login dialog).
    let response = client().get(format!("{}/api/v1/me", server.url)).send().unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(challenges(&response), Vec::<String>::new());
    server.stop();
}
