//! Phone numbers patients log in with: mainland mobiles (S19) and Hong Kong / Macau numbers.

use std::fmt;

/// A normalized phone number: 11 mainland digits, or `+852`/`+853` followed by 8 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid mobile phone number (mainland 1[3-9] and 9 digits, or +852/+853 and 8 digits)")]
pub struct PhoneError;

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<PhoneNumber, PhoneError> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        for (prefix, len) in [("+852", 8), ("00852", 8), ("+853", 8), ("00853", 8)] {
            if let Some(rest) = compact.strip_prefix(prefix) {
                if rest.len() == len && rest.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(PhoneNumber(format!("+{}{}", prefix.trim_start_matches(['+', '0']), rest)));
                }
                return Err(PhoneError);
            }
        }
        let national = compact.strip_prefix("+86").or_else(|| compact.strip_prefix("0086")).unwrap_or(&compact);
        let b = national.as_bytes();
        if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit) {
            Ok(PhoneNumber(national.to_owned()))
        } else {
            Err(PhoneError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Never prints the number itself.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", crate::masking::mask_phone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_mainland_numbers() {
        for raw in ["13800138000", "138 0013 8000", "138-0013-8000", "+8613800138000", "008613800138000"] {
            assert_eq!(PhoneNumber::parse(raw).unwrap().as_str(), "13800138000", "{raw}");
        }
    }

    #[test]
    fn accepts_hong_kong_and_macau() {
        assert_eq!(PhoneNumber::parse("+852 9123 4567").unwrap().as_str(), "+85291234567");
        assert_eq!(PhoneNumber::parse("00853 6612 3456").unwrap().as_str(), "+85366123456");
    }

    #[test]
    fn refuses_malformed_numbers() {
        for raw in ["12800138000", "1380013800", "138001380001", "1380013800a", "", "+85291234", "+1 2025550100"] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw}");
        }
    }
}
