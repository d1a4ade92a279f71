//! Randomness from the operating system's CSPRNG.

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the operating system's random source failed");
    out
}

/// A random 128-bit identifier as 32 lowercase hex characters (blob names, request ids).
pub fn hex_id() -> String {
    hex::encode(bytes::<16>())
}

/// A random URL-safe token with `N` bytes of entropy (API keys, session and share tokens).
pub fn token<const N: usize>() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes::<N>())
}

/// `n` uniformly random decimal digits (one-time codes), without modulo bias.
pub fn digits(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in bytes::<32>() {
            // 250 = 25 × 10: bytes above it would favour the low digits.
            if b < 250 && out.len() < n {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_are_digits_and_vary() {
        let a = super::digits(6);
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        let distinct: std::collections::HashSet<String> = (0..50).map(|_| super::digits(6)).collect();
        assert!(distinct.len() > 45);
    }
}
