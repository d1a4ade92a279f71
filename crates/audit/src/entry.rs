//! One audit entry: who did what to which study, with what outcome, from where, when.
//! Entries name organizations, keys, accounts and studies by opaque ids or UIDs, never by a
//! person's name, phone or ID number.

use serde::{Deserialize, Serialize};

/// What happened, with its DICOM PS3.15 A.5 (IHE ATNA) event ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Instances stored (STOW-RS, C-STORE, import).
    Import,
    /// A search (QIDO-RS, C-FIND).
    Query,
    /// Instances, metadata, frames or renderings read.
    InstancesAccessed,
    /// Data leaving the archive (download, share).
    Export,
    Login,
    Logout,
    /// Failed authentication, integrity failures, refused access.
    SecurityAlert,
    PatientRecord,
    StudyDeleted,
    /// The audit log itself was read or verified.
    AuditLogUsed,
    /// Organizations, keys and AE titles changed.
    SecurityAttributesChanged,
}

impl Action {
    pub fn event_id(self) -> &'static str {
        match self {
            Action::Import => "110107",
            Action::Query => "110112",
            Action::InstancesAccessed => "110103",
            Action::Export => "110106",
            Action::Login | Action::Logout => "110114",
            Action::SecurityAlert => "110113",
            Action::PatientRecord => "110110",
            Action::StudyDeleted => "110105",
            Action::AuditLogUsed => "110101",
            Action::SecurityAttributesChanged => "110137",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "reason")]
pub enum Outcome {
    Success,
    /// Part of the request succeeded (a STOW with some failed instances).
    Partial(String),
    Failure(String),
}

/// An event before it is sequenced into the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub action: Action,
    /// `org:<code>/key:<key id>`, `cli:<user>`, `account:<id>` — never a personal value.
    pub actor: String,
    /// What the request named or touched: `study:<uid>`, `org:<code>`, a count — never names.
    pub object: String,
    pub outcome: Outcome,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    /// Free detail without personal values (how many instances, which interface).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl AuditEvent {
    pub fn new(action: Action, actor: impl Into<String>, object: impl Into<String>, outcome: Outcome) -> Self {
        AuditEvent {
            action,
            actor: actor.into(),
            object: object.into(),
            outcome,
            client_ip: None,
            request_id: None,
            detail: String::new(),
        }
    }

    pub fn from_client(mut self, ip: Option<String>, request_id: Option<String>) -> Self {
        self.client_ip = ip;
        self.request_id = request_id;
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The canonical bytes of the sequenced entry, which the chain hashes.
    pub fn canonical(&self, seq: u64, at: &str) -> String {
        #[derive(Serialize)]
        struct Sequenced<'a> {
            seq: u64,
            at: &'a str,
            event_id: &'static str,
            #[serde(flatten)]
            event: &'a AuditEvent,
        }
        serde_json::to_string(&Sequenced { seq, at, event_id: self.action.event_id(), event: self })
            .expect("an audit entry always serializes")
    }
}

/// Reads back the sequence number inside an entry's canonical bytes.
pub fn seq_of(canonical: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(canonical).ok()?.get("seq")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_carry_seq_time_and_event_id() {
        let e = AuditEvent::new(Action::Import, "org:H1/key:k1", "study:1.2.3", Outcome::Success)
            .from_client(Some("127.0.0.1".into()), Some("r1".into()));
        let c = e.canonical(7, "2026-11-23T00:00:00Z");
        assert!(c.contains(r#""event_id":"110107""#), "{c}");
        assert!(c.contains(r#""result":"success""#), "{c}");
        assert_eq!(seq_of(&c), Some(7));
        assert_eq!(c, e.canonical(7, "2026-11-23T00:00:00Z"));
    }
}
