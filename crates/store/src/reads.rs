//! What the index answers, one trait per area; every backend implements them with SQL only.

use crate::error::Result;
use crate::model::*;
use crate::patients::*;
use crate::sharing::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudfilm_audit::{SignedHead, StoredEntry};
use cloudfilm_core::query::Query;
use cloudfilm_core::{AccountId, MemberId, OrgId, StudyPk};
use cloudfilm_core::{AeTitle, OrgCode};
use std::collections::HashSet;

/// A page of the audit log: the entries after `$1`, at most `$2`, in order.
pub(crate) const AUDIT_PAGE: &str =
    "SELECT seq, canonical, leaf, chain FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";

/// An audit entry from a row of [`AUDIT_PAGE`], whichever the database.
pub(crate) fn stored_entry<'r, R>(r: &'r R) -> std::result::Result<StoredEntry, sqlx::Error>
where
    R: sqlx::Row,
    &'r str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredEntry {
        seq: r.try_get::<i64, _>("seq")? as u64,
        canonical: r.try_get("canonical")?,
        leaf: r.try_get("leaf")?,
        chain: r.try_get("chain")?,
    })
}

#[async_trait]
pub trait ArchiveReads: Send + Sync {
    async fn org_by_code(&self, code: &OrgCode) -> Result<Option<Org>>;
    async fn list_orgs(&self) -> Result<Vec<Org>>;
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>>;
    /// A registered DICOM node by its AE title.
    async fn application_entity(&self, title: &AeTitle) -> Result<Option<AeRecord>>;
    async fn application_entities(&self, org_id: OrgId) -> Result<Vec<AeRecord>>;

    /// The SHA-256 of an instance already stored under this SOP Instance UID.
    async fn instance_digest(&self, org_id: OrgId, sop_uid: &str) -> Result<Option<String>>;
    /// Which of these blobs an instance references (crash recovery).
    async fn blobs_referenced(&self, blob_ids: &[String]) -> Result<HashSet<String>>;

    /// QIDO-RS / C-FIND.
    async fn query(&self, org_id: OrgId, query: &Query) -> Result<Vec<ResultRow>>;
    /// The instances of a study, a series of it, or one instance, in series and instance order.
    async fn instances(
        &self,
        org_id: OrgId,
        study_uid: &str,
        series_uid: Option<&str>,
        sop_uid: Option<&str>,
    ) -> Result<Vec<InstanceRow>>;
}

#[async_trait]
pub trait AuditReads: Send + Sync {
    /// The audit log in order, `limit` entries after `after_seq`.
    async fn audit_entries(&self, after_seq: u64, limit: u32) -> Result<Vec<StoredEntry>>;
    /// The signed heads the database keeps (a copy of the heads file's, S26).
    async fn kept_audit_heads(&self) -> Result<Vec<SignedHead>>;
    /// How long the chain is and its newest signed head.
    async fn audit_state(&self) -> Result<AuditState>;
}

/// The audit chain's length and newest signed head (what operators watch).
#[derive(Debug, Clone)]
pub struct AuditState {
    pub entries: u64,
    pub newest_head: Option<SignedHead>,
}

#[async_trait]
pub trait PatientReads: Send + Sync {
    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>>;
    async fn account(&self, account_id: &AccountId) -> Result<Option<AccountRecord>>;
    async fn consents(&self, account_id: &AccountId) -> Result<Consents>;
    /// The account's members, the account holder first.
    async fn members(&self, account_id: &AccountId) -> Result<Vec<MemberRecord>>;
    /// Exams the account may see (through a matched member; of one member when given; one exam
    /// when `exam_id` is given), newest first, only of organizations whose service is on.
    async fn visible_exams(
        &self,
        account_id: &AccountId,
        member_id: Option<&MemberId>,
        exam_id: Option<&str>,
    ) -> Result<Vec<ExamRow>>;
    /// Accounts holding the adult whose own account this is (through its matched "self"
    /// member's resident ID), newest first; none without a matched "self" member.
    async fn holders(&self, account_id: &AccountId) -> Result<Vec<HolderRecord>>;
    /// The account whose matched "self" member has this resident ID token.
    async fn self_account_of(&self, id_token: &[u8]) -> Result<Option<AccountId>>;
    /// The members of an account through which this exam would be visible if each had the
    /// consent it needs (to tell 403 `member_consent_required` from 404; no exam data).
    async fn exam_members_ignoring_consent(&self, account_id: &AccountId, exam_id: &str) -> Result<Vec<MemberId>>;
    /// Studies (of organizations whose service is on) whose record carries this resident ID token.
    async fn match_candidates(&self, id_token: &[u8]) -> Result<Vec<MatchCandidate>>;
    async fn exam_series(&self, study_pk: StudyPk) -> Result<Vec<SeriesSummary>>;
    async fn reports(&self, study_pk: StudyPk) -> Result<Vec<ReportRecord>>;
    /// An organization's studies by Study Instance UID and/or accession number (at most 2).
    async fn org_studies(
        &self,
        org_id: OrgId,
        study_uid: Option<&str>,
        accession: Option<&str>,
    ) -> Result<Vec<StudyPk>>;
    /// Events counted in a rate-limit bucket after `since`.
    async fn count_events(&self, bucket: &[u8], since: DateTime<Utc>) -> Result<u32>;

    /// The account's data-subject requests, newest first.
    async fn data_requests(&self, account_id: &AccountId) -> Result<Vec<DataRequest>>;
}

#[async_trait]
pub trait SharingReads: Send + Sync {
    async fn share_by_token(&self, token_hash: &[u8]) -> Result<Option<ShareRow>>;
    /// The account's shares of one study, newest first.
    async fn shares(&self, account_id: &AccountId, study_pk: StudyPk) -> Result<Vec<ShareRow>>;
    /// A share-scoped session and its share.
    async fn share_session(&self, token_hash: &[u8]) -> Result<Option<ShareSessionRow>>;
    async fn download_by_token(&self, token_hash: &[u8]) -> Result<Option<DownloadRow>>;
    /// The account's access log, newest first.
    async fn access_log(&self, account_id: &AccountId, limit: u32) -> Result<Vec<Access>>;
    /// Transfers of the account's data to others, newest first.
    async fn transfers(&self, account_id: &AccountId, limit: u32) -> Result<Vec<Transfer>>;
}

/// Every read of the index.
pub trait Reads: ArchiveReads + AuditReads + PatientReads + SharingReads {}

impl<T: ArchiveReads + AuditReads + PatientReads + SharingReads> Reads for T {}
