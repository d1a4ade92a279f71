//! The records the repository reads and writes.

use cloudfilm_core::instance::InstanceInfo;
pub use cloudfilm_core::instance::{InstanceRow, ResultRow, SeriesRow, StudyRow};
use cloudfilm_core::{AeTitle, OrgCode, OrgId, OrgSwitches};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub code: OrgCode,
    pub name: String,
    pub switches: OrgSwitches,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub org: Org,
    /// Keyed hash of the whole key.
    pub secret_hash: Vec<u8>,
    /// CIDR blocks the key may be used from; empty means anywhere.
    pub allow: Vec<String>,
    pub revoked: bool,
}

/// A DICOM node registered to an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AeRecord {
    pub title: AeTitle,
    pub org: Org,
    /// When set, the node may call only from this host, and C-MOVE sends there.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// When set, the node is accepted only over DIMSE TLS presenting this client certificate
    /// (SHA-256 of its DER, lowercase hex).
    pub certificate: Option<String>,
}

/// An instance whose blob is durable, ready for the index.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub org_id: OrgId,
    pub info: InstanceInfo,
    pub blob_id: String,
    pub size: u64,
    pub sha256: String,
}

/// What committing an instance did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Newly indexed: its blob is now referenced.
    Stored,
    /// The same bytes were already stored: the new blob is not needed.
    Duplicate,
    /// Another instance with this SOP Instance UID and different bytes was kept.
    Conflict,
}

/// Who imports, from where, and what was refused before reaching the index.
#[derive(Debug, Clone, Default)]
pub struct ImportContext {
    pub actor: String,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    /// `stow-rs`, `c-store`, `import`.
    pub interface: String,
    /// Instances refused before indexing: their study UID when known, and the reason.
    pub rejected: Vec<(Option<String>, String)>,
}
