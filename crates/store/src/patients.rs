//! The patient side of the repository: accounts, one-time codes, sessions, consent, members,
//! exams and reports. Values arrive here already hashed or tokenized where the database only
//! needs to compare them; personal values are sealed by the repository.

use chrono::{DateTime, Utc};
use cloudfilm_core::consent::ConsentState;
use cloudfilm_core::member::{ConsentTimes, Relation};
use cloudfilm_core::otp::{OtpPolicy, OtpPurpose};
use cloudfilm_core::session::SessionTimes;

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
    pub id: String,
    pub relation: Relation,
    pub name: String,
    pub id_number: String,
    pub id_token: Vec<u8>,
}

#[derive(Debug, Clone)]
pub enum PatientOp {
    /// Records a code sent to a phone, when the limits allow; counts the request for the address.
    IssueCode {
        phone_token: Vec<u8>,
        purpose: OtpPurpose,
        code_hash: Vec<u8>,
        ip_bucket: Vec<u8>,
        policy: OtpPolicy,
        now: DateTime<Utc>,
        ctx: AuditContext,
    },
    /// Checks a login code; on success creates the account at its first login and a session.
    Login {
        phone_token: Vec<u8>,
        phone: String,
        code_hash: Vec<u8>,
        ip_bucket: Vec<u8>,
        new_account_id: String,
        session: NewSession,
        policy: OtpPolicy,
        now: DateTime<Utc>,
        ctx: AuditContext,
    },
    /// Checks a step-up code; on success replaces the session by a new, stepped-up one.
    StepUp {
        account_id: String,
        phone_token: Vec<u8>,
        code_hash: Vec<u8>,
        ip_bucket: Vec<u8>,
        old_token_hash: Vec<u8>,
        session: NewSession,
        policy: OtpPolicy,
        now: DateTime<Utc>,
        ctx: AuditContext,
    },
    TouchSession {
        token_hash: Vec<u8>,
        now: DateTime<Utc>,
    },
    RevokeSession {
        token_hash: Vec<u8>,
        now: DateTime<Utc>,
    },
    /// A consent event: given (with the policy version) or withdrawn.
    Consent {
        account_id: String,
        kind: String,
        policy_version: String,
        granted: bool,
        now: DateTime<Utc>,
    },
    AddMember {
        account_id: String,
        member: NewMember,
        now: DateTime<Utc>,
    },
    RemoveMember {
        account_id: String,
        member_id: String,
    },
    /// The first manual match succeeded against this study.
    MarkMatched {
        member_id: String,
        study_pk: i64,
        now: DateTime<Utc>,
    },
    /// Asks an adult member's consent: a code bound to the member (`code_token`) is recorded
    /// within the code limits, the request stamped on the member, counted in `phone_bucket`
    /// and written to the access logs in `access`.
    RequestMemberConsent {
        account_id: String,
        member_id: String,
        code_token: Vec<u8>,
        code_hash: Vec<u8>,
        ip_bucket: Vec<u8>,
        phone_bucket: Vec<u8>,
        policy: OtpPolicy,
        now: DateTime<Utc>,
        ctx: AuditContext,
        access: Vec<crate::sharing::Access>,
    },
    /// Checks a member-consent code (wrong tries counted as for any code); when accepted the
    /// member's exams open and `access` is written to the access logs.
    ConfirmMemberConsent {
        account_id: String,
        member_id: String,
        code_token: Vec<u8>,
        code_hash: Vec<u8>,
        ip_bucket: Vec<u8>,
        policy: OtpPolicy,
        now: DateTime<Utc>,
        ctx: AuditContext,
        access: Vec<crate::sharing::Access>,
    },
    /// The adult's own account (its matched "self" member) approves (`grant`) or ends a
    /// holding of them by another account; `Refused(NotFound)` unless the member held is that
    /// same person in another account.
    SetHolding {
        self_account_id: String,
        holder_member_id: String,
        grant: bool,
        now: DateTime<Utc>,
        access: Vec<crate::sharing::Access>,
    },
    /// Counts one event toward each of these rate limits.
    CountEvents {
        buckets: Vec<Vec<u8>>,
        now: DateTime<Utc>,
    },
    /// A data-subject request, with its due date.
    FileRequest {
        request: DataRequest,
    },
    /// A hospital attached report text to one of its studies.
    AddReport {
        study_pk: i64,
        body: String,
        now: DateTime<Utc>,
    },
}

/// What a code check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// Logged in (or stepped up): the account, and whether it was created now.
    Accepted {
        account_id: String,
        created: bool,
    },
    Wrong,
    Expired,
    Exhausted,
    NoCode,
    /// Too many failures from this address: wait.
    Throttled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientResult {
    /// The code may go out (`Ok`), or must wait this many seconds.
    CodeIssued(Result<(), i64>),
    Code(CodeOutcome),
    Done,
    /// A uniqueness rule refused the write (duplicate member, second "self", …).
    Refused(MemberConflict),
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
    pub account_id: String,
    pub csrf_hash: Vec<u8>,
    pub times: SessionTimes,
}

#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: String,
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
    pub id: String,
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
    pub member_id: String,
    pub account_id: String,
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
    pub study_pk: i64,
    pub exam_id: String,
    pub org_id: i64,
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
    pub study_pk: i64,
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
    pub account_id: String,
    pub kind: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
    pub due_date: chrono::NaiveDate,
    pub status: String,
}
