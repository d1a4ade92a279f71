//! The Chinese resident identity number (GB 11643-1999): 17 digits and an ISO 7064 MOD 11-2
//! check character, with the province code and a real birth date inside.

use chrono::{Datelike, NaiveDate};
use std::fmt;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// A validated resident ID number, normalized to upper-case `X`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("a resident ID number has 18 characters")]
    Length,
    #[error("a resident ID number has 17 digits followed by a digit or X")]
    Character,
    #[error("the province code of the resident ID number does not exist")]
    Province,
    #[error("the birth date in the resident ID number is not a real date")]
    BirthDate,
    #[error("the birth date in the resident ID number is in the future")]
    FutureBirthDate,
    #[error("the check digit of the resident ID number is wrong")]
    CheckDigit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

/// The check character for the first 17 digits (ISO 7064 MOD 11-2).
pub fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl ResidentId {
    /// Validates a number against `today` (the birth date may not lie after it).
    pub fn parse(raw: &str, today: NaiveDate) -> Result<ResidentId, ResidentIdError> {
        let value = raw.trim().to_ascii_uppercase();
        let bytes = value.as_bytes();
        if bytes.len() != 18 {
            return Err(ResidentIdError::Length);
        }
        if !bytes[..17].iter().all(u8::is_ascii_digit) || !(bytes[17].is_ascii_digit() || bytes[17] == b'X') {
            return Err(ResidentIdError::Character);
        }
        let province = (bytes[0] - b'0') * 10 + (bytes[1] - b'0');
        if !(11..=82).contains(&province) {
            return Err(ResidentIdError::Province);
        }
        let birth = birth_date_of(bytes).ok_or(ResidentIdError::BirthDate)?;
        if birth > today {
            return Err(ResidentIdError::FutureBirthDate);
        }
        if check_char(&bytes[..17]) != bytes[17] {
            return Err(ResidentIdError::CheckDigit);
        }
        Ok(ResidentId(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> NaiveDate {
        birth_date_of(self.0.as_bytes()).expect("validated at parse")
    }

    /// The sex digit (17th): odd for men, even for women.
    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female }
    }

    /// Age in whole years on `today`.
    pub fn age_on(&self, today: NaiveDate) -> u32 {
        let birth = self.birth_date();
        let mut age = today.year() - birth.year();
        if (today.month(), today.day()) < (birth.month(), birth.day()) {
            age -= 1;
        }
        age.max(0) as u32
    }
}

fn birth_date_of(bytes: &[u8]) -> Option<NaiveDate> {
    let digits = std::str::from_utf8(&bytes[6..14]).ok()?;
    let year: i32 = digits[0..4].parse().ok()?;
    let month: u32 = digits[4..6].parse().ok()?;
    let day: u32 = digits[6..8].parse().ok()?;
    if year < 1850 {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Never prints the number itself.
impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", crate::masking::mask_id_number(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    #[test]
    fn accepts_the_known_valid_numbers() {
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.age_on(today()), 76);
        assert!(ResidentId::parse("11010519491231002x", today()).is_ok());
        assert!(ResidentId::parse("440524188001010014", today()).is_ok());
    }

    #[test]
    fn refuses_the_known_invalid_ones() {
        assert_eq!(ResidentId::parse("110101199003077777", today()), Err(ResidentIdError::CheckDigit));
        assert_eq!(ResidentId::parse("1101051949123100", today()), Err(ResidentIdError::Length));
        assert_eq!(ResidentId::parse("99010519491231002X", today()), Err(ResidentIdError::Province));
        assert_eq!(ResidentId::parse("110105194902300021", today()), Err(ResidentIdError::BirthDate));
        assert_eq!(ResidentId::parse("11010519491231002Y", today()), Err(ResidentIdError::Character));
        let future = format!("11010520300101001{}", check_char(b"11010520300101001") as char);
        assert_eq!(ResidentId::parse(&future, today()), Err(ResidentIdError::FutureBirthDate));
    }

    #[test]
    fn age_turns_on_the_birthday() {
        let first17 = b"11010520081124001";
        let id = format!("{}{}", std::str::from_utf8(first17).unwrap(), check_char(first17) as char);
        let id = ResidentId::parse(&id, today()).unwrap();
        assert_eq!(id.age_on(today()), 17);
        assert_eq!(id.age_on(NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()), 18);
    }

    proptest! {
        #[test]
        fn every_single_digit_change_is_rejected(pos in 0usize..18, delta in 1u8..11) {
            let valid = b"11010519491231002X";
            let alphabet = b"0123456789X";
            let mut changed = *valid;
            let idx = alphabet.iter().position(|&c| c == valid[pos]).unwrap();
            let new = alphabet[(idx + delta as usize) % 11];
            prop_assume!(pos == 17 || new != b'X');
            changed[pos] = new;
            let s = std::str::from_utf8(&changed).unwrap();
            prop_assert!(ResidentId::parse(s, today()).is_err());
        }

        #[test]
        fn every_adjacent_swap_is_rejected(pos in 0usize..17) {
            for valid in [&b"11010519491231002X"[..], &b"440524188001010014"[..]] {
                let mut swapped = valid.to_vec();
                swapped.swap(pos, pos + 1);
                prop_assume!(swapped != valid);
                let s = String::from_utf8(swapped).unwrap();
                prop_assert!(ResidentId::parse(&s, today()).is_err());
            }
        }
    }
}
