//! One-time tokens and session tokens: 32 random bytes from the OS, base64url without
//! padding in links; only their SHA-256 is stored, so a copy of the database opens
//! nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new token: the text for the user and the hash to store.
pub fn new() -> (String, Vec<u8>) {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let text = URL_SAFE_NO_PAD.encode(b);
    let h = hash(&text);
    (text, h)
}

/// The stored form of `text`.
pub fn hash(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

/// Whether `text` looks like a token (43 base64url characters): anything else is refused
/// before the database is asked.
pub fn well_formed(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_well_formed_and_hashed() {
        let (a, ha) = super::new();
        let (b, _) = super::new();
        assert_ne!(a, b);
        assert!(super::well_formed(&a));
        assert_eq!(ha, super::hash(&a));
        assert_eq!(ha.len(), 32);
        assert!(!super::well_formed("' OR 1=1 --"));
    }
}
