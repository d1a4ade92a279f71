//! Download links (DESIGN §2): the original DICOM of an exam, where the organization allows
//! it, behind a security code sent to the account's phone. A link lives 30 minutes; more than
//! ten wrong codes invalidate it for good (after ten the right code still works, the eleventh
//! wrong one ends it). The store applies these verdicts inside its single writer, so racing
//! attempts are counted one after the other.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadPolicy {
    /// Seconds a link stays usable.
    pub ttl_secs: i64,
    /// Wrong codes a link survives; the next one invalidates it.
    pub max_wrong_codes: u32,
    /// Digits of the security code.
    pub code_digits: u32,
    /// Wrong codes one client address may give per hour, over every link.
    pub wrong_codes_per_ip_hour: u32,
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        DownloadPolicy { ttl_secs: 1800, max_wrong_codes: 10, code_digits: 6, wrong_codes_per_ip_hour: 30 }
    }
}

/// A link as the store keeps it (its token and code only as hashes).
#[derive(Debug, Clone)]
pub struct DownloadLink {
    pub created_at: DateTime<Utc>,
    pub wrong_codes: u32,
    pub invalidated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadVerdict {
    Accepted,
    /// Counted; `invalidates` when this wrong code is one more than the link survives.
    Wrong {
        invalidates: bool,
    },
    Expired,
    Invalidated,
}

impl DownloadPolicy {
    pub fn ttl(&self) -> Duration {
        Duration::seconds(self.ttl_secs)
    }

    pub fn expires_at(&self, created_at: DateTime<Utc>) -> DateTime<Utc> {
        created_at + self.ttl()
    }

    pub fn check(&self, link: &DownloadLink, code_matches: bool, now: DateTime<Utc>) -> DownloadVerdict {
        if link.invalidated {
            DownloadVerdict::Invalidated
        } else if now >= self.expires_at(link.created_at) {
            DownloadVerdict::Expired
        } else if code_matches {
            DownloadVerdict::Accepted
        } else {
            DownloadVerdict::Wrong { invalidates: link.wrong_codes + 1 > self.max_wrong_codes }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn after_ten_wrong_codes_the_right_one_works_the_eleventh_wrong_one_ends_the_link() {
        let p = DownloadPolicy::default();
        let mut link = DownloadLink { created_at: t0(), wrong_codes: 9, invalidated: false };
        assert_eq!(p.check(&link, false, t0()), DownloadVerdict::Wrong { invalidates: false }, "the 10th");
        link.wrong_codes = 10;
        assert_eq!(p.check(&link, true, t0()), DownloadVerdict::Accepted);
        assert_eq!(p.check(&link, false, t0()), DownloadVerdict::Wrong { invalidates: true }, "the 11th");
        link.invalidated = true;
        assert_eq!(p.check(&link, true, t0()), DownloadVerdict::Invalidated);
    }

    #[test]
    fn a_link_lives_thirty_minutes() {
        let p = DownloadPolicy::default();
        let link = DownloadLink { created_at: t0(), wrong_codes: 0, invalidated: false };
        assert_eq!(p.check(&link, true, t0() + Duration::seconds(29 * 60 + 59)), DownloadVerdict::Accepted);
        assert_eq!(p.check(&link, true, t0() + Duration::seconds(30 * 60)), DownloadVerdict::Expired);
        assert_eq!(p.check(&link, true, t0() + Duration::seconds(30 * 60 + 1)), DownloadVerdict::Expired);
    }
}
