//! Users, roles and tokens: passwords hashed with argon2, tokens random and stored only as
//! a SHA-256 digest (a leaked database gives no usable token).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

pub use kairos_api::control::Role;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source works");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new secret token, prefixed by its kind so a leaked one is recognisable (`kt_...`).
pub fn new_token(prefix: &str) -> String {
    format!("{prefix}_{}", hex(&random_bytes::<24>()))
}

pub use kairos_api::token_digest;

/// A short random ID for things that are not secrets (test runs).
pub fn new_id() -> String {
    hex(&random_bytes::<8>())
}

/// A readable random password for a generated admin account.
pub fn new_password() -> String {
    hex(&random_bytes::<12>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse"), "salted");
    }

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let (a, b) = (new_token("ku"), new_token("ku"));
        assert_ne!(a, b);
        assert!(a.starts_with("ku_") && a.len() == 3 + 48);
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_ne!(token_digest(&a), token_digest(&b));
        assert_eq!(token_digest(&a).len(), 64);
    }
}
