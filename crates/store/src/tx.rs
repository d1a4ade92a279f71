//! What a database transaction must offer the rules: typed primitives, one trait per area,
//! each a few lines of SQL in every backend. No decision is taken behind them: the service
//! layer (`crate::service`) reads, decides with the rules of `core`, and writes through them.
//!
//! Rules that must not race take [`Tx::lock`] on the keys they decide upon first: with one
//! writer (SQLite) that costs nothing; with several nodes (PostgreSQL) it is a transaction
//! lock, so two requests about the same code, share or link arriving at two nodes at the
//! same moment are decided one after the other, each seeing what the other committed.

use crate::error::Result;
use crate::model::{NewInstance, Org};
use crate::patients::{DataRequest, NewMember, NewSession};
use crate::sealed::SealedPatient;
use crate::sharing::{Access, DownloadRow, NewDownload, NewShare, ShareRow, Transfer};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudfilm_core::{AccountId, MemberId, OrgId, StudyPk};
use cloudfilm_core::{AeTitle, OrgCode, OrgSwitches};

/// The latest one-time code of a phone (or of a member) and purpose.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub id: i64,
    pub code_hash: Vec<u8>,
    pub sent_at: DateTime<Utc>,
    pub wrong_attempts: u32,
    pub used: bool,
}

#[async_trait]
pub trait ArchiveTx: Send {
    /// Inserts an organization; false when its code is taken.
    async fn insert_org(&mut self, code: &OrgCode, name: &str, switches: OrgSwitches, at: &str) -> Result<bool>;
    async fn org_by_code(&mut self, code: &OrgCode) -> Result<Option<Org>>;
    /// Sets the switches given; false when no such organization.
    async fn set_org_switches(
        &mut self,
        code: &OrgCode,
        cloud_film: Option<bool>,
        download: Option<bool>,
        at: &str,
    ) -> Result<bool>;
    async fn insert_api_key(
        &mut self,
        org_id: OrgId,
        key_id: &str,
        secret_hash: &[u8],
        allow: &str,
        at: &str,
    ) -> Result<()>;
    /// False when no such live key.
    async fn revoke_api_key(&mut self, key_id: &str, at: &str) -> Result<bool>;
    /// False when the title is taken.
    async fn insert_ae(
        &mut self,
        org_id: OrgId,
        title: &AeTitle,
        host: Option<&str>,
        port: Option<u16>,
        certificate: Option<&str>,
        at: &str,
    ) -> Result<bool>;
    async fn delete_ae(&mut self, title: &AeTitle) -> Result<bool>;

    /// The SHA-256 of the instance stored under this SOP Instance UID.
    async fn instance_digest(&mut self, org_id: OrgId, sop_uid: &str) -> Result<Option<String>>;
    async fn study_pk(&mut self, org_id: OrgId, study_uid: &str) -> Result<Option<StudyPk>>;
    async fn insert_study(
        &mut self,
        new: &NewInstance,
        sealed: &SealedPatient,
        exam_id: &str,
        at: &str,
    ) -> Result<StudyPk>;
    async fn insert_study_token(&mut self, kind: i64, token: &[u8], new: &NewInstance, study_pk: StudyPk)
    -> Result<()>;
    async fn series_pk(&mut self, study_pk: StudyPk, series_uid: &str) -> Result<Option<i64>>;
    async fn insert_series(&mut self, study_pk: StudyPk, new: &NewInstance) -> Result<i64>;
    async fn insert_instance(&mut self, new: &NewInstance, study_pk: StudyPk, series_pk: i64, at: &str) -> Result<()>;
    /// One more instance in the series and the study (and one more series when it is new).
    async fn count_instance(&mut self, study_pk: StudyPk, series_pk: i64, new_series: bool) -> Result<()>;
    async fn study_modalities(&mut self, study_pk: StudyPk) -> Result<String>;
    async fn set_study_modalities(&mut self, study_pk: StudyPk, modalities: &str) -> Result<()>;
}

#[async_trait]
pub trait PatientTx: Send {
    async fn last_code_sent(&mut self, phone_token: &[u8]) -> Result<Option<DateTime<Utc>>>;
    async fn codes_sent_since(&mut self, phone_token: &[u8], since: DateTime<Utc>) -> Result<u32>;
    async fn insert_code(
        &mut self,
        phone_token: &[u8],
        purpose: &str,
        code_hash: &[u8],
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn latest_code(&mut self, phone_token: &[u8], purpose: &str) -> Result<Option<CodeRow>>;
    async fn mark_code_used(&mut self, id: i64, at: DateTime<Utc>) -> Result<()>;
    async fn count_wrong_code(&mut self, id: i64) -> Result<()>;

    /// Events in a rate-limit bucket after `since`.
    async fn events_since(&mut self, bucket: &[u8], since: DateTime<Utc>) -> Result<u32>;
    async fn count_event(&mut self, bucket: &[u8], at: DateTime<Utc>) -> Result<()>;

    async fn account_by_phone(&mut self, phone_token: &[u8]) -> Result<Option<AccountId>>;
    async fn insert_account(
        &mut self,
        id: &AccountId,
        phone_token: &[u8],
        sealed_phone: &[u8],
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn insert_session(
        &mut self,
        account_id: &AccountId,
        session: &NewSession,
        at: DateTime<Utc>,
        step_up_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
    async fn revoke_session(&mut self, token_hash: &[u8], at: DateTime<Utc>) -> Result<()>;
    async fn touch_session(&mut self, token_hash: &[u8], at: DateTime<Utc>) -> Result<()>;
    async fn insert_consent(
        &mut self,
        account_id: &AccountId,
        kind: &str,
        policy_version: &str,
        granted: bool,
        at: DateTime<Utc>,
    ) -> Result<()>;

    async fn has_member(&mut self, account_id: &AccountId, id_token: &[u8]) -> Result<bool>;
    async fn has_self_member(&mut self, account_id: &AccountId) -> Result<bool>;
    /// Whether this resident ID is the "self" member of any account.
    async fn is_self_anywhere(&mut self, id_token: &[u8]) -> Result<bool>;
    async fn insert_member(
        &mut self,
        account_id: &AccountId,
        member: &NewMember,
        sealed_name: &[u8],
        sealed_id_number: &[u8],
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn delete_member(&mut self, account_id: &AccountId, member_id: &MemberId) -> Result<bool>;
    async fn mark_matched(&mut self, member_id: &MemberId, study_pk: StudyPk, at: DateTime<Utc>) -> Result<()>;
    async fn stamp_consent_request(
        &mut self,
        account_id: &AccountId,
        member_id: &MemberId,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// The held adult's yes by the code sent to them (never on a "self" member).
    async fn consent_by_code(
        &mut self,
        account_id: &AccountId,
        member_id: &MemberId,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// The adult's own account grants or ends a holding of them by another account.
    async fn set_holding(
        &mut self,
        self_account_id: &AccountId,
        holder_member_id: &MemberId,
        grant: bool,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    async fn insert_data_request(&mut self, request: &DataRequest, sealed_detail: &[u8]) -> Result<()>;
    async fn insert_report(&mut self, study_pk: StudyPk, sealed_body: &[u8], at: DateTime<Utc>) -> Result<()>;
}

#[async_trait]
pub trait SharingTx: Send {
    async fn insert_share(&mut self, share: &NewShare, at: DateTime<Utc>) -> Result<()>;
    /// False when the account has no such share.
    async fn revoke_share(&mut self, account_id: &AccountId, share_id: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Ends the share's sessions at `at` at the latest.
    async fn end_share_sessions(&mut self, share_id: &str, at: DateTime<Utc>) -> Result<()>;
    async fn share(&mut self, share_id: &str) -> Result<Option<ShareRow>>;
    async fn insert_share_session(
        &mut self,
        token_hash: &[u8],
        share_id: &str,
        at: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> Result<()>;
    async fn count_share_view(&mut self, share_id: &str, at: DateTime<Utc>) -> Result<()>;
    async fn lock_share(&mut self, share_id: &str, until: DateTime<Utc>) -> Result<()>;
    async fn insert_download(&mut self, download: &NewDownload, at: DateTime<Utc>) -> Result<()>;
    /// A download link with its code's hash.
    async fn download(&mut self, download_id: &str) -> Result<Option<(DownloadRow, Vec<u8>)>>;
    async fn mark_download_used(&mut self, download_id: &str, at: DateTime<Utc>) -> Result<()>;
    async fn count_wrong_download_code(
        &mut self,
        download_id: &str,
        invalidates: bool,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// The name and code of the organization a study came from.
    async fn study_org(&mut self, study_pk: StudyPk) -> Result<Option<(String, String)>>;
    async fn insert_access(&mut self, line: &Access) -> Result<()>;
    async fn insert_transfer(&mut self, line: &Transfer) -> Result<()>;
}

/// One transaction of the index.
#[async_trait]
pub trait Tx: ArchiveTx + PatientTx + SharingTx {
    /// Holds these keys until the transaction ends (in a fixed order, whatever the order given).
    async fn lock(&mut self, keys: &mut [Vec<u8>]) -> Result<()>;
}
