//! Sealing of personal attributes and their blind-index tokens.

use crate::error::Result;
use cloudfilm_core::instance::PatientAttrs;
use cloudfilm_core::matching::fold;
use cloudfilm_core::query::person_name_prefixes;
use cloudfilm_core::{PhoneNumber, ResidentId};
use cloudfilm_crypto::KeyRing;
use cloudfilm_crypto::blind::BlindIndexer;
use cloudfilm_crypto::field::FieldCipher;

/// The kinds of blind-index tokens kept for a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum TokenKind {
    PatientId = 1,
    NamePrefix = 2,
    Name = 3,
    OtherId = 4,
    Phone = 5,
    BirthDate = 6,
    /// A valid resident ID number among the patient's identifiers, width- and case-folded.
    ResidentId = 7,
    /// A valid mobile number among the patient's telephone numbers, normalized.
    MobilePhone = 8,
}

impl TokenKind {
    fn domain(self) -> &'static str {
        match self {
            TokenKind::PatientId => "patient-id",
            TokenKind::NamePrefix => "name-prefix",
            TokenKind::Name => "name",
            TokenKind::OtherId => "other-id",
            TokenKind::Phone => "phone",
            TokenKind::BirthDate => "birth-date",
            TokenKind::ResidentId => "resident-id",
            TokenKind::MobilePhone => "mobile-phone",
        }
    }
}

/// Prefixes of names longer than this are not indexed (queries for them open candidates).
pub const NAME_PREFIX_MAX: usize = 16;

pub struct Sealer {
    cipher: FieldCipher,
    indexer: BlindIndexer,
}

/// Sealed columns of a study.
#[derive(Debug, Clone, Default)]
pub struct SealedPatient {
    pub name: Option<Vec<u8>>,
    pub id: Option<Vec<u8>>,
    pub birth_date: Option<Vec<u8>>,
    pub other_ids: Option<Vec<u8>>,
    pub phones: Option<Vec<u8>>,
    pub referring_physician: Option<Vec<u8>>,
}

impl Sealer {
    pub fn new(ring: &KeyRing) -> Result<Sealer> {
        Ok(Sealer {
            cipher: FieldCipher::new(ring, &ring.versions())?,
            indexer: BlindIndexer::new(ring, "dicom-index"),
        })
    }

    pub fn seal(&self, column: &str, value: &Option<String>) -> Option<Vec<u8>> {
        value.as_ref().map(|v| self.cipher.seal(column, v.as_bytes()))
    }

    pub fn open(&self, column: &str, sealed: Option<Vec<u8>>) -> Result<Option<String>> {
        sealed.map(|s| self.cipher.open_string(column, &s)).transpose().map_err(Into::into)
    }

    pub fn seal_patient(&self, p: &PatientAttrs, referring: &Option<String>) -> SealedPatient {
        let join = |v: &[String]| (!v.is_empty()).then(|| v.join("\\"));
        SealedPatient {
            name: self.seal("patient_name", &p.name),
            id: self.seal("patient_id", &p.id),
            birth_date: self.seal("patient_birth_date", &p.birth_date),
            other_ids: self.seal("other_patient_ids", &join(&p.other_ids)),
            phones: self.seal("patient_phones", &join(&p.telephone_numbers)),
            referring_physician: self.seal("referring_physician", referring),
        }
    }

    /// Names are compared case-insensitively (as PN matching is), identifiers, dates and
    /// phone numbers exactly: the token of a value is then the match of that value.
    pub fn token(&self, kind: TokenKind, value: &str) -> Vec<u8> {
        let value = value.trim();
        match kind {
            TokenKind::Name | TokenKind::NamePrefix => self.indexer.index(kind.domain(), &value.to_uppercase()),
            _ => self.indexer.index(kind.domain(), value),
        }
    }

    /// Every token of a study's patient.
    pub fn patient_tokens(&self, p: &PatientAttrs) -> Vec<(TokenKind, Vec<u8>)> {
        let mut out = Vec::new();
        if let Some(id) = &p.id {
            out.push((TokenKind::PatientId, self.token(TokenKind::PatientId, id)));
        }
        if let Some(name) = &p.name {
            for form in cloudfilm_core::query::person_name_forms(&name.to_uppercase()) {
                out.push((TokenKind::Name, self.token(TokenKind::Name, &form)));
            }
            for prefix in person_name_prefixes(name, NAME_PREFIX_MAX) {
                out.push((TokenKind::NamePrefix, self.token(TokenKind::NamePrefix, &prefix)));
            }
        }
        if let Some(date) = &p.birth_date {
            out.push((TokenKind::BirthDate, self.token(TokenKind::BirthDate, date)));
        }
        for id in &p.other_ids {
            out.push((TokenKind::OtherId, self.token(TokenKind::OtherId, id)));
        }
        for phone in &p.telephone_numbers {
            out.push((TokenKind::Phone, self.token(TokenKind::Phone, phone)));
            if let Ok(mobile) = PhoneNumber::parse(phone) {
                out.push((TokenKind::MobilePhone, self.token(TokenKind::MobilePhone, mobile.as_str())));
            }
        }
        let any_day = chrono::NaiveDate::MAX;
        for id in p.id.iter().chain(&p.other_ids) {
            if let Ok(resident) = ResidentId::parse(&fold(id), any_day) {
                out.push((TokenKind::ResidentId, self.token(TokenKind::ResidentId, resident.as_str())));
            }
        }
        out.sort();
        out.dedup();
        out
    }

    pub fn secret_hash(&self, secret: &str) -> Vec<u8> {
        self.indexer.hash_secret(secret)
    }
}

impl PartialOrd for TokenKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TokenKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as i64).cmp(&(*other as i64))
    }
}
