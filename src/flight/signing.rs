//! Signed, self-contained messages: tickets, prepared-statement handles and
//! bearer tokens. Each is a prost message inside a [`Signed`] envelope whose
//! HMAC-SHA256 covers its kind and payload, so any replica holding the
//! secret can verify it and a forged or altered one is refused.

use hmac::{Hmac, Mac};
use prost::Message;
use sha2::Sha256;

use super::proto::{Kind, Signed};

type HmacSha256 = Hmac<Sha256>;

/// Why a signed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("{0} signature does not verify (forged, altered, or signed with another secret)")]
    BadSignature(&'static str),
}

/// Signs and verifies messages with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<secret>)")
    }
}

fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::Ticket => "ticket",
        Kind::Prepared => "prepared statement handle",
        Kind::Token => "token",
        Kind::Session => "session cookie",
        Kind::Unspecified => "message",
    }
}

impl Signer {
    /// A signer with `key`, or with a random 32-byte key when `None`.
    pub fn new(key: Option<Vec<u8>>) -> Self {
        let key = key.unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
        Signer { key }
    }

    fn mac(&self, kind: Kind, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&(kind as i32).to_be_bytes());
        mac.update(payload);
        mac
    }

    /// Encodes `msg` as a signed envelope of `kind`.
    pub fn sign<M: Message>(&self, kind: Kind, msg: &M) -> Vec<u8> {
        let payload = msg.encode_to_vec();
        let mac = self.mac(kind, &payload).finalize().into_bytes().to_vec();
        Signed { kind: kind as i32, payload, mac }.encode_to_vec()
    }

    /// Decodes and verifies a signed envelope of `kind`.
    pub fn verify<M: Message + Default>(&self, kind: Kind, bytes: &[u8]) -> Result<M, SignError> {
        let what = label(kind);
        let env = Signed::decode(bytes).map_err(|_| SignError::Malformed(what))?;
        if env.kind != kind as i32 {
            return Err(SignError::Malformed(what));
        }
        // Constant-time comparison.
        self.mac(kind, &env.payload).verify_slice(&env.mac).map_err(|_| SignError::BadSignature(what))?;
        M::decode(env.payload.as_slice()).map_err(|_| SignError::Malformed(what))
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flight::proto::AuthToken;

    #[test]
    fn round_trip_and_tamper() {
        let s = Signer::new(Some(b"k".repeat(32)));
        let msg = AuthToken { user: "alice".into(), expires_at: 42 };
        let bytes = s.sign(Kind::Token, &msg);
        assert_eq!(s.verify::<AuthToken>(Kind::Token, &bytes).unwrap(), msg);
        // Same secret on another replica verifies too.
        assert_eq!(Signer::new(Some(b"k".repeat(32))).verify::<AuthToken>(Kind::Token, &bytes).unwrap(), msg);
        // A different secret, an altered payload, or another kind are refused.
        assert!(matches!(Signer::new(None).verify::<AuthToken>(Kind::Token, &bytes), Err(SignError::BadSignature(_))));
        let mut env = Signed::decode(bytes.as_slice()).unwrap();
        env.payload = AuthToken { user: "mallory".into(), expires_at: 42 }.encode_to_vec();
        assert!(matches!(s.verify::<AuthToken>(Kind::Token, &env.encode_to_vec()), Err(SignError::BadSignature(_))));
        assert!(matches!(s.verify::<AuthToken>(Kind::Ticket, &bytes), Err(SignError::Malformed(_))));
        assert!(matches!(s.verify::<AuthToken>(Kind::Token, b"garbage"), Err(SignError::Malformed(_))));
    }
}
