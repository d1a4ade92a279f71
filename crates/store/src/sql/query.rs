//! QIDO-RS / C-FIND on SQLite. Plain attributes become SQL conditions; sealed (personal)
//! attributes narrow the candidates through blind-index tokens where the matcher allows it,
//! and every sealed or time condition is then checked on the opened values.

use super::rows;
use super::{Db, Pool, dialect};
use crate::error::Result;
use crate::model::*;
use crate::sealed::{NAME_PREFIX_MAX, Sealer, TokenKind};
use cloudfilm_core::OrgId;
use cloudfilm_core::query::{Attr, Filter, Level, Matcher, Query, Storage, name_prefix_is_exact};
use futures::TryStreamExt;
use sqlx::QueryBuilder;

/// Candidates opened at most for one query that must be filtered after decryption.
const SCAN_LIMIT: usize = 200_000;

fn column(attr: Attr) -> Option<&'static str> {
    Some(match attr {
        Attr::StudyDate => "s.study_date",
        Attr::AccessionNumber => "s.accession_number",
        Attr::InstitutionName => "s.institution_name",
        Attr::StudyDescription => "s.study_description",
        Attr::PatientSex => "s.patient_sex",
        Attr::StudyInstanceUID => "s.study_uid",
        Attr::StudyID => "s.study_id",
        Attr::Modality => "se.modality",
        Attr::SeriesDate => "se.series_date",
        Attr::SeriesDescription => "se.series_description",
        Attr::BodyPartExamined => "se.body_part",
        Attr::SeriesInstanceUID => "se.series_uid",
        Attr::SeriesNumber => "se.series_number",
        Attr::SOPClassUID => "i.sop_class_uid",
        Attr::SOPInstanceUID => "i.sop_uid",
        Attr::InstanceNumber => "i.instance_number",
        Attr::NumberOfFrames => "i.number_of_frames",
        Attr::Rows => "i.rows",
        Attr::Columns => "i.columns",
        Attr::BitsAllocated => "i.bits_allocated",
        Attr::AvailableTransferSyntaxUID => "i.transfer_syntax",
        _ => return None,
    })
}

fn push_matcher(qb: &mut QueryBuilder<Db>, col: &str, attr: Attr, matcher: &Matcher) {
    let integer = matches!(attr.vr(), "IS" | "US");
    match matcher {
        Matcher::Exact(v) if integer => {
            qb.push(format!(" AND {col} = ")).push_bind(v.parse::<i64>().unwrap_or(i64::MIN));
        }
        Matcher::Exact(v) => {
            qb.push(format!(" AND {col} = ")).push_bind(v.clone());
        }
        Matcher::Wildcard(p) => {
            qb.push(format!(" AND {col} {} ", dialect::WILDCARD_OPERATOR)).push_bind(dialect::wildcard_pattern(p));
        }
        Matcher::AnyOf(list) => {
            qb.push(format!(" AND {col} IN ("));
            let mut sep = qb.separated(", ");
            for v in list {
                sep.push_bind(v.clone());
            }
            qb.push(")");
        }
        Matcher::Range { from, to } => {
            if let Some(f) = from {
                qb.push(format!(" AND {col} >= ")).push_bind(f.clone());
            }
            if let Some(t) = to {
                qb.push(format!(" AND {col} <= ")).push_bind(t.clone());
            }
        }
    }
}

/// The token that narrows a sealed condition, if the matcher allows one.
fn token_for(sealer: &Sealer, filter: &Filter) -> Option<(TokenKind, Vec<u8>)> {
    let kind = match filter.attr {
        Attr::PatientID => TokenKind::PatientId,
        Attr::PatientName => TokenKind::Name,
        Attr::PatientBirthDate => TokenKind::BirthDate,
        Attr::OtherPatientIDs => TokenKind::OtherId,
        Attr::PatientTelephoneNumbers => TokenKind::Phone,
        _ => return None,
    };
    match &filter.matcher {
        Matcher::Exact(v) => Some((kind, sealer.token(kind, v))),
        Matcher::Range { from: Some(f), to: Some(t) } if kind == TokenKind::BirthDate && f == t => {
            Some((kind, sealer.token(kind, f)))
        }
        m if kind == TokenKind::Name => {
            let prefix = m.literal_prefix()?.to_uppercase();
            let chars: Vec<char> = prefix.chars().collect();
            if chars.len() == 1 && chars[0].is_ascii() {
                return None;
            }
            let prefix: String = chars.into_iter().take(NAME_PREFIX_MAX).collect();
            Some((TokenKind::NamePrefix, sealer.token(TokenKind::NamePrefix, &prefix)))
        }
        _ => None,
    }
}

/// Conditions checked after opening sealed values (those the tokens do not answer exactly),
/// or that SQL cannot express exactly (times of various precisions).
fn needs_post_filter(filter: &Filter) -> bool {
    if filter.attr.vr() == "TM" {
        return true;
    }
    if filter.attr.storage() != Storage::Sealed {
        return false;
    }
    let exact_by_token = match (&filter.attr, &filter.matcher) {
        (Attr::PatientID | Attr::OtherPatientIDs | Attr::PatientTelephoneNumbers, Matcher::Exact(_)) => true,
        (Attr::PatientBirthDate, Matcher::Range { from: Some(f), to: Some(t) }) => f == t,
        (Attr::PatientName, Matcher::Exact(_)) => true,
        (Attr::PatientName, m @ Matcher::Wildcard(_)) => name_prefix_is_exact(m, NAME_PREFIX_MAX),
        _ => false,
    };
    !exact_by_token
}

pub async fn run(pool: &Pool, sealer: &Sealer, org_id: OrgId, query: &Query) -> Result<Vec<ResultRow>> {
    let filters: Vec<&Filter> = query.filters.iter().filter(|f| f.attr.level() <= query.level).collect();
    let mut tokens: Vec<(TokenKind, Vec<u8>)> = filters.iter().filter_map(|f| token_for(sealer, f)).collect();
    let mut qb = QueryBuilder::<Db>::new("SELECT ");
    qb.push(rows::STUDY_COLUMNS);
    if query.level >= Level::Series {
        qb.push(", ").push(rows::SERIES_COLUMNS);
    }
    if query.level == Level::Instance {
        qb.push(", ").push(rows::INSTANCE_COLUMNS);
    }
    // With a token, the search walks that token's entries (kept in organization and date
    // order) newest first and stops at the page: its cost does not grow with the number of
    // studies that share a common family name.
    let driver = (!tokens.is_empty()).then(|| tokens.remove(0));
    if driver.is_some() {
        qb.push(dialect::FROM_TOKENS_THEN_STUDIES);
    } else {
        qb.push(" FROM studies s");
    }
    if query.level >= Level::Series {
        qb.push(" JOIN series se ON se.study_pk = s.pk");
    }
    if query.level == Level::Instance {
        qb.push(" JOIN instances i ON i.series_pk = se.pk");
    }
    qb.push(" WHERE s.org_id = ").push_bind(org_id);
    if let Some((kind, token)) = &driver {
        qb.push(" AND t.kind = ").push_bind(*kind as i64);
        qb.push(" AND t.token = ").push_bind(token.clone());
        qb.push(" AND t.org_id = ").push_bind(org_id);
    }
    for (kind, token) in tokens {
        qb.push(" AND s.pk IN (SELECT study_pk FROM study_tokens WHERE kind = ")
            .push_bind(kind as i64)
            .push(" AND token = ")
            .push_bind(token)
            .push(" AND org_id = ")
            .push_bind(org_id)
            .push(")");
    }
    if let Some(uid) = &query.study_uid {
        qb.push(" AND s.study_uid = ").push_bind(uid.clone());
    }
    if let Some(uid) = &query.series_uid {
        qb.push(" AND se.series_uid = ").push_bind(uid.clone());
    }
    let mut post = Vec::new();
    for filter in filters {
        if needs_post_filter(filter) {
            post.push(filter.clone());
        } else if filter.attr == Attr::ModalitiesInStudy {
            qb.push(" AND s.pk IN (SELECT ms.study_pk FROM series ms WHERE 1 = 1");
            push_matcher(&mut qb, "ms.modality", Attr::Modality, &filter.matcher);
            qb.push(")");
        } else if let Some(col) = column(filter.attr) {
            push_matcher(&mut qb, col, filter.attr, &filter.matcher);
        }
    }
    if driver.is_some() {
        qb.push(" ORDER BY t.study_date DESC, t.study_time DESC, t.study_pk DESC");
    } else {
        qb.push(" ORDER BY s.study_date DESC, s.study_time DESC, s.pk DESC");
    }
    if query.level >= Level::Series {
        qb.push(", se.series_number, se.pk");
    }
    if query.level == Level::Instance {
        qb.push(", i.instance_number, i.pk");
    }
    if post.is_empty() {
        qb.push(" LIMIT ").push_bind(query.limit as i64).push(" OFFSET ").push_bind(query.offset as i64);
    } else {
        qb.push(" LIMIT ").push_bind(SCAN_LIMIT as i64);
    }
    // Streamed: a post-filtered search stops reading as soon as its page is full.
    let mut fetched = qb.build().fetch(pool);
    let mut out = Vec::new();
    let mut skipped = 0;
    while let Some(row) = fetched.try_next().await? {
        let study = rows::study(&row, sealer)?;
        let series = if query.level >= Level::Series { Some(rows::series(&row)?) } else { None };
        if !post.iter().all(|f| f.matcher.matches(f.attr, stored_value(f.attr, &study, series.as_ref()).as_deref())) {
            continue;
        }
        if !post.is_empty() {
            if skipped < query.offset {
                skipped += 1;
                continue;
            }
            if out.len() >= query.limit {
                break;
            }
        }
        let instance = if query.level == Level::Instance { Some(rows::instance(&row)?) } else { None };
        out.push(ResultRow { study, series, instance });
    }
    Ok(out)
}

/// The value a post-filter compares against, multi-values joined with `\`.
fn stored_value(attr: Attr, study: &StudyRow, series: Option<&SeriesRow>) -> Option<String> {
    match attr {
        Attr::PatientName => study.patient.name.clone(),
        Attr::PatientID => study.patient.id.clone(),
        Attr::PatientBirthDate => study.patient.birth_date.clone(),
        Attr::OtherPatientIDs => Some(study.patient.other_ids.join("\\")),
        Attr::PatientTelephoneNumbers => Some(study.patient.telephone_numbers.join("\\")),
        Attr::ReferringPhysicianName => study.attrs.referring_physician_name.clone(),
        Attr::StudyTime => study.attrs.time.clone(),
        Attr::SeriesTime => series.and_then(|s| s.attrs.time.clone()),
        _ => None,
    }
}

pub async fn instances(
    pool: &Pool,
    org_id: OrgId,
    study_uid: &str,
    series_uid: Option<&str>,
    sop_uid: Option<&str>,
) -> Result<Vec<InstanceRow>> {
    let mut qb = QueryBuilder::<Db>::new("SELECT s.study_uid, se.series_uid, ");
    qb.push(rows::INSTANCE_COLUMNS);
    qb.push(" FROM instances i JOIN series se ON se.pk = i.series_pk JOIN studies s ON s.pk = i.study_pk");
    // Constrained on the study (its unique (org_id, study_uid) index), not on every instance
    // of the organization.
    qb.push(" WHERE s.org_id = ").push_bind(org_id);
    qb.push(" AND s.study_uid = ").push_bind(study_uid.to_owned());
    if let Some(uid) = series_uid {
        qb.push(" AND se.series_uid = ").push_bind(uid.to_owned());
    }
    if let Some(uid) = sop_uid {
        qb.push(" AND i.sop_uid = ").push_bind(uid.to_owned());
    }
    qb.push(" ORDER BY se.series_number, se.pk, i.instance_number, i.pk");
    let fetched = qb.build().fetch_all(pool).await?;
    fetched.iter().map(rows::instance).collect()
}
