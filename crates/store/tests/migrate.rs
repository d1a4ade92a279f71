//! An embedded index copied into PostgreSQL answers the same, its audit chain verifies there,
//! and a copy run again (after a kill) adds nothing twice.

use cloudfilm_audit::verify_log;
use cloudfilm_core::query::{Level, Query};
use cloudfilm_core::{OrgCode, OrgSwitches};
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::signing::ArchiveSigner;
use cloudfilm_store::backend::Backend;
use cloudfilm_store::scratch::ScratchDatabase;
use cloudfilm_store::sealed::Sealer;
use cloudfilm_store::*;
use std::sync::Arc;

#[tokio::test]
async fn an_embedded_index_copied_to_postgres_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::generate();
    let signer = Arc::new(ArchiveSigner::new(&ring));
    let sealer = Arc::new(Sealer::new(&ring).unwrap());
    let db_path = dir.path().join("index.db");
    let source =
        SqliteRepository::open(&db_path, sealer.clone(), signer.clone(), dir.path().join("heads.jsonl")).await.unwrap();
    let source = Index::new(Arc::new(source), sealer.clone());
    let org = source
        .create_org(OrgCode::parse("H1").unwrap(), "H1 hospital".into(), OrgSwitches::default(), vec![])
        .await
        .unwrap();
    let mut instances = Vec::new();
    for spec in cloudfilm_dicom::synth::demo_studies(0.1) {
        for bytes in cloudfilm_dicom::synth::generate_study(&spec) {
            let info = cloudfilm_dicom::inspect(&mut std::io::Cursor::new(&bytes)).unwrap();
            instances.push(NewInstance {
                org_id: org.id,
                info,
                blob_id: cloudfilm_crypto::random::hex_id(),
                size: bytes.len() as u64,
                sha256: cloudfilm_crypto::sha256_hex(&bytes),
            });
        }
    }
    let context = ImportContext { actor: "cli:test".into(), interface: "test".into(), ..Default::default() };
    source.store_instances(instances, context).await.unwrap();
    source.sign_audit_head().await.unwrap().unwrap();
    let studies = source.query(org.id, &Query::new(Level::Study)).await.unwrap();
    let entries = source.audit_entries(0, 1000).await.unwrap();
    source.close().await;

    let target_db = ScratchDatabase::create().await;
    let open_target = || {
        PgRepository::open(
            &target_db.url,
            sealer.clone(),
            signer.clone(),
            HeadsOutside::file(dir.path().join("pg-heads.jsonl")),
        )
    };
    // Opening the target creates its schema.
    open_target().await.unwrap().close().await;
    let from = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display())).await.unwrap();
    let to = sqlx::PgPool::connect_with(postgres::options(&target_db.url).unwrap()).await.unwrap();
    for round in 0..2 {
        for table in migrate::TABLES {
            migrate::copy_table(&from, &to, table, |_| {}).await.unwrap();
            let (source_rows, target_rows) = migrate::counts(&from, &to, table).await.unwrap();
            assert_eq!(source_rows, target_rows, "{table} after round {round}");
        }
    }

    let target = Index::new(Arc::new(open_target().await.unwrap()), sealer);
    let copied = target.query(org.id, &Query::new(Level::Study)).await.unwrap();
    let uids = |rows: &[ResultRow]| {
        rows.iter().map(|r| (r.study.study_uid.clone(), r.study.patient.name.clone())).collect::<Vec<_>>()
    };
    assert_eq!(uids(&copied), uids(&studies), "the same studies, names opened with the same keys");
    let copied_entries = target.audit_entries(0, 1000).await.unwrap();
    assert_eq!(copied_entries.len(), entries.len());
    let heads = target.kept_audit_heads().await.unwrap();
    verify_log(copied_entries, &heads, &signer.public_key()).unwrap();
    // The archive goes on writing after the copied chain.
    let h2 = target.create_org(OrgCode::parse("H2").unwrap(), "H2".into(), OrgSwitches::default(), vec![]).await;
    assert!(h2.unwrap().id > org.id, "ids continue after the copied ones");
    target
        .audit(vec![cloudfilm_audit::AuditEvent::new(
            cloudfilm_audit::Action::AuditLogUsed,
            "cli:test",
            "audit-log",
            cloudfilm_audit::Outcome::Success,
        )])
        .await
        .unwrap();
    target.settle_audit(std::time::Duration::from_secs(10)).await.unwrap();
    target.sign_audit_head().await.unwrap().unwrap();
    let after = target.audit_entries(0, 1000).await.unwrap();
    assert_eq!(after.len(), entries.len() + 1);
    verify_log(after, &target.kept_audit_heads().await.unwrap(), &signer.public_key()).unwrap();
}
