//! The readers' half of the patient side: sessions, accounts, consent, members and the exams
//! a member may see. An exam is visible only through a matched member of the account, by the
//! member's resident ID token (or, for the account holder, the account's phone token), and
//! only while its organization's cloud film service is on. A member held as parent, spouse or
//! other opens only with that adult's own consent (a child who turned 18 is closed by the
//! server, which knows the age from the sealed ID number).

use super::{DbRow, Pool};
use crate::error::{Result, StoreError};
use crate::patients::*;
use crate::sealed::{Sealer, TokenKind};
use chrono::{DateTime, Utc};
use cloudfilm_core::clock::{parse_stamp, stamp};
use cloudfilm_core::member::{ConsentTimes, Relation};
use cloudfilm_core::session::SessionTimes;
use cloudfilm_core::{AccountId, MemberId, OrgId, StudyPk};
use sqlx::Row;

fn time(r: &DbRow, column: &str) -> Result<DateTime<Utc>> {
    let text: String = r.try_get(column)?;
    parse_stamp(&text).ok_or_else(|| StoreError::Database(format!("bad time in {column}")))
}

fn maybe_time(r: &DbRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(r.try_get::<Option<String>, _>(column)?.as_deref().and_then(parse_stamp))
}

pub async fn session(pool: &Pool, token_hash: &[u8]) -> Result<Option<SessionRecord>> {
    let row = sqlx::query(
        "SELECT account_id, csrf_hash, created_at, last_seen_at, step_up_at, revoked_at FROM sessions \
         WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(SessionRecord {
        account_id: r.try_get("account_id")?,
        csrf_hash: r.try_get("csrf_hash")?,
        times: SessionTimes {
            created_at: time(&r, "created_at")?,
            last_seen_at: time(&r, "last_seen_at")?,
            step_up_at: maybe_time(&r, "step_up_at")?,
            revoked: r.try_get::<Option<String>, _>("revoked_at")?.is_some(),
        },
    }))
}

pub async fn account(pool: &Pool, sealer: &Sealer, id: &AccountId) -> Result<Option<AccountRecord>> {
    let row = sqlx::query("SELECT id, phone_token, phone, created_at FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(AccountRecord {
        id: r.try_get("id")?,
        phone: sealer.open("account_phone", r.try_get("phone")?)?.unwrap_or_default(),
        phone_token: r.try_get("phone_token")?,
        created_at: time(&r, "created_at")?,
    }))
}

pub async fn consents(pool: &Pool, account_id: &AccountId) -> Result<Consents> {
    let rows =
        sqlx::query("SELECT kind, policy_version, granted, at FROM consent_events WHERE account_id = $1 ORDER BY id")
            .bind(account_id)
            .fetch_all(pool)
            .await?;
    let mut out = Consents::default();
    for r in &rows {
        let event = ConsentEvent {
            kind: r.try_get("kind")?,
            policy_version: r.try_get("policy_version")?,
            granted: r.try_get("granted")?,
            at: time(r, "at")?,
        };
        match event.kind.as_str() {
            "privacy_policy" if event.granted => out.state.policy_version = Some(event.policy_version.clone()),
            "privacy_policy" => out.state.policy_version = None,
            "health_data" => out.state.health_data = event.granted,
            _ => {}
        }
        out.events.push(event);
    }
    Ok(out)
}

fn consent_times(r: &DbRow) -> Result<ConsentTimes> {
    Ok(ConsentTimes {
        requested_at: maybe_time(r, "consent_requested_at")?,
        consented_at: maybe_time(r, "consented_at")?,
        ended_at: maybe_time(r, "consent_ended_at")?,
    })
}

fn relation(r: &DbRow) -> Result<Relation> {
    let relation: String = r.try_get("relation")?;
    Relation::parse(&relation).ok_or_else(|| StoreError::Database("bad relation".into()))
}

pub async fn members(pool: &Pool, sealer: &Sealer, account_id: &AccountId) -> Result<Vec<MemberRecord>> {
    let rows = sqlx::query(
        "SELECT id, relation, name, id_number, id_token, created_at, matched_at, consent_requested_at, \
         consented_at, consent_via, consent_ended_at FROM members \
         WHERE account_id = $1 ORDER BY relation != 'self', rowid",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MemberRecord {
                id: r.try_get("id")?,
                relation: relation(r)?,
                name: sealer.open("member_name", r.try_get("name")?)?.unwrap_or_default(),
                id_number: sealer.open("member_id_number", r.try_get("id_number")?)?.unwrap_or_default(),
                id_token: r.try_get("id_token")?,
                created_at: time(r, "created_at")?,
                matched_at: maybe_time(r, "matched_at")?,
                consent: consent_times(r)?,
                consent_via: r.try_get("consent_via")?,
            })
        })
        .collect()
}

/// Who holds the adult whose own account this is: members of other accounts with the resident
/// ID token of this account's matched "self" member.
pub async fn holders(pool: &Pool, sealer: &Sealer, account_id: &AccountId) -> Result<Vec<HolderRecord>> {
    let rows = sqlx::query(
        "SELECT h.id, h.account_id, h.relation, h.created_at, h.consent_requested_at, h.consented_at, \
         h.consent_via, h.consent_ended_at, a.phone FROM members me \
         JOIN members h ON h.id_token = me.id_token AND h.account_id != me.account_id AND h.relation != 'self' \
         JOIN accounts a ON a.id = h.account_id \
         WHERE me.account_id = $1 AND me.relation = 'self' AND me.matched_at IS NOT NULL \
         ORDER BY h.created_at DESC, h.rowid DESC",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HolderRecord {
                member_id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                account_phone: sealer.open("account_phone", r.try_get("phone")?)?.unwrap_or_default(),
                relation: relation(r)?,
                created_at: time(r, "created_at")?,
                consent: consent_times(r)?,
                consent_via: r.try_get("consent_via")?,
            })
        })
        .collect()
}

/// The account whose matched "self" member carries this resident ID token.
pub async fn self_account_of(pool: &Pool, id_token: &[u8]) -> Result<Option<AccountId>> {
    Ok(sqlx::query_scalar(
        "SELECT account_id FROM members WHERE id_token = $1 AND relation = 'self' AND matched_at IS NOT NULL LIMIT 1",
    )
    .bind(id_token)
    .fetch_optional(pool)
    .await?)
}

/// The studies of the matched members of an account (optionally one member): by resident ID
/// token, and by the account's phone token for its "self" member. Members held as parent,
/// spouse or other count only once that adult consented.
const VISIBLE: &str = "WITH visible(pk) AS ( \
    SELECT t.study_pk FROM members m JOIN study_tokens t ON t.kind = $1 AND t.token = m.id_token \
    WHERE m.account_id = $3 AND m.matched_at IS NOT NULL AND ($4 IS NULL OR m.id = $4) \
    AND (m.relation IN ('self', 'child') OR m.consented_at IS NOT NULL) \
    UNION \
    SELECT t.study_pk FROM members m JOIN accounts a ON a.id = m.account_id \
    JOIN study_tokens t ON t.kind = $2 AND t.token = a.phone_token \
    WHERE m.account_id = $3 AND m.matched_at IS NOT NULL AND m.relation = 'self' AND ($4 IS NULL OR m.id = $4)) \
    SELECT s.pk, s.exam_id, o.id AS org_id, o.name AS org_name, o.code AS org_code, o.download_enabled, s.study_uid, s.modalities, s.study_date, \
    s.study_time, s.study_description, s.accession_number, s.num_series, s.num_instances \
    FROM visible v JOIN studies s ON s.pk = v.pk JOIN organizations o ON o.id = s.org_id \
    WHERE o.cloud_film_enabled = TRUE AND ($5 IS NULL OR s.exam_id = $5) \
    ORDER BY s.study_date IS NULL, s.study_date DESC, s.study_time DESC, s.pk DESC";

pub async fn visible_exams(
    pool: &Pool,
    account_id: &AccountId,
    member_id: Option<&MemberId>,
    exam_id: Option<&str>,
) -> Result<Vec<ExamRow>> {
    let rows = sqlx::query(VISIBLE)
        .bind(TokenKind::ResidentId as i64)
        .bind(TokenKind::MobilePhone as i64)
        .bind(account_id)
        .bind(member_id)
        .bind(exam_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(exam_row).collect()
}

/// The matched members of an account whose resident ID is on this exam's record (service on),
/// whatever their consent.
pub async fn exam_members_ignoring_consent(
    pool: &Pool,
    account_id: &AccountId,
    exam_id: &str,
) -> Result<Vec<MemberId>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT m.id FROM members m JOIN study_tokens t ON t.kind = $1 AND t.token = m.id_token \
         JOIN studies s ON s.pk = t.study_pk JOIN organizations o ON o.id = s.org_id \
         WHERE m.account_id = $2 AND m.matched_at IS NOT NULL AND s.exam_id = $3 AND o.cloud_film_enabled = TRUE",
    )
    .bind(TokenKind::ResidentId as i64)
    .bind(account_id)
    .bind(exam_id)
    .fetch_all(pool)
    .await?)
}

fn exam_row(r: &DbRow) -> Result<ExamRow> {
    Ok(ExamRow {
        study_pk: r.try_get("pk")?,
        exam_id: r.try_get("exam_id")?,
        org_id: r.try_get("org_id")?,
        org_name: r.try_get("org_name")?,
        org_code: r.try_get("org_code")?,
        download_enabled: r.try_get("download_enabled")?,
        study_uid: r.try_get("study_uid")?,
        modalities: r.try_get("modalities")?,
        date: r.try_get("study_date")?,
        time: r.try_get("study_time")?,
        description: r.try_get("study_description")?,
        accession_number: r.try_get("accession_number")?,
        num_series: r.try_get("num_series")?,
        num_instances: r.try_get("num_instances")?,
    })
}

/// Studies of organizations with the service on whose record carries this resident ID token.
pub async fn match_candidates(pool: &Pool, sealer: &Sealer, id_token: &[u8]) -> Result<Vec<MatchCandidate>> {
    let rows = sqlx::query(
        "SELECT s.pk, s.accession_number, s.study_date, s.patient_name, s.patient_phones, o.name AS org_name, \
         o.code AS org_code \
         FROM study_tokens t JOIN studies s ON s.pk = t.study_pk JOIN organizations o ON o.id = s.org_id \
         WHERE t.kind = $1 AND t.token = $2 AND o.cloud_film_enabled = TRUE ORDER BY s.pk LIMIT 10000",
    )
    .bind(TokenKind::ResidentId as i64)
    .bind(id_token)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MatchCandidate {
                study_pk: r.try_get("pk")?,
                accession_number: r.try_get("accession_number")?,
                study_date: r.try_get("study_date")?,
                org_name: r.try_get("org_name")?,
                org_code: r.try_get("org_code")?,
                patient_name: sealer.open("patient_name", r.try_get("patient_name")?)?,
                patient_phones: sealer
                    .open("patient_phones", r.try_get("patient_phones")?)?
                    .map(|p| p.split('\\').map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

pub async fn exam_series(pool: &Pool, study_pk: StudyPk) -> Result<Vec<SeriesSummary>> {
    let rows = sqlx::query(
        "SELECT series_uid, modality, series_number, series_description, body_part, num_instances FROM series \
         WHERE study_pk = $1 ORDER BY series_number IS NULL, series_number, pk",
    )
    .bind(study_pk)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SeriesSummary {
                series_uid: r.try_get("series_uid")?,
                modality: r.try_get("modality")?,
                number: r.try_get("series_number")?,
                description: r.try_get("series_description")?,
                body_part: r.try_get("body_part")?,
                num_instances: r.try_get("num_instances")?,
            })
        })
        .collect()
}

pub async fn reports(pool: &Pool, sealer: &Sealer, study_pk: StudyPk) -> Result<Vec<ReportRecord>> {
    let rows = sqlx::query("SELECT body, created_at FROM reports WHERE study_pk = $1 ORDER BY id")
        .bind(study_pk)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportRecord {
                body: sealer.open("report_body", r.try_get("body")?)?.unwrap_or_default(),
                created_at: time(r, "created_at")?,
            })
        })
        .collect()
}

/// The studies of an organization with this Study Instance UID or accession number.
pub async fn org_studies(
    pool: &Pool,
    org_id: OrgId,
    study_uid: Option<&str>,
    accession_number: Option<&str>,
) -> Result<Vec<StudyPk>> {
    Ok(sqlx::query_scalar(
        "SELECT pk FROM studies WHERE org_id = $1 AND ($2 IS NULL OR study_uid = $2) \
         AND ($3 IS NULL OR accession_number = $3) AND ($2 IS NOT NULL OR $3 IS NOT NULL) ORDER BY pk LIMIT 2",
    )
    .bind(org_id)
    .bind(study_uid)
    .bind(accession_number)
    .fetch_all(pool)
    .await?)
}

pub async fn count_events(pool: &Pool, bucket: &[u8], since: DateTime<Utc>) -> Result<u32> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_events WHERE bucket = $1 AND at > $2")
        .bind(bucket)
        .bind(stamp(since))
        .fetch_one(pool)
        .await?;
    Ok(n as u32)
}

/// The account's data-subject requests, newest first.
pub async fn data_requests(pool: &Pool, sealer: &Sealer, account_id: &AccountId) -> Result<Vec<DataRequest>> {
    let rows = sqlx::query(
        "SELECT id, account_id, kind, detail, created_at, due_date, status FROM data_requests \
         WHERE account_id = $1 ORDER BY created_at DESC, rowid DESC",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let due: String = r.try_get("due_date")?;
            Ok(DataRequest {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                kind: r.try_get("kind")?,
                detail: sealer.open("request_detail", r.try_get("detail")?)?.unwrap_or_default(),
                created_at: time(r, "created_at")?,
                due_date: due.parse().map_err(|_| StoreError::Database("bad due date".into()))?,
                status: r.try_get("status")?,
            })
        })
        .collect()
}
