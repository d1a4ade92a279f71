//! Consent (S33): the privacy policy is versioned; processing health data needs its own,
//! separate consent, which can be withdrawn at any time with immediate effect.

/// The version of the privacy policy in force; accepting an older one is not consent.
pub const POLICY_VERSION: &str = "2026-11-01";

/// The privacy policy shown before consent (Simplified Chinese, then English).
pub const POLICY_TEXT: &str = include_str!("policy.txt");

/// What an account has agreed to, as the latest event of each kind says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentState {
    /// The policy version accepted last, if any.
    pub policy_version: Option<String>,
    /// Whether the separate consent to process health data stands.
    pub health_data: bool,
}

impl ConsentState {
    /// Health data may be processed: the current policy accepted and the consent not withdrawn.
    pub fn permits_processing(&self) -> bool {
        self.health_data && self.policy_version.as_deref() == Some(POLICY_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_are_needed_and_only_the_current_policy_counts() {
        let mut s = ConsentState { policy_version: Some(POLICY_VERSION.into()), health_data: true };
        assert!(s.permits_processing());
        s.health_data = false;
        assert!(!s.permits_processing());
        s = ConsentState { policy_version: Some("2020-01-01".into()), health_data: true };
        assert!(!s.permits_processing());
        assert!(!ConsentState::default().permits_processing());
    }
}
