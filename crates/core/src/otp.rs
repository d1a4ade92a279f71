//! One-time codes (S11): six digits, valid five minutes, single use, at most five wrong tries
//! per code, one send per phone per minute, hourly limits per phone and per client address.
//! The rules are decided here from counts the store provides; the store applies them inside
//! one serialized transaction, so concurrent requests cannot slip past a limit.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// What a code is for: a code is only accepted for the purpose it was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtpPurpose {
    /// Logging in (and registering at the first login).
    Login,
    /// A fresh proof before revealing an unmasked value (S13).
    StepUp,
    /// An adult's yes to being held by another account, sent to the phone on the hospital's
    /// record for that adult; bound to the one holding it asks for.
    MemberConsent,
}

impl OtpPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            OtpPurpose::Login => "login",
            OtpPurpose::StepUp => "step_up",
            OtpPurpose::MemberConsent => "member_consent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtpPolicy {
    /// Seconds a code stays valid.
    pub ttl_secs: i64,
    /// Wrong tries a code survives; the next wrong try (and every later one) fails it for good.
    pub max_attempts: u32,
    /// Seconds before another code may be sent to the same phone.
    pub resend_secs: i64,
    /// Codes sent to one phone per hour.
    pub sends_per_phone_hour: u32,
    /// Codes requested from one client address per hour.
    pub sends_per_ip_hour: u32,
    /// Wrong codes from one client address per hour before it must wait.
    pub failures_per_ip_hour: u32,
}

impl Default for OtpPolicy {
    fn default() -> Self {
        OtpPolicy {
            ttl_secs: 300,
            max_attempts: 5,
            resend_secs: 60,
            sends_per_phone_hour: 5,
            sends_per_ip_hour: 20,
            failures_per_ip_hour: 30,
        }
    }
}

/// What the store knows about earlier sends when a new code is asked for.
#[derive(Debug, Clone, Default)]
pub struct SendHistory {
    pub last_sent_to_phone: Option<DateTime<Utc>>,
    pub sent_to_phone_last_hour: u32,
    pub requested_from_ip_last_hour: u32,
}

/// Why a code is not sent, and when asking again can succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRefused {
    pub retry_after_secs: i64,
}

impl OtpPolicy {
    pub fn ttl(&self) -> Duration {
        Duration::seconds(self.ttl_secs)
    }

    /// Whether a code may go out now.
    pub fn may_send(&self, history: &SendHistory, now: DateTime<Utc>) -> Result<(), SendRefused> {
        if let Some(last) = history.last_sent_to_phone {
            let next = last + Duration::seconds(self.resend_secs);
            if now < next {
                return Err(SendRefused { retry_after_secs: (next - now).num_seconds().max(1) });
            }
        }
        if history.sent_to_phone_last_hour >= self.sends_per_phone_hour
            || history.requested_from_ip_last_hour >= self.sends_per_ip_hour
        {
            return Err(SendRefused { retry_after_secs: 3600 });
        }
        Ok(())
    }

    /// The verdict on a presented code, given the latest code sent for this phone and purpose.
    pub fn check(&self, code: Option<&IssuedCode>, presented_matches: bool, now: DateTime<Utc>) -> CodeVerdict {
        let Some(code) = code else { return CodeVerdict::NoCode };
        if code.used {
            return CodeVerdict::NoCode;
        }
        if now >= code.sent_at + self.ttl() {
            return CodeVerdict::Expired;
        }
        if code.wrong_attempts >= self.max_attempts {
            return CodeVerdict::Exhausted;
        }
        if presented_matches { CodeVerdict::Accepted } else { CodeVerdict::Wrong }
    }
}

/// A code as the store keeps it (its hash is compared by the caller).
#[derive(Debug, Clone)]
pub struct IssuedCode {
    pub sent_at: DateTime<Utc>,
    pub wrong_attempts: u32,
    pub used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeVerdict {
    Accepted,
    /// A wrong try: counted.
    Wrong,
    /// Valid time is over.
    Expired,
    /// Too many wrong tries: even the right code is refused now.
    Exhausted,
    /// No code was sent, or it was used already.
    NoCode,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn one_send_per_minute_per_phone() {
        let p = OtpPolicy::default();
        let h = SendHistory { last_sent_to_phone: Some(t0()), sent_to_phone_last_hour: 1, ..Default::default() };
        assert_eq!(p.may_send(&h, t0() + Duration::seconds(59)), Err(SendRefused { retry_after_secs: 1 }));
        assert!(p.may_send(&h, t0() + Duration::seconds(59) + Duration::milliseconds(999)).is_err());
        assert!(p.may_send(&h, t0() + Duration::seconds(60)).is_ok());
        assert!(p.may_send(&h, t0() + Duration::seconds(61)).is_ok());
    }

    #[test]
    fn hourly_limits_per_phone_and_address() {
        let p = OtpPolicy::default();
        let phone = SendHistory { sent_to_phone_last_hour: 5, ..Default::default() };
        assert!(p.may_send(&phone, t0()).is_err());
        let ip = SendHistory { requested_from_ip_last_hour: 20, ..Default::default() };
        assert!(p.may_send(&ip, t0()).is_err());
        let under = SendHistory { sent_to_phone_last_hour: 4, requested_from_ip_last_hour: 19, ..Default::default() };
        assert!(p.may_send(&under, t0()).is_ok());
    }

    #[test]
    fn codes_live_five_minutes_and_five_wrong_tries() {
        let p = OtpPolicy::default();
        let mut code = IssuedCode { sent_at: t0(), wrong_attempts: 0, used: false };
        let just_before = t0() + Duration::seconds(299) + Duration::milliseconds(999);
        assert_eq!(p.check(Some(&code), true, just_before), CodeVerdict::Accepted);
        assert_eq!(p.check(Some(&code), true, t0() + Duration::seconds(300)), CodeVerdict::Expired);
        code.wrong_attempts = 4;
        assert_eq!(p.check(Some(&code), false, t0()), CodeVerdict::Wrong, "the 5th wrong try still counts");
        code.wrong_attempts = 5;
        assert_eq!(p.check(Some(&code), true, t0()), CodeVerdict::Exhausted, "after 5 wrong tries even the right code");
        code = IssuedCode { used: true, ..code };
        assert_eq!(p.check(Some(&code), true, t0()), CodeVerdict::NoCode);
        assert_eq!(p.check(None, true, t0()), CodeVerdict::NoCode);
    }
}
