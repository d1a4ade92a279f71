//! Organizations (hospitals) and their switches.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An organization's short code, as operators type it: 1–32 of `A-Z a-z 0-9 _ -`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an organization code has 1 to 32 characters among A-Z, a-z, 0-9, '_' and '-'")]
pub struct OrgCodeError;

impl OrgCode {
    pub fn parse(raw: &str) -> Result<OrgCode, OrgCodeError> {
        let ok = !raw.is_empty()
            && raw.len() <= 32
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok { Ok(OrgCode(raw.to_owned())) } else { Err(OrgCodeError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrgCode {
    type Error = OrgCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OrgCode::parse(&value)
    }
}

impl From<OrgCode> for String {
    fn from(code: OrgCode) -> String {
        code.0
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgCode({})", self.0)
    }
}

/// The switches an organization sets (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSwitches {
    /// Patients see this organization's exams only while it is on.
    pub cloud_film_enabled: bool,
    /// Patients may download original DICOM only while it is on.
    pub download_enabled: bool,
}

impl Default for OrgSwitches {
    fn default() -> Self {
        OrgSwitches { cloud_film_enabled: true, download_enabled: true }
    }
}

/// Parses the `on|off` words the CLI takes.
pub fn parse_switch(word: &str) -> Result<bool, String> {
    match word {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_restricted() {
        assert!(OrgCode::parse("PKUH-1").is_ok());
        assert!(OrgCode::parse("").is_err());
        assert!(OrgCode::parse("a b").is_err());
        assert!(OrgCode::parse("../x").is_err());
        assert!(OrgCode::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn switches_default_on() {
        let s = OrgSwitches::default();
        assert!(s.cloud_film_enabled && s.download_enabled);
        assert_eq!(parse_switch("off"), Ok(false));
        assert!(parse_switch("maybe").is_err());
    }
}
