//! DICOM unique identifiers (PS3.5 §9.1): validated before any use, so that no UID can ever
//! smuggle a path, a query or a wildcard into the archive.

use std::fmt;

/// A syntactically valid DICOM UID: at most 64 characters, numeric components separated by
/// single dots, no component with a leading zero (except `0` itself).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    #[error("the UID is empty")]
    Empty,
    #[error("the UID is longer than 64 characters")]
    TooLong,
    #[error("the UID may contain only digits and dots")]
    BadCharacter,
    #[error("the UID has an empty component")]
    EmptyComponent,
    #[error("a UID component has a leading zero")]
    LeadingZero,
}

impl Uid {
    /// Parses a UID, trimming the trailing NUL or space padding DICOM values may carry.
    pub fn parse(raw: &str) -> Result<Uid, UidError> {
        let value = raw.trim_end_matches(['\0', ' ']).trim_start_matches(' ');
        if value.is_empty() {
            return Err(UidError::Empty);
        }
        if value.len() > 64 {
            return Err(UidError::TooLong);
        }
        if !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(UidError::BadCharacter);
        }
        for component in value.split('.') {
            if component.is_empty() {
                return Err(UidError::EmptyComponent);
            }
            if component.len() > 1 && component.starts_with('0') {
                return Err(UidError::LeadingZero);
            }
        }
        Ok(Uid(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self.0)
    }
}

impl AsRef<str> for Uid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_standard_uids_and_trims_padding() {
        assert_eq!(Uid::parse("1.2.840.10008.1.2.1").unwrap().as_str(), "1.2.840.10008.1.2.1");
        assert_eq!(Uid::parse("1.2.3\0").unwrap().as_str(), "1.2.3");
        assert_eq!(Uid::parse("2.25.0").unwrap().as_str(), "2.25.0");
    }

    #[test]
    fn refuses_paths_and_malformed_uids() {
        assert_eq!(Uid::parse("../../x"), Err(UidError::BadCharacter));
        assert_eq!(Uid::parse("1.2/3"), Err(UidError::BadCharacter));
        assert_eq!(Uid::parse(""), Err(UidError::Empty));
        assert_eq!(Uid::parse("1..2"), Err(UidError::EmptyComponent));
        assert_eq!(Uid::parse(".1.2"), Err(UidError::EmptyComponent));
        assert_eq!(Uid::parse("1.02"), Err(UidError::LeadingZero));
        assert_eq!(Uid::parse(&"1.".repeat(33)), Err(UidError::TooLong));
        assert_eq!(Uid::parse("1.2.*"), Err(UidError::BadCharacter));
    }
}
