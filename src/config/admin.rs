//! `[admin]`: the admin HTTP server (metrics, health, the admin API).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use merge::Merge;
use serde::Deserialize;

use super::values::{self, Secret};
use super::{Section, defaulted, secret};

/// Options of the `[admin]` section. Their clap ids carry the section's
/// name: `listen`, `token` and `token_file` are taken by other sections.
#[derive(Debug, Clone, Default, Args, Deserialize, Merge)]
#[merge(strategy = merge::option::overwrite_none)]
#[command(next_help_heading = "Admin HTTP")]
#[serde(default, deny_unknown_fields)]
pub struct AdminArgs {
    /// Admin HTTP listen address: /metrics, /health, /ready and the admin API.
    #[arg(id = "admin_listen", long = "admin-listen", env = "FLIGHTDECK_ADMIN_LISTEN", value_name = "ADDR",
          value_parser = values::address, default_value = "127.0.0.1:9090")]
    #[serde(deserialize_with = "values::de_address")]
    pub listen: Option<SocketAddr>,

    /// Bearer token for the admin API (/admin/...); the API is off without one.
    #[arg(
        id = "admin_token",
        long = "admin-token",
        env = "FLIGHTDECK_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,

    /// File holding the admin API token.
    #[arg(
        id = "admin_token_file",
        long = "admin-token-file",
        env = "FLIGHTDECK_ADMIN_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,
}

/// The checked `[admin]` settings.
#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
    /// Admin API token; the API answers 403 without one configured.
    pub token: Option<Secret>,
}

impl Section for AdminArgs {
    type Resolved = Admin;

    fn resolve(self, problems: &mut Vec<String>) -> Admin {
        let token = secret("admin token", self.token, self.token_file, problems).map(Secret::from);
        if token.as_ref().is_some_and(|t| t.expose().len() < 16) {
            problems.push("admin token: use at least 16 characters".into());
        }
        Admin { listen: defaulted(self.listen), token }
    }
}
