//! `[accel]` and `[[datasets]]`: accelerated datasets, local copies of
//! Trino tables kept fresh by refresh. Datasets are listed in the file only.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use merge::Merge;
use serde::Deserialize;

use super::values;
use super::{Section, defaulted};
use crate::accel::{Access, DatasetConfig, Mode};

/// Options of the `[accel]` section.
#[derive(Debug, Clone, Default, Args, Deserialize, Merge)]
#[merge(strategy = merge::option::overwrite_none)]
#[command(next_help_heading = "Accelerated datasets")]
#[serde(default, deny_unknown_fields)]
pub struct AccelArgs {
    /// Directory for dataset snapshots (warm restarts); required when
    /// datasets are declared.
    #[arg(id = "accel_dir", long = "accel-dir", env = "FLIGHTDECK_ACCEL_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Most dataset refreshes running at once, across all datasets.
    #[arg(
        long = "accel-max-concurrent-refreshes",
        env = "FLIGHTDECK_ACCEL_MAX_CONCURRENT_REFRESHES",
        value_name = "N",
        default_value = "2"
    )]
    pub max_concurrent_refreshes: Option<usize>,

    /// Memory of all datasets together, e.g. `4GiB`; a dataset that would
    /// exceed it fails (its previous version stays).
    #[arg(id = "accel_memory_budget", long = "accel-memory-budget", env = "FLIGHTDECK_ACCEL_MEMORY_BUDGET",
          value_name = "SIZE", value_parser = values::size, default_value = "4GiB")]
    #[serde(deserialize_with = "values::de_size")]
    pub memory_budget: Option<u64>,

    /// How long Trino's answer to "may this user read this dataset's table"
    /// (datasets with `access = "trino"`) is kept before asking again.
    #[arg(long = "accel-access-ttl", env = "FLIGHTDECK_ACCEL_ACCESS_TTL", value_name = "DURATION",
          value_parser = values::duration, default_value = "60s")]
    #[serde(deserialize_with = "values::de_duration")]
    pub access_ttl: Option<Duration>,

    /// Answer what can be answered from the datasets locally (DataFusion);
    /// `false` sends every statement to Trino.
    #[arg(long = "accel-local", env = "FLIGHTDECK_ACCEL_LOCAL", value_name = "BOOL",
          value_parser = values::boolean, default_value = "true")]
    pub local: Option<bool>,

    /// Memory of local query operators, all queries together (e.g. `1GiB`);
    /// a query that needs more goes to Trino.
    #[arg(long = "accel-local-memory", env = "FLIGHTDECK_ACCEL_LOCAL_MEMORY", value_name = "SIZE",
          value_parser = values::size, default_value = "1GiB")]
    #[serde(deserialize_with = "values::de_size")]
    pub local_memory: Option<u64>,

    /// Local queries admitted at once, running or waiting their turn; more
    /// go to Trino.
    #[arg(
        long = "accel-local-max-concurrent",
        env = "FLIGHTDECK_ACCEL_LOCAL_MAX_CONCURRENT",
        value_name = "N",
        default_value = "64"
    )]
    pub local_max_concurrent: Option<usize>,

    /// Local queries planning or running at once; the others admitted
    /// wait their turn, first come first run. `0`: one more than the cores.
    #[arg(long = "accel-local-running", env = "FLIGHTDECK_ACCEL_LOCAL_RUNNING", value_name = "N", default_value = "0")]
    pub local_running: Option<usize>,

    /// Longest a local query may take, waiting for its turn included; a
    /// slower one goes to Trino.
    #[arg(long = "accel-local-timeout", env = "FLIGHTDECK_ACCEL_LOCAL_TIMEOUT", value_name = "DURATION",
          value_parser = values::duration, default_value = "10s")]
    #[serde(deserialize_with = "values::de_duration")]
    pub local_timeout: Option<Duration>,

    /// Memory of the partial aggregates kept per dataset slice, which
    /// spare later queries over the same slices their rows (e.g. `64MiB`;
    /// `0` keeps none).
    #[arg(long = "accel-local-partials-memory", env = "FLIGHTDECK_ACCEL_LOCAL_PARTIALS_MEMORY", value_name = "SIZE",
          value_parser = values::size, default_value = "64MiB")]
    #[serde(deserialize_with = "values::de_size")]
    pub local_partials_memory: Option<u64>,
}

/// One `[[datasets]]` table of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetArgs {
    /// `catalog.schema.table`, as clients name it.
    pub table: String,
    /// `full` or `append`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Append: the watermark column (timestamp, date or integer).
    #[serde(default)]
    pub time_column: Option<String>,
    /// Append: how far before the watermark rows are read again.
    #[serde(default, deserialize_with = "values::de_duration")]
    pub overlap: Option<Duration>,
    /// Append: rows read again replace older rows with the same key.
    #[serde(default)]
    pub key: Vec<String>,
    /// Time between refreshes; jitter is added.
    #[serde(default, deserialize_with = "values::de_duration")]
    pub interval: Option<Duration>,
    /// A statement run on Trino instead of reading the whole table.
    #[serde(default)]
    pub source: Option<String>,
    /// Drop rows older than this, by the time column.
    #[serde(default, deserialize_with = "values::de_duration")]
    pub retention: Option<Duration>,
    /// Most bytes this dataset may hold.
    #[serde(default, deserialize_with = "values::de_size")]
    pub max_bytes: Option<u64>,
    /// `trino` (Trino decides per user) or `all` (any authenticated user).
    #[serde(default)]
    pub access: Option<String>,
    /// How a refresh learns what changed: `watermark` (the time column, or
    /// nothing in full mode) or `snapshots` (an Iceberg table's snapshots).
    #[serde(default)]
    pub changes: Option<String>,
}

/// The checked `[accel]` settings and datasets.
#[derive(Debug, Clone)]
pub struct Accel {
    pub dir: Option<PathBuf>,
    pub max_concurrent_refreshes: usize,
    pub memory_budget: u64,
    pub access_ttl: Duration,
    /// Limits of the local engine; `None` when it is off.
    pub local: Option<crate::local::Limits>,
    pub datasets: Vec<DatasetConfig>,
}

impl Section for AccelArgs {
    type Resolved = Accel;

    fn resolve(self, problems: &mut Vec<String>) -> Accel {
        let max_concurrent_refreshes = defaulted(self.max_concurrent_refreshes);
        if max_concurrent_refreshes == 0 {
            problems.push("accel max concurrent refreshes: must be at least 1".into());
        }
        Accel {
            dir: self.dir,
            max_concurrent_refreshes,
            memory_budget: defaulted(self.memory_budget),
            access_ttl: defaulted(self.access_ttl),
            local: defaulted(self.local).then(|| crate::local::Limits {
                memory: defaulted(self.local_memory) as usize,
                concurrency: defaulted(self.local_max_concurrent).max(1),
                running: defaulted(self.local_running),
                timeout: defaulted(self.local_timeout),
                partials_memory: defaulted(self.local_partials_memory),
                ..Default::default()
            }),
            datasets: Vec::new(),
        }
    }
}

/// The checked dataset of one `[[datasets]]` table.
pub(super) fn dataset(d: DatasetArgs, problems: &mut Vec<String>) -> Option<DatasetConfig> {
    let name = d.table.clone();
    let mut problem = |what: String| problems.push(format!("dataset {name}: {what}"));
    let parts: Vec<&str> = d.table.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.trim().is_empty()) {
        problem("`table` must be catalog.schema.table".into());
        return None;
    }
    let mode = match d.mode.as_deref().unwrap_or("full") {
        "full" => Mode::Full,
        "append" => Mode::Append,
        other => {
            problem(format!("mode `{other}`: expected full or append"));
            return None;
        }
    };
    if mode == Mode::Append && d.time_column.is_none() {
        problem("append mode needs a `time_column`".into());
    }
    if mode == Mode::Full && (d.time_column.is_some() || d.overlap.is_some() || !d.key.is_empty()) {
        problem("`time_column`, `overlap` and `key` are for append mode".into());
    }
    let access = match d.access.as_deref().unwrap_or("trino") {
        "trino" => Access::Trino,
        "all" => Access::All,
        other => {
            problem(format!("access `{other}`: expected trino or all"));
            return None;
        }
    };
    if d.retention.is_some() && d.time_column.is_none() {
        problem("`retention` needs an append dataset's `time_column`".into());
    }
    let snapshots = match d.changes.as_deref().unwrap_or("watermark") {
        "watermark" => false,
        "snapshots" => true,
        other => {
            problem(format!("changes `{other}`: expected watermark or snapshots"));
            return None;
        }
    };
    if snapshots && d.source.is_some() {
        problem("`changes = \"snapshots\"` reads the table itself, not a `source`".into());
    }
    let interval = d.interval.unwrap_or(Duration::from_secs(60));
    if interval < Duration::from_secs(1) {
        problem("`interval` must be at least 1s".into());
    }
    Some(DatasetConfig {
        table: d.table.to_lowercase(),
        mode,
        time_column: d.time_column,
        overlap: d.overlap.unwrap_or_default(),
        key: d.key,
        interval,
        source: d.source,
        max_bytes: d.max_bytes,
        access,
        retention: d.retention,
        snapshots,
    })
}
