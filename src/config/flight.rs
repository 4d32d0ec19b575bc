//! `[flight]`: the Flight SQL listeners, ticket signing, and the queries
//! and results held between calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use merge::Merge;
use serde::Deserialize;

use super::values::{self, Secret};
use super::{Section, defaulted, secret};

/// Options of the `[flight]` section.
#[derive(Debug, Clone, Default, Args, Deserialize, Merge)]
#[merge(strategy = merge::option::overwrite_none)]
#[command(next_help_heading = "Flight SQL")]
#[serde(default, deny_unknown_fields)]
pub struct FlightArgs {
    /// Flight SQL listen address.
    #[arg(long, env = "FLIGHTDECK_LISTEN", value_name = "ADDR", value_parser = values::address,
          default_value = "127.0.0.1:50051")]
    #[serde(deserialize_with = "values::de_address")]
    pub listen: Option<SocketAddr>,

    /// PEM certificate chain for TLS on the Flight SQL port (with --tls-key).
    #[arg(long, env = "FLIGHTDECK_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "FLIGHTDECK_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// With TLS on, also serve plain gRPC on this loopback address (for
    /// sidecars and local tools).
    #[arg(long, env = "FLIGHTDECK_PLAIN_LISTEN", value_name = "ADDR", value_parser = values::address)]
    #[serde(deserialize_with = "values::de_address")]
    pub plain_listen: Option<SocketAddr>,

    /// Secret that signs tickets, prepared-statement handles and tokens
    /// (at least 32 bytes). Replicas that share it serve each other's tickets.
    /// When unset, a random secret is made at start.
    #[arg(long, env = "FLIGHTDECK_TICKET_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub ticket_secret: Option<Secret>,

    /// File holding the ticket-signing secret.
    #[arg(long, env = "FLIGHTDECK_TICKET_SECRET_FILE", value_name = "FILE")]
    pub ticket_secret_file: Option<PathBuf>,

    /// Most queries kept running between GetFlightInfo and DoGet.
    #[arg(long, env = "FLIGHTDECK_PENDING_QUERIES", value_name = "N", default_value = "1024")]
    pub pending_queries: Option<u64>,

    /// Time a started query waits for its DoGet before it is cancelled; the
    /// ticket stays valid and runs the query again. Seconds, or e.g. `2m`.
    #[arg(long, env = "FLIGHTDECK_PENDING_QUERY_TTL_SECS", value_name = "SECS", value_parser = values::duration,
          default_value = "60")]
    #[serde(deserialize_with = "values::de_duration")]
    pub pending_query_ttl_secs: Option<Duration>,

    /// Most of those queries one user may hold [default: a sixteenth of
    /// --pending-queries, at least 1].
    #[arg(long, env = "FLIGHTDECK_PENDING_QUERIES_PER_USER", value_name = "N")]
    pub pending_queries_per_user: Option<u64>,

    /// Budget for results held in memory outside the cache (cache fills in
    /// progress, parked queries' read-ahead, answers of writes), e.g.
    /// `512MiB`; requests beyond it fail with RESOURCE_EXHAUSTED.
    #[arg(long, env = "FLIGHTDECK_MEMORY_BUDGET", value_name = "SIZE", value_parser = values::size,
          default_value = "1GiB")]
    #[serde(deserialize_with = "values::de_size")]
    pub memory_budget: Option<u64>,

    /// Time open streams may run on after SIGTERM before they are dropped
    /// (and their Trino queries cancelled); keep it under the orchestrator's
    /// grace period. Seconds, or e.g. `1m`.
    #[arg(long, env = "FLIGHTDECK_SHUTDOWN_GRACE_SECS", value_name = "SECS", value_parser = values::duration,
          default_value = "20")]
    #[serde(deserialize_with = "values::de_duration")]
    pub shutdown_grace_secs: Option<Duration>,
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

/// The checked `[flight]` settings.
#[derive(Debug, Clone)]
pub struct Flight {
    pub listen: SocketAddr,
    /// TLS certificate chain and key (PEM) for the Flight SQL port.
    pub tls: Option<TlsFiles>,
    /// A plain-gRPC loopback listener next to the TLS one.
    pub plain_listen: Option<SocketAddr>,
    /// Signing key of tickets, handles and tokens; `None`: a random one.
    pub ticket_secret: Option<Secret>,
    /// Most statements parked for their DoGet, in all and per user.
    pub pending_queries: u64,
    pub pending_queries_per_user: u64,
    /// How long a parked statement waits for its DoGet.
    pub pending_query_ttl: Duration,
    /// Bytes of results held in memory outside the cache.
    pub memory_budget: u64,
    /// How long open streams may run on after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Section for FlightArgs {
    type Resolved = Flight;

    fn resolve(self, problems: &mut Vec<String>) -> Flight {
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => match (std::fs::read(&cert), std::fs::read(&key)) {
                (Ok(cert_pem), Ok(key_pem)) => Some(TlsFiles { cert_pem, key_pem }),
                (c, k) => {
                    for (path, r) in [(&cert, c.err()), (&key, k.err())] {
                        if let Some(e) = r {
                            problems.push(format!("tls: {}: {e}", path.display()));
                        }
                    }
                    None
                }
            },
            _ => {
                problems.push("tls: give both a certificate and a key".into());
                None
            }
        };
        let plain_listen = match self.plain_listen {
            Some(a) if !a.ip().is_loopback() => {
                problems.push(format!("plain listen: `{a}` is not a loopback address; plain gRPC is for local use"));
                None
            }
            given => given,
        };
        if self.plain_listen.is_some() && tls.is_none() {
            problems.push(
                "plain listen: only with TLS on (--tls-cert and --tls-key); the main port is plain already".into(),
            );
        }
        let ticket_secret =
            secret("ticket secret", self.ticket_secret, self.ticket_secret_file, problems).map(Secret::from);
        if let Some(s) = &ticket_secret
            && s.expose().len() < 32
        {
            problems.push(format!("ticket secret: {} bytes is too short, use at least 32", s.expose().len()));
        }
        let pending_queries = defaulted(self.pending_queries);
        if pending_queries == 0 {
            problems.push("pending queries: must be at least 1".into());
        }
        let pending_queries_per_user = self.pending_queries_per_user.unwrap_or((pending_queries / 16).max(1));
        if pending_queries_per_user == 0 {
            problems.push("pending queries per user: must be at least 1".into());
        }
        Flight {
            listen: defaulted(self.listen),
            tls,
            plain_listen,
            ticket_secret,
            pending_queries,
            pending_query_ttl: defaulted(self.pending_query_ttl_secs),
            pending_queries_per_user,
            memory_budget: defaulted(self.memory_budget),
            shutdown_grace: defaulted(self.shutdown_grace_secs),
        }
    }
}
