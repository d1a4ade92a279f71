//! Several cloudfilm nodes on one PostgreSQL index: every single-use rule stays exact when the
//! attempts arrive at different nodes at the same moment (one-time codes, share passwords,
//! download codes, attempt limits), and the audit chain the nodes write together verifies.

use chrono::Utc;
use cloudfilm_audit::verify_log;
use cloudfilm_core::download::{DownloadPolicy, DownloadVerdict};
use cloudfilm_core::otp::{OtpPolicy, OtpPurpose};
use cloudfilm_core::share::{SharePolicy, UnlockVerdict};
use cloudfilm_core::{AccountId, MemberId, OrgCode, OrgSwitches, StudyPk};
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::signing::ArchiveSigner;
use cloudfilm_store::patients::*;
use cloudfilm_store::scratch::ScratchDatabase;
use cloudfilm_store::sealed::Sealer;
use cloudfilm_store::sharing::*;
use cloudfilm_store::*;
use futures::future::join_all;
use std::sync::Arc;

const NODES: usize = 3;

struct Cluster {
    nodes: Vec<Index>,
    signer: Arc<ArchiveSigner>,
    sealer: Arc<Sealer>,
    db: ScratchDatabase,
    /// The object store the nodes share, where the signed heads are kept too.
    blobs: Arc<dyn BlobStore>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// The heads every node kept outside the database (each node's file and the object store).
    async fn heads_outside(&self) -> Vec<cloudfilm_audit::SignedHead> {
        let mut heads = self.outside(0).read().await.unwrap();
        for i in 1..NODES {
            heads.extend(self.outside(i).read().await.unwrap());
        }
        heads.sort_by_key(|h| h.tree_size);
        heads.dedup();
        heads
    }

    fn outside(&self, node: usize) -> HeadsOutside {
        HeadsOutside::for_index(&self.db.url, self.dir.path().join(format!("heads-{node}.jsonl")), self.blobs.clone())
    }
}

/// Three nodes sharing one database, one object store and one key ring, each with its own
/// heads file.
async fn cluster() -> Cluster {
    let db = ScratchDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = cloudfilm_store::blobs::LocalBlobStore::open(&dir.path().join("blobs")).unwrap();
    let ring = KeyRing::generate();
    let signer = Arc::new(ArchiveSigner::new(&ring));
    let sealer = Arc::new(Sealer::new(&ring).unwrap());
    let mut c =
        Cluster { nodes: Vec::new(), signer: signer.clone(), sealer: sealer.clone(), db, blobs: Arc::new(store), dir };
    for i in 0..NODES {
        let repo = PgRepository::open(&c.db.url, sealer.clone(), signer.clone(), c.outside(i)).await.unwrap();
        c.nodes.push(Index::new(Arc::new(repo), sealer.clone()));
    }
    c
}

fn hash(what: &str) -> Vec<u8> {
    cloudfilm_crypto::sha256_hex(what.as_bytes()).into_bytes()
}

fn session(i: usize) -> NewSession {
    NewSession { token_hash: hash(&format!("session-{i}")), csrf_hash: hash(&format!("csrf-{i}")) }
}

fn login(phone: &str, code: &str, i: usize) -> Login {
    Login {
        phone_token: hash(phone),
        phone: phone.into(),
        code_hash: hash(code),
        // Each attempt from its own address: only the code's own limit is in play.
        ip_bucket: hash(&format!("ip-{phone}-{i}")),
        new_account_id: AccountId::new(cloudfilm_crypto::random::hex_id()),
        session: session(i),
        policy: OtpPolicy::default(),
        now: Utc::now(),
        ctx: AuditContext::default(),
    }
}

async fn issue(node: &Index, phone: &str, code: &str) {
    let op = IssueCode {
        phone_token: hash(phone),
        purpose: OtpPurpose::Login,
        code_hash: hash(code),
        ip_bucket: hash("issuer"),
        policy: OtpPolicy::default(),
        now: Utc::now(),
        ctx: AuditContext::default(),
    };
    node.issue_code(op).await.unwrap().unwrap();
}

/// An account (logged in with a code), one of its members and a study of an organization.
async fn patient_with_study(c: &Cluster) -> (AccountId, MemberId, StudyPk) {
    issue(&c.nodes[0], "13900000001", "111111").await;
    let CodeOutcome::Accepted { account_id, .. } = c.nodes[1].login(login("13900000001", "111111", 999)).await.unwrap()
    else {
        panic!("the right code logs in")
    };
    let org = c.nodes[0]
        .create_org(OrgCode::parse("H1").unwrap(), "H1 hospital".into(), OrgSwitches::default(), vec![])
        .await
        .unwrap();
    let spec = &cloudfilm_dicom::synth::demo_studies(0.05)[0];
    let bytes = &cloudfilm_dicom::synth::generate_study(spec)[0];
    let info = cloudfilm_dicom::inspect(&mut std::io::Cursor::new(bytes)).unwrap();
    let study_uid = info.study_uid.clone();
    let instance = NewInstance {
        org_id: org.id,
        info,
        blob_id: cloudfilm_crypto::random::hex_id(),
        size: bytes.len() as u64,
        sha256: cloudfilm_crypto::sha256_hex(bytes),
    };
    c.nodes[2].store_instances(vec![instance], ImportContext::default()).await.unwrap();
    let study_pk = c.nodes[0].org_studies(org.id, Some(&study_uid), None).await.unwrap()[0];
    let member = NewMember {
        id: MemberId::new(cloudfilm_crypto::random::hex_id()),
        relation: cloudfilm_core::member::Relation::Myself,
        name: "Member".into(),
        id_number: "110105194912310029".into(),
        id_token: hash("member-id"),
    };
    let member_id = member.id.clone();
    c.nodes[0].add_member(account_id.clone(), member, Utc::now(), vec![]).await.unwrap().unwrap();
    (account_id, member_id, study_pk)
}

#[tokio::test]
async fn wrong_codes_at_three_nodes_exhaust_the_code_exactly() {
    let c = cluster().await;
    issue(&c.nodes[0], "13800000000", "123456").await;
    let attempts = (0..12).map(|i| c.nodes[i % NODES].login(login("13800000000", "000000", i)));
    let outcomes: Vec<CodeOutcome> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let wrong = outcomes.iter().filter(|o| **o == CodeOutcome::Wrong).count();
    let exhausted = outcomes.iter().filter(|o| **o == CodeOutcome::Exhausted).count();
    assert_eq!((wrong, exhausted), (5, 7), "exactly five wrong tries count, whichever node: {outcomes:?}");
    let right = c.nodes[2].login(login("13800000000", "123456", 100)).await.unwrap();
    assert_eq!(right, CodeOutcome::Exhausted, "the right code no longer works");
}

#[tokio::test]
async fn wrong_share_passwords_at_three_nodes_lock_the_share_at_the_tenth() {
    let c = cluster().await;
    let (account_id, member_id, study_pk) = patient_with_study(&c).await;
    let share = NewShare {
        id: cloudfilm_crypto::random::hex_id(),
        token_hash: hash("share-token"),
        account_id,
        member_id,
        study_pk,
        password_hash: "unused: the caller checks the password".into(),
        deidentified: false,
        notify_owner: false,
        expires_at: Utc::now() + chrono::Duration::hours(24),
    };
    let share_id = share.id.clone();
    c.nodes[0].create_share(share, Utc::now(), vec![]).await.unwrap();
    let attempts = (0..15).map(|i| {
        c.nodes[i % NODES].unlock(Unlock {
            share_id: share_id.clone(),
            password_matches: false,
            ip_bucket: hash(&format!("share-ip-{i}")),
            session_token_hash: hash(&format!("share-session-{i}")),
            policy: SharePolicy::default(),
            now: Utc::now(),
            ctx: AuditContext::default(),
        })
    });
    let verdicts: Vec<UnlockVerdict> =
        join_all(attempts).await.into_iter().map(|r| r.unwrap().expect("the share exists").verdict).collect();
    let count = |f: &dyn Fn(&UnlockVerdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
    assert_eq!(count(&|v| *v == UnlockVerdict::Wrong { locks: false }), 9, "{verdicts:?}");
    assert_eq!(count(&|v| *v == UnlockVerdict::Wrong { locks: true }), 1, "{verdicts:?}");
    assert_eq!(count(&|v| matches!(v, UnlockVerdict::Locked { .. })), 5, "{verdicts:?}");
    let right = c.nodes[1]
        .unlock(Unlock {
            share_id,
            password_matches: true,
            ip_bucket: hash("share-ip-right"),
            session_token_hash: hash("share-session-right"),
            policy: SharePolicy::default(),
            now: Utc::now(),
            ctx: AuditContext::default(),
        })
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(right.verdict, UnlockVerdict::Locked { .. }), "locked even for the right password");
}

#[tokio::test]
async fn the_eleventh_wrong_download_code_at_any_node_ends_the_link() {
    let c = cluster().await;
    let (account_id, member_id, study_pk) = patient_with_study(&c).await;
    let download = NewDownload {
        id: cloudfilm_crypto::random::hex_id(),
        token_hash: hash("download-token"),
        account_id,
        member_id,
        study_pk,
        code_hash: hash("654321"),
    };
    let download_id = download.id.clone();
    c.nodes[0].create_download(download, Utc::now(), vec![]).await.unwrap();
    let try_code = |i: usize, code: &str| {
        c.nodes[i % NODES].try_download(TryDownload {
            download_id: download_id.clone(),
            code_hash: hash(code),
            ip_bucket: hash(&format!("download-ip-{i}")),
            policy: DownloadPolicy::default(),
            now: Utc::now(),
            ctx: AuditContext::default(),
        })
    };
    let verdicts: Vec<DownloadVerdict> = join_all((0..15).map(|i| try_code(i, "000000")))
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("the link exists").expect("no address limit"))
        .collect();
    let count = |v: DownloadVerdict| verdicts.iter().filter(|x| **x == v).count();
    assert_eq!(count(DownloadVerdict::Wrong { invalidates: false }), 10, "{verdicts:?}");
    assert_eq!(count(DownloadVerdict::Wrong { invalidates: true }), 1, "{verdicts:?}");
    assert_eq!(count(DownloadVerdict::Invalidated), 4, "{verdicts:?}");
    let right = try_code(20, "654321").await.unwrap().unwrap();
    assert_eq!(right, Some(DownloadVerdict::Invalidated), "the right code no longer opens the link");
}

#[tokio::test]
async fn attempt_limits_hold_across_nodes() {
    let c = cluster().await;
    let bucket = hash("match-attempts-of-one-account");
    let now = Utc::now();
    let since = now - chrono::Duration::hours(1);
    let attempts = (0..20).map(|i| c.nodes[i % NODES].take_attempt(vec![bucket.clone()], 5, since, now));
    let taken = join_all(attempts).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(taken, 5, "exactly the limit, however the attempts spread over the nodes");
}

#[tokio::test]
async fn the_chain_the_nodes_write_together_verifies() {
    let c = cluster().await;
    let writes = (0..60).map(|i| {
        let event = cloudfilm_audit::AuditEvent::new(
            cloudfilm_audit::Action::SecurityAttributesChanged,
            "cli:test",
            format!("object:{i}"),
            cloudfilm_audit::Outcome::Success,
        );
        c.nodes[i % NODES].audit(vec![event])
    });
    for r in join_all(writes).await {
        r.unwrap();
    }
    for node in &c.nodes {
        node.settle_audit(std::time::Duration::from_secs(10)).await.unwrap();
    }
    let entries = c.nodes[1].audit_entries(0, 1000).await.unwrap();
    assert_eq!(entries.len(), 60, "nothing lost");
    let mut objects: Vec<String> = entries.iter().map(|e| e.canonical.clone()).collect();
    objects.sort();
    objects.dedup();
    assert_eq!(objects.len(), 60, "nothing twice");
    // Whichever node is the sequencer signs; the heads it keeps check the chain.
    let mut heads = Vec::new();
    for node in &c.nodes {
        if let Some(head) = node.sign_audit_head().await.unwrap() {
            heads.push(head);
        }
    }
    // One sequencer signs: now, or already on its own every few seconds.
    assert!(heads.len() <= 1, "one sequencer in the cluster");
    let kept = c.nodes[2].kept_audit_heads().await.unwrap();
    assert_eq!(kept.last().map(|h| h.tree_size), Some(60), "a head covers the whole chain");
    let report = verify_log(entries, &kept, &c.signer.public_key()).unwrap();
    assert_eq!(report.entries, 60);
    drop(c.dir);
}

#[tokio::test]
async fn another_node_takes_the_sequencer_over_when_its_holder_goes() {
    let mut c = cluster().await;
    let event = |i: usize| {
        cloudfilm_audit::AuditEvent::new(
            cloudfilm_audit::Action::SecurityAttributesChanged,
            "cli:test",
            format!("object:{i}"),
            cloudfilm_audit::Outcome::Success,
        )
    };
    for i in 0..10 {
        c.nodes[0].audit(vec![event(i)]).await.unwrap();
    }
    c.nodes[0].settle_audit(std::time::Duration::from_secs(10)).await.unwrap();
    // The node holding the sequencer goes away without a word (its connection, and its lock,
    // end): the one whose sign answers, or, when a head covers all already, the first.
    let mut holder = 0;
    for (i, node) in c.nodes.iter().enumerate() {
        if node.sign_audit_head().await.unwrap().is_some() {
            holder = i;
        }
    }
    drop(c.nodes.remove(holder));
    for i in 10..20 {
        c.nodes[i % 2].audit(vec![event(i)]).await.unwrap();
    }
    for node in &c.nodes {
        node.settle_audit(std::time::Duration::from_secs(10)).await.unwrap();
    }
    let entries = c.nodes[0].audit_entries(0, 1000).await.unwrap();
    let objects: Vec<String> = entries
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.canonical).unwrap()["object"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(objects, (0..20).map(|i| format!("object:{i}")).collect::<Vec<_>>(), "in order, none lost");
    let mut signed = 0;
    for node in &c.nodes {
        signed += usize::from(node.sign_audit_head().await.unwrap().is_some());
    }
    assert!(signed <= 1, "one sequencer");
    let kept = c.nodes[1].kept_audit_heads().await.unwrap();
    assert_eq!(kept.last().map(|h| h.tree_size), Some(20), "a remaining node signed the whole chain");
    assert_eq!(verify_log(entries, &kept, &c.signer.public_key()).unwrap().entries, 20);
    // Every head either sequencer signed is in the object store, whichever node signed it.
    let in_store = c.outside(1).read().await.unwrap();
    for head in &kept {
        assert!(in_store.contains(head), "head of {} kept in the object store", head.tree_size);
    }
}

/// A database put back to an earlier state (a restored dump, a replica promoted behind) loses
/// the last entries and their heads; the heads in the object store still name them.
#[tokio::test]
async fn a_database_rolled_back_behind_a_head_kept_in_the_object_store_is_caught() {
    let c = cluster().await;
    for i in 0..12 {
        let event = cloudfilm_audit::AuditEvent::new(
            cloudfilm_audit::Action::SecurityAttributesChanged,
            "cli:test",
            format!("object:{i}"),
            cloudfilm_audit::Outcome::Success,
        );
        c.nodes[i % NODES].audit(vec![event]).await.unwrap();
    }
    c.nodes[0].settle_audit(std::time::Duration::from_secs(10)).await.unwrap();
    for node in &c.nodes {
        node.sign_audit_head().await.unwrap();
    }
    assert_eq!(c.heads_outside().await.last().map(|h| h.tree_size), Some(12));
    for node in &c.nodes {
        node.close().await;
    }
    // The rollback: the database as it was after 8 entries, its heads table with it.
    let pool = sqlx::PgPool::connect_with(cloudfilm_store::postgres::options(&c.db.url).unwrap()).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq > 8").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM audit_heads WHERE tree_size > 8").execute(&pool).await.unwrap();
    pool.close().await;
    // Each node's own file may lack the head (another node signed it): the store has it.
    for i in 0..NODES {
        std::fs::remove_file(c.dir.path().join(format!("heads-{i}.jsonl"))).ok();
    }

    let public_key = c.signer.public_key();
    let repo = PgRepository::open(&c.db.url, c.sealer.clone(), c.signer.clone(), c.outside(0)).await.unwrap();
    let node = Index::new(Arc::new(repo), c.sealer.clone());
    let outside = c.outside(0).read().await.unwrap();
    let kept = node.kept_audit_heads().await.unwrap();
    let heads = cloudfilm_audit::merge_heads(&outside, &kept, &public_key, true).unwrap();
    let entries = node.audit_entries(0, 1000).await.unwrap();
    let broken = verify_log(entries, &heads, &public_key).unwrap_err().to_string();
    assert!(broken.contains("12"), "names the head the log no longer reaches: {broken}");
    // Nor does the sequencer sign over the rolled-back chain.
    assert_eq!(node.sign_audit_head().await.unwrap(), None);
    node.close().await;
}
