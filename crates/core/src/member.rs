//! Members of an account: the account holder ("self") and family. Every member has a name and
//! a resident ID number; the age comes from the number. Children (under 18) are held only by a
//! guardian's account (DESIGN §3). An adult held by another account (a parent, spouse or
//! anyone else, or a child who has turned 18) is seen only with that adult's own yes.

use crate::resident_id::ResidentId;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub const ADULT_AGE: u32 = 18;
/// Longest member name accepted (characters).
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    #[serde(rename = "self")]
    Myself,
    Child,
    Parent,
    Spouse,
    Other,
}

impl Relation {
    pub fn parse(raw: &str) -> Option<Relation> {
        Some(match raw {
            "self" => Relation::Myself,
            "child" => Relation::Child,
            "parent" => Relation::Parent,
            "spouse" => Relation::Spouse,
            "other" => Relation::Other,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Myself => "self",
            Relation::Child => "child",
            Relation::Parent => "parent",
            Relation::Spouse => "spouse",
            Relation::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberRuleError {
    #[error("a name is required (at most 64 characters, no control characters)")]
    Name,
    #[error("someone under 18 can only be added as a child, by an adult account holder")]
    MinorNeedsGuardian,
    #[error("add yourself (relation \"self\") first, so that your age is known")]
    SelfFirst,
    #[error("an account has only one \"self\" member")]
    SecondSelf,
    #[error("someone under 18 cannot hold an account; a guardian adds them as a child")]
    MinorSelf,
}

/// A name as typed, cleaned of surrounding space; refused when empty, too long or with control
/// characters.
pub fn clean_name(raw: &str) -> Result<String, MemberRuleError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(MemberRuleError::Name);
    }
    Ok(name.to_owned())
}

/// What the account already holds when a member is added.
#[derive(Debug, Clone, Default)]
pub struct Household {
    /// The resident ID of the account's "self" member, if there is one.
    pub holder: Option<ResidentId>,
}

/// Whether `id` may join the household as `relation` on `today`.
pub fn may_add(
    household: &Household,
    relation: Relation,
    id: &ResidentId,
    today: NaiveDate,
) -> Result<(), MemberRuleError> {
    let minor = id.age_on(today) < ADULT_AGE;
    match relation {
        Relation::Myself if household.holder.is_some() => Err(MemberRuleError::SecondSelf),
        Relation::Myself if minor => Err(MemberRuleError::MinorSelf),
        Relation::Myself => Ok(()),
        _ if !minor => Ok(()),
        Relation::Child => match &household.holder {
            None => Err(MemberRuleError::SelfFirst),
            Some(holder) if holder.age_on(today) < ADULT_AGE => Err(MemberRuleError::MinorNeedsGuardian),
            Some(_) => Ok(()),
        },
        _ => Err(MemberRuleError::MinorNeedsGuardian),
    }
}

/// Where holding a member stands with respect to the member's own consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberConsent {
    /// The account holder themself, or a minor held by their guardian: no consent is asked.
    NotNeeded,
    /// An adult who was never asked: their exams stay closed.
    Required,
    /// A code was sent (or the adult's own approval is awaited) and not yet confirmed.
    Requested,
    /// The adult said yes (by the code or from their own account).
    Given,
    /// The adult ended the holding; closed until they say yes again.
    Ended,
}

impl MemberConsent {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberConsent::NotNeeded => "not_needed",
            MemberConsent::Required => "required",
            MemberConsent::Requested => "requested",
            MemberConsent::Given => "given",
            MemberConsent::Ended => "ended",
        }
    }

    /// Whether the member's exams may be read.
    pub fn opens_exams(self) -> bool {
        matches!(self, MemberConsent::NotNeeded | MemberConsent::Given)
    }
}

/// What the store knows of a holding's consent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentTimes {
    pub requested_at: Option<chrono::DateTime<chrono::Utc>>,
    pub consented_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Whether holding someone as `relation` needs their own yes on `today`: everyone but the
/// account holder and a minor held as a child. An ID number that no longer parses (`None`)
/// fails closed.
pub fn needs_consent(relation: Relation, id: Option<&ResidentId>, today: NaiveDate) -> bool {
    match (relation, id) {
        (Relation::Myself, _) => false,
        (Relation::Child, Some(id)) => id.age_on(today) >= ADULT_AGE,
        _ => true,
    }
}

/// The consent state of a member held as `relation`.
pub fn consent_state(
    relation: Relation,
    id: Option<&ResidentId>,
    times: &ConsentTimes,
    today: NaiveDate,
) -> MemberConsent {
    if !needs_consent(relation, id, today) {
        return MemberConsent::NotNeeded;
    }
    holding_state(times)
}

/// The consent state of a holding of an adult.
pub fn holding_state(times: &ConsentTimes) -> MemberConsent {
    if times.consented_at.is_some() {
        return MemberConsent::Given;
    }
    match (times.requested_at, times.ended_at) {
        (Some(asked), Some(ended)) if asked > ended => MemberConsent::Requested,
        (_, Some(_)) => MemberConsent::Ended,
        (Some(_), None) => MemberConsent::Requested,
        (None, None) => MemberConsent::Required,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ResidentId {
        ResidentId::parse(s, today()).unwrap()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    /// A valid number for a birth date (check digit computed).
    fn born(date: &str) -> ResidentId {
        let first17 = format!("110105{date}001");
        let check = crate::resident_id::check_char(first17.as_bytes()) as char;
        id(&format!("{first17}{check}"))
    }

    #[test]
    fn minors_only_as_children_of_adults() {
        let adult = Household { holder: Some(born("19800101")) };
        let child = born("20150601");
        assert_eq!(may_add(&adult, Relation::Child, &child, today()), Ok(()));
        for r in [Relation::Parent, Relation::Spouse, Relation::Other] {
            assert_eq!(may_add(&adult, r, &child, today()), Err(MemberRuleError::MinorNeedsGuardian));
        }
        assert_eq!(may_add(&Household::default(), Relation::Child, &child, today()), Err(MemberRuleError::SelfFirst));
        assert_eq!(may_add(&Household::default(), Relation::Myself, &child, today()), Err(MemberRuleError::MinorSelf));
    }

    #[test]
    fn the_18th_birthday_is_the_boundary() {
        let adult = Household { holder: Some(born("19800101")) };
        let eighteen_today = born("20081123");
        let eighteen_tomorrow = born("20081124");
        assert_eq!(may_add(&adult, Relation::Spouse, &eighteen_today, today()), Ok(()));
        assert_eq!(
            may_add(&adult, Relation::Spouse, &eighteen_tomorrow, today()),
            Err(MemberRuleError::MinorNeedsGuardian)
        );
        assert_eq!(may_add(&Household::default(), Relation::Myself, &eighteen_today, today()), Ok(()));
    }

    #[test]
    fn one_self_per_account() {
        let adult = Household { holder: Some(born("19800101")) };
        assert_eq!(may_add(&adult, Relation::Myself, &born("19900101"), today()), Err(MemberRuleError::SecondSelf));
    }

    #[test]
    fn names_are_cleaned_and_bounded() {
        assert_eq!(clean_name("  张三 ").unwrap(), "张三");
        assert!(clean_name("   ").is_err());
        assert!(clean_name(&"张".repeat(65)).is_err());
        assert!(clean_name("张\u{0}三").is_err());
        assert!(clean_name(&"张".repeat(64)).is_ok());
    }

    #[test]
    fn adults_held_by_others_need_their_own_yes() {
        let adult = born("19800101");
        let child = born("20150601");
        let none = ConsentTimes::default();
        assert_eq!(consent_state(Relation::Myself, Some(&adult), &none, today()), MemberConsent::NotNeeded);
        assert_eq!(consent_state(Relation::Child, Some(&child), &none, today()), MemberConsent::NotNeeded);
        for r in [Relation::Parent, Relation::Spouse, Relation::Other, Relation::Child] {
            assert_eq!(consent_state(r, Some(&adult), &none, today()), MemberConsent::Required, "{r:?}");
        }
        assert_eq!(consent_state(Relation::Parent, None, &none, today()), MemberConsent::Required, "fails closed");
        assert!(!MemberConsent::Required.opens_exams() && !MemberConsent::Requested.opens_exams());
        assert!(MemberConsent::Given.opens_exams() && MemberConsent::NotNeeded.opens_exams());
    }

    #[test]
    fn a_child_turning_18_needs_consent_from_the_birthday() {
        let grown = born("20081124");
        let none = ConsentTimes::default();
        assert_eq!(consent_state(Relation::Child, Some(&grown), &none, today()), MemberConsent::NotNeeded);
        let birthday = today() + chrono::Duration::days(1);
        assert_eq!(consent_state(Relation::Child, Some(&grown), &none, birthday), MemberConsent::Required);
    }

    #[test]
    fn requests_grants_and_ends_in_order() {
        let adult = born("19800101");
        let t = |h: i64| Some(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::hours(h));
        let state = |times: ConsentTimes| consent_state(Relation::Spouse, Some(&adult), &times, today());
        assert_eq!(state(ConsentTimes { requested_at: t(1), ..Default::default() }), MemberConsent::Requested);
        assert_eq!(
            state(ConsentTimes { requested_at: t(1), consented_at: t(2), ended_at: None }),
            MemberConsent::Given
        );
        assert_eq!(
            state(ConsentTimes { requested_at: t(1), consented_at: None, ended_at: t(3) }),
            MemberConsent::Ended
        );
        assert_eq!(
            state(ConsentTimes { requested_at: t(4), consented_at: None, ended_at: t(3) }),
            MemberConsent::Requested
        );
    }
}
