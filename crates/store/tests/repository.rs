//! The index end to end, one story run on every backend (SQLite and PostgreSQL): organizations,
//! keys, instances, queries through sealed fields, isolation between organizations, the audit
//! chain, and no personal value in what the database keeps.

use cloudfilm_audit::{Action, AuditEvent, Outcome, verify_log};
use cloudfilm_core::query::{Attr, Filter, Level, Matcher, Query};
use cloudfilm_core::{OrgCode, OrgSwitches};
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::signing::ArchiveSigner;
use cloudfilm_store::sealed::Sealer;
use cloudfilm_store::*;
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
enum Engine {
    Sqlite,
    Postgres,
}

struct Fixture {
    dir: tempfile::TempDir,
    repo: Index,
    signer: Arc<ArchiveSigner>,
    postgres: Option<scratch::ScratchDatabase>,
}

async fn fixture(engine: Engine) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::generate();
    let signer = Arc::new(ArchiveSigner::new(&ring));
    let sealer = Arc::new(Sealer::new(&ring).unwrap());
    let heads = dir.path().join("heads.jsonl");
    let (backend, postgres): (Arc<dyn backend::Backend>, _) = match engine {
        Engine::Sqlite => {
            let db = dir.path().join("index.db");
            (Arc::new(SqliteRepository::open(&db, sealer.clone(), signer.clone(), heads).await.unwrap()), None)
        }
        Engine::Postgres => {
            let db = scratch::ScratchDatabase::create().await;
            (
                Arc::new(
                    PgRepository::open(&db.url, sealer.clone(), signer.clone(), HeadsOutside::file(heads))
                        .await
                        .unwrap(),
                ),
                Some(db),
            )
        }
    };
    Fixture { dir, repo: Index::new(backend, sealer), signer, postgres }
}

/// Everything the database keeps, as bytes: its files, or a dump of the PostgreSQL database.
fn kept_bytes(f: &Fixture) -> Vec<Vec<u8>> {
    match &f.postgres {
        None => std::fs::read_dir(f.dir.path()).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect(),
        Some(db) => {
            let dump = std::process::Command::new("pg_dump").args(["--data-only", &db.url]).output().unwrap();
            assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
            vec![dump.stdout]
        }
    }
}

/// Each story runs on every backend.
macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $story() { super::$story(super::Engine::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $story() { super::$story(super::Engine::Postgres).await })*
        }
    };
}

on_every_backend!(
    organizations_and_keys,
    instances_queries_and_isolation,
    audit_chain_is_committed_with_its_effects_and_verifies
);

fn event(object: &str) -> AuditEvent {
    AuditEvent::new(Action::SecurityAttributesChanged, "cli:test", object, Outcome::Success)
}

async fn create_org(repo: &Index, code: &str) -> Org {
    let audit = vec![event(&format!("org:{code}"))];
    repo.create_org(OrgCode::parse(code).unwrap(), format!("{code} hospital"), OrgSwitches::default(), audit)
        .await
        .unwrap()
}

fn demo_instances(org_id: cloudfilm_core::OrgId, scale: f64) -> Vec<NewInstance> {
    let mut out = Vec::new();
    for spec in cloudfilm_dicom::synth::demo_studies(scale) {
        for bytes in cloudfilm_dicom::synth::generate_study(&spec) {
            let info = cloudfilm_dicom::inspect(&mut std::io::Cursor::new(&bytes)).unwrap();
            out.push(NewInstance {
                org_id,
                info,
                blob_id: cloudfilm_crypto::random::hex_id(),
                size: bytes.len() as u64,
                sha256: cloudfilm_crypto::sha256_hex(&bytes),
            });
        }
    }
    out
}

async fn store(repo: &Index, instances: Vec<NewInstance>) -> Vec<StoreOutcome> {
    let context = ImportContext { actor: "org:H1/key:test".into(), interface: "test".into(), ..Default::default() };
    repo.store_instances(instances, context).await.unwrap()
}

fn query(level: Level, filters: &[(Attr, &str)]) -> Query {
    let mut q = Query::new(level);
    for (attr, value) in filters {
        q.filters.push(Filter { attr: *attr, matcher: Matcher::parse(*attr, value).unwrap().unwrap() });
    }
    q
}

async fn organizations_and_keys(engine: Engine) {
    let f = fixture(engine).await;
    let org = create_org(&f.repo, "H1").await;
    assert!(org.switches.cloud_film_enabled && org.switches.download_enabled);
    let again = f.repo.create_org(org.code.clone(), "x".into(), OrgSwitches::default(), vec![]).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists(_))));
    let o = f.repo.set_org_switches(org.code.clone(), None, Some(false), vec![]).await.unwrap();
    assert!(o.switches.cloud_film_enabled && !o.switches.download_enabled);
    f.repo.create_api_key(org.id, "k1".into(), vec![1, 2], vec!["10.0.0.0/8".into()], vec![]).await.unwrap();
    let record = f.repo.api_key("k1").await.unwrap().unwrap();
    assert_eq!(record.org.code.as_str(), "H1");
    assert_eq!(record.allow, vec!["10.0.0.0/8"]);
    assert!(!record.revoked);
    f.repo.revoke_api_key("k1".into(), vec![]).await.unwrap();
    assert!(f.repo.api_key("k1").await.unwrap().unwrap().revoked);
    assert!(f.repo.api_key("nope").await.unwrap().is_none());
}

async fn instances_queries_and_isolation(engine: Engine) {
    let f = fixture(engine).await;
    let h1 = create_org(&f.repo, "H1").await;
    let h2 = create_org(&f.repo, "H2").await;
    let instances = demo_instances(h1.id, 0.1);
    let n = instances.len();
    let first = instances[0].clone();
    let blob_ids: Vec<String> = instances.iter().map(|i| i.blob_id.clone()).collect();
    assert!(store(&f.repo, instances).await.iter().all(|o| *o == StoreOutcome::Stored));

    // Recovery asks which objects of a listing page the index holds, in one query.
    let mut page = blob_ids.clone();
    page.push(cloudfilm_crypto::random::hex_id());
    let held = f.repo.blobs_referenced(&page).await.unwrap();
    assert_eq!(held, blob_ids.iter().cloned().collect(), "every stored blob, and not the stray one");
    assert!(f.repo.blobs_referenced(&[]).await.unwrap().is_empty());

    // The same bytes again are a duplicate; other bytes under the same UID a conflict.
    assert_eq!(store(&f.repo, vec![first.clone()]).await, vec![StoreOutcome::Duplicate]);
    let mut changed = first.clone();
    changed.sha256 = "0".repeat(64);
    assert_eq!(store(&f.repo, vec![changed]).await, vec![StoreOutcome::Conflict]);
    assert_eq!(f.repo.instance_digest(h1.id, &first.info.sop_instance_uid).await.unwrap(), Some(first.sha256.clone()));

    let studies = f.repo.query(h1.id, &Query::new(Level::Study)).await.unwrap();
    assert_eq!(studies.len(), 3);
    assert_eq!(studies[0].study.attrs.date.as_deref(), Some("20261101"), "newest first");
    assert_eq!(studies.iter().map(|s| s.study.num_instances).sum::<i64>() as usize, n);
    let mr = studies.iter().find(|s| s.study.modalities == vec!["MR"]).unwrap();
    assert_eq!(mr.study.num_series, 2);
    assert_eq!(mr.study.patient.name.as_deref(), Some("ZHANG^SAN=张^三"));
    assert_eq!(mr.study.patient.other_ids, vec!["11010519491231002X"]);

    for (filters, expected) in [
        (vec![(Attr::PatientName, "ZHANG*")], 3),
        (vec![(Attr::PatientName, "zhang^san")], 3),
        (vec![(Attr::PatientName, "张*")], 3),
        (vec![(Attr::PatientName, "*SAN*")], 3),
        (vec![(Attr::PatientName, "LI*")], 0),
        (vec![(Attr::PatientName, "san")], 3),
        (vec![(Attr::PatientName, "san*")], 3),
        (vec![(Attr::PatientName, "三")], 3),
        (vec![(Attr::PatientID, "mrn0001234")], 0),
        (vec![(Attr::PatientID, "MRN0001234")], 3),
        (vec![(Attr::PatientID, "MRN000123")], 0),
        (vec![(Attr::PatientID, "MRN*")], 3),
        (vec![(Attr::OtherPatientIDs, "11010519491231002X")], 3),
        (vec![(Attr::PatientTelephoneNumbers, "13800138000")], 3),
        (vec![(Attr::PatientBirthDate, "19491231")], 3),
        (vec![(Attr::PatientBirthDate, "19500101-")], 0),
        (vec![(Attr::StudyDate, "20261001-20261031")], 1),
        (vec![(Attr::StudyDate, "20261101")], 1),
        (vec![(Attr::StudyTime, "09-10")], 3),
        (vec![(Attr::StudyTime, "10-")], 0),
        (vec![(Attr::AccessionNumber, "CR20260920003")], 1),
        (vec![(Attr::ModalitiesInStudy, "MR")], 1),
        (vec![(Attr::ModalitiesInStudy, "CT\\CR")], 2),
        (vec![(Attr::StudyDescription, "*CHEST*")], 2),
        (vec![(Attr::PatientName, "ZHANG*"), (Attr::StudyDate, "20261015")], 1),
    ] {
        let rows = f.repo.query(h1.id, &query(Level::Study, &filters)).await.unwrap();
        assert_eq!(rows.len(), expected, "{filters:?}");
    }

    // Searches through a blind-index token (walked in date order) list and page like the rest.
    let uids = |rows: &[ResultRow]| rows.iter().map(|r| r.study.study_uid.clone()).collect::<Vec<_>>();
    for filters in [vec![(Attr::PatientName, "ZHANG*")], vec![(Attr::PatientID, "MRN0001234")]] {
        let rows = f.repo.query(h1.id, &query(Level::Study, &filters)).await.unwrap();
        assert_eq!(uids(&rows), uids(&studies), "{filters:?}: newest first");
        let mut paged = query(Level::Study, &filters);
        paged.limit = 1;
        paged.offset = 1;
        assert_eq!(uids(&f.repo.query(h1.id, &paged).await.unwrap()), uids(&studies[1..2]), "{filters:?}");
        let series = f.repo.query(h1.id, &query(Level::Series, &filters)).await.unwrap();
        assert_eq!(series.len() as i64, studies.iter().map(|s| s.study.num_series).sum::<i64>(), "{filters:?}");
    }

    let mut paged = Query::new(Level::Study);
    paged.limit = 1;
    paged.offset = 1;
    let page = f.repo.query(h1.id, &paged).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].study.study_uid, studies[1].study.study_uid);
    let mut paged = query(Level::Study, &[(Attr::PatientName, "*SAN")]);
    paged.limit = 2;
    paged.offset = 2;
    assert_eq!(f.repo.query(h1.id, &paged).await.unwrap().len(), 1, "paging after decryption filters");

    let series = f.repo.query(h1.id, &query(Level::Series, &[(Attr::Modality, "MR")])).await.unwrap();
    assert_eq!(series.len(), 2);
    let mut in_study = Query::new(Level::Instance);
    in_study.study_uid = Some(mr.study.study_uid.clone());
    in_study.series_uid = Some(series[0].series.as_ref().unwrap().series_uid.clone());
    let instances = f.repo.query(h1.id, &in_study).await.unwrap();
    assert_eq!(instances.len() as i64, series[0].series.as_ref().unwrap().num_instances);
    assert_eq!(instances[0].instance.as_ref().unwrap().attrs.number, Some(1));
    let rows = f.repo.instances(h1.id, &mr.study.study_uid, None, None).await.unwrap();
    assert_eq!(rows.len() as i64, mr.study.num_instances);

    // Another organization sees none of it.
    assert!(f.repo.query(h2.id, &Query::new(Level::Study)).await.unwrap().is_empty());
    assert!(f.repo.query(h2.id, &query(Level::Study, &[(Attr::PatientName, "ZHANG*")])).await.unwrap().is_empty());
    assert!(f.repo.instances(h2.id, &mr.study.study_uid, None, None).await.unwrap().is_empty());
    assert_eq!(f.repo.instance_digest(h2.id, &first.info.sop_instance_uid).await.unwrap(), None);

    // Nothing personal in the database files.
    f.repo.close().await;
    for bytes in kept_bytes(&f) {
        for needle in ["ZHANG^SAN", "张^三", "11010519491231002X", "13800138000", "MRN0001234", "19491231"] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} found on disk");
        }
    }
}

async fn audit_chain_is_committed_with_its_effects_and_verifies(engine: Engine) {
    let f = fixture(engine).await;
    create_org(&f.repo, "H1").await;
    let writes = (0..20).map(|i| f.repo.audit(vec![event(&format!("study:1.2.{i}"))]));
    for r in futures::future::join_all(writes).await {
        r.unwrap();
    }
    // A failing job leaves no audit entry behind.
    assert!(f.repo.revoke_api_key("missing".into(), vec![event("key:missing")]).await.is_err());
    // Stored instances are audited per study with their real outcome.
    let h1 = f.repo.org_by_code(&OrgCode::parse("H1").unwrap()).await.unwrap().unwrap();
    let mut instances = demo_instances(h1.id, 0.05);
    instances.truncate(2);
    instances.push(instances[0].clone());
    store(&f.repo, instances).await;
    let head = f.repo.sign_audit_head().await.unwrap().unwrap();
    assert_eq!(head.tree_size, 22);
    // What operators watch: the chain's length and its newest signed head.
    let state = f.repo.audit_state().await.unwrap();
    assert_eq!((state.entries, state.newest_head.map(|h| h.tree_size)), (22, Some(22)));
    let entries = f.repo.audit_entries(0, 1000).await.unwrap();
    assert_eq!(entries.len(), 22);
    let import = &entries[21].canonical;
    assert!(import.contains(r#""event_id":"110107""#) && import.contains("stored 2, duplicate 1"), "{import}");
    let heads = cloudfilm_store::heads::read_all(&f.dir.path().join("heads.jsonl")).unwrap();
    let report = verify_log(entries, &heads, &f.signer.public_key()).unwrap();
    assert_eq!(report.entries, 22);
    assert!(f.repo.sign_audit_head().await.unwrap().is_none(), "no new head without new entries");
}
