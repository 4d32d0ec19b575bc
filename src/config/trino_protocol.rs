//! `[trino_protocol]`: the listener that speaks Trino's own client protocol,
//! so unchanged Trino clients reach the router too.

use std::net::SocketAddr;

use clap::Args;
use merge::Merge;
use serde::Deserialize;

use super::{Section, defaulted, values};

/// Options of the `[trino_protocol]` section.
#[derive(Debug, Clone, Default, Args, Deserialize, Merge)]
#[merge(strategy = merge::option::overwrite_none)]
#[command(next_help_heading = "Trino client protocol")]
#[serde(default, deny_unknown_fields)]
pub struct TrinoProtocolArgs {
    /// Listen address of Trino's client protocol (`POST /v1/statement`);
    /// an empty value turns it off. Served over TLS with the Flight SQL
    /// port's certificate when one is configured.
    #[arg(
        id = "trino_protocol_listen",
        long = "trino-protocol-listen",
        env = "FLIGHTDECK_TRINO_PROTOCOL_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: Option<String>,
}

/// The checked `[trino_protocol]` settings.
#[derive(Debug, Clone)]
pub struct TrinoProtocol {
    /// `None`: off.
    pub listen: Option<SocketAddr>,
}

impl Section for TrinoProtocolArgs {
    type Resolved = TrinoProtocol;

    fn resolve(self, problems: &mut Vec<String>) -> TrinoProtocol {
        let text = defaulted(self.listen);
        let listen = if text.trim().is_empty() {
            None
        } else {
            values::address(&text).map_err(|e| problems.push(format!("trino protocol listen: {e}"))).ok()
        };
        TrinoProtocol { listen }
    }
}
