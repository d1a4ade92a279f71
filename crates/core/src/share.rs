//! Shares (DESIGN §2): an exam opened to someone without an account, for a chosen time, behind
//! a password. The rules are decided here from what the store keeps; the store applies them
//! inside its single writer, so simultaneous attempts cannot slip past a limit.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharePolicy {
    /// Shortest and longest validity an owner may choose, in hours.
    pub min_hours: i64,
    pub max_hours: i64,
    /// Password length in characters.
    pub min_password_chars: usize,
    pub max_password_chars: usize,
    /// Wrong passwords one share takes in an hour; the last of them locks it.
    pub wrong_passwords_per_hour: u32,
    /// How long a share stays locked after that.
    pub lock_secs: i64,
    /// Wrong passwords one client address may give per hour, over every share.
    pub wrong_passwords_per_ip_hour: u32,
    /// Lifetime of the recipient's share-scoped session (never beyond the share's expiry).
    pub session_secs: i64,
}

impl Default for SharePolicy {
    fn default() -> Self {
        SharePolicy {
            min_hours: 1,
            max_hours: 720,
            min_password_chars: 6,
            max_password_chars: 128,
            wrong_passwords_per_hour: 10,
            lock_secs: 3600,
            wrong_passwords_per_ip_hour: 30,
            session_secs: 3600,
        }
    }
}

/// Why a share cannot be created as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareRequestError {
    #[error("a share is valid between {min} and {max} hours")]
    Validity { min: i64, max: i64 },
    #[error("the password needs at least {0} characters")]
    PasswordTooShort(usize),
    #[error("the password has more than {0} characters")]
    PasswordTooLong(usize),
}

impl ShareRequestError {
    pub fn code(&self) -> &'static str {
        match self {
            ShareRequestError::Validity { .. } => "invalid_validity",
            ShareRequestError::PasswordTooShort(_) => "password_too_short",
            ShareRequestError::PasswordTooLong(_) => "password_too_long",
        }
    }
}

/// A share as the store keeps it (the password and link token only as hashes, elsewhere).
#[derive(Debug, Clone)]
pub struct ShareRecord {
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// What a share is at a moment, as its owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    Active,
    Locked,
    Expired,
    Revoked,
}

/// The verdict on a password presented for a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockVerdict {
    Opened,
    /// Counted; `locks` when this wrong password is the last the hour allows.
    Wrong {
        locks: bool,
    },
    /// Locked after too many wrong passwords: asking again can succeed after this many seconds.
    Locked {
        retry_after_secs: i64,
    },
    /// The client address gave too many wrong passwords this hour.
    AddressLimited,
    Expired,
    Revoked,
}

impl SharePolicy {
    /// Checks an owner's request; the share's expiry when it is acceptable.
    pub fn request(
        &self,
        valid_hours: i64,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, ShareRequestError> {
        if !(self.min_hours..=self.max_hours).contains(&valid_hours) {
            return Err(ShareRequestError::Validity { min: self.min_hours, max: self.max_hours });
        }
        let chars = password.chars().count();
        if chars < self.min_password_chars {
            return Err(ShareRequestError::PasswordTooShort(self.min_password_chars));
        }
        if chars > self.max_password_chars {
            return Err(ShareRequestError::PasswordTooLong(self.max_password_chars));
        }
        Ok(now + Duration::hours(valid_hours))
    }

    pub fn state(&self, share: &ShareRecord, now: DateTime<Utc>) -> ShareState {
        if share.revoked_at.is_some() {
            ShareState::Revoked
        } else if now >= share.expires_at {
            ShareState::Expired
        } else if share.locked_until.is_some_and(|until| now < until) {
            ShareState::Locked
        } else {
            ShareState::Active
        }
    }

    /// The verdict on a password: `wrong_last_hour` counts this share's wrong passwords of the
    /// last hour since it was last locked, `ip_wrong_last_hour` those of the client address.
    pub fn unlock(
        &self,
        share: &ShareRecord,
        password_matches: bool,
        wrong_last_hour: u32,
        ip_wrong_last_hour: u32,
        now: DateTime<Utc>,
    ) -> UnlockVerdict {
        match self.state(share, now) {
            ShareState::Revoked => return UnlockVerdict::Revoked,
            ShareState::Expired => return UnlockVerdict::Expired,
            ShareState::Locked => {
                let until = share.locked_until.expect("a locked share has an end");
                return UnlockVerdict::Locked { retry_after_secs: (until - now).num_seconds().max(1) };
            }
            ShareState::Active => {}
        }
        if ip_wrong_last_hour >= self.wrong_passwords_per_ip_hour {
            return UnlockVerdict::AddressLimited;
        }
        if password_matches {
            UnlockVerdict::Opened
        } else {
            UnlockVerdict::Wrong { locks: wrong_last_hour + 1 >= self.wrong_passwords_per_hour }
        }
    }

    /// When a share-scoped session opened now ends.
    pub fn session_end(&self, share: &ShareRecord, now: DateTime<Utc>) -> DateTime<Utc> {
        (now + Duration::seconds(self.session_secs)).min(share.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn share(hours: i64) -> ShareRecord {
        ShareRecord {
            created_at: t0(),
            expires_at: t0() + Duration::hours(hours),
            revoked_at: None,
            locked_until: None,
        }
    }

    #[test]
    fn validity_from_one_hour_to_thirty_days_and_passwords_of_six_characters() {
        let p = SharePolicy::default();
        assert_eq!(p.request(1, "abcdef", t0()), Ok(t0() + Duration::hours(1)));
        assert_eq!(p.request(720, "密码六个字符", t0()), Ok(t0() + Duration::days(30)), "characters, not bytes");
        assert!(matches!(p.request(0, "abcdef", t0()), Err(ShareRequestError::Validity { .. })));
        assert!(matches!(p.request(721, "abcdef", t0()), Err(ShareRequestError::Validity { .. })));
        assert_eq!(p.request(24, "abcde", t0()), Err(ShareRequestError::PasswordTooShort(6)));
        assert_eq!(p.request(24, &"x".repeat(129), t0()), Err(ShareRequestError::PasswordTooLong(128)));
    }

    #[test]
    fn the_tenth_wrong_password_locks_for_an_hour() {
        let p = SharePolicy::default();
        let mut s = share(24);
        assert_eq!(p.unlock(&s, false, 8, 0, t0()), UnlockVerdict::Wrong { locks: false });
        assert_eq!(p.unlock(&s, false, 9, 0, t0()), UnlockVerdict::Wrong { locks: true });
        assert_eq!(p.unlock(&s, true, 9, 0, t0()), UnlockVerdict::Opened, "the right one before the lock");
        s.locked_until = Some(t0() + Duration::hours(1));
        assert_eq!(p.unlock(&s, true, 10, 0, t0()), UnlockVerdict::Locked { retry_after_secs: 3600 });
        assert_eq!(p.state(&s, t0()), ShareState::Locked);
        let later = t0() + Duration::hours(1);
        assert_eq!(p.unlock(&s, true, 0, 0, later), UnlockVerdict::Opened, "open again after the hour");
    }

    #[test]
    fn expiry_revocation_and_address_limit() {
        let p = SharePolicy::default();
        let mut s = share(1);
        let end = t0() + Duration::hours(1);
        assert_eq!(p.unlock(&s, true, 0, 0, end - Duration::milliseconds(1)), UnlockVerdict::Opened);
        assert_eq!(p.unlock(&s, true, 0, 0, end), UnlockVerdict::Expired);
        assert_eq!(p.unlock(&s, true, 0, 30, t0()), UnlockVerdict::AddressLimited);
        assert_eq!(p.unlock(&s, true, 0, 29, t0()), UnlockVerdict::Opened);
        s.revoked_at = Some(t0());
        assert_eq!(p.unlock(&s, true, 0, 0, t0()), UnlockVerdict::Revoked);
        assert_eq!(p.state(&s, end), ShareState::Revoked, "revocation shows over expiry");
    }

    #[test]
    fn sessions_end_with_the_share() {
        let p = SharePolicy::default();
        let s = share(1);
        assert_eq!(p.session_end(&s, t0()), t0() + Duration::hours(1));
        assert_eq!(p.session_end(&s, t0() + Duration::minutes(30)), t0() + Duration::hours(1));
        let long = share(24);
        assert_eq!(p.session_end(&long, t0()), t0() + Duration::hours(1));
    }
}
