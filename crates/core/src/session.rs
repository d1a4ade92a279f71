//! Patient sessions (S12): an idle timeout and an absolute lifetime, both configurable.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionPolicy {
    /// Minutes without a request after which a session ends.
    pub idle_minutes: i64,
    /// Hours after login after which a session ends whatever happens.
    pub absolute_hours: i64,
    /// Minutes a step-up (a fresh one-time code) counts as fresh (S13).
    pub step_up_minutes: i64,
    /// Seconds between two recordings of a session's last use (limits writes per request).
    pub touch_every_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy { idle_minutes: 30, absolute_hours: 12, step_up_minutes: 5, touch_every_secs: 60 }
    }
}

/// A session's times as stored.
#[derive(Debug, Clone)]
pub struct SessionTimes {
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub step_up_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

impl SessionPolicy {
    pub fn is_live(&self, s: &SessionTimes, now: DateTime<Utc>) -> bool {
        !s.revoked
            && now < s.last_seen_at + Duration::minutes(self.idle_minutes)
            && now < s.created_at + Duration::hours(self.absolute_hours)
    }

    /// Whether this request should record the session's last use.
    pub fn needs_touch(&self, s: &SessionTimes, now: DateTime<Utc>) -> bool {
        now - s.last_seen_at >= Duration::seconds(self.touch_every_secs)
    }

    pub fn stepped_up(&self, s: &SessionTimes, now: DateTime<Utc>) -> bool {
        s.step_up_at.is_some_and(|at| now < at + Duration::minutes(self.step_up_minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_limits() {
        let p = SessionPolicy::default();
        let t0 = DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z").unwrap().with_timezone(&Utc);
        let mut s = SessionTimes { created_at: t0, last_seen_at: t0, step_up_at: None, revoked: false };
        assert!(p.is_live(&s, t0 + Duration::minutes(29) + Duration::seconds(59)));
        assert!(!p.is_live(&s, t0 + Duration::minutes(30)));
        s.last_seen_at = t0 + Duration::hours(11) + Duration::minutes(50);
        assert!(p.is_live(&s, t0 + Duration::hours(11) + Duration::minutes(59)));
        assert!(!p.is_live(&s, t0 + Duration::hours(12)), "absolute lifetime wins over activity");
        s.revoked = true;
        assert!(!p.is_live(&s, t0 + Duration::hours(11) + Duration::minutes(55)));
        s.step_up_at = Some(t0);
        assert!(p.stepped_up(&s, t0 + Duration::seconds(299)));
        assert!(!p.stepped_up(&s, t0 + Duration::seconds(300)));
    }
}
