//! Shares and download links as the repository keeps them, with the transfer log and the
//! patient's access log. Decisions that must not race (wrong passwords and codes, locks,
//! address limits) are taken inside the single writer from the rules in `core`.

use crate::patients::AuditContext;
use chrono::{DateTime, Utc};
use cloudfilm_core::download::DownloadPolicy;
use cloudfilm_core::share::{SharePolicy, ShareRecord, UnlockVerdict};
use cloudfilm_core::{AccountId, MemberId, StudyPk};

/// The data category of a download package, for the transfer log.
pub const DOWNLOAD_CATEGORY: &str = "original DICOM instances of one exam, with DICOMDIR and signed manifest";

pub fn share_category(deidentified: bool) -> &'static str {
    if deidentified {
        "de-identified DICOM images of one exam (PS3.15 basic profile)"
    } else {
        "report and images of one exam, for viewing"
    }
}

/// A share to create, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewShare {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub account_id: AccountId,
    pub member_id: MemberId,
    pub study_pk: StudyPk,
    pub password_hash: String,
    pub deidentified: bool,
    pub notify_owner: bool,
    pub expires_at: DateTime<Utc>,
}

/// A download link to create.
#[derive(Debug, Clone)]
pub struct NewDownload {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub account_id: AccountId,
    pub member_id: MemberId,
    pub study_pk: StudyPk,
    pub code_hash: Vec<u8>,
}

/// One line of the transfer log (T/GDNS 007 §7.5c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub at: DateTime<Utc>,
    pub account_id: AccountId,
    pub sender: String,
    pub receiver: String,
    pub category: String,
    pub result: String,
}

impl Transfer {
    /// The archive acting for the organization the data came from.
    pub fn sender(org_name: &str, org_code: &str) -> String {
        format!("cloudfilm archive for {org_name} ({org_code})")
    }

    /// Who received it: a kind of receiver, the share or link id, and its address.
    pub fn receiver(who: &str, id: &str, client_ip: Option<&str>) -> String {
        match client_ip {
            Some(ip) => format!("{who} ({id}) at {ip}"),
            None => format!("{who} ({id})"),
        }
    }
}

/// One line of an account's access log: who did what to which of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub account_id: AccountId,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub client_ip: Option<String>,
}

/// A password presented for a share, checked by the caller (`password_matches`); the verdict
/// is taken from the share's and the address's counts. When it opens the share, the session
/// is created and the view counted and logged.
#[derive(Debug, Clone)]
pub struct Unlock {
    pub share_id: String,
    pub password_matches: bool,
    pub ip_bucket: Vec<u8>,
    pub session_token_hash: Vec<u8>,
    pub policy: SharePolicy,
    pub now: DateTime<Utc>,
    pub ctx: AuditContext,
}

/// What a password presented for a share came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlocked {
    pub verdict: UnlockVerdict,
    /// Whether this opened the share for the first time and its owner wants to know.
    pub notify_owner: bool,
    pub session_expires_at: Option<DateTime<Utc>>,
}

/// A security code presented for a download link.
#[derive(Debug, Clone)]
pub struct TryDownload {
    pub download_id: String,
    pub code_hash: Vec<u8>,
    pub ip_bucket: Vec<u8>,
    pub policy: DownloadPolicy,
    pub now: DateTime<Utc>,
    pub ctx: AuditContext,
}

/// A share with what its owner and the rules need to know.
#[derive(Debug, Clone)]
pub struct ShareRow {
    pub id: String,
    pub account_id: AccountId,
    pub member_id: MemberId,
    pub study_pk: StudyPk,
    pub exam_id: String,
    pub password_hash: String,
    pub deidentified: bool,
    pub notify_owner: bool,
    pub record: ShareRecord,
    pub views: i64,
    pub first_opened_at: Option<DateTime<Utc>>,
}

/// A live-or-not share-scoped session and the share it opened.
#[derive(Debug, Clone)]
pub struct ShareSessionRow {
    pub expires_at: DateTime<Utc>,
    pub share: ShareRow,
}

#[derive(Debug, Clone)]
pub struct DownloadRow {
    pub id: String,
    pub account_id: AccountId,
    pub member_id: MemberId,
    pub study_pk: StudyPk,
    pub exam_id: String,
    pub created_at: DateTime<Utc>,
    pub wrong_codes: u32,
    pub invalidated: bool,
}
