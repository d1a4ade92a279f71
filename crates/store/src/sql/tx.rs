//! The primitives of a transaction (`crate::tx`) in SQL, the same text for every backend
//! (numbered `$n` parameters, portable SQL); compiled once per backend with its types.

use super::Conn;
use crate::error::Result;
use crate::model::{NewInstance, Org};
use crate::patients::{DataRequest, NewMember, NewSession};
use crate::sealed::SealedPatient;
use crate::sharing::{Access, DownloadRow, NewDownload, NewShare, ShareRow, Transfer};
use crate::tx::{ArchiveTx, CodeRow, PatientTx, SharingTx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cloudfilm_core::clock::{parse_stamp, stamp};
use cloudfilm_core::{AccountId, MemberId, OrgId, StudyPk};
use cloudfilm_core::{AeTitle, OrgCode, OrgSwitches};
use sqlx::Row;

/// One transaction on one connection.
pub struct SqlTx<'c> {
    pub conn: &'c mut Conn,
}

#[async_trait]
impl ArchiveTx for SqlTx<'_> {
    async fn insert_org(&mut self, code: &OrgCode, name: &str, switches: OrgSwitches, at: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO organizations (code, name, cloud_film_enabled, download_enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (code) DO NOTHING",
        )
        .bind(code.as_str())
        .bind(name)
        .bind(switches.cloud_film_enabled)
        .bind(switches.download_enabled)
        .bind(at)
        .execute(&mut *self.conn)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn org_by_code(&mut self, code: &OrgCode) -> Result<Option<Org>> {
        let row =
            sqlx::query(super::rows::ORG_SELECT_BY_CODE).bind(code.as_str()).fetch_optional(&mut *self.conn).await?;
        row.map(|r| super::rows::org(&r)).transpose()
    }

    async fn set_org_switches(
        &mut self,
        code: &OrgCode,
        cloud_film: Option<bool>,
        download: Option<bool>,
        at: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE organizations SET cloud_film_enabled = COALESCE($1, cloud_film_enabled), \
             download_enabled = COALESCE($2, download_enabled), updated_at = $3 WHERE code = $4",
        )
        .bind(cloud_film)
        .bind(download)
        .bind(at)
        .bind(code.as_str())
        .execute(&mut *self.conn)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_api_key(
        &mut self,
        org_id: OrgId,
        key_id: &str,
        secret_hash: &[u8],
        allow: &str,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, org_id, secret_hash, allow_cidrs, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key_id)
        .bind(org_id)
        .bind(secret_hash)
        .bind(allow)
        .bind(at)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn revoke_api_key(&mut self, key_id: &str, at: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(key_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_ae(
        &mut self,
        org_id: OrgId,
        title: &AeTitle,
        host: Option<&str>,
        port: Option<u16>,
        certificate: Option<&str>,
        at: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO application_entities (ae_title, org_id, host, port, certificate_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ae_title) DO NOTHING",
        )
        .bind(title.as_str())
        .bind(org_id)
        .bind(host)
        .bind(port.map(i64::from))
        .bind(certificate)
        .bind(at)
        .execute(&mut *self.conn)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_ae(&mut self, title: &AeTitle) -> Result<bool> {
        let done = sqlx::query("DELETE FROM application_entities WHERE ae_title = $1")
            .bind(title.as_str())
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn instance_digest(&mut self, org_id: OrgId, sop_uid: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT sha256 FROM instances WHERE org_id = $1 AND sop_uid = $2")
            .bind(org_id)
            .bind(sop_uid)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn study_pk(&mut self, org_id: OrgId, study_uid: &str) -> Result<Option<StudyPk>> {
        Ok(sqlx::query_scalar("SELECT pk FROM studies WHERE org_id = $1 AND study_uid = $2")
            .bind(org_id)
            .bind(study_uid)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn insert_study(
        &mut self,
        new: &NewInstance,
        sealed: &SealedPatient,
        exam_id: &str,
        at: &str,
    ) -> Result<StudyPk> {
        let info = &new.info;
        Ok(sqlx::query_scalar(
            "INSERT INTO studies (org_id, study_uid, study_date, study_time, accession_number, study_description, \
             study_id, institution_name, patient_sex, patient_name, patient_id, patient_birth_date, \
             other_patient_ids, patient_phones, referring_physician, created_at, exam_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING pk",
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
        .bind(&sealed.name)
        .bind(&sealed.id)
        .bind(&sealed.birth_date)
        .bind(&sealed.other_ids)
        .bind(&sealed.phones)
        .bind(&sealed.referring_physician)
        .bind(at)
        .bind(exam_id)
        .fetch_one(&mut *self.conn)
        .await?)
    }

    async fn insert_study_token(
        &mut self,
        kind: i64,
        token: &[u8],
        new: &NewInstance,
        study_pk: StudyPk,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO study_tokens (kind, token, org_id, study_date, study_time, study_pk) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(kind)
        .bind(token)
        .bind(new.org_id)
        .bind(new.info.study.date.as_deref().unwrap_or(""))
        .bind(new.info.study.time.as_deref().unwrap_or(""))
        .bind(study_pk)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn series_pk(&mut self, study_pk: StudyPk, series_uid: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT pk FROM series WHERE study_pk = $1 AND series_uid = $2")
            .bind(study_pk)
            .bind(series_uid)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn insert_series(&mut self, study_pk: StudyPk, new: &NewInstance) -> Result<i64> {
        let s = &new.info.series;
        Ok(sqlx::query_scalar(
            "INSERT INTO series (study_pk, series_uid, modality, series_number, series_description, body_part, \
             series_date, series_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING pk",
        )
        .bind(study_pk)
        .bind(&new.info.series_uid)
        .bind(&s.modality)
        .bind(s.number)
        .bind(&s.description)
        .bind(&s.body_part)
        .bind(&s.date)
        .bind(&s.time)
        .fetch_one(&mut *self.conn)
        .await?)
    }

    async fn insert_instance(&mut self, new: &NewInstance, study_pk: StudyPk, series_pk: i64, at: &str) -> Result<()> {
        let info = &new.info;
        let layout = info.layout.clone().unwrap_or(cloudfilm_core::instance::PixelLayout::None);
        sqlx::query(
            "INSERT INTO instances (org_id, study_pk, series_pk, sop_uid, sop_class_uid, instance_number, \
             number_of_frames, rows, columns, bits_allocated, samples_per_pixel, transfer_syntax, size, sha256, \
             blob_id, pixel_layout, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
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
        .bind(at)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn count_instance(&mut self, study_pk: StudyPk, series_pk: i64, new_series: bool) -> Result<()> {
        sqlx::query("UPDATE series SET num_instances = num_instances + 1 WHERE pk = $1")
            .bind(series_pk)
            .execute(&mut *self.conn)
            .await?;
        sqlx::query("UPDATE studies SET num_instances = num_instances + 1, num_series = num_series + $1 WHERE pk = $2")
            .bind(i64::from(new_series))
            .bind(study_pk)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn study_modalities(&mut self, study_pk: StudyPk) -> Result<String> {
        Ok(sqlx::query_scalar("SELECT modalities FROM studies WHERE pk = $1")
            .bind(study_pk)
            .fetch_one(&mut *self.conn)
            .await?)
    }

    async fn set_study_modalities(&mut self, study_pk: StudyPk, modalities: &str) -> Result<()> {
        sqlx::query("UPDATE studies SET modalities = $1 WHERE pk = $2")
            .bind(modalities)
            .bind(study_pk)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl PatientTx for SqlTx<'_> {
    async fn last_code_sent(&mut self, phone_token: &[u8]) -> Result<Option<DateTime<Utc>>> {
        let last: Option<String> = sqlx::query_scalar("SELECT max(sent_at) FROM otp_codes WHERE phone_token = $1")
            .bind(phone_token)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(last.as_deref().and_then(parse_stamp))
    }

    async fn codes_sent_since(&mut self, phone_token: &[u8], since: DateTime<Utc>) -> Result<u32> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM otp_codes WHERE phone_token = $1 AND sent_at > $2")
            .bind(phone_token)
            .bind(stamp(since))
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n as u32)
    }

    async fn insert_code(
        &mut self,
        phone_token: &[u8],
        purpose: &str,
        code_hash: &[u8],
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO otp_codes (phone_token, purpose, code_hash, sent_at) VALUES ($1, $2, $3, $4)")
            .bind(phone_token)
            .bind(purpose)
            .bind(code_hash)
            .bind(stamp(at))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn latest_code(&mut self, phone_token: &[u8], purpose: &str) -> Result<Option<CodeRow>> {
        let row = sqlx::query(
            "SELECT id, code_hash, sent_at, wrong_attempts, used_at FROM otp_codes \
             WHERE phone_token = $1 AND purpose = $2 ORDER BY sent_at DESC, id DESC LIMIT 1",
        )
        .bind(phone_token)
        .bind(purpose)
        .fetch_optional(&mut *self.conn)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let sent_at: String = r.try_get("sent_at")?;
        Ok(Some(CodeRow {
            id: r.try_get("id")?,
            code_hash: r.try_get("code_hash")?,
            sent_at: parse_stamp(&sent_at).ok_or_else(|| crate::StoreError::Database("bad time in sent_at".into()))?,
            wrong_attempts: r.try_get::<i64, _>("wrong_attempts")? as u32,
            used: r.try_get::<Option<String>, _>("used_at")?.is_some(),
        }))
    }

    async fn mark_code_used(&mut self, id: i64, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE otp_codes SET used_at = $1 WHERE id = $2")
            .bind(stamp(at))
            .bind(id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn count_wrong_code(&mut self, id: i64) -> Result<()> {
        sqlx::query("UPDATE otp_codes SET wrong_attempts = wrong_attempts + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn events_since(&mut self, bucket: &[u8], since: DateTime<Utc>) -> Result<u32> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_events WHERE bucket = $1 AND at > $2")
            .bind(bucket)
            .bind(stamp(since))
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n as u32)
    }

    async fn count_event(&mut self, bucket: &[u8], at: DateTime<Utc>) -> Result<()> {
        sqlx::query("INSERT INTO rate_events (bucket, at) VALUES ($1, $2)")
            .bind(bucket)
            .bind(stamp(at))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn account_by_phone(&mut self, phone_token: &[u8]) -> Result<Option<AccountId>> {
        Ok(sqlx::query_scalar("SELECT id FROM accounts WHERE phone_token = $1")
            .bind(phone_token)
            .fetch_optional(&mut *self.conn)
            .await?)
    }

    async fn insert_account(
        &mut self,
        id: &AccountId,
        phone_token: &[u8],
        sealed_phone: &[u8],
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO accounts (id, phone_token, phone, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(phone_token)
            .bind(sealed_phone)
            .bind(stamp(at))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn insert_session(
        &mut self,
        account_id: &AccountId,
        session: &NewSession,
        at: DateTime<Utc>,
        step_up_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, account_id, csrf_hash, created_at, last_seen_at, step_up_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(&session.token_hash)
        .bind(account_id)
        .bind(&session.csrf_hash)
        .bind(stamp(at))
        .bind(step_up_at.map(stamp))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn revoke_session(&mut self, token_hash: &[u8], at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sessions SET revoked_at = coalesce(revoked_at, $1) WHERE token_hash = $2")
            .bind(stamp(at))
            .bind(token_hash)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn touch_session(&mut self, token_hash: &[u8], at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(stamp(at))
            .bind(token_hash)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn insert_consent(
        &mut self,
        account_id: &AccountId,
        kind: &str,
        policy_version: &str,
        granted: bool,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consent_events (account_id, kind, policy_version, granted, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(account_id)
        .bind(kind)
        .bind(policy_version)
        .bind(granted)
        .bind(stamp(at))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn has_member(&mut self, account_id: &AccountId, id_token: &[u8]) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM members WHERE account_id = $1 AND id_token = $2")
            .bind(account_id)
            .bind(id_token)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n > 0)
    }

    async fn has_self_member(&mut self, account_id: &AccountId) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM members WHERE account_id = $1 AND relation = 'self'")
            .bind(account_id)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n > 0)
    }

    async fn is_self_anywhere(&mut self, id_token: &[u8]) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM members WHERE id_token = $1 AND relation = 'self'")
            .bind(id_token)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n > 0)
    }

    async fn insert_member(
        &mut self,
        account_id: &AccountId,
        member: &NewMember,
        sealed_name: &[u8],
        sealed_id_number: &[u8],
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO members (id, account_id, relation, name, id_number, id_token, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&member.id)
        .bind(account_id)
        .bind(member.relation.as_str())
        .bind(sealed_name)
        .bind(sealed_id_number)
        .bind(&member.id_token)
        .bind(stamp(at))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn delete_member(&mut self, account_id: &AccountId, member_id: &MemberId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM members WHERE id = $1 AND account_id = $2")
            .bind(member_id)
            .bind(account_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn mark_matched(&mut self, member_id: &MemberId, study_pk: StudyPk, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE members SET matched_at = coalesce(matched_at, $1), \
             matched_study_pk = coalesce(matched_study_pk, $2) WHERE id = $3",
        )
        .bind(stamp(at))
        .bind(study_pk)
        .bind(member_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn stamp_consent_request(
        &mut self,
        account_id: &AccountId,
        member_id: &MemberId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE members SET consent_requested_at = $1 WHERE id = $2 AND account_id = $3")
            .bind(stamp(at))
            .bind(member_id)
            .bind(account_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn consent_by_code(
        &mut self,
        account_id: &AccountId,
        member_id: &MemberId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE members SET consented_at = $1, consent_via = 'code', consent_ended_at = NULL \
             WHERE id = $2 AND account_id = $3 AND relation != 'self'",
        )
        .bind(stamp(at))
        .bind(member_id)
        .bind(account_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_holding(
        &mut self,
        self_account_id: &AccountId,
        holder_member_id: &MemberId,
        grant: bool,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = if grant {
            "UPDATE members SET consented_at = $1, consent_via = 'account', consent_ended_at = NULL \
             WHERE id = $2 AND relation != 'self' AND account_id != $3 AND id_token = \
             (SELECT id_token FROM members WHERE account_id = $3 AND relation = 'self' AND matched_at IS NOT NULL)"
        } else {
            "UPDATE members SET consented_at = NULL, consent_via = NULL, consent_ended_at = $1 \
             WHERE id = $2 AND relation != 'self' AND account_id != $3 AND id_token = \
             (SELECT id_token FROM members WHERE account_id = $3 AND relation = 'self' AND matched_at IS NOT NULL)"
        };
        let done = sqlx::query(sql)
            .bind(stamp(at))
            .bind(holder_member_id)
            .bind(self_account_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_data_request(&mut self, request: &DataRequest, sealed_detail: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO data_requests (id, account_id, kind, detail, created_at, due_date, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&request.id)
        .bind(&request.account_id)
        .bind(&request.kind)
        .bind(sealed_detail)
        .bind(stamp(request.created_at))
        .bind(request.due_date.to_string())
        .bind(&request.status)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn insert_report(&mut self, study_pk: StudyPk, sealed_body: &[u8], at: DateTime<Utc>) -> Result<()> {
        sqlx::query("INSERT INTO reports (study_pk, body, created_at) VALUES ($1, $2, $3)")
            .bind(study_pk)
            .bind(sealed_body)
            .bind(stamp(at))
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl SharingTx for SqlTx<'_> {
    async fn insert_share(&mut self, share: &NewShare, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO shares (id, token_hash, account_id, member_id, study_pk, password_hash, deidentified, \
             notify_owner, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&share.id)
        .bind(&share.token_hash)
        .bind(&share.account_id)
        .bind(&share.member_id)
        .bind(share.study_pk)
        .bind(&share.password_hash)
        .bind(share.deidentified)
        .bind(share.notify_owner)
        .bind(stamp(at))
        .bind(stamp(share.expires_at))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn revoke_share(&mut self, account_id: &AccountId, share_id: &str, at: DateTime<Utc>) -> Result<bool> {
        let done =
            sqlx::query("UPDATE shares SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 AND account_id = $3")
                .bind(stamp(at))
                .bind(share_id)
                .bind(account_id)
                .execute(&mut *self.conn)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn end_share_sessions(&mut self, share_id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE share_sessions SET expires_at = CASE WHEN expires_at < $1 THEN expires_at ELSE $1 END \
             WHERE share_id = $2",
        )
        .bind(stamp(at))
        .bind(share_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn share(&mut self, share_id: &str) -> Result<Option<ShareRow>> {
        super::sharing_reads::share_in(&mut *self.conn, share_id).await
    }

    async fn insert_share_session(
        &mut self,
        token_hash: &[u8],
        share_id: &str,
        at: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO share_sessions (token_hash, share_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(share_id)
        .bind(stamp(at))
        .bind(stamp(ends))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn count_share_view(&mut self, share_id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE shares SET views = views + 1, first_opened_at = coalesce(first_opened_at, $1) WHERE id = $2",
        )
        .bind(stamp(at))
        .bind(share_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn lock_share(&mut self, share_id: &str, until: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE shares SET locked_until = $1 WHERE id = $2")
            .bind(stamp(until))
            .bind(share_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn insert_download(&mut self, download: &NewDownload, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO downloads (id, token_hash, account_id, member_id, study_pk, code_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&download.id)
        .bind(&download.token_hash)
        .bind(&download.account_id)
        .bind(&download.member_id)
        .bind(download.study_pk)
        .bind(&download.code_hash)
        .bind(stamp(at))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn download(&mut self, download_id: &str) -> Result<Option<(DownloadRow, Vec<u8>)>> {
        super::sharing_reads::download_in(&mut *self.conn, download_id).await
    }

    async fn mark_download_used(&mut self, download_id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE downloads SET used_at = $1 WHERE id = $2")
            .bind(stamp(at))
            .bind(download_id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn count_wrong_download_code(
        &mut self,
        download_id: &str,
        invalidates: bool,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE downloads SET wrong_codes = wrong_codes + 1, \
             invalidated_at = CASE WHEN $1 THEN $2 ELSE invalidated_at END WHERE id = $3",
        )
        .bind(invalidates)
        .bind(stamp(at))
        .bind(download_id)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn study_org(&mut self, study_pk: StudyPk) -> Result<Option<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT o.name, o.code FROM studies s JOIN organizations o ON o.id = s.org_id WHERE s.pk = $1",
        )
        .bind(study_pk)
        .fetch_optional(&mut *self.conn)
        .await?)
    }

    async fn insert_access(&mut self, a: &Access) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_log (account_id, at, actor, action, object, client_ip) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&a.account_id)
        .bind(stamp(a.at))
        .bind(&a.actor)
        .bind(&a.action)
        .bind(&a.object)
        .bind(&a.client_ip)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn insert_transfer(&mut self, t: &Transfer) -> Result<()> {
        sqlx::query(
            "INSERT INTO transfer_log (at, account_id, sender, receiver, category, result) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(stamp(t.at))
        .bind(&t.account_id)
        .bind(&t.sender)
        .bind(&t.receiver)
        .bind(&t.category)
        .bind(&t.result)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}
