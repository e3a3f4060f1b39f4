//! Passwords for the roles the postgres well makes, and their
//! SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677, in PostgreSQL's stored
//! form).
//!
//! The well sends PostgreSQL the verifier, never the password, as `psql`'s
//! `\password` does: a `CREATE ROLE` that fails is written to the server's
//! log with its text (`log_min_error_statement`), and so is every
//! statement under `log_statement = ddl`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Characters in a password: 40 from 62 symbols is about 238 bits.
pub const PASSWORD_LEN: usize = 40;
const SYMBOLS: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// PostgreSQL's default `scram_iterations`.
pub const ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;

/// A fresh password. Only letters and digits, so it needs no escaping in a
/// URL or a shell, and SASLprep leaves it as it is.
pub fn password() -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(PASSWORD_LEN);
    let mut bytes = [0u8; 64];
    while out.len() < PASSWORD_LEN {
        getrandom::fill(&mut bytes)?;
        // 248 is the largest multiple of 62 a byte holds: bytes at or
        // above it are skipped so that every symbol is equally likely.
        for &b in bytes.iter().filter(|&&b| b < 248) {
            if out.len() == PASSWORD_LEN {
                break;
            }
            out.push(char::from(SYMBOLS[usize::from(b % 62)]));
        }
    }
    Ok(out)
}

/// A fresh salt for [`verifier`].
pub fn salt() -> Result<[u8; SALT_LEN], getrandom::Error> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)?;
    Ok(salt)
}

/// HMAC-SHA-256 keyed with `key`. HMAC takes keys of any length (a long
/// one is hashed first), so keying cannot fail.
#[allow(clippy::expect_used)]
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts a key of any length")
}

fn mac(key: &Hmac<Sha256>, parts: &[&[u8]]) -> [u8; 32] {
    let mut m = key.clone();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// `Hi()` of RFC 5802: PBKDF2 with HMAC-SHA-256, one block.
fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let key = keyed(password.as_bytes());
    let mut u = mac(&key, &[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..iterations {
        u = mac(&key, &[&u]);
        out.iter_mut().zip(u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// What PostgreSQL stores for `password`:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. Given as a
/// role's `PASSWORD`, it is stored as it is, and the role logs in with
/// `password`. CPU-bound for a few milliseconds: call it off the runtime's
/// threads.
#[must_use]
pub fn verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = keyed(&salted_password(password, salt, iterations));
    let client_key = mac(&salted, &[b"Client Key"]);
    let stored_key = Sha256::digest(client_key);
    let server_key = mac(&salted, &[b"Server Key"]);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    )
}

/// The salt and iterations of a stored verifier, to compute it again from
/// a password (the tests hold the well's computation to PostgreSQL's).
#[must_use]
pub fn parse_verifier(stored: &str) -> Option<(Vec<u8>, u32)> {
    let rest = stored.strip_prefix("SCRAM-SHA-256$")?;
    let (params, _) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    Some((BASE64.decode(salt).ok()?, iterations.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_random_and_plain() {
        let a = password().expect("randomness");
        let b = password().expect("randomness");
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn pbkdf2_matches_rfc_7914() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256 ("passwd", "salt", 1),
        // its first 32 bytes.
        let out = salted_password("passwd", b"salt", 1);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn the_verifier_of_rfc_7677s_example() {
        // RFC 7677's example user ("pencil", its salt, 4096 iterations);
        // the keys computed independently with Python's hashlib and hmac.
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("base64");
        let v = verifier("pencil", &salt, 4096);
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        assert_eq!(parse_verifier(&v), Some((salt, 4096)));
        assert_eq!(parse_verifier("md5abc"), None);
    }
}
