//! Client authentication: Basic credentials in on Handshake, a signed bearer
//! token out; the token is checked on every other RPC.

use base64::Engine;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::proto::{AuthToken, Kind};
use super::signing::{Signer, now_secs};
use crate::config::AuthMode;

/// Checks credentials and issues and verifies bearer tokens.
#[derive(Debug, Clone)]
pub struct Authenticator {
    mode: AuthMode,
    default_user: String,
    token_ttl_secs: i64,
    signer: Signer,
}

/// Basic credentials in standard base64, padded or not: the ADBC driver
/// leaves the padding off, most other clients put it on.
const BASIC_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// What a client sent in its `authorization` header.
enum Credentials {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

fn credentials(md: &MetadataMap) -> Result<Credentials, Status> {
    let Some(v) = md.get("authorization") else { return Ok(Credentials::None) };
    let v = v.to_str().map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = BASIC_BASE64
            .decode(rest.trim())
            .map_err(|_| Status::unauthenticated("Basic credentials are not base64"))?;
        let raw = String::from_utf8(raw).map_err(|_| Status::unauthenticated("Basic credentials are not UTF-8"))?;
        let (user, password) = raw.split_once(':').unwrap_or((&raw, ""));
        Ok(Credentials::Basic { user: user.to_string(), password: password.to_string() })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(rest.trim().to_string()))
    } else {
        Err(Status::unauthenticated(format!("unsupported authorization scheme `{scheme}`")))
    }
}

impl Authenticator {
    pub fn new(mode: AuthMode, default_user: String, token_ttl_secs: i64, signer: Signer) -> Self {
        Authenticator { mode, default_user, token_ttl_secs, signer }
    }

    /// Handshake: checks Basic credentials (or an existing token) and returns
    /// the user and a bearer token for it.
    pub fn handshake(&self, md: &MetadataMap) -> Result<(String, String), Status> {
        let user = match credentials(md)? {
            Credentials::Basic { user, password } => {
                self.check_password(&user, &password)?;
                user
            }
            Credentials::Bearer(token) => self.verify_token(&token)?,
            Credentials::None => match self.mode {
                AuthMode::None => self.default_user.clone(),
                AuthMode::Password { .. } => return Err(Status::unauthenticated("Handshake needs Basic credentials")),
            },
        };
        Ok((user.clone(), self.issue(&user)))
    }

    /// The user of an RPC other than Handshake.
    pub fn identify(&self, md: &MetadataMap) -> Result<String, Status> {
        match (credentials(md)?, &self.mode) {
            (Credentials::Bearer(token), AuthMode::None) => {
                // Some clients send `Bearer None` or an empty token when no
                // auth is configured: fall back to the default user.
                Ok(self.verify_token(&token).unwrap_or_else(|_| self.default_user.clone()))
            }
            (Credentials::Bearer(token), AuthMode::Password { .. }) => self.verify_token(&token),
            (Credentials::Basic { user, .. }, AuthMode::None) if !user.is_empty() => Ok(user),
            (Credentials::Basic { .. } | Credentials::None, AuthMode::None) => Ok(self.default_user.clone()),
            (Credentials::Basic { .. }, AuthMode::Password { .. }) => {
                Err(Status::unauthenticated("send the bearer token from Handshake, not Basic credentials"))
            }
            (Credentials::None, AuthMode::Password { .. }) => {
                Err(Status::unauthenticated("missing bearer token: authenticate with Handshake first"))
            }
        }
    }

    fn check_password(&self, user: &str, password: &str) -> Result<(), Status> {
        if user.is_empty() {
            return Err(Status::unauthenticated("empty user name"));
        }
        match &self.mode {
            AuthMode::None => Ok(()),
            AuthMode::Password { users } => {
                let hash = users.iter().find(|(u, _)| u == user).map(|(_, h)| h.as_str());
                // Verify against a dummy hash for unknown users so timing does
                // not reveal which users exist.
                const DUMMY: &str = "$2y$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3Rgrw0XsPGqpbRg2vH3GzQ2";
                let ok = bcrypt::verify(password, hash.unwrap_or(DUMMY)).unwrap_or(false);
                if ok && hash.is_some() {
                    Ok(())
                } else {
                    Err(Status::unauthenticated("invalid user name or password"))
                }
            }
        }
    }

    fn issue(&self, user: &str) -> String {
        let token = AuthToken { user: user.to_string(), expires_at: now_secs() + self.token_ttl_secs };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.signer.sign(Kind::Token, &token))
    }

    fn verify_token(&self, token: &str) -> Result<String, Status> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| Status::unauthenticated("malformed bearer token"))?;
        let t: AuthToken =
            self.signer.verify(Kind::Token, &bytes).map_err(|e| Status::unauthenticated(e.to_string()))?;
        if t.expires_at < now_secs() {
            return Err(Status::unauthenticated("bearer token has expired: authenticate again"));
        }
        Ok(t.user)
    }
}
