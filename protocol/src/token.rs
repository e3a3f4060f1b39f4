//! The shape of an aquifer token: `aq_<id>_<secret>`, the id 8 bytes and
//! the secret 32, both in lower-case hex. The server keeps the id and a
//! hash of the secret. The server makes every token but one: an agent
//! makes the worker token it proposes at its bootstrap
//! ([`crate::agent::BootstrapRequest::token`]).

/// Bytes of a token's id.
pub const ID_BYTES: usize = 8;
/// Bytes of a token's secret.
pub const SECRET_BYTES: usize = 32;

/// Lower-case hex, the one spelling of a token's parts.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of `id` and `secret` (random bytes, from the caller's
/// source).
#[must_use]
pub fn compose(id: &[u8; ID_BYTES], secret: &[u8; SECRET_BYTES]) -> String {
    format!("aq_{}_{}", hex(id), hex(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_its_parts_in_hex() {
        let t = compose(&[0xab; ID_BYTES], &[0x01; SECRET_BYTES]);
        assert_eq!(t, format!("aq_{}_{}", "ab".repeat(8), "01".repeat(32)));
    }
}
