//! The writer's half of shares and downloads: passwords and codes are counted, shares locked
//! and links invalidated inside the single writer's transaction, so that racing attempts are
//! decided one after the other; every attempt lands in the transfer log and the audit chain,
//! every view in the owner's access log.

use super::patients::{count_event, events_since};
use super::sharing_reads::{download_in, share_in};
use crate::error::Result;
use crate::model::WriteResult;
use crate::patients::AuditContext;
use crate::sharing::*;
use chrono::{DateTime, Duration, Utc};
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::clock::stamp;
use cloudfilm_core::download::DownloadVerdict;
use cloudfilm_core::share::{SharePolicy, UnlockVerdict};
use cloudfilm_crypto::blind::constant_time_eq;
use sqlx::SqliteConnection;

pub async fn apply(conn: &mut SqliteConnection, op: &SharingOp) -> Result<(WriteResult, Vec<AuditEvent>)> {
    let (result, events) = match op {
        SharingOp::CreateShare { share, now } => {
            sqlx::query(
                "INSERT INTO shares (id, token_hash, account_id, member_id, study_pk, password_hash, deidentified, \
                 notify_owner, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&share.id)
            .bind(&share.token_hash)
            .bind(&share.account_id)
            .bind(&share.member_id)
            .bind(share.study_pk)
            .bind(&share.password_hash)
            .bind(share.deidentified)
            .bind(share.notify_owner)
            .bind(stamp(*now))
            .bind(stamp(share.expires_at))
            .execute(&mut *conn)
            .await?;
            (SharingResult::Done, Vec::new())
        }
        SharingOp::RevokeShare { account_id, share_id, now } => {
            let done =
                sqlx::query("UPDATE shares SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? AND account_id = ?")
                    .bind(stamp(*now))
                    .bind(share_id)
                    .bind(account_id)
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                (SharingResult::NotFound, Vec::new())
            } else {
                sqlx::query("UPDATE share_sessions SET expires_at = min(expires_at, ?) WHERE share_id = ?")
                    .bind(stamp(*now))
                    .bind(share_id)
                    .execute(&mut *conn)
                    .await?;
                (SharingResult::Done, Vec::new())
            }
        }
        SharingOp::Unlock { share_id, password_matches, ip_bucket, session_token_hash, policy, now, ctx } => {
            unlock(conn, share_id, *password_matches, ip_bucket, session_token_hash, policy, *now, ctx).await?
        }
        SharingOp::CreateDownload { download, now } => {
            sqlx::query(
                "INSERT INTO downloads (id, token_hash, account_id, member_id, study_pk, code_hash, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&download.id)
            .bind(&download.token_hash)
            .bind(&download.account_id)
            .bind(&download.member_id)
            .bind(download.study_pk)
            .bind(&download.code_hash)
            .bind(stamp(*now))
            .execute(&mut *conn)
            .await?;
            (SharingResult::Done, Vec::new())
        }
        SharingOp::TryDownload { download_id, code_hash, ip_bucket, policy, now, ctx } => {
            try_download(conn, download_id, code_hash, ip_bucket, policy, *now, ctx).await?
        }
        SharingOp::Log { access, transfers } => {
            for line in access {
                insert_access(conn, line).await?;
            }
            for line in transfers {
                insert_transfer(conn, line).await?;
            }
            (SharingResult::Done, Vec::new())
        }
    };
    Ok((WriteResult::Sharing(result), events))
}

/// A password presented for a share: the verdict from the share's and the address's wrong
/// passwords of the last hour; an opening creates the session and counts the view.
#[allow(clippy::too_many_arguments)]
async fn unlock(
    conn: &mut SqliteConnection,
    share_id: &str,
    password_matches: bool,
    ip_bucket: &[u8],
    session_token_hash: &[u8],
    policy: &SharePolicy,
    now: DateTime<Utc>,
    ctx: &AuditContext,
) -> Result<(SharingResult, Vec<AuditEvent>)> {
    let Some(share) = share_in(&mut *conn, share_id).await? else {
        return Ok((SharingResult::NotFound, Vec::new()));
    };
    let hour_ago = now - Duration::hours(1);
    let since = share.record.locked_until.map_or(hour_ago, |until| until.max(hour_ago));
    let wrong = events_since(conn, &share_bucket(share_id), &stamp(since)).await?;
    let ip_wrong = events_since(conn, ip_bucket, &stamp(hour_ago)).await?;
    let verdict = policy.unlock(&share.record, password_matches, wrong, ip_wrong, now);
    let mut session_expires_at = None;
    let mut notify_owner = false;
    match verdict {
        UnlockVerdict::Opened => {
            let ends = policy.session_end(&share.record, now);
            sqlx::query(
                "INSERT INTO share_sessions (token_hash, share_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            )
            .bind(session_token_hash)
            .bind(share_id)
            .bind(stamp(now))
            .bind(stamp(ends))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE shares SET views = views + 1, first_opened_at = coalesce(first_opened_at, ?) WHERE id = ?",
            )
            .bind(stamp(now))
            .bind(share_id)
            .execute(&mut *conn)
            .await?;
            notify_owner = share.notify_owner && share.first_opened_at.is_none();
            session_expires_at = Some(ends);
            let access = Access {
                account_id: share.account_id.clone(),
                at: now,
                actor: format!("share recipient (share {share_id})"),
                action: "opened the share with its password".into(),
                object: format!("exam {}", share.exam_id),
                client_ip: ctx.client_ip.clone(),
            };
            insert_access(conn, &access).await?;
        }
        UnlockVerdict::Wrong { locks } => {
            count_event(conn, &share_bucket(share_id), now).await?;
            count_event(conn, ip_bucket, now).await?;
            if locks {
                sqlx::query("UPDATE shares SET locked_until = ? WHERE id = ?")
                    .bind(stamp(now + Duration::seconds(policy.lock_secs)))
                    .bind(share_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        _ => {}
    }
    let result = unlock_result(&verdict);
    let transfer = Transfer {
        at: now,
        account_id: share.account_id.clone(),
        sender: sender_of(conn, share.study_pk).await?,
        receiver: Transfer::receiver("share recipient", share_id, ctx.client_ip.as_deref()),
        category: share_category(share.deidentified).into(),
        result: result.clone(),
    };
    insert_transfer(conn, &transfer).await?;
    let outcome = match verdict {
        UnlockVerdict::Opened => Outcome::Success,
        _ => Outcome::Failure(result),
    };
    let action = if verdict == UnlockVerdict::Opened { Action::Export } else { Action::SecurityAlert };
    let event = AuditEvent::new(action, format!("share:{share_id}"), format!("exam:{}", share.exam_id), outcome)
        .with_detail(format!("share password presented ({})", share_category(share.deidentified)))
        .from_client(ctx.client_ip.clone(), ctx.request_id.clone());
    Ok((SharingResult::Unlock { verdict, notify_owner, session_expires_at }, vec![event]))
}

async fn try_download(
    conn: &mut SqliteConnection,
    download_id: &str,
    code_hash: &[u8],
    ip_bucket: &[u8],
    policy: &cloudfilm_core::download::DownloadPolicy,
    now: DateTime<Utc>,
    ctx: &AuditContext,
) -> Result<(SharingResult, Vec<AuditEvent>)> {
    let Some((link, stored_code)) = download_in(&mut *conn, download_id).await? else {
        return Ok((SharingResult::NotFound, Vec::new()));
    };
    let verdict =
        if events_since(conn, ip_bucket, &stamp(now - Duration::hours(1))).await? >= policy.wrong_codes_per_ip_hour {
            None
        } else {
            let record = cloudfilm_core::download::DownloadLink {
                created_at: link.created_at,
                wrong_codes: link.wrong_codes,
                invalidated: link.invalidated,
            };
            Some(policy.check(&record, constant_time_eq(&stored_code, code_hash), now))
        };
    match verdict {
        Some(DownloadVerdict::Accepted) => {
            sqlx::query("UPDATE downloads SET used_at = ? WHERE id = ?")
                .bind(stamp(now))
                .bind(download_id)
                .execute(&mut *conn)
                .await?;
        }
        Some(DownloadVerdict::Wrong { invalidates }) => {
            sqlx::query(
                "UPDATE downloads SET wrong_codes = wrong_codes + 1, \
                 invalidated_at = CASE WHEN ? THEN ? ELSE invalidated_at END WHERE id = ?",
            )
            .bind(invalidates)
            .bind(stamp(now))
            .bind(download_id)
            .execute(&mut *conn)
            .await?;
            count_event(conn, ip_bucket, now).await?;
        }
        _ => {}
    }
    let (action, outcome, result) = match verdict {
        Some(DownloadVerdict::Accepted) => (Action::Export, Outcome::Success, None),
        Some(DownloadVerdict::Wrong { invalidates: false }) => (
            Action::SecurityAlert,
            Outcome::Failure("wrong security code".into()),
            Some("refused: wrong security code"),
        ),
        Some(DownloadVerdict::Wrong { invalidates: true }) => (
            Action::SecurityAlert,
            Outcome::Failure("wrong security code; the link is invalidated".into()),
            Some("refused: wrong security code; link invalidated"),
        ),
        Some(DownloadVerdict::Expired) => {
            (Action::SecurityAlert, Outcome::Failure("expired link".into()), Some("refused: link expired"))
        }
        Some(DownloadVerdict::Invalidated) => {
            (Action::SecurityAlert, Outcome::Failure("invalidated link".into()), Some("refused: link invalidated"))
        }
        None => (
            Action::SecurityAlert,
            Outcome::Failure("too many wrong codes from this address".into()),
            Some("refused: too many wrong codes from this address"),
        ),
    };
    // An accepted code's transfer is logged when the package has gone out (or failed).
    if let Some(result) = result {
        let transfer = Transfer {
            at: now,
            account_id: link.account_id.clone(),
            sender: sender_of(conn, link.study_pk).await?,
            receiver: Transfer::receiver("download link holder", download_id, ctx.client_ip.as_deref()),
            category: DOWNLOAD_CATEGORY.into(),
            result: result.into(),
        };
        insert_transfer(conn, &transfer).await?;
    }
    let event = AuditEvent::new(action, format!("download:{download_id}"), format!("exam:{}", link.exam_id), outcome)
        .with_detail("original DICOM download")
        .from_client(ctx.client_ip.clone(), ctx.request_id.clone());
    Ok((SharingResult::Download(verdict), vec![event]))
}

fn unlock_result(verdict: &UnlockVerdict) -> String {
    match verdict {
        UnlockVerdict::Opened => "opened with the right password".into(),
        UnlockVerdict::Wrong { locks: false } => "refused: wrong password".into(),
        UnlockVerdict::Wrong { locks: true } => "refused: wrong password; share locked for an hour".into(),
        UnlockVerdict::Locked { .. } => "refused: share locked after wrong passwords".into(),
        UnlockVerdict::AddressLimited => "refused: too many wrong passwords from this address".into(),
        UnlockVerdict::Expired => "refused: share expired".into(),
        UnlockVerdict::Revoked => "refused: share revoked".into(),
    }
}

/// The organization a study came from, as the transfer's sender.
async fn sender_of(conn: &mut SqliteConnection, study_pk: i64) -> Result<String> {
    let org: Option<(String, String)> =
        sqlx::query_as("SELECT o.name, o.code FROM studies s JOIN organizations o ON o.id = s.org_id WHERE s.pk = ?")
            .bind(study_pk)
            .fetch_optional(&mut *conn)
            .await?;
    let (name, code) = org.unwrap_or_default();
    Ok(Transfer::sender(&name, &code))
}

fn share_bucket(share_id: &str) -> Vec<u8> {
    format!("share-wrong\0{share_id}").into_bytes()
}

async fn insert_transfer(conn: &mut SqliteConnection, t: &Transfer) -> Result<()> {
    sqlx::query(
        "INSERT INTO transfer_log (at, account_id, sender, receiver, category, result) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(stamp(t.at))
    .bind(&t.account_id)
    .bind(&t.sender)
    .bind(&t.receiver)
    .bind(&t.category)
    .bind(&t.result)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_access(conn: &mut SqliteConnection, a: &Access) -> Result<()> {
    sqlx::query("INSERT INTO access_log (account_id, at, actor, action, object, client_ip) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&a.account_id)
        .bind(stamp(a.at))
        .bind(&a.actor)
        .bind(&a.action)
        .bind(&a.object)
        .bind(&a.client_ip)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
