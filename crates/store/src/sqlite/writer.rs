//! The single writer. Concurrent jobs are gathered into one `BEGIN IMMEDIATE` transaction (one
//! fsync for many requests), each job inside its own savepoint so that one failing job leaves
//! the others intact. Audit entries are appended to the chain in the same transaction as the
//! effect they record (S26). Signed tree heads are written every few seconds and at close.

use super::signed_heads::SignedHeads;
use crate::error::{Result, StoreError};
use crate::model::*;
use crate::sealed::Sealer;
use cloudfilm_audit::{AuditEvent, MerkleFrontier, SignedHead, chain_hash, leaf_hash};
use cloudfilm_core::instance::InstanceInfo;
use cloudfilm_crypto::signing::ArchiveSigner;
use sqlx::{Connection, Row, SqliteConnection};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub enum Msg {
    Job(WriteJob, oneshot::Sender<Result<WriteResult>>),
    SignHead(oneshot::Sender<Result<Option<SignedHead>>>),
    Close(oneshot::Sender<()>),
}

/// Jobs gathered into one transaction at most.
const MAX_BATCH: usize = 64;
/// How often a new signed head is written while entries keep arriving.
const HEAD_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
struct Chain {
    size: u64,
    link: [u8; 32],
    frontier: MerkleFrontier,
}

struct Writer {
    conn: SqliteConnection,
    sealer: Arc<Sealer>,
    signer: Arc<ArchiveSigner>,
    heads: SignedHeads,
    chain: Chain,
    /// Audit size when the planner's statistics were last refreshed.
    analyzed_at_size: u64,
}

pub async fn spawn(
    conn: SqliteConnection,
    sealer: Arc<Sealer>,
    signer: Arc<ArchiveSigner>,
    heads_path: PathBuf,
) -> Result<mpsc::Sender<Msg>> {
    let mut conn = conn;
    let heads = SignedHeads::load(&mut conn, heads_path).await?;
    let mut writer = Writer { conn, sealer, signer, heads, chain: Chain::default(), analyzed_at_size: 0 };
    writer.catch_up().await?;
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(writer.run(rx));
    Ok(tx)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut tick = tokio::time::interval(HEAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => msg,
                _ = tick.tick() => {
                    if let Err(e) = self.sign_head().await {
                        tracing::error!(error = %e, "could not sign an audit head");
                    }
                    if let Err(e) = self.refresh_statistics().await {
                        tracing::warn!(error = %e, "could not refresh the query planner's statistics");
                    }
                    continue;
                }
            };
            match msg {
                None => break,
                Some(Msg::SignHead(reply)) => {
                    let _ = reply.send(self.sign_head().await);
                }
                Some(Msg::Close(reply)) => {
                    if let Err(e) = self.sign_head().await {
                        tracing::error!(error = %e, "could not sign the last audit head");
                    }
                    let _ = reply.send(());
                    break;
                }
                Some(Msg::Job(job, reply)) => {
                    let mut batch = vec![(job, reply)];
                    let mut deferred = None;
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Msg::Job(job, reply)) => batch.push((job, reply)),
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_batch(batch).await;
                    match deferred {
                        Some(Msg::SignHead(reply)) => {
                            let _ = reply.send(self.sign_head().await);
                        }
                        Some(Msg::Close(reply)) => {
                            let _ = self.sign_head().await;
                            let _ = reply.send(());
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    async fn commit_batch(&mut self, batch: Vec<(WriteJob, oneshot::Sender<Result<WriteResult>>)>) {
        let before = self.chain.clone();
        let mut results: Vec<Result<WriteResult>> = Vec::with_capacity(batch.len());
        let begun = self.begin().await;
        if let Err(e) = begun {
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Database(e.to_string())));
            }
            return;
        }
        for (job, _) in &batch {
            results.push(self.apply_in_savepoint(job).await);
        }
        let committed = sqlx::query("COMMIT").execute(&mut self.conn).await;
        if let Err(e) = committed {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
            self.chain = before;
            let err = StoreError::from(e);
            tracing::error!(error = %err, "the index transaction did not commit");
            for (_, reply) in batch {
                let _ = reply.send(Err(clone_error(&err)));
            }
            return;
        }
        for ((_, reply), result) in batch.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }

    async fn begin(&mut self) -> Result<()> {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await?;
        if let Err(e) = self.catch_up().await {
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
            return Err(e);
        }
        Ok(())
    }

    async fn apply_in_savepoint(&mut self, job: &WriteJob) -> Result<WriteResult> {
        let before = self.chain.clone();
        sqlx::query("SAVEPOINT job").execute(&mut self.conn).await?;
        let result = match self.apply(&job.op).await {
            Ok((result, mut events)) => {
                events.extend(job.audit.iter().cloned());
                self.append_audit(&events).await.map(|_| result)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(result) => {
                sqlx::query("RELEASE job").execute(&mut self.conn).await?;
                Ok(result)
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO job").execute(&mut self.conn).await?;
                sqlx::query("RELEASE job").execute(&mut self.conn).await?;
                self.chain = before;
                Err(e)
            }
        }
    }

    /// Applies an operation; returns its result and the audit events it generates itself.
    async fn apply(&mut self, op: &WriteOp) -> Result<(WriteResult, Vec<AuditEvent>)> {
        let stamp = now();
        match op {
            WriteOp::Nothing => Ok((WriteResult::Done, Vec::new())),
            WriteOp::Patient(op) => super::patients::apply(&mut self.conn, &self.sealer, op).await,
            WriteOp::Sharing(op) => super::sharing::apply(&mut self.conn, op).await,
            WriteOp::CreateOrg { code, name, switches } => {
                let inserted = sqlx::query(
                    "INSERT INTO organizations (code, name, cloud_film_enabled, download_enabled, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
                )
                .bind(code.as_str())
                .bind(name)
                .bind(switches.cloud_film_enabled)
                .bind(switches.download_enabled)
                .bind(&stamp)
                .bind(&stamp)
                .execute(&mut self.conn)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists(format!("organization {code}")));
                }
                Ok((WriteResult::Org(self.org(code.as_str()).await?), Vec::new()))
            }
            WriteOp::SetOrgSwitches { code, cloud_film, download } => {
                let updated = sqlx::query(
                    "UPDATE organizations SET cloud_film_enabled = COALESCE(?, cloud_film_enabled), \
                     download_enabled = COALESCE(?, download_enabled), updated_at = ? WHERE code = ?",
                )
                .bind(cloud_film)
                .bind(download)
                .bind(&stamp)
                .bind(code.as_str())
                .execute(&mut self.conn)
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok((WriteResult::Org(self.org(code.as_str()).await?), Vec::new()))
            }
            WriteOp::CreateApiKey { org_id, key_id, secret_hash, allow } => {
                sqlx::query(
                    "INSERT INTO api_keys (key_id, org_id, secret_hash, allow_cidrs, created_at) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(key_id)
                .bind(org_id)
                .bind(secret_hash)
                .bind(serde_json::to_string(allow).expect("strings serialize"))
                .bind(&stamp)
                .execute(&mut self.conn)
                .await?;
                Ok((WriteResult::Done, Vec::new()))
            }
            WriteOp::RevokeApiKey { key_id } => {
                let updated = sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL")
                    .bind(&stamp)
                    .bind(key_id)
                    .execute(&mut self.conn)
                    .await?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok((WriteResult::Done, Vec::new()))
            }
            WriteOp::AddAe { org_id, title, host, port } => {
                let inserted = sqlx::query(
                    "INSERT INTO application_entities (ae_title, org_id, host, port, created_at) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (ae_title) DO NOTHING",
                )
                .bind(title.as_str())
                .bind(org_id)
                .bind(host)
                .bind(port.map(i64::from))
                .bind(&stamp)
                .execute(&mut self.conn)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::AlreadyExists(format!("AE title {title}")));
                }
                Ok((WriteResult::Done, Vec::new()))
            }
            WriteOp::RemoveAe { title } => {
                let deleted = sqlx::query("DELETE FROM application_entities WHERE ae_title = ?")
                    .bind(title.as_str())
                    .execute(&mut self.conn)
                    .await?;
                if deleted.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok((WriteResult::Done, Vec::new()))
            }
            WriteOp::StoreInstances { instances, context } => {
                let mut outcomes = Vec::with_capacity(instances.len());
                for instance in instances {
                    outcomes.push(self.store_instance(instance, &stamp).await?);
                }
                let events = import_events(instances, &outcomes, context);
                Ok((WriteResult::Instances(outcomes), events))
            }
        }
    }

    async fn org(&mut self, code: &str) -> Result<Org> {
        let row = sqlx::query(super::rows::ORG_SELECT_BY_CODE).bind(code).fetch_one(&mut self.conn).await?;
        super::rows::org(&row)
    }

    async fn store_instance(&mut self, new: &NewInstance, stamp: &str) -> Result<StoreOutcome> {
        let info: &InstanceInfo = &new.info;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT sha256 FROM instances WHERE org_id = ? AND sop_uid = ?")
                .bind(new.org_id)
                .bind(&info.sop_instance_uid)
                .fetch_optional(&mut self.conn)
                .await?;
        if let Some(sha) = existing {
            return Ok(if sha == new.sha256 { StoreOutcome::Duplicate } else { StoreOutcome::Conflict });
        }
        let study_pk = self.study_pk(new, stamp).await?;
        let (series_pk, new_series) = self.series_pk(study_pk, info).await?;
        let layout = info.layout.clone().unwrap_or(cloudfilm_core::instance::PixelLayout::None);
        sqlx::query(
            "INSERT INTO instances (org_id, study_pk, series_pk, sop_uid, sop_class_uid, instance_number, \
             number_of_frames, rows, columns, bits_allocated, samples_per_pixel, transfer_syntax, size, sha256, \
             blob_id, pixel_layout, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.org_id)
        .bind(study_pk)
        .bind(series_pk)
        .bind(&info.sop_instance_uid)
        .bind(&info.sop_class_uid)
        .bind(info.instance.number)
        .bind(i64::from(info.instance.frames))
        .bind(info.instance.rows.map(i64::from))
        .bind(info.instance.columns.map(i64::from))
        .bind(info.instance.bits_allocated.map(i64::from))
        .bind(info.instance.samples_per_pixel.map(i64::from))
        .bind(&info.transfer_syntax)
        .bind(new.size as i64)
        .bind(&new.sha256)
        .bind(&new.blob_id)
        .bind(serde_json::to_string(&layout).expect("layout serializes"))
        .bind(stamp)
        .execute(&mut self.conn)
        .await?;
        sqlx::query("UPDATE series SET num_instances = num_instances + 1 WHERE pk = ?")
            .bind(series_pk)
            .execute(&mut self.conn)
            .await?;
        sqlx::query("UPDATE studies SET num_instances = num_instances + 1, num_series = num_series + ? WHERE pk = ?")
            .bind(i64::from(new_series))
            .bind(study_pk)
            .execute(&mut self.conn)
            .await?;
        if let (true, Some(modality)) = (new_series, &info.series.modality) {
            let current: String = sqlx::query_scalar("SELECT modalities FROM studies WHERE pk = ?")
                .bind(study_pk)
                .fetch_one(&mut self.conn)
                .await?;
            if !current.split('\\').any(|m| m == modality) {
                let updated = if current.is_empty() { modality.clone() } else { format!("{current}\\{modality}") };
                sqlx::query("UPDATE studies SET modalities = ? WHERE pk = ?")
                    .bind(updated)
                    .bind(study_pk)
                    .execute(&mut self.conn)
                    .await?;
            }
        }
        Ok(StoreOutcome::Stored)
    }

    /// The study's row, created from this instance's attributes when it is the first.
    async fn study_pk(&mut self, new: &NewInstance, stamp: &str) -> Result<i64> {
        let info = &new.info;
        let found: Option<i64> = sqlx::query_scalar("SELECT pk FROM studies WHERE org_id = ? AND study_uid = ?")
            .bind(new.org_id)
            .bind(&info.study_uid)
            .fetch_optional(&mut self.conn)
            .await?;
        if let Some(pk) = found {
            return Ok(pk);
        }
        let sealed = self.sealer.seal_patient(&info.patient, &info.study.referring_physician_name);
        let pk: i64 = sqlx::query_scalar(
            "INSERT INTO studies (org_id, study_uid, study_date, study_time, accession_number, study_description, \
             study_id, institution_name, patient_sex, patient_name, patient_id, patient_birth_date, \
             other_patient_ids, patient_phones, referring_physician, created_at, exam_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING pk",
        )
        .bind(new.org_id)
        .bind(&info.study_uid)
        .bind(&info.study.date)
        .bind(&info.study.time)
        .bind(&info.study.accession_number)
        .bind(&info.study.description)
        .bind(&info.study.study_id)
        .bind(&info.study.institution_name)
        .bind(&info.patient.sex)
        .bind(sealed.name)
        .bind(sealed.id)
        .bind(sealed.birth_date)
        .bind(sealed.other_ids)
        .bind(sealed.phones)
        .bind(sealed.referring_physician)
        .bind(stamp)
        .bind(cloudfilm_crypto::random::hex_id())
        .fetch_one(&mut self.conn)
        .await?;
        for (kind, token) in self.sealer.patient_tokens(&info.patient) {
            sqlx::query(
                "INSERT OR IGNORE INTO study_tokens (kind, token, org_id, study_date, study_time, study_pk) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(kind as i64)
            .bind(token)
            .bind(new.org_id)
            .bind(info.study.date.as_deref().unwrap_or(""))
            .bind(info.study.time.as_deref().unwrap_or(""))
            .bind(pk)
            .execute(&mut self.conn)
            .await?;
        }
        Ok(pk)
    }

    async fn series_pk(&mut self, study_pk: i64, info: &InstanceInfo) -> Result<(i64, bool)> {
        let found: Option<i64> = sqlx::query_scalar("SELECT pk FROM series WHERE study_pk = ? AND series_uid = ?")
            .bind(study_pk)
            .bind(&info.series_uid)
            .fetch_optional(&mut self.conn)
            .await?;
        if let Some(pk) = found {
            return Ok((pk, false));
        }
        let s = &info.series;
        let pk: i64 = sqlx::query_scalar(
            "INSERT INTO series (study_pk, series_uid, modality, series_number, series_description, body_part, \
             series_date, series_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING pk",
        )
        .bind(study_pk)
        .bind(&info.series_uid)
        .bind(&s.modality)
        .bind(s.number)
        .bind(&s.description)
        .bind(&s.body_part)
        .bind(&s.date)
        .bind(&s.time)
        .fetch_one(&mut self.conn)
        .await?;
        Ok((pk, true))
    }

    async fn append_audit(&mut self, events: &[AuditEvent]) -> Result<()> {
        for event in events {
            let seq = self.chain.size + 1;
            let canonical = event.canonical(seq, &now());
            let leaf = leaf_hash(canonical.as_bytes());
            let link = chain_hash(&self.chain.link, &leaf);
            sqlx::query("INSERT INTO audit_log (seq, canonical, leaf, chain) VALUES (?, ?, ?, ?)")
                .bind(seq as i64)
                .bind(&canonical)
                .bind(&leaf[..])
                .bind(&link[..])
                .execute(&mut self.conn)
                .await?;
            self.chain.size = seq;
            self.chain.link = link;
            self.chain.frontier.push(leaf);
        }
        Ok(())
    }

    /// Brings the in-memory chain tail up to the database's (another process may have
    /// appended, e.g. `cloudfilm import` beside a running server).
    async fn catch_up(&mut self) -> Result<()> {
        let tail: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(&mut self.conn).await?;
        let tail = tail.unwrap_or(0) as u64;
        if tail == self.chain.size {
            self.heads.replayed_up_to(tail);
            return Ok(());
        }
        if tail < self.chain.size {
            self.chain = Chain::default();
        }
        let rows = sqlx::query("SELECT seq, leaf, chain FROM audit_log WHERE seq > ? ORDER BY seq")
            .bind(self.chain.size as i64)
            .fetch_all(&mut self.conn)
            .await?;
        for row in rows {
            let leaf: Vec<u8> = row.try_get("leaf")?;
            let link: Vec<u8> = row.try_get("chain")?;
            let leaf: [u8; 32] = leaf.try_into().map_err(|_| StoreError::Integrity)?;
            let link: [u8; 32] = link.try_into().map_err(|_| StoreError::Integrity)?;
            let expected = chain_hash(&self.chain.link, &leaf);
            self.chain.frontier.push(leaf);
            self.chain.link = link;
            self.chain.size = row.try_get::<i64, _>("seq")? as u64;
            self.heads.observe(self.chain.size, &link, &expected, &self.chain.frontier);
        }
        self.heads.replayed_up_to(self.chain.size);
        Ok(())
    }

    /// Refreshes SQLite's planner statistics (a sampled ANALYZE, tens of milliseconds even at
    /// 100 000 studies) whenever the archive has grown by a quarter since the last time:
    /// without them the planner may walk every instance of an organization to find one study.
    async fn refresh_statistics(&mut self) -> Result<()> {
        if self.chain.size < self.analyzed_at_size + self.analyzed_at_size / 4 + 200 {
            return Ok(());
        }
        sqlx::query("PRAGMA analysis_limit = 1000").execute(&mut self.conn).await?;
        sqlx::query("ANALYZE").execute(&mut self.conn).await?;
        self.analyzed_at_size = self.chain.size;
        Ok(())
    }

    async fn sign_head(&mut self) -> Result<Option<SignedHead>> {
        // Heads are signed over what is committed.
        if self.conn.ping().await.is_ok() {
            self.catch_up().await?;
        }
        if self.chain.size == 0 || self.chain.size <= self.heads.last_size() || !self.heads.may_sign() {
            return Ok(None);
        }
        let signer = self.signer.clone();
        let head = SignedHead::sign(self.chain.size, &self.chain.frontier.root(), &self.chain.link, &now(), |m| {
            signer.sign(m)
        });
        self.heads.keep(&mut self.conn, head.clone()).await?;
        Ok(Some(head))
    }
}

/// One import entry per study: how many instances were stored, already there, in conflict
/// (kept the first, S4) or refused.
fn import_events(instances: &[NewInstance], outcomes: &[StoreOutcome], context: &ImportContext) -> Vec<AuditEvent> {
    use cloudfilm_audit::{Action, Outcome};
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Tally {
        stored: usize,
        duplicate: usize,
        conflict: usize,
        rejected: Vec<String>,
    }
    let mut by_study: BTreeMap<String, Tally> = BTreeMap::new();
    for (instance, outcome) in instances.iter().zip(outcomes) {
        let tally = by_study.entry(instance.info.study_uid.clone()).or_default();
        match outcome {
            StoreOutcome::Stored => tally.stored += 1,
            StoreOutcome::Duplicate => tally.duplicate += 1,
            StoreOutcome::Conflict => tally.conflict += 1,
        }
    }
    for (study, reason) in &context.rejected {
        by_study.entry(study.clone().unwrap_or_else(|| "unknown".into())).or_default().rejected.push(reason.clone());
    }
    by_study
        .into_iter()
        .map(|(study, t)| {
            let failed = t.conflict + t.rejected.len();
            let detail = format!(
                "{}: stored {}, duplicate {}, conflict {}, rejected {}",
                context.interface,
                t.stored,
                t.duplicate,
                t.conflict,
                t.rejected.len()
            );
            let mut reasons: Vec<String> = t.rejected.clone();
            if t.conflict > 0 {
                reasons.push("same SOP Instance UID with different content: the first was kept".into());
            }
            reasons.dedup();
            let outcome = match (t.stored + t.duplicate, failed) {
                (_, 0) => Outcome::Success,
                (0, _) => Outcome::Failure(reasons.join("; ")),
                _ => Outcome::Partial(reasons.join("; ")),
            };
            AuditEvent::new(Action::Import, context.actor.clone(), format!("study:{study}"), outcome)
                .from_client(context.client_ip.clone(), context.request_id.clone())
                .with_detail(detail)
        })
        .collect()
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Full => StoreError::Full,
        other => StoreError::Database(other.to_string()),
    }
}
