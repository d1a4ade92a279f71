//! The rules of shares and downloads, whatever the database: wrong passwords and codes are
//! counted, shares locked and links invalidated under a lock on the share or link and the
//! address, so that racing attempts are decided one after the other; every attempt lands in
//! the transfer log and the audit chain, every view in the owner's access log.

use super::patients::Decided;
use crate::error::Result;
use crate::sharing::*;
use crate::tx::Tx;
use chrono::Duration;
use cloudfilm_audit::{Action, AuditEvent, Outcome};
use cloudfilm_core::StudyPk;
use cloudfilm_core::download::{DownloadLink, DownloadVerdict};
use cloudfilm_core::share::UnlockVerdict;
use cloudfilm_crypto::blind::constant_time_eq;

/// `None`: no such share.
pub async fn unlock(tx: &mut dyn Tx, op: &Unlock) -> Result<Decided<Option<Unlocked>>> {
    let bucket = share_bucket(&op.share_id);
    tx.lock(&mut [bucket.clone(), op.ip_bucket.clone()]).await?;
    let Some(share) = tx.share(&op.share_id).await? else {
        return Ok((None, Vec::new()));
    };
    let now = op.now;
    let hour_ago = now - Duration::hours(1);
    let since = share.record.locked_until.map_or(hour_ago, |until| until.max(hour_ago));
    let wrong = tx.events_since(&bucket, since).await?;
    let ip_wrong = tx.events_since(&op.ip_bucket, hour_ago).await?;
    let verdict = op.policy.unlock(&share.record, op.password_matches, wrong, ip_wrong, now);
    let mut session_expires_at = None;
    let mut notify_owner = false;
    match verdict {
        UnlockVerdict::Opened => {
            let ends = op.policy.session_end(&share.record, now);
            tx.insert_share_session(&op.session_token_hash, &op.share_id, now, ends).await?;
            tx.count_share_view(&op.share_id, now).await?;
            notify_owner = share.notify_owner && share.first_opened_at.is_none();
            session_expires_at = Some(ends);
            let access = Access {
                account_id: share.account_id.clone(),
                at: now,
                actor: format!("share recipient (share {})", op.share_id),
                action: "opened the share with its password".into(),
                object: format!("exam {}", share.exam_id),
                client_ip: op.ctx.client_ip.clone(),
            };
            tx.insert_access(&access).await?;
        }
        UnlockVerdict::Wrong { locks } => {
            tx.count_event(&bucket, now).await?;
            tx.count_event(&op.ip_bucket, now).await?;
            if locks {
                tx.lock_share(&op.share_id, now + Duration::seconds(op.policy.lock_secs)).await?;
            }
        }
        _ => {}
    }
    let result = unlock_result(&verdict);
    let transfer = Transfer {
        at: now,
        account_id: share.account_id.clone(),
        sender: sender_of(tx, share.study_pk).await?,
        receiver: Transfer::receiver("share recipient", &op.share_id, op.ctx.client_ip.as_deref()),
        category: share_category(share.deidentified).into(),
        result: result.clone(),
    };
    tx.insert_transfer(&transfer).await?;
    let outcome = match verdict {
        UnlockVerdict::Opened => Outcome::Success,
        _ => Outcome::Failure(result),
    };
    let action = if verdict == UnlockVerdict::Opened { Action::Export } else { Action::SecurityAlert };
    let event = AuditEvent::new(action, format!("share:{}", op.share_id), format!("exam:{}", share.exam_id), outcome)
        .with_detail(format!("share password presented ({})", share_category(share.deidentified)))
        .from_client(op.ctx.client_ip.clone(), op.ctx.request_id.clone());
    Ok((Some(Unlocked { verdict, notify_owner, session_expires_at }), vec![event]))
}

/// `None`: no such link; `Some(None)`: too many wrong codes from this address this hour.
pub async fn try_download(tx: &mut dyn Tx, op: &TryDownload) -> Result<Decided<Option<Option<DownloadVerdict>>>> {
    tx.lock(&mut [download_key(&op.download_id), op.ip_bucket.clone()]).await?;
    let Some((link, stored_code)) = tx.download(&op.download_id).await? else {
        return Ok((None, Vec::new()));
    };
    let now = op.now;
    let verdict = if tx.events_since(&op.ip_bucket, now - Duration::hours(1)).await?
        >= op.policy.wrong_codes_per_ip_hour
    {
        None
    } else {
        let record =
            DownloadLink { created_at: link.created_at, wrong_codes: link.wrong_codes, invalidated: link.invalidated };
        Some(op.policy.check(&record, constant_time_eq(&stored_code, &op.code_hash), now))
    };
    match verdict {
        Some(DownloadVerdict::Accepted) => tx.mark_download_used(&op.download_id, now).await?,
        Some(DownloadVerdict::Wrong { invalidates }) => {
            tx.count_wrong_download_code(&op.download_id, invalidates, now).await?;
            tx.count_event(&op.ip_bucket, now).await?;
        }
        _ => {}
    }
    let (action, outcome, result) = download_outcome(verdict);
    // An accepted code's transfer is logged when the package has gone out (or failed).
    if let Some(result) = result {
        let transfer = Transfer {
            at: now,
            account_id: link.account_id.clone(),
            sender: sender_of(tx, link.study_pk).await?,
            receiver: Transfer::receiver("download link holder", &op.download_id, op.ctx.client_ip.as_deref()),
            category: DOWNLOAD_CATEGORY.into(),
            result: result.into(),
        };
        tx.insert_transfer(&transfer).await?;
    }
    let event =
        AuditEvent::new(action, format!("download:{}", op.download_id), format!("exam:{}", link.exam_id), outcome)
            .with_detail("original DICOM download")
            .from_client(op.ctx.client_ip.clone(), op.ctx.request_id.clone());
    Ok((Some(verdict), vec![event]))
}

fn download_outcome(verdict: Option<DownloadVerdict>) -> (Action, Outcome, Option<&'static str>) {
    let refused = |why: &str, result: &'static str| (Action::SecurityAlert, Outcome::Failure(why.into()), Some(result));
    match verdict {
        Some(DownloadVerdict::Accepted) => (Action::Export, Outcome::Success, None),
        Some(DownloadVerdict::Wrong { invalidates: false }) => {
            refused("wrong security code", "refused: wrong security code")
        }
        Some(DownloadVerdict::Wrong { invalidates: true }) => {
            refused("wrong security code; the link is invalidated", "refused: wrong security code; link invalidated")
        }
        Some(DownloadVerdict::Expired) => refused("expired link", "refused: link expired"),
        Some(DownloadVerdict::Invalidated) => refused("invalidated link", "refused: link invalidated"),
        None => refused("too many wrong codes from this address", "refused: too many wrong codes from this address"),
    }
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
async fn sender_of(tx: &mut dyn Tx, study_pk: StudyPk) -> Result<String> {
    let (name, code) = tx.study_org(study_pk).await?.unwrap_or_default();
    Ok(Transfer::sender(&name, &code))
}

fn share_bucket(share_id: &str) -> Vec<u8> {
    format!("share-wrong\0{share_id}").into_bytes()
}

fn download_key(download_id: &str) -> Vec<u8> {
    format!("download\0{download_id}").into_bytes()
}
