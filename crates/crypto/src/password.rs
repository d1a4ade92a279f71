//! Passwords that guard shares (and, later, staff accounts): Argon2id with OWASP's minimum
//! cost (19 MiB, 2 passes, 1 lane), a random salt per hash, kept as a PHC string so the
//! parameters travel with the hash and can be raised later.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, None).expect("valid parameters"))
}

/// The PHC string of a password (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash(password: &str) -> String {
    argon2().hash_password(password.as_bytes()).expect("Argon2id hashes any password").to_string()
}

/// Whether `password` is the one `stored` was made from (parameters read from `stored`);
/// false for a malformed stored value.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_with_a_salt_per_hash() {
        let stored = hash("看片密码123");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("看片密码123", &stored));
        assert!(!verify("看片密码124", &stored));
        assert!(!verify("", &stored));
        assert_ne!(hash("看片密码123"), stored, "a new salt each time");
        assert!(!verify("x", "not a hash"));
    }
}
