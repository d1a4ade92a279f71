//! The patient side of the repository: accounts, one-time codes, sessions, consent, members,
//! exams and reports. Values arrive here already hashed or tokenized where the database only
//! needs to compare them; personal values are sealed by the repository.

use chrono::{DateTime, Utc};
use cloudfilm_core::consent::ConsentState;
use cloudfilm_core::member::{ConsentTimes, Relation};
use cloudfilm_core::otp::{OtpPolicy, OtpPurpose};
use cloudfilm_core::session::SessionTimes;
use cloudfilm_core::{AccountId, MemberId, OrgId, StudyPk};

/// Where a request came from, for the audit entries the repository writes itself.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// A session to create: only hashes of its secrets are kept.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token_hash: Vec<u8>,
    pub csrf_hash: Vec<u8>,
}

/// A member to add, validated and tokenized by the caller.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub id: MemberId,
    pub relation: Relation,
    pub name: String,
    pub id_number: String,
    pub id_token: Vec<u8>,
}

/// A code to send to a phone (or to a held adult), within the limits; counts the request for
/// the address.
#[derive(Debug, Clone)]
pub struct IssueCode {
    pub phone_token: Vec<u8>,
    pub purpose: OtpPurpose,
    pub code_hash: Vec<u8>,
    pub ip_bucket: Vec<u8>,
    pub policy: OtpPolicy,
    pub now: DateTime<Utc>,
    pub ctx: AuditContext,
}

/// A login code presented; on success the account is created at its first login, and a
/// session.
#[derive(Debug, Clone)]
pub struct Login {
    pub phone_token: Vec<u8>,
    pub phone: String,
    pub code_hash: Vec<u8>,
    pub ip_bucket: Vec<u8>,
    pub new_account_id: AccountId,
    pub session: NewSession,
    pub policy: OtpPolicy,
    pub now: DateTime<Utc>,
    pub ctx: AuditContext,
}

/// A step-up code presented; on success the session is replaced by a new, stepped-up one.
#[derive(Debug, Clone)]
pub struct StepUp {
    pub account_id: AccountId,
    pub phone_token: Vec<u8>,
    pub code_hash: Vec<u8>,
    pub ip_bucket: Vec<u8>,
    pub old_token_hash: Vec<u8>,
    pub session: NewSession,
    pub policy: OtpPolicy,
    pub now: DateTime<Utc>,
    pub ctx: AuditContext,
}

/// A consent event: given (with the policy version) or withdrawn.
#[derive(Debug, Clone)]
pub struct ConsentChange {
    pub account_id: AccountId,
    pub kind: String,
    pub policy_version: String,
    pub granted: bool,
    pub now: DateTime<Utc>,
}

/// Asks an adult member's consent: a code bound to the member (`code_token`) is recorded within
/// the code limits, the request stamped on the member, counted in `phone_bucket` and written
/// to the access logs in `access`.
#[derive(Debug, Clone)]
pub struct RequestMemberConsent {
    pub account_id: AccountId,
    pub member_id: MemberId,
    pub code_token: Vec<u8>,
    pub code_hash: Vec<u8>,
    pub ip_bucket: Vec<u8>,
    pub phone_bucket: Vec<u8>,
    pub policy: OtpPolicy,
    pub now: DateTime<Utc>,
    pub ctx: AuditContext,
    pub access: Vec<crate::sharing::Access>,
}

/// A member-consent code presented (wrong tries counted as for any code); when accepted the
/// member's exams open and `access` is written to the access logs.
#[derive(Debug, Clone)]
pub struct ConfirmMemberConsent {
    pub account_id: AccountId,
    pub member_id: MemberId,
    pub code_token: Vec<u8>,
    pub code_hash: Vec<u8>,
    pub ip_bucket: Vec<u8>,
    pub policy: OtpPolicy,
    pub now: DateTime<Utc>,
    pub ctx: AuditContext,
    pub access: Vec<crate::sharing::Access>,
}

/// The adult's own account (its matched "self" member) approves (`grant`) or ends a holding
/// of them by another account; refused unless the member held is that same person in another
/// account.
#[derive(Debug, Clone)]
pub struct SetHolding {
    pub self_account_id: AccountId,
    pub holder_member_id: MemberId,
    pub grant: bool,
    pub now: DateTime<Utc>,
    pub access: Vec<crate::sharing::Access>,
}

/// Whether a code may go out (`Ok`), or must wait this many seconds.
pub type CodeIssued = Result<(), i64>;

/// What a code check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Logged in (or stepped up): the account, and whether it was created now.
    Accepted {
        account_id: AccountId,
        created: bool,
    },
    Wrong,
    Expired,
    Exhausted,
    NoCode,
    /// Too many failures from this address: wait.
    Throttled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberConflict {
    /// This ID number is already a member of the account.
    Duplicate,
    /// The account already has its "self" member.
    SecondSelf,
    /// This ID number is already the "self" member of another account.
    SelfElsewhere,
    NotFound,
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub account_id: AccountId,
    pub csrf_hash: Vec<u8>,
    pub times: SessionTimes,
}

#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: AccountId,
    pub phone: String,
    pub phone_token: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    pub kind: String,
    pub policy_version: String,
    pub granted: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct Consents {
    pub state: ConsentState,
    pub events: Vec<ConsentEvent>,
}

#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub id: MemberId,
    pub relation: Relation,
    pub name: String,
    pub id_number: String,
    pub id_token: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub matched_at: Option<DateTime<Utc>>,
    /// The member's own consent to being held (adults held by another account).
    pub consent: ConsentTimes,
    /// `code` or `account`: how the consent was given.
    pub consent_via: Option<String>,
}

/// An account holding the adult whose own account asks: the member row of that account.
#[derive(Debug, Clone)]
pub struct HolderRecord {
    /// The holding's id: the member's id in the holding account.
    pub member_id: MemberId,
    pub account_id: AccountId,
    /// The holding account's phone (shown masked).
    pub account_phone: String,
    pub relation: Relation,
    pub created_at: DateTime<Utc>,
    pub consent: ConsentTimes,
    pub consent_via: Option<String>,
}

/// An exam as a patient sees it in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamRow {
    pub study_pk: StudyPk,
    pub exam_id: String,
    pub org_id: OrgId,
    pub org_name: String,
    pub org_code: String,
    /// Whether the organization lets patients download the original DICOM.
    pub download_enabled: bool,
    pub study_uid: String,
    pub modalities: String,
    pub date: Option<String>,
    pub time: Option<String>,
    pub description: Option<String>,
    pub accession_number: Option<String>,
    pub num_series: i64,
    pub num_instances: i64,
}

/// A study a manual match may name: only studies whose resident ID token is the member's.
#[derive(Debug, Clone)]
pub struct MatchCandidate {
    pub study_pk: StudyPk,
    pub accession_number: Option<String>,
    pub study_date: Option<String>,
    pub org_name: String,
    pub org_code: String,
    pub patient_name: Option<String>,
    /// Patient's Telephone Numbers (0010,2154) of the record, as the hospital sent them.
    pub patient_phones: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SeriesSummary {
    pub series_uid: String,
    pub modality: Option<String>,
    pub number: Option<i64>,
    pub description: Option<String>,
    pub body_part: Option<String>,
    pub num_instances: i64,
}

#[derive(Debug, Clone)]
pub struct ReportRecord {
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A data-subject request (S34).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    pub id: String,
    pub account_id: AccountId,
    pub kind: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub due_date: chrono::NaiveDate,
    pub status: String,
}
