//! DICOM application entity titles (PS3.5 §6.2, AE): 1–16 characters of the default
//! repertoire without backslash or control characters, not all spaces; compared trimmed.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AeTitle(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an AE title has 1 to 16 printable ASCII characters other than '\\\\', and not only spaces")]
pub struct AeTitleError;

impl AeTitle {
    pub fn parse(raw: &str) -> Result<AeTitle, AeTitleError> {
        let value = raw.trim_matches(|c: char| c == ' ' || c == '\0');
        let valid =
            !value.is_empty() && value.len() <= 16 && value.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'\\');
        if valid { Ok(AeTitle(value.to_owned())) } else { Err(AeTitleError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeTitle({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_checked() {
        assert_eq!(AeTitle::parse(" CT_SCANNER1 ").unwrap().as_str(), "CT_SCANNER1");
        assert_eq!(AeTitle::parse("STORESCU\0").unwrap().as_str(), "STORESCU");
        for bad in ["", "   ", "A\\B", "ABCDEFGHIJKLMNOPQ", "A\nB", "拍片"] {
            assert!(AeTitle::parse(bad).is_err(), "{bad:?}");
        }
    }
}
