//! The index as callers use it: typed writes by area, each one transaction of the backend
//! with the rules of `crate::service`, and the backend's reads.

use crate::backend::{Backend, Done};
use crate::error::Result;
use crate::model::*;
use crate::patients::*;
use crate::reads::Reads;
use crate::sealed::Sealer;
use crate::service::{archive, patients, sharing};
use crate::sharing::*;
use crate::tx::Tx;
use chrono::{DateTime, Utc};
use cloudfilm_audit::AuditEvent;
use cloudfilm_core::download::DownloadVerdict;
use cloudfilm_core::{AccountId, MemberId, OrgId, StudyPk};
use cloudfilm_core::{AeTitle, OrgCode, OrgSwitches};
use futures::future::BoxFuture;
use std::sync::Arc;

#[derive(Clone)]
pub struct Index {
    backend: Arc<dyn Backend>,
    sealer: Arc<Sealer>,
}

/// The reads of every area come straight from the backend.
impl std::ops::Deref for Index {
    type Target = dyn Reads;
    fn deref(&self) -> &Self::Target {
        self.backend.reads()
    }
}

fn stamp_now() -> String {
    cloudfilm_core::clock::stamp(Utc::now())
}

impl Index {
    pub fn new(backend: Arc<dyn Backend>, sealer: Arc<Sealer>) -> Index {
        Index { backend, sealer }
    }

    /// Runs `work` in one transaction; its audit entries commit with it.
    async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<(T, Vec<AuditEvent>)>> + Send + 'static,
    {
        let value = self
            .backend
            .transact(Box::new(move |tx| {
                Box::pin(async move {
                    let (value, audit) = work(tx).await?;
                    Ok(Done { value: Box::new(value), audit })
                })
            }))
            .await?;
        Ok(*value.downcast::<T>().expect("a transaction answers with its own work's value"))
    }

    /// Signs a head over the log as it stands (none while the log no longer extends the last
    /// head signed).
    pub async fn sign_audit_head(&self) -> Result<Option<cloudfilm_audit::SignedHead>> {
        self.backend.sign_audit_head().await
    }

    /// Waits (at most `within`) until every committed audit entry is in the chain.
    pub async fn settle_audit(&self, within: std::time::Duration) -> Result<()> {
        self.backend.settle_audit(within).await
    }

    /// Whether the database answers.
    pub async fn check(&self) -> Result<()> {
        self.backend.check().await
    }

    /// The connection pool and the write queue as they stand.
    pub fn pool_state(&self) -> crate::backend::PoolState {
        self.backend.pool_state()
    }

    /// Signs a last head and stops the backend.
    pub async fn close(&self) {
        self.backend.close().await
    }

    /// Audit entries alone (reads, refusals), durably.
    pub async fn audit(&self, events: Vec<AuditEvent>) -> Result<()> {
        self.run(move |_| Box::pin(async move { Ok(((), events)) })).await
    }

    // --- the archive ---

    pub async fn create_org(
        &self,
        code: OrgCode,
        name: String,
        switches: OrgSwitches,
        audit: Vec<AuditEvent>,
    ) -> Result<Org> {
        self.run(move |tx| {
            Box::pin(async move { Ok((archive::create_org(tx, &code, &name, switches, &stamp_now()).await?, audit)) })
        })
        .await
    }

    pub async fn set_org_switches(
        &self,
        code: OrgCode,
        cloud_film: Option<bool>,
        download: Option<bool>,
        audit: Vec<AuditEvent>,
    ) -> Result<Org> {
        self.run(move |tx| {
            Box::pin(async move {
                Ok((archive::set_org_switches(tx, &code, cloud_film, download, &stamp_now()).await?, audit))
            })
        })
        .await
    }

    pub async fn create_api_key(
        &self,
        org_id: OrgId,
        key_id: String,
        secret_hash: Vec<u8>,
        allow: Vec<String>,
        audit: Vec<AuditEvent>,
    ) -> Result<()> {
        let allow = serde_json::to_string(&allow).expect("strings serialize");
        self.run(move |tx| {
            Box::pin(async move {
                tx.insert_api_key(org_id, &key_id, &secret_hash, &allow, &stamp_now()).await?;
                Ok(((), audit))
            })
        })
        .await
    }

    pub async fn revoke_api_key(&self, key_id: String, audit: Vec<AuditEvent>) -> Result<()> {
        self.run(move |tx| {
            Box::pin(async move { Ok((archive::revoke_api_key(tx, &key_id, &stamp_now()).await?, audit)) })
        })
        .await
    }

    pub async fn add_ae(
        &self,
        org_id: OrgId,
        title: AeTitle,
        host: Option<String>,
        port: Option<u16>,
        certificate: Option<String>,
        audit: Vec<AuditEvent>,
    ) -> Result<()> {
        self.run(move |tx| {
            Box::pin(async move {
                let (host, certificate) = (host.as_deref(), certificate.as_deref());
                Ok((archive::add_ae(tx, org_id, &title, host, port, certificate, &stamp_now()).await?, audit))
            })
        })
        .await
    }

    pub async fn remove_ae(&self, title: AeTitle, audit: Vec<AuditEvent>) -> Result<()> {
        self.run(move |tx| Box::pin(async move { Ok((archive::remove_ae(tx, &title).await?, audit)) })).await
    }

    /// Indexes instances whose blobs are durable; one import audit entry per study touched.
    pub async fn store_instances(
        &self,
        instances: Vec<NewInstance>,
        context: ImportContext,
    ) -> Result<Vec<StoreOutcome>> {
        let sealer = self.sealer.clone();
        self.run(move |tx| {
            Box::pin(async move { archive::store_instances(tx, &sealer, &instances, &context, &stamp_now()).await })
        })
        .await
    }

    // --- the patient side ---

    pub async fn issue_code(&self, op: IssueCode) -> Result<CodeIssued> {
        self.run(move |tx| Box::pin(async move { patients::issue_code(tx, &op).await })).await
    }

    pub async fn login(&self, op: Login) -> Result<CodeOutcome> {
        let sealer = self.sealer.clone();
        self.run(move |tx| Box::pin(async move { patients::login(tx, &sealer, &op).await })).await
    }

    pub async fn step_up(&self, op: StepUp) -> Result<CodeOutcome> {
        self.run(move |tx| Box::pin(async move { patients::step_up(tx, &op).await })).await
    }

    pub async fn touch_session(&self, token_hash: Vec<u8>, now: DateTime<Utc>) -> Result<()> {
        self.run(move |tx| Box::pin(async move { Ok((tx.touch_session(&token_hash, now).await?, Vec::new())) })).await
    }

    pub async fn revoke_session(&self, token_hash: Vec<u8>, now: DateTime<Utc>, audit: Vec<AuditEvent>) -> Result<()> {
        self.run(move |tx| Box::pin(async move { Ok((tx.revoke_session(&token_hash, now).await?, audit)) })).await
    }

    pub async fn consent(&self, c: ConsentChange, audit: Vec<AuditEvent>) -> Result<()> {
        self.run(move |tx| {
            Box::pin(async move {
                tx.insert_consent(&c.account_id, &c.kind, &c.policy_version, c.granted, c.now).await?;
                Ok(((), audit))
            })
        })
        .await
    }

    pub async fn add_member(
        &self,
        account_id: AccountId,
        member: NewMember,
        now: DateTime<Utc>,
        audit: Vec<AuditEvent>,
    ) -> Result<Result<(), MemberConflict>> {
        let sealer = self.sealer.clone();
        self.run(move |tx| {
            Box::pin(async move {
                let added = patients::add_member(tx, &sealer, &account_id, &member, now).await?;
                let audit = if added.is_ok() { audit } else { Vec::new() };
                Ok((added, audit))
            })
        })
        .await
    }

    /// False when the account has no such member.
    pub async fn remove_member(
        &self,
        account_id: AccountId,
        member_id: MemberId,
        audit: Vec<AuditEvent>,
    ) -> Result<bool> {
        self.run(move |tx| {
            Box::pin(async move {
                let removed = tx.delete_member(&account_id, &member_id).await?;
                Ok((removed, if removed { audit } else { Vec::new() }))
            })
        })
        .await
    }

    pub async fn mark_matched(
        &self,
        member_id: MemberId,
        study_pk: StudyPk,
        now: DateTime<Utc>,
        audit: Vec<AuditEvent>,
    ) -> Result<()> {
        self.run(move |tx| Box::pin(async move { Ok((tx.mark_matched(&member_id, study_pk, now).await?, audit)) }))
            .await
    }

    pub async fn request_member_consent(&self, op: RequestMemberConsent) -> Result<Result<CodeIssued, MemberConflict>> {
        self.run(move |tx| Box::pin(async move { patients::request_member_consent(tx, &op).await })).await
    }

    pub async fn confirm_member_consent(&self, op: ConfirmMemberConsent) -> Result<CodeOutcome> {
        self.run(move |tx| Box::pin(async move { patients::confirm_member_consent(tx, &op).await })).await
    }

    pub async fn set_holding(&self, op: SetHolding, audit: Vec<AuditEvent>) -> Result<Result<(), MemberConflict>> {
        self.run(move |tx| {
            Box::pin(async move {
                let done = patients::set_holding(tx, &op).await?;
                Ok((done, if done.is_ok() { audit } else { Vec::new() }))
            })
        })
        .await
    }

    /// Counts one event toward each of these rate limits.
    pub async fn record_events(&self, buckets: Vec<Vec<u8>>, now: DateTime<Utc>, audit: Vec<AuditEvent>) -> Result<()> {
        self.run(move |tx| {
            Box::pin(async move {
                for bucket in &buckets {
                    tx.count_event(bucket, now).await?;
                }
                Ok(((), audit))
            })
        })
        .await
    }

    /// Counts one attempt in each bucket unless one of them already holds `limit` events after
    /// `since`; false (and nothing counted) when the limit is reached. Decided under a lock on
    /// the buckets, so that attempts at several nodes at once stay within the limit.
    pub async fn take_attempt(
        &self,
        buckets: Vec<Vec<u8>>,
        limit: u32,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.run(move |tx| {
            Box::pin(async move { Ok((patients::take_attempt(tx, buckets, limit, since, now).await?, Vec::new())) })
        })
        .await
    }

    /// A data-subject request, with its due date.
    pub async fn file_request(&self, request: DataRequest, audit: Vec<AuditEvent>) -> Result<()> {
        let detail = self.sealer.seal("request_detail", &Some(request.detail.clone())).unwrap_or_default();
        self.run(move |tx| Box::pin(async move { Ok((tx.insert_data_request(&request, &detail).await?, audit)) })).await
    }

    /// A hospital attached report text to one of its studies.
    pub async fn add_report(
        &self,
        study_pk: StudyPk,
        body: String,
        now: DateTime<Utc>,
        audit: Vec<AuditEvent>,
    ) -> Result<()> {
        let body = self.sealer.seal("report_body", &Some(body)).unwrap_or_default();
        self.run(move |tx| Box::pin(async move { Ok((tx.insert_report(study_pk, &body, now).await?, audit)) })).await
    }

    // --- shares and downloads ---

    pub async fn create_share(&self, share: NewShare, now: DateTime<Utc>, audit: Vec<AuditEvent>) -> Result<()> {
        self.run(move |tx| Box::pin(async move { Ok((tx.insert_share(&share, now).await?, audit)) })).await
    }

    /// Revokes one of the account's shares at once, with the sessions it opened; false when
    /// the account has no such share.
    pub async fn revoke_share(
        &self,
        account_id: AccountId,
        share_id: String,
        now: DateTime<Utc>,
        audit: Vec<AuditEvent>,
    ) -> Result<bool> {
        self.run(move |tx| {
            Box::pin(async move {
                if !tx.revoke_share(&account_id, &share_id, now).await? {
                    return Ok((false, Vec::new()));
                }
                tx.end_share_sessions(&share_id, now).await?;
                Ok((true, audit))
            })
        })
        .await
    }

    /// `None`: no such share.
    pub async fn unlock(&self, op: Unlock) -> Result<Option<Unlocked>> {
        self.run(move |tx| Box::pin(async move { sharing::unlock(tx, &op).await })).await
    }

    pub async fn create_download(
        &self,
        download: NewDownload,
        now: DateTime<Utc>,
        audit: Vec<AuditEvent>,
    ) -> Result<()> {
        self.run(move |tx| Box::pin(async move { Ok((tx.insert_download(&download, now).await?, audit)) })).await
    }

    /// `None`: no such link; `Some(None)`: too many wrong codes from this address this hour.
    pub async fn try_download(&self, op: TryDownload) -> Result<Option<Option<DownloadVerdict>>> {
        self.run(move |tx| Box::pin(async move { sharing::try_download(tx, &op).await })).await
    }

    /// Lines for the access and transfer logs, with these audit entries.
    pub async fn log(&self, access: Vec<Access>, transfers: Vec<Transfer>, audit: Vec<AuditEvent>) -> Result<()> {
        self.run(move |tx| {
            Box::pin(async move {
                for line in &access {
                    tx.insert_access(line).await?;
                }
                for line in &transfers {
                    tx.insert_transfer(line).await?;
                }
                Ok(((), audit))
            })
        })
        .await
    }
}
