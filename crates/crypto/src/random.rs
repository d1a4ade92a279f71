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
