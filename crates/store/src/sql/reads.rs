//! The reads of every area (`crate::reads`) in SQL, the same text for every backend; compiled
//! once per backend with its types. Readers use their own pool, never the writer's connection.

use super::{Db, Pool, patient_reads, query, rows, sharing_reads, signed_heads};
use crate::error::{Result, StoreError};
use crate::model::*;
use crate::patients::*;
use crate::reads::{ArchiveReads, AuditReads, AuditState, PatientReads, SharingReads};
use crate::sealed::Sealer;
use crate::sharing::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudfilm_audit::{SignedHead, StoredEntry};
use cloudfilm_core::query::Query;
use cloudfilm_core::{AccountId, MemberId, OrgId, StudyPk};
use cloudfilm_core::{AeTitle, OrgCode};
use sqlx::{QueryBuilder, Row};
use std::collections::HashSet;
use std::sync::Arc;

const AE_BY_TITLE: &str = "SELECT a.ae_title, a.host, a.port, a.certificate_sha256, o.id, o.code, o.name, o.cloud_film_enabled, \
    o.download_enabled FROM application_entities a JOIN organizations o ON o.id = a.org_id WHERE a.ae_title = $1";
const AE_BY_ORG: &str = "SELECT a.ae_title, a.host, a.port, a.certificate_sha256, o.id, o.code, o.name, o.cloud_film_enabled, \
    o.download_enabled FROM application_entities a JOIN organizations o ON o.id = a.org_id WHERE a.org_id = $1 \
    ORDER BY a.ae_title";

pub struct Readers {
    pub pool: Pool,
    pub sealer: Arc<Sealer>,
}

#[async_trait]
impl ArchiveReads for Readers {
    async fn org_by_code(&self, code: &OrgCode) -> Result<Option<Org>> {
        let row = sqlx::query(rows::ORG_SELECT_BY_CODE).bind(code.as_str()).fetch_optional(&self.pool).await?;
        row.map(|r| rows::org(&r)).transpose()
    }

    async fn list_orgs(&self) -> Result<Vec<Org>> {
        let rows =
            sqlx::query("SELECT id, code, name, cloud_film_enabled, download_enabled FROM organizations ORDER BY code")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(rows::org).collect()
    }

    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(
            "SELECT k.key_id, k.secret_hash, k.allow_cidrs, k.revoked_at, \
             o.id, o.code, o.name, o.cloud_film_enabled, o.download_enabled \
             FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
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
        let row = sqlx::query(AE_BY_TITLE).bind(title.as_str()).fetch_optional(&self.pool).await?;
        row.map(|r| rows::application_entity(&r)).transpose()
    }

    async fn application_entities(&self, org_id: OrgId) -> Result<Vec<AeRecord>> {
        let rows = sqlx::query(AE_BY_ORG).bind(org_id).fetch_all(&self.pool).await?;
        rows.iter().map(rows::application_entity).collect()
    }

    async fn instance_digest(&self, org_id: OrgId, sop_uid: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT sha256 FROM instances WHERE org_id = $1 AND sop_uid = $2")
            .bind(org_id)
            .bind(sop_uid)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn blobs_referenced(&self, blob_ids: &[String]) -> Result<HashSet<String>> {
        if blob_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let mut qb = QueryBuilder::<Db>::new("SELECT blob_id FROM instances WHERE blob_id IN (");
        let mut ids = qb.separated(", ");
        for id in blob_ids {
            ids.push_bind(id.clone());
        }
        qb.push(")");
        Ok(qb.build_query_scalar::<String>().fetch_all(&self.pool).await?.into_iter().collect())
    }

    async fn query(&self, org_id: OrgId, query: &Query) -> Result<Vec<ResultRow>> {
        query::run(&self.pool, &self.sealer, org_id, query).await
    }

    async fn instances(
        &self,
        org_id: OrgId,
        study_uid: &str,
        series_uid: Option<&str>,
        sop_uid: Option<&str>,
    ) -> Result<Vec<InstanceRow>> {
        query::instances(&self.pool, org_id, study_uid, series_uid, sop_uid).await
    }
}

#[async_trait]
impl AuditReads for Readers {
    async fn audit_entries(&self, after_seq: u64, limit: u32) -> Result<Vec<StoredEntry>> {
        let rows = sqlx::query(crate::reads::AUDIT_PAGE)
            .bind(after_seq as i64)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(crate::reads::stored_entry).collect::<std::result::Result<_, _>>()?)
    }

    async fn kept_audit_heads(&self) -> Result<Vec<SignedHead>> {
        signed_heads::kept_heads(&self.pool).await
    }

    async fn audit_state(&self) -> Result<AuditState> {
        let entries: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_log").fetch_one(&self.pool).await?;
        Ok(AuditState { entries: entries as u64, newest_head: signed_heads::newest_head(&self.pool).await? })
    }
}

#[async_trait]
impl PatientReads for Readers {
    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
        patient_reads::session(&self.pool, token_hash).await
    }

    async fn account(&self, account_id: &AccountId) -> Result<Option<AccountRecord>> {
        patient_reads::account(&self.pool, &self.sealer, account_id).await
    }

    async fn consents(&self, account_id: &AccountId) -> Result<Consents> {
        patient_reads::consents(&self.pool, account_id).await
    }

    async fn members(&self, account_id: &AccountId) -> Result<Vec<MemberRecord>> {
        patient_reads::members(&self.pool, &self.sealer, account_id).await
    }

    async fn visible_exams(
        &self,
        account_id: &AccountId,
        member_id: Option<&MemberId>,
        exam_id: Option<&str>,
    ) -> Result<Vec<ExamRow>> {
        patient_reads::visible_exams(&self.pool, account_id, member_id, exam_id).await
    }

    async fn holders(&self, account_id: &AccountId) -> Result<Vec<HolderRecord>> {
        patient_reads::holders(&self.pool, &self.sealer, account_id).await
    }

    async fn self_account_of(&self, id_token: &[u8]) -> Result<Option<AccountId>> {
        patient_reads::self_account_of(&self.pool, id_token).await
    }

    async fn exam_members_ignoring_consent(&self, account_id: &AccountId, exam_id: &str) -> Result<Vec<MemberId>> {
        patient_reads::exam_members_ignoring_consent(&self.pool, account_id, exam_id).await
    }

    async fn match_candidates(&self, id_token: &[u8]) -> Result<Vec<MatchCandidate>> {
        patient_reads::match_candidates(&self.pool, &self.sealer, id_token).await
    }

    async fn exam_series(&self, study_pk: StudyPk) -> Result<Vec<SeriesSummary>> {
        patient_reads::exam_series(&self.pool, study_pk).await
    }

    async fn reports(&self, study_pk: StudyPk) -> Result<Vec<ReportRecord>> {
        patient_reads::reports(&self.pool, &self.sealer, study_pk).await
    }

    async fn org_studies(
        &self,
        org_id: OrgId,
        study_uid: Option<&str>,
        accession: Option<&str>,
    ) -> Result<Vec<StudyPk>> {
        patient_reads::org_studies(&self.pool, org_id, study_uid, accession).await
    }

    async fn count_events(&self, bucket: &[u8], since: DateTime<Utc>) -> Result<u32> {
        patient_reads::count_events(&self.pool, bucket, since).await
    }

    async fn data_requests(&self, account_id: &AccountId) -> Result<Vec<DataRequest>> {
        patient_reads::data_requests(&self.pool, &self.sealer, account_id).await
    }
}

#[async_trait]
impl SharingReads for Readers {
    async fn share_by_token(&self, token_hash: &[u8]) -> Result<Option<ShareRow>> {
        sharing_reads::share_by_token(&self.pool, token_hash).await
    }

    async fn shares(&self, account_id: &AccountId, study_pk: StudyPk) -> Result<Vec<ShareRow>> {
        sharing_reads::shares(&self.pool, account_id, study_pk).await
    }

    async fn share_session(&self, token_hash: &[u8]) -> Result<Option<ShareSessionRow>> {
        sharing_reads::share_session(&self.pool, token_hash).await
    }

    async fn download_by_token(&self, token_hash: &[u8]) -> Result<Option<DownloadRow>> {
        sharing_reads::download_by_token(&self.pool, token_hash).await
    }

    async fn access_log(&self, account_id: &AccountId, limit: u32) -> Result<Vec<Access>> {
        sharing_reads::access_log(&self.pool, account_id, limit).await
    }

    async fn transfers(&self, account_id: &AccountId, limit: u32) -> Result<Vec<Transfer>> {
        sharing_reads::transfers(&self.pool, account_id, limit).await
    }
}
