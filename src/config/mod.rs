//! Configuration: a TOML file, overridden by `FLIGHTDECK_*` environment
//! variables, overridden by command-line flags.
//!
//! # Sections
//!
//! The options come in sections, one file each, named as in the TOML file
//! (see `deploy/flightdeck.toml`): [`flight`](FlightArgs),
//! [`trino`](TrinoArgs), [`auth`](AuthArgs), [`cache`](CacheArgs) and
//! [`admin`](AdminArgs). A section is one struct that derives both
//! [`clap::Args`], for its flags and variables, and [`serde::Deserialize`],
//! for its `[table]` of the file, so each option's file key (the field
//! name), flag, variable, type and help are declared together. Its fields
//! are `Option`s: "not given" must stay visible until the layers are merged.
//! An option's default is its clap `default_value`, written nowhere else:
//! [`ServeArgs`] moves it into the `--help` text (clap would otherwise fill
//! in absent flags before the file had its say), and [`Config::resolve`]
//! parses it back as the lowest layer. Each section then checks its options
//! and resolves them into the settings its module runs with (a
//! [`TrinoConfig`](crate::trino::TrinoConfig), a [`CacheConfig`], ...).
//!
//! A section is a file (`accel.rs`, say) with an `AccelArgs` implementing
//! this module's `Section` trait, and one field in [`ServeArgs`],
//! `#[command(flatten)] pub accel: AccelArgs`, which is also its key in the
//! file; [`Config::resolve`] resolves it beside the others. A list that only
//! the file can hold, such as `[[datasets]]`, is a field
//! `#[arg(skip)] pub datasets: Vec<DatasetArgs>` of [`ServeArgs`].
//!
//! # Errors
//!
//! Values are typed where they are read: clap rejects a malformed flag or
//! variable, naming the flag, and toml a malformed file value, quoting its
//! line. Everything beyond one value's spelling (files to read, options that
//! go together, limits) is checked by [`Config::resolve`], which reports
//! every problem at once rather than the first.

mod accel;
mod admin;
mod auth;
mod cache;
mod flight;
mod trino;
mod trino_protocol;
mod values;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Arg, Args, Command, FromArgMatches};
use merge::Merge;
use serde::Deserialize;

use crate::cache::CacheConfig;

pub use accel::{Accel, AccelArgs, DatasetArgs};
pub use admin::{Admin, AdminArgs};
pub(crate) use auth::load_users;
pub use auth::{Auth, AuthArgs, AuthMode, ClientAuth};
pub use cache::CacheArgs;
pub use flight::{Flight, FlightArgs, TlsFiles};
pub use trino::{Trino, TrinoArgs};
pub use trino_protocol::{TrinoProtocol, TrinoProtocolArgs};
pub use values::Secret;

/// Options of `flightdeck serve`. Each also reads `FLIGHTDECK_<NAME>` and the
/// config file; flags win over the environment, which wins over the file.
/// The file has the same shape: one table per section.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[command(mut_args = default_in_help_only)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML config file. Its sections group these options: `[flight] listen`,
    /// `[trino] url`, `[auth] mode`, ... (see deploy/flightdeck.toml).
    #[arg(long, env = "FLIGHTDECK_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub flight: FlightArgs,

    #[command(flatten)]
    pub trino: TrinoArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub admin: AdminArgs,

    #[command(flatten)]
    pub accel: AccelArgs,

    #[command(flatten)]
    pub trino_protocol: TrinoProtocolArgs,

    /// Accelerated datasets: `[[datasets]]` tables, in the file only.
    #[arg(skip)]
    pub datasets: Vec<DatasetArgs>,
}

/// A section of the options: flags and variables through clap, a table of
/// the file through serde.
/// Layers merge option by option ([`Merge`]): a value given in a higher
/// layer wins, lists combine.
trait Section: Args + Clone + Merge {
    /// The checked settings the section stands for.
    type Resolved;

    /// Checks the options and builds the settings, adding any problem to
    /// `problems`. Called on the layered options, where every option
    /// declared with a `default_value` has a value.
    fn resolve(self, problems: &mut Vec<String>) -> Self::Resolved;
}

/// A section's options layered (flag or variable, else file, else default)
/// and resolved.
fn resolve_section<S: Section>(flags: &S, file: S, problems: &mut Vec<String>) -> S::Resolved {
    let mut layered = flags.clone();
    layered.merge(file);
    layered.merge(defaults());
    layered.resolve(problems)
}

/// The value of an option declared with a `default_value`, after layering.
fn defaulted<T>(value: Option<T>) -> T {
    value.expect("layered over the defaults")
}

/// A section with only its defaults: its declared `default_value`s, parsed
/// by the options' own parsers, with the environment ignored.
fn defaults<S: Args + FromArgMatches>() -> S {
    let command = S::augment_args(Command::new("defaults").no_binary_name(true)).mut_args(|arg| arg.env(None));
    command
        .try_get_matches_from(std::iter::empty::<String>())
        .and_then(|matches| S::from_arg_matches(&matches))
        .unwrap_or_else(|e| panic!("built-in defaults: {e}"))
}

/// Shows an option's `default_value` in its help and drops it from the
/// parser, so that an option given neither as a flag nor in the environment
/// stays `None` and the file can still set it.
fn default_in_help_only(arg: Arg) -> Arg {
    let values: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
    if values.is_empty() {
        return arg;
    }
    let note = format!("[default: {}]", values.join(" "));
    let help = match arg.get_help() {
        Some(help) => format!("{help} {note}"),
        None => note.clone(),
    };
    let arg = match arg.get_long_help().map(|long| format!("{long}\n\n{note}")) {
        Some(long) => arg.long_help(long),
        None => arg,
    };
    arg.help(help).default_value(None)
}

/// The checked configuration Flightdeck runs with, by section.
#[derive(Debug, Clone)]
pub struct Config {
    pub flight: Flight,
    pub trino: Trino,
    pub auth: Auth,
    pub cache: CacheConfig,
    pub admin: Admin,
    pub accel: Accel,
    pub trino_protocol: TrinoProtocol,
}

impl Config {
    /// A configuration for tests and embedding: Trino at `trino_url`,
    /// loopback on an OS-chosen port, no authentication.
    pub fn for_trino(trino_url: &str) -> Config {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let args = ServeArgs {
            flight: FlightArgs { listen: Some(any_port), ..Default::default() },
            trino: TrinoArgs { url: Some(trino_url.parse().expect("a Trino URL")), ..Default::default() },
            admin: AdminArgs { listen: Some(any_port), ..Default::default() },
            trino_protocol: TrinoProtocolArgs { listen: Some(any_port.to_string()) },
            ..Default::default()
        };
        Config::resolve(&args).expect("valid built-in configuration")
    }

    /// Merges file, environment (already in `args` through clap) and flags,
    /// and checks everything, returning every problem found.
    pub fn resolve(args: &ServeArgs) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let file = match &args.config {
            Some(path) => read_file(path).unwrap_or_else(|e| {
                problems.push(format!("config file {}: {e}", path.display()));
                ServeArgs::default()
            }),
            None => ServeArgs::default(),
        };
        let flight = resolve_section(&args.flight, file.flight, &mut problems);
        let trino = resolve_section(&args.trino, file.trino, &mut problems);
        let auth = resolve_section(&args.auth, file.auth, &mut problems);
        let cache = resolve_section(&args.cache, file.cache, &mut problems);
        let admin = resolve_section(&args.admin, file.admin, &mut problems);
        let mut accel = resolve_section(&args.accel, file.accel, &mut problems);
        let trino_protocol = resolve_section(&args.trino_protocol, file.trino_protocol, &mut problems);
        accel.datasets = file.datasets.into_iter().filter_map(|d| accel::dataset(d, &mut problems)).collect();
        let mut tables: Vec<&str> = accel.datasets.iter().map(|d| d.table.as_str()).collect();
        tables.sort_unstable();
        if let Some(w) = tables.windows(2).find(|w| w[0] == w[1]) {
            problems.push(format!("dataset {}: declared twice", w[0]));
        }
        if !accel.datasets.is_empty() && accel.dir.is_none() {
            problems.push("accel dir: required when datasets are declared (their snapshots, for warm restarts)".into());
        }

        // Passwords and tokens must not cross a network in clear text.
        if matches!(auth.mode, AuthMode::Password { .. })
            && flight.tls.is_none()
            && !flight.listen.ip().is_loopback()
            && !auth.allow_insecure_password
        {
            problems.push(format!(
                "auth: password authentication on plain gRPC at {} would send passwords and tokens in clear \
                 text: configure --tls-cert and --tls-key, listen on loopback behind a TLS proxy, or set \
                 --allow-insecure-password",
                flight.listen
            ));
        }
        if let Some(addr) = trino_protocol.listen
            && matches!(auth.mode, AuthMode::Password { .. })
            && flight.tls.is_none()
            && !addr.ip().is_loopback()
            && !auth.allow_insecure_password
        {
            problems.push(format!(
                "auth: password authentication on plain HTTP at {addr} (Trino protocol) would send passwords in \
                 clear text: configure --tls-cert and --tls-key, listen on loopback behind a TLS proxy, or set \
                 --allow-insecure-password"
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config { flight, trino, auth, cache, admin, accel, trino_protocol })
    }
}

/// The config file, in the shape of the flags.
fn read_file(path: &Path) -> Result<ServeArgs, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| e.to_string())
}

/// A secret given as a value or as a file to read, not both.
fn secret(name: &str, value: Option<Secret>, file: Option<PathBuf>, problems: &mut Vec<String>) -> Option<String> {
    match (value, file) {
        (Some(_), Some(_)) => {
            problems.push(format!("{name}: give the value or the file, not both"));
            None
        }
        (Some(v), None) => Some(v.into_inner()),
        (None, Some(path)) => read_secret(&path).map_err(|e| problems.push(format!("{name} file: {e}"))).ok(),
        (None, None) => None,
    }
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
