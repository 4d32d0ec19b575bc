//! Configuration: a TOML file, overridden by `FLIGHTDECK_*` environment
//! variables, overridden by command-line flags.
//!
//! Every flag is declared once in [`ServeArgs`], with its environment
//! variable and its `--help` text; the file uses the same names grouped in
//! sections (see `deploy/flightdeck.toml`). Values are kept as text until
//! [`Config::resolve`] checks them all, so a bad start-up lists every
//! problem at once instead of the first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use url::Url;

use crate::cache::CacheConfig;
use crate::trino::{TrinoAuth, TrinoConfig};

/// Options of `flightdeck serve`. Each also reads `FLIGHTDECK_<NAME>` and the
/// config file; flags win over the environment, which wins over the file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file. Its sections mirror these flags: `[flight] listen`,
    /// `[trino] url`, `[auth] mode`, ... (see deploy/flightdeck.toml).
    #[arg(long, env = "FLIGHTDECK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Flight SQL listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "FLIGHTDECK_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// PEM certificate chain for TLS on the Flight SQL port (with --tls-key).
    #[arg(long, env = "FLIGHTDECK_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "FLIGHTDECK_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// With TLS on, also serve plain gRPC on this loopback address (for
    /// sidecars and local tools).
    #[arg(long, env = "FLIGHTDECK_PLAIN_LISTEN", value_name = "ADDR")]
    pub plain_listen: Option<String>,

    /// Trino coordinator URL, http or https [default: http://127.0.0.1:8080].
    #[arg(long, env = "FLIGHTDECK_TRINO_URL", value_name = "URL")]
    pub trino_url: Option<String>,

    /// User Flightdeck authenticates to Trino as (HTTP Basic, with the
    /// password). Client queries still run as the client's user
    /// (`X-Trino-User`), so Trino must allow this user to impersonate them.
    #[arg(long, env = "FLIGHTDECK_TRINO_USER", value_name = "USER")]
    pub trino_user: Option<String>,

    /// Password for --trino-user.
    #[arg(long, env = "FLIGHTDECK_TRINO_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub trino_password: Option<String>,

    /// File holding the password for --trino-user (e.g. mounted by Vault Agent).
    #[arg(long, env = "FLIGHTDECK_TRINO_PASSWORD_FILE", value_name = "FILE")]
    pub trino_password_file: Option<PathBuf>,

    /// Bearer token (JWT) for Trino, instead of a user and password.
    #[arg(long, env = "FLIGHTDECK_TRINO_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub trino_token: Option<String>,

    /// File holding the bearer token for Trino; read at start.
    #[arg(long, env = "FLIGHTDECK_TRINO_TOKEN_FILE", value_name = "FILE")]
    pub trino_token_file: Option<PathBuf>,

    /// PEM file of CA certificates to trust for an https Trino URL.
    #[arg(long, env = "FLIGHTDECK_TRINO_CA_FILE", value_name = "FILE")]
    pub trino_ca_file: Option<PathBuf>,

    /// Default catalog for client sessions.
    #[arg(long, env = "FLIGHTDECK_CATALOG", value_name = "CATALOG")]
    pub catalog: Option<String>,

    /// Default schema for client sessions.
    #[arg(long, env = "FLIGHTDECK_SCHEMA", value_name = "SCHEMA")]
    pub schema: Option<String>,

    /// Session time zone sent to Trino (IANA name); Trino's own when unset.
    #[arg(long, env = "FLIGHTDECK_TIME_ZONE", value_name = "ZONE")]
    pub time_zone: Option<String>,

    /// Trino session property for every query, NAME=VALUE; repeatable
    /// (comma-separated in the environment).
    #[arg(
        long = "session-property",
        env = "FLIGHTDECK_SESSION_PROPERTIES",
        value_name = "NAME=VALUE",
        value_delimiter = ','
    )]
    pub session_properties: Vec<String>,

    /// Client authentication: `none` (any user name is accepted and passed
    /// to Trino) or `password` (checked against --users-file) [default: none].
    #[arg(long, env = "FLIGHTDECK_AUTH", value_name = "MODE")]
    pub auth: Option<String>,

    /// Password file for --auth password: one `user:bcrypt-hash` per line, the
    /// format of Trino's file authenticator (`flightdeck hash-password`).
    #[arg(long, env = "FLIGHTDECK_USERS_FILE", value_name = "FILE")]
    pub users_file: Option<PathBuf>,

    /// User for clients that send no credentials when --auth none
    /// [default: flightdeck].
    #[arg(long, env = "FLIGHTDECK_DEFAULT_USER", value_name = "USER")]
    pub default_user: Option<String>,

    /// Lifetime of bearer tokens issued by Handshake, in seconds; renewing
    /// a token with Handshake never extends it [default: 43200].
    #[arg(long, env = "FLIGHTDECK_TOKEN_TTL_SECS", value_name = "SECS")]
    pub token_ttl_secs: Option<String>,

    /// Lifetime of session cookies and prepared-statement handles, in
    /// seconds [default: 86400].
    #[arg(long, env = "FLIGHTDECK_SESSION_TTL_SECS", value_name = "SECS")]
    pub session_ttl_secs: Option<String>,

    /// Allow --auth password on a plain-gRPC, non-loopback listener, which
    /// sends passwords and tokens in clear text: `true` or `false`
    /// [default: false].
    #[arg(long, env = "FLIGHTDECK_ALLOW_INSECURE_PASSWORD", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_password: Option<String>,

    /// Secret that signs tickets, prepared-statement handles and tokens
    /// (at least 32 bytes). Replicas that share it serve each other's tickets.
    /// When unset, a random secret is made at start.
    #[arg(long, env = "FLIGHTDECK_TICKET_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub ticket_secret: Option<String>,

    /// File holding the ticket-signing secret.
    #[arg(long, env = "FLIGHTDECK_TICKET_SECRET_FILE", value_name = "FILE")]
    pub ticket_secret_file: Option<PathBuf>,

    /// Most queries kept running between GetFlightInfo and DoGet [default: 1024].
    #[arg(long, env = "FLIGHTDECK_PENDING_QUERIES", value_name = "N")]
    pub pending_queries: Option<String>,

    /// Seconds a started query waits for its DoGet before it is cancelled;
    /// the ticket stays valid and runs the query again [default: 60].
    #[arg(long, env = "FLIGHTDECK_PENDING_QUERY_TTL_SECS", value_name = "SECS")]
    pub pending_query_ttl_secs: Option<String>,

    /// Most of those queries one user may hold [default: a sixteenth of
    /// --pending-queries, at least 1].
    #[arg(long, env = "FLIGHTDECK_PENDING_QUERIES_PER_USER", value_name = "N")]
    pub pending_queries_per_user: Option<String>,

    /// Seconds open streams may run on after SIGTERM before they are dropped
    /// (and their Trino queries cancelled); keep it under the orchestrator's
    /// grace period [default: 20].
    #[arg(long, env = "FLIGHTDECK_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<String>,

    /// Budget for results held in memory outside the cache (cache fills in
    /// progress, parked queries' read-ahead, answers of writes), e.g.
    /// `512MiB`; requests beyond it fail with RESOURCE_EXHAUSTED [default: 1GiB].
    #[arg(long, env = "FLIGHTDECK_MEMORY_BUDGET", value_name = "SIZE")]
    pub memory_budget: Option<String>,

    /// Seconds each HTTP request to Trino may take before it fails
    /// [default: 60].
    #[arg(long, env = "FLIGHTDECK_TRINO_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub trino_request_timeout_secs: Option<String>,

    /// Result cache on or off: `true` or `false` [default: true].
    #[arg(long, env = "FLIGHTDECK_CACHE", value_name = "BOOL")]
    pub cache: Option<String>,

    /// Byte budget of the result cache, e.g. `1GiB`, `512MiB`, `1000000`
    /// [default: 1GiB].
    #[arg(long, env = "FLIGHTDECK_CACHE_MAX_BYTES", value_name = "SIZE")]
    pub cache_max_bytes: Option<String>,

    /// Largest result the cache admits; larger ones stream through uncached
    /// [default: 64MiB].
    #[arg(long, env = "FLIGHTDECK_CACHE_MAX_ENTRY_BYTES", value_name = "SIZE")]
    pub cache_max_entry_bytes: Option<String>,

    /// Seconds a cached result is fresh [default: 60].
    #[arg(long, env = "FLIGHTDECK_CACHE_TTL_SECS", value_name = "SECS")]
    pub cache_ttl_secs: Option<String>,

    /// Seconds after the TTL during which a stale result is served (marked
    /// `stale`) while one refresh runs [default: 30].
    #[arg(long, env = "FLIGHTDECK_CACHE_STALE_SECS", value_name = "SECS")]
    pub cache_stale_secs: Option<String>,

    /// Seconds past that during which a result may still be served, marked
    /// `stale`, when Trino cannot be reached; clients may ask for it per
    /// request with `x-flightdeck-cache: max-stale=N` up to this [default: 0].
    #[arg(long, env = "FLIGHTDECK_CACHE_STALE_IF_ERROR_SECS", value_name = "SECS")]
    pub cache_stale_if_error_secs: Option<String>,

    /// Catalog or `catalog.schema` whose results all users share; repeatable
    /// (comma-separated in the environment). Only for data every user may read.
    #[arg(
        long = "cache-shared-namespace",
        env = "FLIGHTDECK_CACHE_SHARED_NAMESPACES",
        value_name = "NAMESPACE",
        value_delimiter = ','
    )]
    pub cache_shared_namespaces: Vec<String>,

    /// Admin HTTP listen address: /metrics, /health, /ready and the admin
    /// API [default: 127.0.0.1:9090].
    #[arg(long, env = "FLIGHTDECK_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Bearer token for the admin API (/admin/...); the API is off without one.
    #[arg(long, env = "FLIGHTDECK_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin API token.
    #[arg(long, env = "FLIGHTDECK_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// The file form: the same options, grouped in sections.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    flight: FileFlight,
    trino: FileTrino,
    auth: FileAuth,
    cache: FileCache,
    admin: FileAdmin,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileCache {
    enabled: Option<bool>,
    max_bytes: Option<toml::Value>,
    max_entry_bytes: Option<toml::Value>,
    ttl_secs: Option<u64>,
    stale_secs: Option<u64>,
    stale_if_error_secs: Option<u64>,
    shared_namespaces: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileAdmin {
    listen: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileFlight {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    plain_listen: Option<String>,
    ticket_secret: Option<String>,
    ticket_secret_file: Option<PathBuf>,
    pending_queries: Option<u64>,
    pending_query_ttl_secs: Option<u64>,
    pending_queries_per_user: Option<u64>,
    memory_budget: Option<toml::Value>,
    shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileTrino {
    url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    catalog: Option<String>,
    schema: Option<String>,
    time_zone: Option<String>,
    session_properties: std::collections::BTreeMap<String, String>,
    request_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileAuth {
    mode: Option<String>,
    users_file: Option<PathBuf>,
    default_user: Option<String>,
    token_ttl_secs: Option<u64>,
    session_ttl_secs: Option<u64>,
    allow_insecure_password: Option<bool>,
}

/// TLS certificate and key, read at start.
#[derive(Clone)]
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsFiles(<certificate and key>)")
    }
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

/// The checked configuration Flightdeck runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// TLS certificate chain and key (PEM) for the Flight SQL port.
    pub tls: Option<TlsFiles>,
    /// A plain-gRPC loopback listener next to the TLS one.
    pub plain_listen: Option<SocketAddr>,
    pub trino: TrinoConfig,
    pub default_catalog: Option<String>,
    pub default_schema: Option<String>,
    pub auth: AuthMode,
    pub default_user: String,
    pub token_ttl: Duration,
    /// Lifetime of session cookies and prepared-statement handles.
    pub session_ttl: Duration,
    /// Password authentication allowed over plain gRPC off loopback.
    pub allow_insecure_password: bool,
    /// Signing key; `None` means make a random one at start.
    pub ticket_secret: Option<Vec<u8>>,
    pub pending_queries: u64,
    pub pending_query_ttl: Duration,
    pub pending_queries_per_user: u64,
    /// Bytes of results held in memory outside the cache.
    pub memory_budget: u64,
    /// How long open streams may run on after shutdown begins.
    pub shutdown_grace: Duration,
    pub cache: CacheConfig,
    pub admin_listen: SocketAddr,
    /// Admin API token; the API answers 403 without one configured.
    pub admin_token: Option<String>,
}

impl Config {
    /// A configuration for tests and embedding: Trino at `trino_url`,
    /// loopback on an OS-chosen port, no authentication.
    pub fn for_trino(trino_url: &str) -> Config {
        let args = ServeArgs {
            listen: Some("127.0.0.1:0".into()),
            admin_listen: Some("127.0.0.1:0".into()),
            trino_url: Some(trino_url.into()),
            ..Default::default()
        };
        Config::resolve(&args).expect("valid built-in configuration")
    }

    /// Merges file, environment (already in `args` through clap) and flags,
    /// and checks everything, returning every problem found.
    pub fn resolve(args: &ServeArgs) -> Result<Config, Vec<String>> {
        let mut errors = Vec::new();
        let file = match &args.config {
            None => FileConfig::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Err(e) => {
                    errors.push(format!("config file {}: {e}", path.display()));
                    FileConfig::default()
                }
                Ok(text) => toml::from_str(&text).unwrap_or_else(|e| {
                    errors.push(format!("config file {}: {e}", path.display()));
                    FileConfig::default()
                }),
            },
        };
        let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
        let pick_path = |flag: &Option<PathBuf>, file: &Option<PathBuf>| flag.clone().or_else(|| file.clone());
        let num =
            |flag: &Option<String>, file: Option<u64>, default: u64, name: &str, errors: &mut Vec<String>| match flag {
                Some(s) => s.trim().parse::<u64>().unwrap_or_else(|_| {
                    errors.push(format!("{name}: `{s}` is not a whole number"));
                    default
                }),
                None => file.unwrap_or(default),
            };

        let listen_text = pick(&args.listen, &file.flight.listen).unwrap_or_else(|| "127.0.0.1:50051".into());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|e| {
            errors.push(format!("listen: `{listen_text}` is not an address:port ({e})"));
            SocketAddr::from(([127, 0, 0, 1], 50051))
        });

        let tls =
            match (pick_path(&args.tls_cert, &file.flight.tls_cert), pick_path(&args.tls_key, &file.flight.tls_key)) {
                (None, None) => None,
                (Some(cert), Some(key)) => match (std::fs::read(&cert), std::fs::read(&key)) {
                    (Ok(cert_pem), Ok(key_pem)) => Some(TlsFiles { cert_pem, key_pem }),
                    (c, k) => {
                        for (path, r) in [(&cert, c.err()), (&key, k.err())] {
                            if let Some(e) = r {
                                errors.push(format!("tls: {}: {e}", path.display()));
                            }
                        }
                        None
                    }
                },
                _ => {
                    errors.push("tls: give both a certificate and a key".into());
                    None
                }
            };
        let plain_listen =
            pick(&args.plain_listen, &file.flight.plain_listen).and_then(|text| match text.parse::<SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => Some(a),
                Ok(_) => {
                    errors
                        .push(format!("plain listen: `{text}` is not a loopback address; plain gRPC is for local use"));
                    None
                }
                Err(e) => {
                    errors.push(format!("plain listen: `{text}` is not an address:port ({e})"));
                    None
                }
            });
        if plain_listen.is_some() && tls.is_none() {
            errors.push(
                "plain listen: only with TLS on (--tls-cert and --tls-key); the main port is plain already".into(),
            );
        }

        let url_text = pick(&args.trino_url, &file.trino.url).unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let url = match Url::parse(&url_text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            Ok(_) => {
                errors.push(format!("trino url: `{url_text}` must be an http:// or https:// URL with a host"));
                None
            }
            Err(e) => {
                errors.push(format!("trino url: `{url_text}`: {e}"));
                None
            }
        };

        let secret_value =
            |name: &str, value: Option<String>, path: Option<PathBuf>, errors: &mut Vec<String>| match (value, path) {
                (Some(_), Some(_)) => {
                    errors.push(format!("{name}: give the value or the file, not both"));
                    None
                }
                (Some(v), None) => Some(v),
                (None, Some(p)) => read_secret(&p).map_err(|e| errors.push(format!("{name} file: {e}"))).ok(),
                (None, None) => None,
            };
        let trino_user = pick(&args.trino_user, &file.trino.user);
        let trino_password = secret_value(
            "trino password",
            pick(&args.trino_password, &file.trino.password),
            pick_path(&args.trino_password_file, &file.trino.password_file),
            &mut errors,
        );
        let trino_token = secret_value(
            "trino token",
            pick(&args.trino_token, &file.trino.token),
            pick_path(&args.trino_token_file, &file.trino.token_file),
            &mut errors,
        );
        let auth = match (trino_user, trino_password, trino_token) {
            (None, None, None) => TrinoAuth::None,
            (Some(user), Some(password), None) => TrinoAuth::Basic { user, password },
            (None, None, Some(token)) => TrinoAuth::Bearer(token),
            (Some(_), None, None) => {
                errors.push("trino user: a password (or password file) is needed with it".into());
                TrinoAuth::None
            }
            (None, Some(_), _) => {
                errors.push("trino password: a trino user is needed with it".into());
                TrinoAuth::None
            }
            (Some(_), Some(_), Some(_)) | (Some(_), None, Some(_)) => {
                errors.push("trino credentials: use a user and password, or a token, not both".into());
                TrinoAuth::None
            }
        };
        if !matches!(auth, TrinoAuth::None) && url.as_ref().is_some_and(|u| u.scheme() == "http") {
            errors.push("trino credentials: Trino accepts credentials only over https; use an https:// URL".into());
        }
        let ca_file = pick_path(&args.trino_ca_file, &file.trino.ca_file);
        if let Some(p) = &ca_file {
            if let Err(e) = std::fs::metadata(p) {
                errors.push(format!("trino CA file {}: {e}", p.display()));
            }
        }

        let time_zone = pick(&args.time_zone, &file.trino.time_zone);
        if let Some(tz) = &time_zone {
            if tz.parse::<chrono_tz::Tz>().is_err() && !is_fixed_offset(tz) {
                errors.push(format!("time zone: `{tz}` is not an IANA zone name or ±HH:MM offset"));
            }
        }
        let mut session_properties: Vec<(String, String)> =
            file.trino.session_properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for p in &args.session_properties {
            match p.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    session_properties.retain(|(name, _)| name != k.trim());
                    session_properties.push((k.trim().to_string(), v.to_string()));
                }
                _ => errors.push(format!("session property: `{p}` is not NAME=VALUE")),
            }
        }

        let auth_mode = match pick(&args.auth, &file.auth.mode).as_deref().unwrap_or("none") {
            "none" => AuthMode::None,
            "password" => match pick_path(&args.users_file, &file.auth.users_file) {
                None => {
                    errors.push("auth: mode `password` needs a users file".into());
                    AuthMode::None
                }
                Some(p) => match load_users(&p) {
                    Ok(users) => AuthMode::Password { users, path: p.clone() },
                    Err(e) => {
                        errors.push(format!("users file {}: {e}", p.display()));
                        AuthMode::None
                    }
                },
            },
            other => {
                errors.push(format!("auth: unknown mode `{other}` (expected `none` or `password`)"));
                AuthMode::None
            }
        };
        let default_user = pick(&args.default_user, &file.auth.default_user).unwrap_or_else(|| "flightdeck".into());
        if default_user.trim().is_empty() {
            errors.push("default user: must not be empty".into());
        }
        let token_ttl = num(&args.token_ttl_secs, file.auth.token_ttl_secs, 43_200, "token ttl", &mut errors);
        let session_ttl = num(&args.session_ttl_secs, file.auth.session_ttl_secs, 86_400, "session ttl", &mut errors);
        let allow_insecure_password = match &args.allow_insecure_password {
            Some(v) => parse_bool(v).unwrap_or_else(|| {
                errors.push(format!("allow insecure password: `{v}` is not true or false"));
                false
            }),
            None => file.auth.allow_insecure_password.unwrap_or(false),
        };

        let ticket_secret = secret_value(
            "ticket secret",
            pick(&args.ticket_secret, &file.flight.ticket_secret),
            pick_path(&args.ticket_secret_file, &file.flight.ticket_secret_file),
            &mut errors,
        );
        if let Some(s) = &ticket_secret {
            if s.len() < 32 {
                errors.push(format!("ticket secret: {} bytes is too short, use at least 32", s.len()));
            }
        }
        let pending_queries =
            num(&args.pending_queries, file.flight.pending_queries, 1024, "pending queries", &mut errors);
        if pending_queries == 0 {
            errors.push("pending queries: must be at least 1".into());
        }
        let pending_ttl =
            num(&args.pending_query_ttl_secs, file.flight.pending_query_ttl_secs, 60, "pending query ttl", &mut errors);
        let pending_per_user = num(
            &args.pending_queries_per_user,
            file.flight.pending_queries_per_user,
            (pending_queries / 16).max(1),
            "pending queries per user",
            &mut errors,
        );
        if pending_per_user == 0 {
            errors.push("pending queries per user: must be at least 1".into());
        }
        let shutdown_grace =
            num(&args.shutdown_grace_secs, file.flight.shutdown_grace_secs, 20, "shutdown grace", &mut errors);
        let request_timeout = num(
            &args.trino_request_timeout_secs,
            file.trino.request_timeout_secs,
            60,
            "trino request timeout",
            &mut errors,
        );

        let cache_enabled = match &args.cache {
            Some(v) => parse_bool(v).unwrap_or_else(|| {
                errors.push(format!("cache: `{v}` is not true or false"));
                true
            }),
            None => file.cache.enabled.unwrap_or(true),
        };
        let size =
            |flag: &Option<String>, file: &Option<toml::Value>, default: u64, name: &str, errors: &mut Vec<String>| {
                let text = match (flag, file) {
                    (Some(s), _) => s.clone(),
                    (None, Some(toml::Value::Integer(n))) => n.to_string(),
                    (None, Some(toml::Value::String(s))) => s.clone(),
                    (None, Some(other)) => other.to_string(),
                    (None, None) => return default,
                };
                parse_size(&text).unwrap_or_else(|| {
                    errors.push(format!("{name}: `{text}` is not a size (e.g. 1GiB, 512MiB, 1000000)"));
                    default
                })
            };
        let memory_budget =
            size(&args.memory_budget, &file.flight.memory_budget, 1 << 30, "memory budget", &mut errors);
        let defaults = CacheConfig::default();
        let max_bytes =
            size(&args.cache_max_bytes, &file.cache.max_bytes, defaults.max_bytes, "cache max bytes", &mut errors);
        let max_entry_bytes = size(
            &args.cache_max_entry_bytes,
            &file.cache.max_entry_bytes,
            defaults.max_entry_bytes,
            "cache max entry bytes",
            &mut errors,
        );
        if max_entry_bytes > max_bytes {
            errors.push(format!("cache max entry bytes ({max_entry_bytes}) exceeds the cache budget ({max_bytes})"));
        }
        let ttl = num(&args.cache_ttl_secs, file.cache.ttl_secs, defaults.ttl.as_secs(), "cache ttl", &mut errors);
        let stale = num(
            &args.cache_stale_secs,
            file.cache.stale_secs,
            defaults.stale_while_revalidate.as_secs(),
            "cache stale",
            &mut errors,
        );
        let stale_if_error = num(
            &args.cache_stale_if_error_secs,
            file.cache.stale_if_error_secs,
            defaults.stale_if_error.as_secs(),
            "cache stale if error",
            &mut errors,
        );
        // Lower-cased here, as table names are when statements are parsed.
        let shared_namespaces: Vec<String> = file
            .cache
            .shared_namespaces
            .iter()
            .chain(&args.cache_shared_namespaces)
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let cache = CacheConfig {
            enabled: cache_enabled,
            max_bytes,
            max_entry_bytes,
            ttl: Duration::from_secs(ttl),
            stale_while_revalidate: Duration::from_secs(stale),
            stale_if_error: Duration::from_secs(stale_if_error),
            shared_namespaces,
        };
        let admin_text = pick(&args.admin_listen, &file.admin.listen).unwrap_or_else(|| "127.0.0.1:9090".into());
        let admin_listen = admin_text.parse::<SocketAddr>().unwrap_or_else(|e| {
            errors.push(format!("admin listen: `{admin_text}` is not an address:port ({e})"));
            SocketAddr::from(([127, 0, 0, 1], 9090))
        });
        let admin_token = secret_value(
            "admin token",
            pick(&args.admin_token, &file.admin.token),
            pick_path(&args.admin_token_file, &file.admin.token_file),
            &mut errors,
        );
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            errors.push("admin token: use at least 16 characters".into());
        }

        // Passwords and tokens must not cross a network in clear text.
        if matches!(auth_mode, AuthMode::Password { .. })
            && tls.is_none()
            && !listen.ip().is_loopback()
            && !allow_insecure_password
        {
            errors.push(format!(
                "auth: password authentication on plain gRPC at {listen} would send passwords and tokens in clear \
                 text: configure --tls-cert and --tls-key, listen on loopback behind a TLS proxy, or set \
                 --allow-insecure-password"
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut trino = TrinoConfig::new(url.expect("checked above"));
        trino.request_timeout = Duration::from_secs(request_timeout.max(1));
        trino.auth = auth;
        trino.ca_file = ca_file;
        trino.time_zone = time_zone;
        trino.session_properties = session_properties;
        Ok(Config {
            listen,
            tls,
            plain_listen,
            trino,
            default_catalog: pick(&args.catalog, &file.trino.catalog),
            default_schema: pick(&args.schema, &file.trino.schema),
            auth: auth_mode,
            default_user,
            token_ttl: Duration::from_secs(token_ttl),
            session_ttl: Duration::from_secs(session_ttl),
            allow_insecure_password,
            ticket_secret: ticket_secret.map(String::into_bytes),
            pending_queries,
            pending_query_ttl: Duration::from_secs(pending_ttl),
            pending_queries_per_user: pending_per_user,
            memory_budget,
            shutdown_grace: Duration::from_secs(shutdown_grace),
            cache,
            admin_listen,
            admin_token,
        })
    }
}

/// `true`/`false` and their usual spellings.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Some(true),
        "false" | "off" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Parses `1GiB`, `512MiB`, `64KiB`, `10MB`, or a plain byte count.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn is_fixed_offset(tz: &str) -> bool {
    let b = tz.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[3] == b':'
        && tz[1..3].parse::<u8>().is_ok()
        && tz[4..6].parse::<u8>().is_ok()
}

/// Reads a secret from a file, without its trailing newline.
fn read_secret(path: &Path) -> Result<String, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(s)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("flightdeck").chain(args.iter().copied())).unwrap().serve
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(&parse(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(c.trino.url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.auth, AuthMode::None);
        assert_eq!(c.default_user, "flightdeck");
        assert!(c.ticket_secret.is_none());
    }

    #[test]
    fn file_is_overridden_by_flags() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
        let cfg = dir.path().join("f.toml");
        std::fs::write(
            &cfg,
            format!(
                "[flight]\nlisten = \"0.0.0.0:1234\"\nticket_secret_file = \"{}\"\n[trino]\nurl = \"http://trino:8080\"\ncatalog = \"tpch\"\n[trino.session_properties]\nquery_max_run_time = \"1h\"\n",
                secret.display()
            ),
        )
        .unwrap();
        let c = Config::resolve(&parse(&["--config", cfg.to_str().unwrap(), "--listen", "127.0.0.1:9"])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9");
        assert_eq!(c.trino.url.as_str(), "http://trino:8080/");
        assert_eq!(c.default_catalog.as_deref(), Some("tpch"));
        assert_eq!(c.ticket_secret.as_deref(), Some(&b"0123456789abcdef0123456789abcdef"[..]));
        assert_eq!(c.trino.session_properties, vec![("query_max_run_time".into(), "1h".into())]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = Config::resolve(&parse(&[
            "--listen",
            "nowhere",
            "--trino-url",
            "ftp://x",
            "--auth",
            "kerberos",
            "--ticket-secret",
            "short",
            "--session-property",
            "novalue",
            "--time-zone",
            "Mars/Olympus",
            "--trino-password-file",
            "/nonexistent/pw",
        ]))
        .unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "listen",
            "trino url",
            "auth: unknown mode",
            "ticket secret",
            "session property",
            "time zone",
            "trino password file",
        ] {
            assert!(all.contains(needle), "missing `{needle}` in:\n{all}");
        }
    }

    #[test]
    fn cache_and_admin_options() {
        let c = Config::resolve(&parse(&[
            "--cache-max-bytes",
            "256MiB",
            "--cache-ttl-secs",
            "5",
            "--cache-shared-namespace",
            "tpch",
        ]))
        .unwrap();
        assert_eq!(c.cache.max_bytes, 256 << 20);
        assert_eq!(c.cache.ttl, Duration::from_secs(5));
        assert_eq!(c.cache.shared_namespaces, vec!["tpch"]);
        assert!(c.cache.enabled);
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9090");
        assert!(!Config::resolve(&parse(&["--cache", "off"])).unwrap().cache.enabled);
        let errors =
            Config::resolve(&parse(&["--cache-max-bytes", "lots", "--cache", "maybe", "--admin-token", "short"]))
                .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("10MB"), Some(10_000_000));
        assert_eq!(parse_size("12"), Some(12));
    }

    #[test]
    fn credentials_need_https() {
        let errors = Config::resolve(&parse(&["--trino-user", "svc", "--trino-password", "pw"])).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("https")), "{errors:?}");
        let c = Config::resolve(&parse(&[
            "--trino-url",
            "https://t:8443",
            "--trino-user",
            "svc",
            "--trino-password",
            "pw",
        ]))
        .unwrap();
        assert_eq!(c.trino.auth, TrinoAuth::Basic { user: "svc".into(), password: "pw".into() });
    }

    #[test]
    fn password_mode_reads_users_file() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        std::fs::write(&users, "# comment\nalice:$2y$04$abcdefghijklmnopqrstuu5Yv0M8Q0Yb7Pj0nM3T6U1D7r2y6c7Xm\n")
            .unwrap();
        let c = Config::resolve(&parse(&["--auth", "password", "--users-file", users.to_str().unwrap()])).unwrap();
        let AuthMode::Password { users, .. } = c.auth else { panic!("password mode") };
        assert_eq!(users[0].0, "alice");
        std::fs::write(dir.path().join("bad"), "alice plain\n").unwrap();
        let errors =
            Config::resolve(&parse(&["--auth", "password", "--users-file", dir.path().join("bad").to_str().unwrap()]))
                .unwrap_err();
        assert!(errors[0].contains("line 1"), "{errors:?}");
    }

    #[test]
    fn the_sample_file_is_valid() {
        let args = ServeArgs {
            config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/flightdeck.toml")),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.memory_budget, 1 << 30);
        assert_eq!(c.pending_queries_per_user, 64);
        assert_eq!(c.session_ttl, Duration::from_secs(86_400));
    }
}
