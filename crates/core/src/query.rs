//! The query model shared by QIDO-RS and C-FIND: which attributes are indexed at which level,
//! how a key matches (single value, wildcard, range, UID list), paging. Pure rules: the
//! `dicom` crate parses requests into it and the `store` crate executes it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Study,
    Series,
    Instance,
}

/// How an attribute is kept in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// A plain column (not personal).
    Plain,
    /// Sealed (personal): matched through blind indexes and by opening candidates.
    Sealed,
    /// Computed from other rows (counts, modalities in study).
    Derived,
}

macro_rules! attrs {
    ($( $variant:ident = ($tag:expr, $keyword:literal, $vr:literal, $level:ident, $storage:ident) ),* $(,)?) => {
        /// An attribute the index knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Attr { $( $variant ),* }

        impl Attr {
            pub const ALL: &'static [Attr] = &[ $( Attr::$variant ),* ];

            pub fn tag(self) -> u32 { match self { $( Attr::$variant => $tag ),* } }
            pub fn keyword(self) -> &'static str { match self { $( Attr::$variant => $keyword ),* } }
            pub fn vr(self) -> &'static str { match self { $( Attr::$variant => $vr ),* } }
            pub fn level(self) -> Level { match self { $( Attr::$variant => Level::$level ),* } }
            pub fn storage(self) -> Storage { match self { $( Attr::$variant => Storage::$storage ),* } }
        }
    };
}

attrs! {
    StudyDate = (0x0008_0020, "StudyDate", "DA", Study, Plain),
    StudyTime = (0x0008_0030, "StudyTime", "TM", Study, Plain),
    AccessionNumber = (0x0008_0050, "AccessionNumber", "SH", Study, Plain),
    ModalitiesInStudy = (0x0008_0061, "ModalitiesInStudy", "CS", Study, Derived),
    InstitutionName = (0x0008_0080, "InstitutionName", "LO", Study, Plain),
    ReferringPhysicianName = (0x0008_0090, "ReferringPhysicianName", "PN", Study, Sealed),
    StudyDescription = (0x0008_1030, "StudyDescription", "LO", Study, Plain),
    PatientName = (0x0010_0010, "PatientName", "PN", Study, Sealed),
    PatientID = (0x0010_0020, "PatientID", "LO", Study, Sealed),
    PatientBirthDate = (0x0010_0030, "PatientBirthDate", "DA", Study, Sealed),
    PatientSex = (0x0010_0040, "PatientSex", "CS", Study, Plain),
    OtherPatientIDs = (0x0010_1000, "OtherPatientIDs", "LO", Study, Sealed),
    PatientTelephoneNumbers = (0x0010_2154, "PatientTelephoneNumbers", "SH", Study, Sealed),
    StudyInstanceUID = (0x0020_000D, "StudyInstanceUID", "UI", Study, Plain),
    StudyID = (0x0020_0010, "StudyID", "SH", Study, Plain),
    NumberOfStudyRelatedSeries = (0x0020_1206, "NumberOfStudyRelatedSeries", "IS", Study, Derived),
    NumberOfStudyRelatedInstances = (0x0020_1208, "NumberOfStudyRelatedInstances", "IS", Study, Derived),
    Modality = (0x0008_0060, "Modality", "CS", Series, Plain),
    SeriesDate = (0x0008_0021, "SeriesDate", "DA", Series, Plain),
    SeriesTime = (0x0008_0031, "SeriesTime", "TM", Series, Plain),
    SeriesDescription = (0x0008_103E, "SeriesDescription", "LO", Series, Plain),
    BodyPartExamined = (0x0018_0015, "BodyPartExamined", "CS", Series, Plain),
    SeriesInstanceUID = (0x0020_000E, "SeriesInstanceUID", "UI", Series, Plain),
    SeriesNumber = (0x0020_0011, "SeriesNumber", "IS", Series, Plain),
    NumberOfSeriesRelatedInstances = (0x0020_1209, "NumberOfSeriesRelatedInstances", "IS", Series, Derived),
    SOPClassUID = (0x0008_0016, "SOPClassUID", "UI", Instance, Plain),
    SOPInstanceUID = (0x0008_0018, "SOPInstanceUID", "UI", Instance, Plain),
    InstanceNumber = (0x0020_0013, "InstanceNumber", "IS", Instance, Plain),
    NumberOfFrames = (0x0028_0008, "NumberOfFrames", "IS", Instance, Plain),
    Rows = (0x0028_0010, "Rows", "US", Instance, Plain),
    Columns = (0x0028_0011, "Columns", "US", Instance, Plain),
    BitsAllocated = (0x0028_0100, "BitsAllocated", "US", Instance, Plain),
    AvailableTransferSyntaxUID = (0x0008_3002, "AvailableTransferSyntaxUID", "UI", Instance, Plain),
}

impl Attr {
    pub fn from_tag(tag: u32) -> Option<Attr> {
        Attr::ALL.iter().copied().find(|a| a.tag() == tag)
    }

    pub fn from_keyword(keyword: &str) -> Option<Attr> {
        Attr::ALL.iter().copied().find(|a| a.keyword() == keyword)
    }

    /// The attributes QIDO-RS returns by default at a level (PS3.18 §10.6.3.3).
    pub fn defaults(level: Level) -> &'static [Attr] {
        use Attr::*;
        match level {
            Level::Study => &[
                StudyDate,
                StudyTime,
                AccessionNumber,
                ModalitiesInStudy,
                ReferringPhysicianName,
                PatientName,
                PatientID,
                PatientBirthDate,
                PatientSex,
                StudyInstanceUID,
                StudyID,
                NumberOfStudyRelatedSeries,
                NumberOfStudyRelatedInstances,
            ],
            Level::Series => {
                &[Modality, SeriesDescription, SeriesInstanceUID, SeriesNumber, NumberOfSeriesRelatedInstances]
            }
            Level::Instance => {
                &[SOPClassUID, SOPInstanceUID, InstanceNumber, Rows, Columns, BitsAllocated, NumberOfFrames]
            }
        }
    }

    /// Whether values are matched case-insensitively (person names, as most archives do).
    pub fn case_insensitive(self) -> bool {
        self.vr() == "PN"
    }
}

/// How one key matches (PS3.4 C.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Single value matching.
    Exact(String),
    /// `*` and `?` wildcards.
    Wildcard(String),
    /// UID list matching.
    AnyOf(Vec<String>),
    /// Date / time range, inclusive, either end open.
    Range { from: Option<String>, to: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("{0} is not a valid date (YYYYMMDD) or date range")]
    BadDate(String),
    #[error("{0} is not a valid time (HHMMSS) or time range")]
    BadTime(String),
    #[error("{0} is not a valid UID list")]
    BadUid(String),
    #[error("{0} is not a valid integer")]
    BadInteger(String),
}

impl Matcher {
    /// Parses a query value for `attr`; `None` for an empty value (universal matching).
    pub fn parse(attr: Attr, value: &str) -> Result<Option<Matcher>, MatcherError> {
        let value = value.trim();
        if value.is_empty() || value == "*" {
            return Ok(None);
        }
        match attr.vr() {
            "UI" => {
                let uids: Vec<String> = value
                    .split([',', '\\'])
                    .map(|u| crate::Uid::parse(u).map(|u| u.as_str().to_owned()))
                    .collect::<Result<_, _>>()
                    .map_err(|_| MatcherError::BadUid(value.to_owned()))?;
                Ok(Some(if uids.len() == 1 { Matcher::Exact(uids[0].clone()) } else { Matcher::AnyOf(uids) }))
            }
            "DA" => parse_range(value, normalize_date).map(Some).ok_or_else(|| MatcherError::BadDate(value.to_owned())),
            "TM" => parse_range(value, normalize_time).map(Some).ok_or_else(|| MatcherError::BadTime(value.to_owned())),
            "IS" | "US" => {
                value.parse::<i64>().map_err(|_| MatcherError::BadInteger(value.to_owned()))?;
                Ok(Some(Matcher::Exact(value.to_owned())))
            }
            _ if value.contains(['*', '?']) => Ok(Some(Matcher::Wildcard(value.to_owned()))),
            _ if value.contains('\\') && attr.vr() == "CS" => {
                Ok(Some(Matcher::AnyOf(value.split('\\').map(str::to_owned).collect())))
            }
            _ => Ok(Some(Matcher::Exact(value.to_owned()))),
        }
    }

    /// Whether a stored value (possibly multi-valued, `\`-separated) matches.
    pub fn matches(&self, attr: Attr, stored: Option<&str>) -> bool {
        let Some(stored) = stored else { return false };
        let fold = |s: &str| {
            if attr.case_insensitive() { s.to_uppercase() } else { s.to_owned() }
        };
        let candidates: Vec<String> = if attr.vr() == "PN" {
            person_name_forms(&fold(stored))
        } else {
            stored.split('\\').map(|v| fold(v.trim())).collect()
        };
        match self {
            Matcher::Exact(v) => {
                let v = fold(v);
                candidates.contains(&v)
            }
            Matcher::Wildcard(p) => {
                let p = fold(p);
                candidates.iter().any(|c| wildcard_match(&p, c))
            }
            Matcher::AnyOf(list) => candidates.iter().any(|c| list.iter().any(|v| fold(v) == *c)),
            Matcher::Range { from, to } => candidates.iter().any(|c| {
                let c = if attr.vr() == "TM" { normalize_time(c).unwrap_or_default() } else { c.clone() };
                !c.is_empty()
                    && from.as_ref().is_none_or(|f| c.as_str() >= f.as_str())
                    && to.as_ref().is_none_or(|t| c.as_str() <= t.as_str())
            }),
        }
    }

    /// For a wildcard that is a plain prefix (`WANG*`), the prefix.
    pub fn literal_prefix(&self) -> Option<&str> {
        match self {
            Matcher::Wildcard(p) => {
                let prefix = p.strip_suffix('*')?;
                (!prefix.is_empty() && !prefix.contains(['*', '?'])).then_some(prefix)
            }
            _ => None,
        }
    }
}

/// The forms a stored person name is matched in: the whole value, each component group
/// (alphabetic, ideographic, phonetic, trailing empty components dropped) and each name
/// component, so that `ZHIQIANG`, `王^志强` and `WANG*` all find `WANG^ZHIQIANG=王^志强`.
pub fn person_name_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    let mut add = |form: &str| {
        if !form.is_empty() && !forms.iter().any(|f| f == form) {
            forms.push(form.to_owned());
        }
    };
    for group in value.split('=') {
        add(group.trim_end_matches('^'));
        for component in group.split('^') {
            add(component);
        }
    }
    forms
}

/// Whether the name-prefix tokens answer `pattern` exactly (no decryption needed): a plain
/// `PREFIX*` within one component group, at most `max` characters, not a lone Latin letter.
pub fn name_prefix_is_exact(matcher: &Matcher, max: usize) -> bool {
    let Some(prefix) = matcher.literal_prefix() else { return false };
    let chars: Vec<char> = prefix.chars().collect();
    !prefix.contains('=') && chars.len() <= max && !(chars.len() == 1 && chars[0].is_ascii())
}

/// The prefixes of a person name that are indexed for `PREFIX*` searches: prefixes of each
/// component group and of each name component, at most `max` characters. Single Latin letters
/// are left out (they say little and would leak the most).
pub fn person_name_prefixes(value: &str, max: usize) -> Vec<String> {
    let upper = value.to_uppercase();
    let mut sources: Vec<&str> = Vec::new();
    for group in upper.split('=') {
        sources.push(group.trim_end_matches('^'));
        sources.extend(group.split('^').skip(1));
    }
    let mut out = Vec::new();
    for source in sources.into_iter().filter(|s| !s.is_empty()) {
        let chars: Vec<char> = source.chars().collect();
        for n in 1..=chars.len().min(max) {
            if n == 1 && chars[0].is_ascii() {
                continue;
            }
            let prefix: String = chars[..n].iter().collect();
            if !out.contains(&prefix) {
                out.push(prefix);
            }
        }
    }
    out
}

/// `*` matches any run of characters, `?` exactly one.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn parse_range(value: &str, normalize: fn(&str) -> Option<String>) -> Option<Matcher> {
    match value.split_once('-') {
        None => {
            let v = normalize(value)?;
            Some(Matcher::Range { from: Some(v.clone()), to: Some(end_of(&v)) })
        }
        Some((from, to)) => {
            let from = if from.is_empty() { None } else { Some(normalize(from)?) };
            let to = if to.is_empty() { None } else { Some(end_of(&normalize(to)?)) };
            if from.is_none() && to.is_none() {
                return None;
            }
            Some(Matcher::Range { from, to })
        }
    }
}

/// The upper bound of a time given to a lower precision: `10` means up to `10:59:59.999999`.
fn end_of(value: &str) -> String {
    // A date (8 digits; times have at most 6 before the fraction) is its own end.
    if value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.to_owned();
    }
    let mut v = value.to_owned();
    if v.len() < 6 {
        v.push_str(&"595959"[v.len()..]);
    }
    if !v.contains('.') {
        v.push_str(".999999");
    }
    v
}

/// `YYYYMMDD` (also `YYYY-MM-DD`, `YYYY.MM.DD`), checked to be a real date.
pub fn normalize_date(value: &str) -> Option<String> {
    let digits: String = value.chars().filter(|c| !matches!(c, '-' | '.')).collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    chrono::NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()?;
    Some(digits)
}

/// `HH[MM[SS[.FFFFFF]]]` (also with colons), checked.
pub fn normalize_time(value: &str) -> Option<String> {
    let v: String = value.trim().chars().filter(|&c| c != ':').collect();
    let (whole, frac) = match v.split_once('.') {
        Some((w, f)) => (w.to_owned(), Some(f.to_owned())),
        None => (v.clone(), None),
    };
    if whole.is_empty() || whole.len() % 2 != 0 || whole.len() > 6 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<u32> = (0..whole.len()).step_by(2).map(|i| whole[i..i + 2].parse().unwrap_or(99)).collect();
    let limits = [23, 59, 60];
    if parts.iter().zip(limits).any(|(p, l)| *p > l) {
        return None;
    }
    match frac {
        Some(f) if whole.len() == 6 && !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            Some(format!("{whole}.{f}"))
        }
        Some(_) => None,
        None => Some(whole),
    }
}

/// One matching key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub attr: Attr,
    pub matcher: Matcher,
}

/// Which attributes to return beyond the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Include {
    #[default]
    Defaults,
    /// Every attribute the index knows, and for instances every attribute of the data set.
    All,
    /// These extra tags (indexed or not).
    Tags(Vec<u32>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub level: Level,
    pub study_uid: Option<String>,
    pub series_uid: Option<String>,
    pub filters: Vec<Filter>,
    pub include: Include,
    pub limit: usize,
    pub offset: usize,
}

impl Query {
    pub fn new(level: Level) -> Query {
        Query {
            level,
            study_uid: None,
            series_uid: None,
            filters: Vec::new(),
            include: Include::Defaults,
            limit: 1000,
            offset: 0,
        }
    }

    pub fn filter(&self, attr: Attr) -> Option<&Matcher> {
        self.filters.iter().find(|f| f.attr == attr).map(|f| &f.matcher)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Study => "study",
            Level::Series => "series",
            Level::Instance => "instance",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("WANG*", "WANG^ZHIQIANG"));
        assert!(wildcard_match("*ANG*", "WANG^ZHIQIANG"));
        assert!(wildcard_match("W?NG*", "WANG"));
        assert!(!wildcard_match("W?NG", "WANG^Z"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("A*B", "ACBD"));
        assert!(wildcard_match("A*B*", "ACBD"));
        assert!(wildcard_match("王*", "王^志强"));
    }

    #[test]
    fn person_names_match_by_group_and_case() {
        let m = Matcher::parse(Attr::PatientName, "wang*").unwrap().unwrap();
        assert!(m.matches(Attr::PatientName, Some("WANG^ZHIQIANG=王^志强")));
        let m = Matcher::parse(Attr::PatientName, "王^志强").unwrap().unwrap();
        assert!(m.matches(Attr::PatientName, Some("WANG^ZHIQIANG=王^志强")));
        let m = Matcher::parse(Attr::PatientName, "WANG^ZHIQIANG").unwrap().unwrap();
        assert!(m.matches(Attr::PatientName, Some("WANG^ZHIQIANG=王^志强")));
        assert!(!m.matches(Attr::PatientName, Some("WANG^ZHI")));
        let m = Matcher::parse(Attr::PatientName, "zhiqiang").unwrap().unwrap();
        assert!(m.matches(Attr::PatientName, Some("WANG^ZHIQIANG=王^志强")), "a component alone");
        let m = Matcher::parse(Attr::PatientName, "ZHI*").unwrap().unwrap();
        assert!(m.matches(Attr::PatientName, Some("WANG^ZHIQIANG")), "a component prefix");
        assert!(name_prefix_is_exact(&m, 16));
        assert!(!name_prefix_is_exact(&Matcher::parse(Attr::PatientName, "W*").unwrap().unwrap(), 16));
        assert!(!name_prefix_is_exact(&Matcher::parse(Attr::PatientName, "*ANG").unwrap().unwrap(), 16));
        assert!(!name_prefix_is_exact(&Matcher::parse(Attr::PatientName, "WANG^ZHIQIANG=王*").unwrap().unwrap(), 16));
        assert_eq!(Matcher::parse(Attr::PatientName, "WANG^ZHIQIANG").unwrap().unwrap().literal_prefix(), None);
        let m = Matcher::parse(Attr::PatientName, "WANG^Z*").unwrap().unwrap();
        assert_eq!(m.literal_prefix(), Some("WANG^Z"));
    }

    #[test]
    fn prefixes_cover_groups_and_components() {
        let p = person_name_prefixes("Wang^Zhiqiang=王^志强", 16);
        for want in ["WA", "WANG", "WANG^Z", "ZH", "ZHIQIANG", "王", "王^志强", "志", "志强"] {
            assert!(p.contains(&want.to_owned()), "{want} in {p:?}");
        }
        assert!(!p.contains(&"W".to_owned()));
    }

    #[test]
    fn date_ranges() {
        let m = Matcher::parse(Attr::StudyDate, "20260101-20260131").unwrap().unwrap();
        assert!(m.matches(Attr::StudyDate, Some("20260131")));
        assert!(!m.matches(Attr::StudyDate, Some("20260201")));
        let m = Matcher::parse(Attr::StudyDate, "-20260101").unwrap().unwrap();
        assert!(m.matches(Attr::StudyDate, Some("19991231")));
        let m = Matcher::parse(Attr::StudyDate, "20260101").unwrap().unwrap();
        assert!(m.matches(Attr::StudyDate, Some("20260101")));
        assert!(!m.matches(Attr::StudyDate, None));
        assert!(Matcher::parse(Attr::StudyDate, "20260230").is_err());
        assert!(Matcher::parse(Attr::StudyDate, "-").is_err());
        assert!(Matcher::parse(Attr::StudyDate, "yesterday").is_err());
    }

    #[test]
    fn time_ranges_respect_precision() {
        let m = Matcher::parse(Attr::StudyTime, "10-11").unwrap().unwrap();
        assert!(m.matches(Attr::StudyTime, Some("115959")));
        assert!(m.matches(Attr::StudyTime, Some("100000.5")));
        assert!(!m.matches(Attr::StudyTime, Some("120000")));
        assert!(Matcher::parse(Attr::StudyTime, "25").is_err());
    }

    #[test]
    fn uid_lists_and_validation() {
        assert_eq!(
            Matcher::parse(Attr::StudyInstanceUID, "1.2.3,1.2.4").unwrap(),
            Some(Matcher::AnyOf(vec!["1.2.3".into(), "1.2.4".into()]))
        );
        assert_eq!(Matcher::parse(Attr::StudyInstanceUID, "1.2.3\\1.2.4").unwrap().map(|_| ()), Some(()));
        assert!(Matcher::parse(Attr::StudyInstanceUID, "1.2.*").is_err());
        assert_eq!(Matcher::parse(Attr::PatientID, "").unwrap(), None);
    }

    #[test]
    fn multi_valued_stored_values() {
        let m = Matcher::parse(Attr::OtherPatientIDs, "X2").unwrap().unwrap();
        assert!(m.matches(Attr::OtherPatientIDs, Some("X1\\X2")));
    }
}
