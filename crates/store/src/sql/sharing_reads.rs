//! The readers' half of shares and downloads, and the logs an account holder reads.

use super::Db;
use super::{DbRow, Pool};
use crate::error::{Result, StoreError};
use crate::sharing::*;
use chrono::{DateTime, Utc};
use cloudfilm_core::AccountId;
use cloudfilm_core::StudyPk;
use cloudfilm_core::clock::parse_stamp;
use cloudfilm_core::share::ShareRecord;
use sqlx::Row;

fn time(r: &DbRow, column: &str) -> Result<DateTime<Utc>> {
    maybe_time(r, column)?.ok_or_else(|| StoreError::Database(format!("bad time in {column}")))
}

fn maybe_time(r: &DbRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(r.try_get::<Option<String>, _>(column)?.as_deref().and_then(parse_stamp))
}

/// The columns of a share (a literal, so queries can be built with `concat!`).
macro_rules! share_select {
    () => {
        "SELECT sh.id, sh.account_id, sh.member_id, sh.study_pk, s.exam_id, sh.password_hash, \
    sh.deidentified, sh.notify_owner, sh.created_at, sh.expires_at, sh.revoked_at, sh.locked_until, sh.views, \
    sh.first_opened_at FROM shares sh JOIN studies s ON s.pk = sh.study_pk"
    };
}

fn share_row(r: &DbRow) -> Result<ShareRow> {
    Ok(ShareRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        member_id: r.try_get("member_id")?,
        study_pk: r.try_get("study_pk")?,
        exam_id: r.try_get("exam_id")?,
        password_hash: r.try_get("password_hash")?,
        deidentified: r.try_get("deidentified")?,
        notify_owner: r.try_get("notify_owner")?,
        record: ShareRecord {
            created_at: time(r, "created_at")?,
            expires_at: time(r, "expires_at")?,
            revoked_at: maybe_time(r, "revoked_at")?,
            locked_until: maybe_time(r, "locked_until")?,
        },
        views: r.try_get("views")?,
        first_opened_at: maybe_time(r, "first_opened_at")?,
    })
}

pub async fn share_in(db: impl sqlx::Executor<'_, Database = Db>, id: &str) -> Result<Option<ShareRow>> {
    let row = sqlx::query(concat!(share_select!(), " WHERE sh.id = $1")).bind(id).fetch_optional(db).await?;
    row.as_ref().map(share_row).transpose()
}

pub async fn share_by_token(pool: &Pool, token_hash: &[u8]) -> Result<Option<ShareRow>> {
    let row = sqlx::query(concat!(share_select!(), " WHERE sh.token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(share_row).transpose()
}

/// The account's shares of one study, newest first.
pub async fn shares(pool: &Pool, account_id: &AccountId, study_pk: StudyPk) -> Result<Vec<ShareRow>> {
    let rows = sqlx::query(concat!(
        share_select!(),
        " WHERE sh.account_id = $1 AND sh.study_pk = $2 ORDER BY sh.created_at DESC, sh.rowid DESC"
    ))
    .bind(account_id)
    .bind(study_pk)
    .fetch_all(pool)
    .await?;
    rows.iter().map(share_row).collect()
}

pub async fn share_session(pool: &Pool, token_hash: &[u8]) -> Result<Option<ShareSessionRow>> {
    let row = sqlx::query("SELECT share_id, expires_at FROM share_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let share_id: String = r.try_get("share_id")?;
    let expires_at = time(&r, "expires_at")?;
    Ok(share_in(pool, &share_id).await?.map(|share| ShareSessionRow { expires_at, share }))
}

macro_rules! download_select {
    () => {
        "SELECT d.id, d.account_id, d.member_id, d.study_pk, s.exam_id, d.code_hash, d.created_at, \
    d.wrong_codes, d.invalidated_at FROM downloads d JOIN studies s ON s.pk = d.study_pk"
    };
}

fn download_row(r: &DbRow) -> Result<(DownloadRow, Vec<u8>)> {
    let link = DownloadRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        member_id: r.try_get("member_id")?,
        study_pk: r.try_get("study_pk")?,
        exam_id: r.try_get("exam_id")?,
        created_at: time(r, "created_at")?,
        wrong_codes: r.try_get::<i64, _>("wrong_codes")? as u32,
        invalidated: r.try_get::<Option<String>, _>("invalidated_at")?.is_some(),
    };
    Ok((link, r.try_get("code_hash")?))
}

/// A download link and the hash of its code.
pub async fn download_in(
    db: impl sqlx::Executor<'_, Database = Db>,
    id: &str,
) -> Result<Option<(DownloadRow, Vec<u8>)>> {
    let row = sqlx::query(concat!(download_select!(), " WHERE d.id = $1")).bind(id).fetch_optional(db).await?;
    row.as_ref().map(download_row).transpose()
}

pub async fn download_by_token(pool: &Pool, token_hash: &[u8]) -> Result<Option<DownloadRow>> {
    let row = sqlx::query(concat!(download_select!(), " WHERE d.token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(download_row).transpose()?.map(|(link, _)| link))
}

/// The account's access log, newest first.
pub async fn access_log(pool: &Pool, account_id: &AccountId, limit: u32) -> Result<Vec<Access>> {
    let rows = sqlx::query(
        "SELECT account_id, at, actor, action, object, client_ip FROM access_log WHERE account_id = $1 \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Access {
                account_id: r.try_get("account_id")?,
                at: time(r, "at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                object: r.try_get("object")?,
                client_ip: r.try_get("client_ip")?,
            })
        })
        .collect()
}

/// Transfers of the account's data, newest first.
pub async fn transfers(pool: &Pool, account_id: &AccountId, limit: u32) -> Result<Vec<Transfer>> {
    let rows = sqlx::query(
        "SELECT at, account_id, sender, receiver, category, result FROM transfer_log WHERE account_id = $1 \
         ORDER BY id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Transfer {
                at: time(r, "at")?,
                account_id: r.try_get("account_id")?,
                sender: r.try_get("sender")?,
                receiver: r.try_get("receiver")?,
                category: r.try_get("category")?,
                result: r.try_get("result")?,
            })
        })
        .collect()
}
