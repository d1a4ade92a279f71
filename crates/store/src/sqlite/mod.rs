//! The SQLite repository: WAL, `synchronous=FULL`, one writer task that group-commits the jobs
//! of concurrent requests (with their audit events) in one transaction, and a pool of readers.

mod patient_reads;
mod patients;
mod query;
mod rows;
mod sharing;
mod sharing_reads;
mod signed_heads;
mod writer;

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::patients::*;
use crate::repo::Repository;
use crate::sealed::Sealer;
use crate::sharing::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudfilm_audit::{SignedHead, StoredEntry};
use cloudfilm_core::query::Query;
use cloudfilm_core::{AeTitle, OrgCode};
use cloudfilm_crypto::signing::ArchiveSigner;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Row};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const AE_BY_TITLE: &str = "SELECT a.ae_title, a.host, a.port, o.id, o.code, o.name, o.cloud_film_enabled, \
    o.download_enabled FROM application_entities a JOIN organizations o ON o.id = a.org_id WHERE a.ae_title = ?";
const AE_BY_ORG: &str = "SELECT a.ae_title, a.host, a.port, o.id, o.code, o.name, o.cloud_film_enabled, \
    o.download_enabled FROM application_entities a JOIN organizations o ON o.id = a.org_id WHERE a.org_id = ? \
    ORDER BY a.ae_title";

pub struct SqliteRepository {
    readers: SqlitePool,
    checkpointer: tokio::task::JoinHandle<()>,
    sealer: Arc<Sealer>,
    tx: mpsc::Sender<writer::Msg>,
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        .pragma("temp_store", "memory")
        .log_statements(tracing::log::LevelFilter::Trace)
}

const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Copies committed pages from the write-ahead log into the database file (as much as readers
/// allow) every `interval`, on its own connection, so that no commit waits for it.
async fn checkpoint_every(mut conn: sqlx::SqliteConnection, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "a checkpoint of the index log failed");
        }
    }
}

impl SqliteRepository {
    /// Opens (creating and migrating) the database at `path`; signed audit heads go to
    /// `heads_path`.
    pub async fn open(
        path: &Path,
        sealer: Arc<Sealer>,
        signer: Arc<ArchiveSigner>,
        heads_path: PathBuf,
    ) -> Result<SqliteRepository> {
        // The writer's commits do not copy the log into the database file themselves (a commit
        // that did waited for that copy and its sync): a checkpointer does, beside it.
        let mut conn = options(path).create_if_missing(true).pragma("wal_autocheckpoint", "0").connect().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
        // Readers are renewed every minute: a connection plans with the statistics it loaded
        // when it opened, and the writer refreshes them as the archive grows.
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .max_lifetime(Duration::from_secs(60))
            .connect_with(options(path).read_only(true))
            .await?;
        let tx = writer::spawn(conn, sealer.clone(), signer, heads_path).await?;
        let checkpointer = tokio::spawn(checkpoint_every(options(path).connect().await?, CHECKPOINT_INTERVAL));
        Ok(SqliteRepository { readers, checkpointer, sealer, tx })
    }

    async fn send<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Msg) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl Repository for SqliteRepository {
    async fn write(&self, job: WriteJob) -> Result<WriteResult> {
        self.send(|reply| writer::Msg::Job(job, reply)).await
    }

    async fn org_by_code(&self, code: &OrgCode) -> Result<Option<Org>> {
        let row = sqlx::query(rows::ORG_SELECT_BY_CODE).bind(code.as_str()).fetch_optional(&self.readers).await?;
        row.map(|r| rows::org(&r)).transpose()
    }

    async fn list_orgs(&self) -> Result<Vec<Org>> {
        let rows =
            sqlx::query("SELECT id, code, name, cloud_film_enabled, download_enabled FROM organizations ORDER BY code")
                .fetch_all(&self.readers)
                .await?;
        rows.iter().map(rows::org).collect()
    }

    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(
            "SELECT k.key_id, k.secret_hash, k.allow_cidrs, k.revoked_at, \
             o.id, o.code, o.name, o.cloud_film_enabled, o.download_enabled \
             FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_id = ?",
        )
        .bind(key_id)
        .fetch_optional(&self.readers)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let allow: String = r.try_get("allow_cidrs")?;
        Ok(Some(ApiKeyRecord {
            key_id: r.try_get("key_id")?,
            org: rows::org(&r)?,
            secret_hash: r.try_get("secret_hash")?,
            allow: serde_json::from_str(&allow).map_err(|e| StoreError::Database(e.to_string()))?,
            revoked: r.try_get::<Option<String>, _>("revoked_at")?.is_some(),
        }))
    }

    async fn application_entity(&self, title: &AeTitle) -> Result<Option<AeRecord>> {
        let row = sqlx::query(AE_BY_TITLE).bind(title.as_str()).fetch_optional(&self.readers).await?;
        row.map(|r| rows::application_entity(&r)).transpose()
    }

    async fn application_entities(&self, org_id: i64) -> Result<Vec<AeRecord>> {
        let rows = sqlx::query(AE_BY_ORG).bind(org_id).fetch_all(&self.readers).await?;
        rows.iter().map(rows::application_entity).collect()
    }

    async fn instance_digest(&self, org_id: i64, sop_uid: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT sha256 FROM instances WHERE org_id = ? AND sop_uid = ?")
            .bind(org_id)
            .bind(sop_uid)
            .fetch_optional(&self.readers)
            .await?)
    }

    async fn blob_referenced(&self, blob_id: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM instances WHERE blob_id = ?")
            .bind(blob_id)
            .fetch_optional(&self.readers)
            .await?;
        Ok(found.is_some())
    }

    async fn query(&self, org_id: i64, query: &Query) -> Result<Vec<ResultRow>> {
        query::run(&self.readers, &self.sealer, org_id, query).await
    }

    async fn instances(
        &self,
        org_id: i64,
        study_uid: &str,
        series_uid: Option<&str>,
        sop_uid: Option<&str>,
    ) -> Result<Vec<InstanceRow>> {
        query::instances(&self.readers, org_id, study_uid, series_uid, sop_uid).await
    }

    async fn audit_entries(&self, after_seq: u64, limit: u32) -> Result<Vec<StoredEntry>> {
        let rows = sqlx::query("SELECT seq, canonical, leaf, chain FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after_seq as i64)
            .bind(limit as i64)
            .fetch_all(&self.readers)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEntry {
                    seq: r.try_get::<i64, _>("seq")? as u64,
                    canonical: r.try_get("canonical")?,
                    leaf: r.try_get("leaf")?,
                    chain: r.try_get("chain")?,
                })
            })
            .collect()
    }

    async fn kept_audit_heads(&self) -> Result<Vec<SignedHead>> {
        signed_heads::kept_heads(&self.readers).await
    }

    async fn sign_audit_head(&self) -> Result<Option<SignedHead>> {
        self.send(writer::Msg::SignHead).await
    }

    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        patient_reads::session(&self.readers, token_hash).await
    }

    async fn account(&self, account_id: &str) -> Result<Option<AccountRecord>> {
        patient_reads::account(&self.readers, &self.sealer, account_id).await
    }

    async fn consents(&self, account_id: &str) -> Result<Consents> {
        patient_reads::consents(&self.readers, account_id).await
    }

    async fn members(&self, account_id: &str) -> Result<Vec<MemberRecord>> {
        patient_reads::members(&self.readers, &self.sealer, account_id).await
    }

    async fn visible_exams(
        &self,
        account_id: &str,
        member_id: Option<&str>,
        exam_id: Option<&str>,
    ) -> Result<Vec<ExamRow>> {
        patient_reads::visible_exams(&self.readers, account_id, member_id, exam_id).await
    }

    async fn holders(&self, account_id: &str) -> Result<Vec<HolderRecord>> {
        patient_reads::holders(&self.readers, &self.sealer, account_id).await
    }

    async fn self_account_of(&self, id_token: &[u8]) -> Result<Option<String>> {
        patient_reads::self_account_of(&self.readers, id_token).await
    }

    async fn exam_members_ignoring_consent(&self, account_id: &str, exam_id: &str) -> Result<Vec<String>> {
        patient_reads::exam_members_ignoring_consent(&self.readers, account_id, exam_id).await
    }

    async fn match_candidates(&self, id_token: &[u8]) -> Result<Vec<MatchCandidate>> {
        patient_reads::match_candidates(&self.readers, &self.sealer, id_token).await
    }

    async fn exam_series(&self, study_pk: i64) -> Result<Vec<SeriesSummary>> {
        patient_reads::exam_series(&self.readers, study_pk).await
    }

    async fn reports(&self, study_pk: i64) -> Result<Vec<ReportRecord>> {
        patient_reads::reports(&self.readers, &self.sealer, study_pk).await
    }

    async fn org_studies(&self, org_id: i64, study_uid: Option<&str>, accession: Option<&str>) -> Result<Vec<i64>> {
        patient_reads::org_studies(&self.readers, org_id, study_uid, accession).await
    }

    async fn count_events(&self, bucket: &[u8], since: DateTime<Utc>) -> Result<u32> {
        patient_reads::count_events(&self.readers, bucket, since).await
    }

    async fn data_requests(&self, account_id: &str) -> Result<Vec<DataRequest>> {
        patient_reads::data_requests(&self.readers, &self.sealer, account_id).await
    }

    async fn share_by_token(&self, token_hash: &[u8]) -> Result<Option<ShareRow>> {
        sharing_reads::share_by_token(&self.readers, token_hash).await
    }

    async fn shares(&self, account_id: &str, study_pk: i64) -> Result<Vec<ShareRow>> {
        sharing_reads::shares(&self.readers, account_id, study_pk).await
    }

    async fn share_session(&self, token_hash: &[u8]) -> Result<Option<ShareSessionRow>> {
        sharing_reads::share_session(&self.readers, token_hash).await
    }

    async fn download_by_token(&self, token_hash: &[u8]) -> Result<Option<DownloadRow>> {
        sharing_reads::download_by_token(&self.readers, token_hash).await
    }

    async fn access_log(&self, account_id: &str, limit: u32) -> Result<Vec<Access>> {
        sharing_reads::access_log(&self.readers, account_id, limit).await
    }

    async fn transfers(&self, account_id: &str, limit: u32) -> Result<Vec<Transfer>> {
        sharing_reads::transfers(&self.readers, account_id, limit).await
    }

    async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(writer::Msg::Close(reply)).await.is_ok() {
            let _ = rx.await;
        }
        self.readers.close().await;
        self.checkpointer.abort();
    }
}
