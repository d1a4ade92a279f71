use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use cloudfilm_core::{ManualClock, OrgCode, OrgSwitches};
use cloudfilm_dicom::synth::{self, Modality, SeriesSpec, StudySpec, SynthPatient};
use cloudfilm_server::{Archive, Config, ingest};
use cloudfilm_store::{ImportContext, Org};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

pub const PHONE_A: &str = "13800138000";
pub const PHONE_B: &str = "13900139000";
/// Valid numbers (S18) for adults and a child, with their birth dates inside.
pub const ID_A: &str = "11010519491231002X";
pub const ID_B: &str = "440524188001010014";
pub const ID_SPOUSE: &str = "110105198001010016";
pub const ID_CHILD: &str = "110105201506010016";

/// A valid resident ID for a birth date (`YYYYMMDD`), sequence 001.
pub fn id_born(date: &str) -> String {
    let first17 = format!("110105{date}001");
    let check = cloudfilm_core::resident_id::check_char(first17.as_bytes()) as char;
    format!("{first17}{check}")
}

pub struct Portal {
    pub archive: Arc<Archive>,
    pub app: Router,
    pub clock: Arc<ManualClock>,
    outbox: PathBuf,
    _dir: tempfile::TempDir,
    /// The scratch database when the run is on PostgreSQL (`CLOUDFILM_TEST_STORAGE=postgres…`).
    _database: Option<cloudfilm_store::scratch::ScratchDatabase>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A browser: its cookies, and the CSRF header it sends back.
#[derive(Clone, Default)]
pub struct Browser {
    pub session: Option<String>,
    pub csrf: Option<String>,
    /// A share-scoped session (`cf_share`).
    pub share: Option<String>,
    pub ip: Option<[u8; 4]>,
}

impl Browser {
    /// A browser without cookies at this address.
    pub fn at(ip: [u8; 4]) -> Browser {
        Browser { ip: Some(ip), ..Default::default() }
    }
}

pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z").unwrap().with_timezone(&Utc)
}

impl Portal {
    pub async fn new() -> Portal {
        Portal::with(|_| {}).await
    }

    /// A portal whose configuration `adjust` changes first.
    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Portal {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("sms-outbox.jsonl");
        let mut config = Config { data: dir.path().join("data"), ..Default::default() };
        config.patients.sms = format!("file:{}", outbox.display());
        // One story, every backend: the same tests on PostgreSQL when the run asks for it.
        let database = match std::env::var("CLOUDFILM_TEST_STORAGE") {
            Ok(storage) if storage.starts_with("postgres") => {
                Some(cloudfilm_store::scratch::ScratchDatabase::create().await)
            }
            _ => None,
        };
        if let Some(db) = &database {
            config.database = db.url.clone();
        }
        adjust(&mut config);
        let clock = Arc::new(ManualClock::new(t0()));
        let archive = Arc::new(Archive::open_with_clock(config, clock.clone()).await.unwrap());
        let app = cloudfilm_server::app::router(archive.clone(), 80);
        Portal { archive, app, clock, outbox, _dir: dir, _database: database }
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn send(&self, browser: &Browser, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method.clone()).uri(path);
        let mut cookies = Vec::new();
        if let Some(s) = &browser.session {
            cookies.push(format!("cf_session={s}"));
        }
        if let Some(s) = &browser.share {
            cookies.push(format!("cf_share={s}"));
        }
        if let Some(c) = &browser.csrf {
            cookies.push(format!("cf_csrf={c}"));
            if method != Method::GET {
                builder = builder.header("x-csrf-token", c);
            }
        }
        if !cookies.is_empty() {
            builder = builder.header(header::COOKIE, cookies.join("; "));
        }
        let body = match body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let mut request = builder.body(body).unwrap();
        let ip = browser.ip.unwrap_or([127, 0, 0, 1]);
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        self.raw(request).await
    }

    pub async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20).await.unwrap().to_vec();
        Reply { status, headers, body }
    }

    pub async fn get(&self, b: &Browser, path: &str) -> Reply {
        self.send(b, Method::GET, path, None).await
    }

    pub async fn post(&self, b: &Browser, path: &str, body: Value) -> Reply {
        self.send(b, Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, b: &Browser, path: &str) -> Reply {
        self.send(b, Method::DELETE, path, None).await
    }

    /// Every message the SMS file provider wrote: (to, text).
    pub fn messages(&self) -> Vec<(String, String)> {
        let Ok(text) = std::fs::read_to_string(&self.outbox) else { return Vec::new() };
        text.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["to"].as_str().unwrap().to_owned(), v["text"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// The six digits of the last code sent to `phone`.
    pub fn last_code(&self, phone: &str) -> String {
        let (_, text) = self.messages().into_iter().rev().find(|(to, _)| to == phone).expect("a code was sent");
        let start = text.find(|c: char| c.is_ascii_digit()).unwrap();
        text[start..start + 6].to_owned()
    }

    pub async fn request_code(&self, b: &Browser, phone: &str) -> Reply {
        self.post(b, "/api/v1/auth/otp", json!({ "phone": phone })).await
    }

    /// Logs in (a code, then the login); the browser keeps the cookies.
    pub async fn login(&self, phone: &str) -> Browser {
        let mut b = Browser::default();
        assert_eq!(self.request_code(&b, phone).await.status, StatusCode::ACCEPTED);
        let code = self.last_code(phone);
        let reply = self.post(&b, "/api/v1/auth/login", json!({ "phone": phone, "code": code })).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        take_cookies(&mut b, &reply);
        b
    }

    /// Logs in and consents.
    pub async fn patient(&self, phone: &str) -> Browser {
        let b = self.login(phone).await;
        let version = cloudfilm_core::consent::POLICY_VERSION;
        let reply =
            self.post(&b, "/api/v1/me/consents", json!({ "policy_version": version, "health_data": true })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        b
    }

    /// Confirms the session with a fresh step-up code (a minute after the last code).
    pub async fn step_up(&self, b: &mut Browser) {
        self.advance(Duration::seconds(60));
        let sent = self.post(b, "/api/v1/auth/step-up/otp", json!({})).await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
        let code = self.last_code(PHONE_A);
        let stepped = self.post(b, "/api/v1/auth/step-up", json!({ "code": code })).await;
        assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.text());
        take_cookies(b, &stepped);
    }

    pub async fn add_member(&self, b: &Browser, name: &str, id: &str, relation: &str) -> Reply {
        self.post(b, "/api/v1/members", json!({ "name": name, "id_number": id, "relation": relation })).await
    }

    /// Adds a member and answers its id.
    pub async fn member(&self, b: &Browser, name: &str, id: &str, relation: &str) -> String {
        let reply = self.add_member(b, name, id, relation).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json()["id"].as_str().unwrap().to_owned()
    }

    pub async fn org(&self, code: &str, name: &str, cloud_film: bool) -> Org {
        let switches = OrgSwitches { cloud_film_enabled: cloud_film, download_enabled: true };
        self.archive.create_org(&OrgCode::parse(code).unwrap(), name, switches, "test").await.unwrap()
    }

    pub async fn set_cloud_film(&self, org: &Org, on: bool) {
        self.archive.set_org_switches(&org.code, Some(on), None, "test").await.unwrap();
    }

    /// Stores a small synthetic study of `patient` at `org`.
    pub async fn study(&self, org: &Org, seed: u64, patient: &SynthPatient, accession: &str, date: &str) {
        self.store(org, synth::generate_study(&spec(org, seed, patient, accession, date))).await;
    }

    /// Stores Part-10 files as the organization's, all of which must be new.
    pub async fn store(&self, org: &Org, files: Vec<Vec<u8>>) {
        let mut received = Vec::new();
        for bytes in files {
            received.push(ingest::receive_bytes(&self.archive, &bytes).await);
        }
        let context = ImportContext { actor: "test".into(), interface: "test".into(), ..Default::default() };
        let results = ingest::commit(&self.archive, org.id, received, None, context).await.unwrap();
        assert!(results.iter().all(|r| r.disposition == ingest::Disposition::Stored));
    }

    /// A patient (phone A) whose "self" member is matched to one CT study at H1 (download on
    /// or off): the browser and the exam id.
    pub async fn matched_exam(&self, download: bool) -> (Browser, String, Org) {
        let h1 = self.org("H1", "协和医院", true).await;
        if !download {
            self.archive.set_org_switches(&h1.code, None, Some(false), "test").await.unwrap();
        }
        self.study(&h1, 1, &person("ZHANG^SAN=张^三", "MRN-1", ID_A, PHONE_A), "ACC-1", "20260105").await;
        let b = self.patient(PHONE_A).await;
        let me = self.member(&b, "张三", ID_A, "self").await;
        let matched =
            self.post(&b, &format!("/api/v1/members/{me}/match"), json!({ "accession_number": "ACC-1" })).await;
        assert_eq!(matched.status, StatusCode::OK, "{}", matched.text());
        let exam = matched.json()["matched"][0].as_str().unwrap().to_owned();
        (b, exam, h1)
    }

    /// The canonical text of every audit entry.
    pub async fn audit_text(&self) -> String {
        // What is committed but not yet sequenced (PostgreSQL) is waited for.
        self.archive.repo.settle_audit(std::time::Duration::from_secs(10)).await.unwrap();
        let entries = self.archive.repo.audit_entries(0, 100_000).await.unwrap();
        entries.iter().map(|e| e.canonical.clone()).collect::<Vec<_>>().join("\n")
    }
}

/// A small CT study (two slices) of `patient` at `org`.
pub fn spec(org: &Org, seed: u64, patient: &SynthPatient, accession: &str, date: &str) -> StudySpec {
    StudySpec {
        seed,
        patient: patient.clone(),
        accession_number: accession.into(),
        study_date: date.into(),
        study_time: "093000".into(),
        institution: org.name.clone(),
        description: format!("Exam {accession}"),
        series: vec![SeriesSpec { modality: Modality::Ct, slices: 2, description: "Axial".into() }],
    }
}

pub fn take_cookies(b: &mut Browser, reply: &Reply) {
    for value in reply.headers.get_all(header::SET_COOKIE) {
        let value = value.to_str().unwrap();
        let (pair, _) = value.split_once(';').unwrap_or((value, ""));
        let (name, v) = pair.split_once('=').unwrap();
        let v = (!v.is_empty()).then(|| v.to_owned());
        match name {
            "cf_session" => b.session = v,
            "cf_csrf" => b.csrf = v,
            "cf_share" => b.share = v,
            _ => {}
        }
    }
}

pub fn person(name: &str, patient_id: &str, resident_id: &str, phone: &str) -> SynthPatient {
    SynthPatient {
        name: name.into(),
        patient_id: patient_id.into(),
        resident_id: resident_id.into(),
        birth_date: resident_id.get(6..14).unwrap_or("").into(),
        sex: "M".into(),
        phone: phone.into(),
    }
}

/// The files of a zip by name.
pub fn unzip(body: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            (file.name().unwrap().into_owned(), bytes)
        })
        .collect()
}

/// Size and SHA-256 of every file of a package but the manifest and its signature.
pub fn digests(files: &BTreeMap<String, Vec<u8>>) -> cloudfilm_crypto::manifest::Digests {
    files
        .iter()
        .filter(|(name, _)| !name.starts_with("MANIFEST"))
        .map(|(name, f)| (name.clone(), (f.len() as u64, hex::encode(Sha256::digest(f)))))
        .collect()
}
