//! `[cache]`: the result cache.

use std::time::Duration;

use clap::{ArgAction, Args};
use merge::Merge;
use serde::Deserialize;

use super::values;
use super::{Section, defaulted};
use crate::cache::CacheConfig;

/// Options of the `[cache]` section.
#[derive(Debug, Clone, Default, Args, Deserialize, Merge)]
#[merge(strategy = merge::option::overwrite_none)]
#[command(next_help_heading = "Result cache")]
#[serde(default, deny_unknown_fields)]
pub struct CacheArgs {
    /// Result cache on or off: `true` or `false`.
    #[arg(long = "cache", env = "FLIGHTDECK_CACHE", value_name = "BOOL", value_parser = values::boolean,
          action = ArgAction::Set, default_value = "true")]
    pub enabled: Option<bool>,

    /// Byte budget of the result cache, e.g. `1GiB`, `512MiB`, `1000000`.
    #[arg(long = "cache-max-bytes", env = "FLIGHTDECK_CACHE_MAX_BYTES", value_name = "SIZE",
          value_parser = values::size, default_value = "1GiB")]
    #[serde(deserialize_with = "values::de_size")]
    pub max_bytes: Option<u64>,

    /// Largest result the cache admits; larger ones stream through uncached.
    #[arg(long = "cache-max-entry-bytes", env = "FLIGHTDECK_CACHE_MAX_ENTRY_BYTES", value_name = "SIZE",
          value_parser = values::size, default_value = "64MiB")]
    #[serde(deserialize_with = "values::de_size")]
    pub max_entry_bytes: Option<u64>,

    /// Time a cached result is fresh. Seconds, or e.g. `5m`.
    #[arg(long = "cache-ttl-secs", env = "FLIGHTDECK_CACHE_TTL_SECS", value_name = "SECS",
          value_parser = values::duration, default_value = "60")]
    #[serde(deserialize_with = "values::de_duration")]
    pub ttl_secs: Option<Duration>,

    /// Time after the TTL during which a stale result is served (marked
    /// `stale`) while one refresh runs. Seconds, or e.g. `1m`.
    #[arg(long = "cache-stale-secs", env = "FLIGHTDECK_CACHE_STALE_SECS", value_name = "SECS",
          value_parser = values::duration, default_value = "30")]
    #[serde(deserialize_with = "values::de_duration")]
    pub stale_secs: Option<Duration>,

    /// Time past that during which a result may still be served, marked
    /// `stale`, when Trino cannot be reached; clients may ask for it per
    /// request with `x-flightdeck-cache: max-stale=N` up to this. Seconds,
    /// or e.g. `1h`.
    #[arg(long = "cache-stale-if-error-secs", env = "FLIGHTDECK_CACHE_STALE_IF_ERROR_SECS", value_name = "SECS",
          value_parser = values::duration, default_value = "0")]
    #[serde(deserialize_with = "values::de_duration")]
    pub stale_if_error_secs: Option<Duration>,

    /// Catalog or `catalog.schema` whose results all users share; repeatable
    /// (comma-separated in the environment). Only for data every user may read.
    #[arg(
        long = "cache-shared-namespace",
        env = "FLIGHTDECK_CACHE_SHARED_NAMESPACES",
        value_name = "NAMESPACE",
        value_delimiter = ','
    )]
    // Both lists count: the file's, then the flags'.
    #[merge(strategy = merge::vec::prepend)]
    pub shared_namespaces: Vec<String>,
}

impl Section for CacheArgs {
    type Resolved = CacheConfig;

    fn resolve(self, problems: &mut Vec<String>) -> CacheConfig {
        let max_bytes = defaulted(self.max_bytes);
        let max_entry_bytes = defaulted(self.max_entry_bytes);
        if max_entry_bytes > max_bytes {
            problems.push(format!("cache max entry bytes ({max_entry_bytes}) exceeds the cache budget ({max_bytes})"));
        }
        CacheConfig {
            enabled: defaulted(self.enabled),
            max_bytes,
            max_entry_bytes,
            ttl: defaulted(self.ttl_secs),
            stale_while_revalidate: defaulted(self.stale_secs),
            stale_if_error: defaulted(self.stale_if_error_secs),
            // Lower-cased here, as table names are when statements are parsed.
            shared_namespaces: self
                .shared_namespaces
                .iter()
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }
}
