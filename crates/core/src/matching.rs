//! Matching a member to the hospital's records (DESIGN §2). The first match is manual: the
//! member names one exam (accession number, exam date or organization) and the hospital's own
//! record must agree with the member's name and ID number. Agreement ignores full-width versus
//! half-width forms, spaces and letter case; DICOM person names agree through any of their
//! component groups (alphabetic, ideographic, phonetic), with the `^` separators ignored.

use chrono::NaiveDate;

/// Folds full-width ASCII forms and the ideographic space to their half-width forms, drops
/// white space and upper-cases letters.
pub fn fold(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether a member's name agrees with a DICOM Patient's Name (any component group).
pub fn name_agrees(member_name: &str, dicom_name: &str) -> bool {
    let wanted = fold(member_name).replace(['^', '·', '•', '.'], "");
    if wanted.is_empty() {
        return false;
    }
    dicom_name.split('=').any(|group| fold(group).replace(['^', '·', '•', '.'], "") == wanted)
}

/// Whether a member's ID number is among the record's identifiers.
pub fn id_agrees(member_id: &str, record_ids: &[String]) -> bool {
    let wanted = fold(member_id);
    !wanted.is_empty() && record_ids.iter().any(|id| fold(id) == wanted)
}

/// What the member names in a manual match: at least one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchClaim {
    pub accession_number: Option<String>,
    /// As DICOM stores it: `YYYYMMDD`.
    pub exam_date: Option<String>,
    /// Folded organization name (or code).
    pub organization: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("name at least one of accession_number, exam_date or organization")]
    Empty,
    #[error("exam_date must be a real date as YYYY-MM-DD or YYYYMMDD")]
    Date,
    #[error("a value is too long")]
    TooLong,
}

impl MatchClaim {
    pub fn parse(
        accession_number: Option<&str>,
        exam_date: Option<&str>,
        organization: Option<&str>,
    ) -> Result<MatchClaim, ClaimError> {
        let keep = |v: Option<&str>| -> Result<Option<String>, ClaimError> {
            match v.map(fold).filter(|v| !v.is_empty()) {
                Some(v) if v.chars().count() > 64 => Err(ClaimError::TooLong),
                other => Ok(other),
            }
        };
        let accession_number = keep(accession_number)?;
        let organization = keep(organization)?;
        let exam_date = match keep(exam_date)? {
            None => None,
            Some(d) => Some(parse_date(&d).ok_or(ClaimError::Date)?.format("%Y%m%d").to_string()),
        };
        if accession_number.is_none() && exam_date.is_none() && organization.is_none() {
            return Err(ClaimError::Empty);
        }
        Ok(MatchClaim { accession_number, exam_date, organization })
    }

    /// Whether a study of an organization answers every part of the claim.
    pub fn fits(&self, accession: Option<&str>, study_date: Option<&str>, org_name: &str, org_code: &str) -> bool {
        let accession_ok = self.accession_number.as_ref().is_none_or(|a| accession.is_some_and(|x| &fold(x) == a));
        let date_ok = self.exam_date.as_ref().is_none_or(|d| study_date.is_some_and(|x| x.trim() == d));
        let org_ok = self.organization.as_ref().is_none_or(|o| &fold(org_name) == o || &fold(org_code) == o);
        accession_ok && date_ok && org_ok
    }
}

fn parse_date(value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(value, "%Y%m%d")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_width_space_and_case() {
        assert_eq!(fold("ｚｈａｎｇ　san"), "ZHANGSAN");
        assert_eq!(fold(" 张 三 "), "张三");
        assert_eq!(fold("１１０１０５１９４９１２３１００２ｘ"), "11010519491231002X");
    }

    #[test]
    fn names_agree_through_any_group() {
        assert!(name_agrees("张三", "Zhang^San=张^三=zhang^san"));
        assert!(name_agrees("zhang san", "ZHANG^SAN"));
        assert!(name_agrees("ＺＨＡＮＧ ＳＡＮ", "Zhang^San"));
        assert!(!name_agrees("张四", "Zhang^San=张^三"));
        assert!(!name_agrees("", "Zhang^San"));
        assert!(!name_agrees("张", "张^三"));
    }

    #[test]
    fn ids_agree_whatever_the_width_and_case() {
        let ids = vec!["MRN001".to_owned(), "11010519491231002X".to_owned()];
        assert!(id_agrees("11010519491231002x", &ids));
        assert!(id_agrees("１１０１０５１９４９１２３１００２Ｘ", &ids));
        assert!(!id_agrees("440524188001010014", &ids));
    }

    #[test]
    fn claims_need_one_part_and_real_dates() {
        assert_eq!(MatchClaim::parse(None, None, Some("  ")), Err(ClaimError::Empty));
        assert_eq!(MatchClaim::parse(None, Some("2026-02-30"), None), Err(ClaimError::Date));
        let c = MatchClaim::parse(Some("acc 1"), Some("2026-02-03"), None).unwrap();
        assert_eq!(c.exam_date.as_deref(), Some("20260203"));
        assert!(c.fits(Some("ACC1"), Some("20260203"), "x", "y"));
        assert!(!c.fits(Some("ACC1"), Some("20260204"), "x", "y"));
        assert!(!c.fits(None, Some("20260203"), "x", "y"));
        let o = MatchClaim::parse(None, None, Some("协和医院")).unwrap();
        assert!(o.fits(None, None, "协和 医院", "PUMCH"));
        assert!(MatchClaim::parse(None, None, Some("pumch")).unwrap().fits(None, None, "协和医院", "PUMCH"));
    }
}
