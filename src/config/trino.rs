//! `[trino]`: the coordinator, Flightdeck's credentials for it, and the
//! session every query starts from.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use merge::Merge;
use serde::Deserialize;
use url::Url;

use super::values::{self, Secret};
use super::{Section, defaulted, secret};
use crate::trino::{TrinoAuth, TrinoConfig};

/// Options of the `[trino]` section.
#[derive(Debug, Clone, Default, Args, Deserialize, Merge)]
#[merge(strategy = merge::option::overwrite_none)]
#[command(next_help_heading = "Trino")]
#[serde(default, deny_unknown_fields)]
pub struct TrinoArgs {
    /// Trino coordinator URL, http or https.
    #[arg(
        long = "trino-url",
        env = "FLIGHTDECK_TRINO_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    #[serde(deserialize_with = "values::de_url")]
    pub url: Option<Url>,

    /// User Flightdeck authenticates to Trino as (HTTP Basic, with the
    /// password). Client queries still run as the client's user
    /// (`X-Trino-User`), so Trino must allow this user to impersonate them.
    #[arg(long = "trino-user", env = "FLIGHTDECK_TRINO_USER", value_name = "USER")]
    pub user: Option<String>,

    /// Password for --trino-user.
    #[arg(long = "trino-password", env = "FLIGHTDECK_TRINO_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,

    /// File holding the password for --trino-user (e.g. mounted by Vault Agent).
    #[arg(long = "trino-password-file", env = "FLIGHTDECK_TRINO_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Bearer token (JWT) for Trino, instead of a user and password.
    #[arg(long = "trino-token", env = "FLIGHTDECK_TRINO_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,

    /// File holding the bearer token for Trino; read at start.
    #[arg(long = "trino-token-file", env = "FLIGHTDECK_TRINO_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// PEM file of CA certificates to trust for an https Trino URL.
    #[arg(long = "trino-ca-file", env = "FLIGHTDECK_TRINO_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Default catalog for client sessions.
    #[arg(long, env = "FLIGHTDECK_CATALOG", value_name = "CATALOG")]
    pub catalog: Option<String>,

    /// Default schema for client sessions.
    #[arg(long, env = "FLIGHTDECK_SCHEMA", value_name = "SCHEMA")]
    pub schema: Option<String>,

    /// Session time zone sent to Trino (IANA name or ±HH:MM); Trino's own
    /// when unset.
    #[arg(long, env = "FLIGHTDECK_TIME_ZONE", value_name = "ZONE")]
    pub time_zone: Option<String>,

    /// Trino session property for every query, NAME=VALUE; repeatable
    /// (comma-separated in the environment). In the file, a table
    /// `[trino.session_properties]`.
    #[arg(
        long = "session-property",
        env = "FLIGHTDECK_SESSION_PROPERTIES",
        value_name = "NAME=VALUE",
        value_delimiter = ',',
        value_parser = values::property
    )]
    #[serde(deserialize_with = "values::de_properties")]
    #[merge(strategy = values::override_properties)]
    pub session_properties: Vec<(String, String)>,

    /// Time each HTTP request to Trino may take before it fails. Seconds,
    /// or e.g. `2m`.
    #[arg(long = "trino-request-timeout-secs", env = "FLIGHTDECK_TRINO_REQUEST_TIMEOUT_SECS", value_name = "SECS",
          value_parser = values::duration, default_value = "60")]
    #[serde(deserialize_with = "values::de_duration")]
    pub request_timeout_secs: Option<Duration>,

    /// Most queries Flightdeck runs on Trino at once; further queries wait
    /// for a slot.
    #[arg(
        long = "trino-max-concurrent-queries",
        env = "FLIGHTDECK_TRINO_MAX_CONCURRENT_QUERIES",
        value_name = "N",
        default_value = "64"
    )]
    pub max_concurrent_queries: Option<usize>,
}

/// The checked `[trino]` settings.
#[derive(Debug, Clone)]
pub struct Trino {
    /// The client's settings.
    pub client: TrinoConfig,
    /// Default catalog and schema of client sessions.
    pub catalog: Option<String>,
    pub schema: Option<String>,
}

impl Section for TrinoArgs {
    type Resolved = Trino;

    fn resolve(self, problems: &mut Vec<String>) -> Trino {
        let url = defaulted(self.url);
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            problems.push(format!("trino url: `{url}` must be an http:// or https:// URL with a host"));
        }
        let password = secret("trino password", self.password, self.password_file, problems);
        let token = secret("trino token", self.token, self.token_file, problems);
        let auth = match (self.user, password, token) {
            (None, None, None) => TrinoAuth::None,
            (Some(user), Some(password), None) => TrinoAuth::Basic { user, password },
            (None, None, Some(token)) => TrinoAuth::Bearer(token),
            (Some(_), None, None) => {
                problems.push("trino user: a password (or password file) is needed with it".into());
                TrinoAuth::None
            }
            (None, Some(_), _) => {
                problems.push("trino password: a trino user is needed with it".into());
                TrinoAuth::None
            }
            (Some(_), Some(_), Some(_)) | (Some(_), None, Some(_)) => {
                problems.push("trino credentials: use a user and password, or a token, not both".into());
                TrinoAuth::None
            }
        };
        if auth != TrinoAuth::None && url.scheme() == "http" {
            problems.push("trino credentials: Trino accepts credentials only over https; use an https:// URL".into());
        }
        if let Some(path) = &self.ca_file
            && let Err(e) = std::fs::metadata(path)
        {
            problems.push(format!("trino CA file {}: {e}", path.display()));
        }
        if let Some(tz) = &self.time_zone
            && tz.parse::<chrono_tz::Tz>().is_err()
            && !is_fixed_offset(tz)
        {
            problems.push(format!("time zone: `{tz}` is not an IANA zone name or ±HH:MM offset"));
        }
        let max_concurrent_queries = defaulted(self.max_concurrent_queries);
        if max_concurrent_queries == 0 {
            problems.push("trino max concurrent queries: must be at least 1".into());
        }
        let mut config = TrinoConfig::new(url);
        config.auth = auth;
        config.ca_file = self.ca_file;
        config.time_zone = self.time_zone;
        config.session_properties = self.session_properties;
        // A zero timeout would fail every request.
        config.request_timeout = defaulted(self.request_timeout_secs).max(Duration::from_secs(1));
        config.max_concurrent_queries = max_concurrent_queries;
        Trino { client: config, catalog: self.catalog, schema: self.schema }
    }
}

/// `+HH:MM` or `-HH:MM`, which Trino accepts as a zone.
fn is_fixed_offset(tz: &str) -> bool {
    let b = tz.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[3] == b':'
        && tz[1..3].parse::<u8>().is_ok()
        && tz[4..6].parse::<u8>().is_ok()
}
