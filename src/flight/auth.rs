//! Client authentication: Basic credentials in on Handshake, a signed bearer
//! token out; the token is checked on every other RPC.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::codegen::http;
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
    /// The users file as last read, for `--auth password`.
    users: Option<Arc<Users>>,
    /// bcrypt is slow by design: it runs on blocking threads, a few at a
    /// time, so a flood of logins cannot stall the async workers.
    bcrypt_slots: Arc<Semaphore>,
}

/// The users file, read again when it changes on disk.
#[derive(Debug)]
struct Users {
    path: PathBuf,
    state: RwLock<UsersState>,
}

#[derive(Debug)]
struct UsersState {
    users: Arc<Vec<(String, String)>>,
    /// Modification time and length when last read: a change to either
    /// means the file is read again.
    modified: Option<(SystemTime, u64)>,
    checked: Instant,
}

fn signature(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// How often the users file's modification time is looked at.
const USERS_RECHECK: Duration = Duration::from_secs(2);

impl Users {
    /// The users now: the file is read again when it changed since the last
    /// look; a file that no longer reads keeps the last good list.
    fn current(&self) -> Arc<Vec<(String, String)>> {
        {
            let st = self.state.read().expect("users lock");
            if st.checked.elapsed() < USERS_RECHECK {
                return Arc::clone(&st.users);
            }
        }
        let mut st = self.state.write().expect("users lock");
        if st.checked.elapsed() >= USERS_RECHECK {
            st.checked = Instant::now();
            let modified = signature(&self.path);
            if modified != st.modified {
                match crate::config::load_users(&self.path) {
                    Ok(users) => {
                        tracing::info!(path = %self.path.display(), users = users.len(), "users file read again");
                        st.users = Arc::new(users);
                        st.modified = modified;
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "users file unreadable; keeping the last good one")
                    }
                }
            }
        }
        Arc::clone(&st.users)
    }

    fn contains(&self, user: &str) -> bool {
        self.current().iter().any(|(u, _)| u == user)
    }
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

/// The user and password of Basic credentials (what follows `Basic `), for
/// every protocol Flightdeck speaks.
pub(crate) fn basic_user_password(encoded: &str) -> Result<(String, String), &'static str> {
    let raw = BASIC_BASE64.decode(encoded.trim()).map_err(|_| "Basic credentials are not base64")?;
    let raw = String::from_utf8(raw).map_err(|_| "Basic credentials are not UTF-8")?;
    let (user, password) = raw.split_once(':').unwrap_or((&raw, ""));
    Ok((user.to_string(), password.to_string()))
}

fn credentials(md: &MetadataMap) -> Result<Credentials, Status> {
    let Some(v) = md.get("authorization") else { return Ok(Credentials::None) };
    let v = v.to_str().map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let (user, password) = basic_user_password(rest).map_err(Status::unauthenticated)?;
        Ok(Credentials::Basic { user, password })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(rest.trim().to_string()))
    } else {
        Err(Status::unauthenticated(format!("unsupported authorization scheme `{scheme}`")))
    }
}

impl Authenticator {
    /// An authenticator for `mode`; tokens live `token_ttl_secs`.
    pub fn new(mode: AuthMode, default_user: String, token_ttl_secs: i64, signer: Signer) -> Self {
        let users = match &mode {
            AuthMode::None => None,
            AuthMode::Password { users, path } => Some(Arc::new(Users {
                path: path.clone(),
                state: RwLock::new(UsersState {
                    users: Arc::new(users.clone()),
                    modified: signature(path),
                    checked: Instant::now(),
                }),
            })),
        };
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        Authenticator {
            mode,
            default_user,
            token_ttl_secs,
            signer,
            users,
            bcrypt_slots: Arc::new(Semaphore::new(slots)),
        }
    }

    /// Handshake: checks Basic credentials (or an existing token) and returns
    /// the user and a bearer token for it. Renewing a token keeps its
    /// expiry: only a password starts a new lifetime.
    pub async fn handshake(&self, md: &MetadataMap) -> Result<(String, String), Status> {
        let (user, expires_at) = match credentials(md)? {
            Credentials::Basic { user, password } => {
                self.check_password(&user, &password).await?;
                (user, now_secs() + self.token_ttl_secs)
            }
            Credentials::Bearer(token) => {
                let t = self.verify_token(&token)?;
                (t.user, t.expires_at)
            }
            Credentials::None => match self.mode {
                AuthMode::None => (self.default_user.clone(), now_secs() + self.token_ttl_secs),
                AuthMode::Password { .. } => return Err(Status::unauthenticated("Handshake needs Basic credentials")),
            },
        };
        let token = self.issue(&user, expires_at);
        Ok((user, token))
    }

    /// The user of an RPC other than Handshake.
    pub fn identify(&self, md: &MetadataMap) -> Result<String, Status> {
        match (credentials(md)?, &self.mode) {
            (Credentials::Bearer(token), AuthMode::None) => {
                // Some clients send `Bearer None` or an empty token when no
                // auth is configured: fall back to the default user.
                Ok(self.verify_token(&token).map(|t| t.user).unwrap_or_else(|_| self.default_user.clone()))
            }
            (Credentials::Bearer(token), AuthMode::Password { .. }) => Ok(self.verify_token(&token)?.user),
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

    /// Checks a call's credentials from its headers alone, before its
    /// message is read, so that nobody without a valid token makes the
    /// server decode a large request. Handshake is not gated.
    pub fn precheck(&self, headers: &http::HeaderMap) -> Result<(), Status> {
        if matches!(self.mode, AuthMode::None) {
            return Ok(());
        }
        self.identify(&MetadataMap::from_headers(headers.clone())).map(|_| ())
    }

    /// Whether clients must give a password (else they name their user).
    pub fn requires_password(&self) -> bool {
        matches!(self.mode, AuthMode::Password { .. })
    }

    /// The user of a client that names none, when no password is required.
    pub fn default_user(&self) -> &str {
        &self.default_user
    }

    /// Checks a user's password against the users file.
    pub async fn login(&self, user: &str, password: &str) -> Result<(), Status> {
        self.check_password(user, password).await
    }

    async fn check_password(&self, user: &str, password: &str) -> Result<(), Status> {
        if user.is_empty() {
            return Err(Status::unauthenticated("empty user name"));
        }
        let Some(users) = &self.users else { return Ok(()) };
        let hash = users.current().iter().find(|(u, _)| u == user).map(|(_, h)| h.clone());
        // Verify against a dummy hash for unknown users so timing does
        // not reveal which users exist.
        const DUMMY: &str = "$2y$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z3Rgrw0XsPGqpbRg2vH3GzQ2";
        let known = hash.is_some();
        let _slot = self.bcrypt_slots.acquire().await.map_err(|_| Status::unavailable("shutting down"))?;
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, hash.as_deref().unwrap_or(DUMMY)))
            .await
            .map_err(|_| Status::internal("password check failed"))?
            .unwrap_or(false);
        if ok && known { Ok(()) } else { Err(Status::unauthenticated("invalid user name or password")) }
    }

    fn issue(&self, user: &str, expires_at: i64) -> String {
        let token = AuthToken { user: user.to_string(), expires_at };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.signer.sign(Kind::Token, &token))
    }

    /// A token that verifies, has not expired, and whose user is still in
    /// the users file.
    fn verify_token(&self, token: &str) -> Result<AuthToken, Status> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| Status::unauthenticated("malformed bearer token"))?;
        let t: AuthToken =
            self.signer.verify(Kind::Token, &bytes).map_err(|e| Status::unauthenticated(e.to_string()))?;
        if t.expires_at < now_secs() {
            return Err(Status::unauthenticated("bearer token has expired: authenticate again"));
        }
        if self.users.as_ref().is_some_and(|u| !u.contains(&t.user)) {
            return Err(Status::unauthenticated("user is no longer allowed: authenticate again"));
        }
        Ok(t)
    }
}

/// Refuses a call whose credentials do not check out before its request
/// message is read: a stranger cannot make the server decode a large
/// message. Wraps the Flight service in the gRPC server.
#[derive(Debug, Clone)]
pub struct AuthGate<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> AuthGate<S> {
    /// `inner`, gated by `auth`.
    pub fn new(inner: S, auth: Authenticator) -> Self {
        AuthGate { inner, auth }
    }
}

impl<S, B> tonic::codegen::Service<http::Request<B>> for AuthGate<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // Handshake carries the password; it is checked there, streamed.
        if !req.uri().path().ends_with("/Handshake")
            && let Err(status) = self.auth.precheck(req.headers())
        {
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(self.inner.call(req))
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for AuthGate<S> {
    const NAME: &'static str = S::NAME;
}
