//! `[auth]`: how clients authenticate to Flightdeck, and how long what they
//! are given stays valid.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};
use merge::Merge;
use serde::Deserialize;

use super::values;
use super::{Section, defaulted};

/// Options of the `[auth]` section.
#[derive(Debug, Clone, Default, Args, Deserialize, Merge)]
#[merge(strategy = merge::option::overwrite_none)]
#[command(next_help_heading = "Client authentication")]
#[serde(default, deny_unknown_fields)]
pub struct AuthArgs {
    /// Client authentication.
    #[arg(long = "auth", env = "FLIGHTDECK_AUTH", value_name = "MODE", default_value = "none")]
    pub mode: Option<ClientAuth>,

    /// Password file for --auth password: one `user:bcrypt-hash` per line, the
    /// format of Trino's file authenticator (`flightdeck hash-password`).
    #[arg(long, env = "FLIGHTDECK_USERS_FILE", value_name = "FILE")]
    pub users_file: Option<PathBuf>,

    /// User for clients that send no credentials when --auth none.
    #[arg(long, env = "FLIGHTDECK_DEFAULT_USER", value_name = "USER", default_value = "flightdeck")]
    pub default_user: Option<String>,

    /// Lifetime of bearer tokens issued by Handshake; renewing a token with
    /// Handshake never extends it. Seconds, or e.g. `12h`.
    #[arg(long, env = "FLIGHTDECK_TOKEN_TTL_SECS", value_name = "SECS", value_parser = values::duration,
          default_value = "43200")]
    #[serde(deserialize_with = "values::de_duration")]
    pub token_ttl_secs: Option<Duration>,

    /// Lifetime of session cookies and prepared-statement handles. Seconds,
    /// or e.g. `1d`.
    #[arg(long, env = "FLIGHTDECK_SESSION_TTL_SECS", value_name = "SECS", value_parser = values::duration,
          default_value = "86400")]
    #[serde(deserialize_with = "values::de_duration")]
    pub session_ttl_secs: Option<Duration>,

    /// Allow --auth password on a plain-gRPC, non-loopback listener, which
    /// sends passwords and tokens in clear text: `true` or `false`.
    #[arg(long, env = "FLIGHTDECK_ALLOW_INSECURE_PASSWORD", value_name = "BOOL", value_parser = values::boolean,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub allow_insecure_password: Option<bool>,
}

/// The client authentication modes of `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Any user name is accepted and passed to Trino.
    None,
    /// Checked against --users-file.
    Password,
}

/// How clients authenticate to Flightdeck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// Any user name is accepted; no password is checked.
    None,
    /// User names and bcrypt password hashes, `user:hash` per line, read
    /// again from `path` when it changes.
    Password { users: Vec<(String, String)>, path: PathBuf },
}

/// The checked `[auth]` settings: how clients authenticate.
#[derive(Debug, Clone)]
pub struct Auth {
    pub mode: AuthMode,
    /// User of clients that send no credentials (mode `none`).
    pub default_user: String,
    /// Lifetime of Handshake tokens.
    pub token_ttl: Duration,
    /// Lifetime of session cookies and prepared-statement handles.
    pub session_ttl: Duration,
    /// Password authentication allowed over plain gRPC off loopback.
    pub allow_insecure_password: bool,
}

impl Section for AuthArgs {
    type Resolved = Auth;

    fn resolve(self, problems: &mut Vec<String>) -> Auth {
        let mode = match (defaulted(self.mode), self.users_file) {
            (ClientAuth::None, _) => AuthMode::None,
            (ClientAuth::Password, None) => {
                problems.push("auth: mode `password` needs a users file".into());
                AuthMode::None
            }
            (ClientAuth::Password, Some(path)) => match load_users(&path) {
                Ok(users) => AuthMode::Password { users, path },
                Err(e) => {
                    problems.push(format!("users file {}: {e}", path.display()));
                    AuthMode::None
                }
            },
        };
        let default_user = defaulted(self.default_user);
        if default_user.trim().is_empty() {
            problems.push("default user: must not be empty".into());
        }
        Auth {
            mode,
            default_user,
            token_ttl: defaulted(self.token_ttl_secs),
            session_ttl: defaulted(self.session_ttl_secs),
            allow_insecure_password: defaulted(self.allow_insecure_password),
        }
    }
}

/// Parses a `user:bcrypt-hash` password file (Trino's format).
pub(crate) fn load_users(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((u, h)) if !u.is_empty() && h.starts_with("$2") => users.push((u.to_string(), h.to_string())),
            _ => return Err(format!("line {}: expected `user:bcrypt-hash`", i + 1)),
        }
    }
    if users.is_empty() {
        return Err("no users".into());
    }
    Ok(users)
}
