//! Parsing QIDO-RS query parameters (PS3.18 §8.3.4) into the core query model.

use cloudfilm_core::query::{Attr, Filter, Include, Level, Matcher, Query};
use dicom_core::Tag;
use dicom_core::dictionary::DataDictionary;
use dicom_dictionary_std::StandardDataDictionary;

/// Results per request at most, whatever `limit` asks.
pub const MAX_LIMIT: usize = 5000;
/// Results per request when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QidoError {
    #[error("unknown attribute {0:?}")]
    UnknownAttribute(String),
    #[error("matching on {0} is not supported (only indexed attributes can be matched)")]
    UnsupportedMatch(String),
    #[error("invalid value for {attr}: {reason}")]
    BadValue { attr: String, reason: String },
    #[error("{0} must be a non-negative integer")]
    BadNumber(&'static str),
}

/// A tag from a keyword (`PatientName`) or eight hex digits (`00100010`).
pub fn parse_tag(key: &str) -> Option<Tag> {
    if key.len() == 8 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        let v = u32::from_str_radix(key, 16).ok()?;
        return Some(Tag((v >> 16) as u16, (v & 0xFFFF) as u16));
    }
    StandardDataDictionary.by_name(key).map(|entry| entry.tag.inner())
}

pub fn tag_u32(tag: Tag) -> u32 {
    (u32::from(tag.group()) << 16) | u32::from(tag.element())
}

/// Parses the query string pairs of a QIDO-RS request at `level`. Returns the query and the
/// warnings to send back (parameters accepted but without effect).
pub fn parse_qido(
    level: Level,
    study_uid: Option<String>,
    series_uid: Option<String>,
    params: &[(String, String)],
) -> Result<(Query, Vec<String>), QidoError> {
    let mut query = Query::new(level);
    query.limit = DEFAULT_LIMIT;
    query.study_uid = study_uid;
    query.series_uid = series_uid;
    let mut warnings = Vec::new();
    let mut include_tags: Vec<u32> = Vec::new();
    for (key, value) in params {
        match key.as_str() {
            "limit" => query.limit = value.parse::<usize>().map_err(|_| QidoError::BadNumber("limit"))?.min(MAX_LIMIT),
            "offset" => query.offset = value.parse().map_err(|_| QidoError::BadNumber("offset"))?,
            "fuzzymatching" => {
                if value == "true" {
                    warnings.push("fuzzy matching is not supported; exact and wildcard matching were used".into());
                }
            }
            "includefield" => {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if field == "all" {
                        query.include = Include::All;
                    } else {
                        let tag = parse_tag(field).ok_or_else(|| QidoError::UnknownAttribute(field.into()))?;
                        include_tags.push(tag_u32(tag));
                    }
                }
            }
            _ => {
                let tag = parse_tag(key).ok_or_else(|| QidoError::UnknownAttribute(key.clone()))?;
                let attr = Attr::from_tag(tag_u32(tag)).ok_or_else(|| QidoError::UnsupportedMatch(key.clone()))?;
                if attr.level() > level {
                    return Err(QidoError::UnsupportedMatch(format!("{key} at {level} level")));
                }
                let matcher = Matcher::parse(attr, value)
                    .map_err(|e| QidoError::BadValue { attr: key.clone(), reason: e.to_string() })?;
                match matcher {
                    Some(matcher) => query.filters.push(Filter { attr, matcher }),
                    // An empty value asks for the attribute to be returned.
                    None => include_tags.push(attr.tag()),
                }
            }
        }
    }
    if query.include != Include::All && !include_tags.is_empty() {
        query.include = Include::Tags(include_tags);
    }
    Ok((query, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keywords_tags_and_paging() {
        let (q, warnings) = parse_qido(
            Level::Study,
            None,
            None,
            &params(&[
                ("PatientName", "WANG*"),
                ("00080020", "20260101-"),
                ("limit", "10"),
                ("offset", "5"),
                ("includefield", "00081030,InstitutionName"),
            ]),
        )
        .unwrap();
        assert!(warnings.is_empty());
        assert_eq!(q.filters.len(), 2);
        assert_eq!(q.filters[1].attr, Attr::StudyDate);
        assert_eq!((q.limit, q.offset), (10, 5));
        assert_eq!(q.include, Include::Tags(vec![0x0008_1030, 0x0008_0080]));
    }

    #[test]
    fn bad_parameters_are_refused() {
        let bad = |pairs: &[(&str, &str)]| parse_qido(Level::Study, None, None, &params(pairs)).unwrap_err();
        assert!(matches!(bad(&[("NoSuchThing", "x")]), QidoError::UnknownAttribute(_)));
        assert!(matches!(bad(&[("ImagePositionPatient", "1")]), QidoError::UnsupportedMatch(_)));
        assert!(matches!(bad(&[("SOPInstanceUID", "1.2")]), QidoError::UnsupportedMatch(_)));
        assert!(matches!(bad(&[("StudyDate", "2026")]), QidoError::BadValue { .. }));
        assert!(matches!(bad(&[("limit", "-1")]), QidoError::BadNumber("limit")));
        assert!(matches!(bad(&[("includefield", "Nope")]), QidoError::UnknownAttribute(_)));
    }

    #[test]
    fn includefield_all_and_limit_cap() {
        let (q, _) =
            parse_qido(Level::Instance, None, None, &params(&[("includefield", "all"), ("limit", "999999")])).unwrap();
        assert_eq!(q.include, Include::All);
        assert_eq!(q.limit, MAX_LIMIT);
    }
}
