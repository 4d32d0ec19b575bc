//! Accelerated datasets: local Arrow copies of Trino tables, loaded at start
//! and kept fresh by periodic refresh.
//!
//! - **Versions**: a refresh builds the new version aside and swaps it in
//!   whole, so a reader holds one version from start to end.
//! - **Append refresh** reads only rows at or after `watermark - overlap`
//!   and replaces every row of that stretch with what Trino returns now, so
//!   rows sharing the boundary timestamp are neither lost nor doubled, and
//!   late rows inside the overlap are picked up. With a `key`, a re-read row
//!   also replaces an older row with the same key. When the stretch cannot
//!   be trusted (rows at the watermark vanished, the schema changed), the
//!   refresh falls back to a full read.
//! - **Failures** keep the previous version; the refresh is retried with
//!   back-off. One refresh per dataset at a time, a global limit across
//!   datasets, and jitter, so that Trino is never stormed. A worker that
//!   panics is restarted and reported.
//! - **Memory** is counted against the datasets' budget and each dataset's
//!   `max_bytes`; a version that would exceed them is refused (the dataset
//!   reports `failed`), never allocated past them.
//! - **Coherence**: a new version marks the result-cache entries that read
//!   the table stale.
//! - **Warm restarts**: each version is written to `dir` and read back at
//!   start; refresh then goes on from its watermark. A snapshot that does not
//!   check out is discarded and the table read whole.

mod access;
mod refresh;
mod slice;
mod snapshot;
mod table;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use arrow::datatypes::SchemaRef;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cache::ResultCache;
use crate::config::Accel;
use crate::memory::{MemoryBudget, Reservation};
use crate::trino::TrinoClient;
pub use access::AccessCheck;
pub use slice::{BatchStats, PARTIAL, Slice, cast_to};
pub use table::{BeforeRetention, DatasetTable, DeferredScan, Piece, ScanInput};

/// Most (user, table) access decisions remembered.
const ACCESS_DECISIONS: u64 = 100_000;

/// How a dataset is refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read the whole table every time.
    Full,
    /// Read only what is at or after the watermark, minus the overlap.
    Append,
}

/// Who may read a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Whoever Trino lets read the table.
    Trino,
    /// Any authenticated user.
    All,
}

/// One `[[datasets]]` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetConfig {
    /// `catalog.schema.table`, lower case.
    pub table: String,
    pub mode: Mode,
    pub time_column: Option<String>,
    pub overlap: Duration,
    pub key: Vec<String>,
    pub interval: Duration,
    /// A statement to read instead of the whole table.
    pub source: Option<String>,
    pub max_bytes: Option<u64>,
    pub access: Access,
    /// Rows older than this, by the time column, are dropped.
    pub retention: Option<Duration>,
    /// An Iceberg table: a refresh learns what changed from the table's
    /// snapshots (`"t$snapshots"`), reads nothing when none is new and, in
    /// append mode, only the files of appended snapshots.
    pub snapshots: bool,
}

impl DatasetConfig {
    /// A full copy of `table`, refreshed hourly, access decided by Trino;
    /// the other fields as the config file's defaults leave them.
    pub fn full(table: &str) -> Self {
        DatasetConfig {
            table: table.to_lowercase(),
            mode: Mode::Full,
            time_column: None,
            overlap: Duration::ZERO,
            key: Vec::new(),
            interval: Duration::from_secs(3600),
            source: None,
            max_bytes: None,
            access: Access::Trino,
            retention: None,
            snapshots: false,
        }
    }
}

/// A dataset's state, as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not loaded yet.
    Loading,
    Ready,
    Refreshing,
    /// The last load or refresh failed; the previous version, if any, stays.
    Failed,
    Paused,
}

/// One version of a dataset's rows, sorted by the time column when there
/// is one.
#[derive(Debug)]
pub struct Version {
    pub number: u64,
    pub schema: SchemaRef,
    pub slices: Vec<Slice>,
    pub rows: u64,
    pub bytes: u64,
    /// The largest value of the time column, as a Trino literal.
    pub watermark: Option<refresh::Watermark>,
    /// Under a retention, the oldest time (in the time column's unit) from
    /// which the version holds every row; older ones were dropped, so a
    /// local query must read none of them.
    pub held_from: Option<i64>,
    /// The Iceberg snapshot this version holds, for `snapshots` datasets.
    pub iceberg_snapshot: Option<i64>,
    /// The memory this version holds.
    _reservation: Reservation,
}

/// What the admin API lists for a dataset.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetInfo {
    pub table: String,
    pub mode: &'static str,
    pub state: State,
    pub rows: u64,
    pub bytes: u64,
    pub version: u64,
    pub watermark: Option<String>,
    /// RFC 3339 time of the last successful refresh.
    pub last_refresh_at: Option<String>,
    pub last_refresh_ms: Option<u64>,
    pub last_refresh_rows_pulled: Option<u64>,
    /// Seconds since the data was last confirmed current (the start of the
    /// last successful refresh).
    pub lag_secs: Option<u64>,
    pub error: Option<String>,
    /// Times the refresh worker died and was started again.
    pub worker_restarts: u64,
}

#[derive(Debug, Default)]
struct Status {
    error: Option<String>,
    refreshing: bool,
    /// Start of the last successful refresh.
    fresh_as_of: Option<SystemTime>,
    last_refresh_ms: Option<u64>,
    last_rows_pulled: Option<u64>,
    restarts: u64,
}

#[derive(Debug)]
struct Dataset {
    config: DatasetConfig,
    current: RwLock<Option<Arc<Version>>>,
    status: Mutex<Status>,
    paused: AtomicBool,
    /// Refresh now (admin API).
    wake: Notify,
    versions: AtomicU64,
    /// Makes the worker panic at its next refresh (the supervisor's test).
    #[cfg(test)]
    panic_next: AtomicBool,
}

impl Dataset {
    fn current(&self) -> Option<Arc<Version>> {
        self.current.read().expect("dataset lock").clone()
    }

    fn state(&self) -> State {
        let status = self.status.lock().expect("dataset status");
        let loaded = self.current.read().expect("dataset lock").is_some();
        match () {
            _ if self.paused.load(Ordering::SeqCst) => State::Paused,
            _ if status.refreshing && loaded => State::Refreshing,
            _ if status.error.is_some() => State::Failed,
            _ if loaded => State::Ready,
            _ => State::Loading,
        }
    }
}

#[derive(Debug)]
struct Inner {
    datasets: HashMap<String, Arc<Dataset>>,
    trino: TrinoClient,
    /// The user refreshes run as.
    user: String,
    /// Refreshes running at once, across datasets.
    slots: Semaphore,
    memory: MemoryBudget,
    cache: Option<ResultCache>,
    /// Where versions are written for warm restarts.
    dir: Option<std::path::PathBuf>,
    access: AccessCheck,
}

/// The accelerated datasets; cheap to clone.
#[derive(Debug, Clone)]
pub struct Datasets {
    inner: Arc<Inner>,
}

impl Datasets {
    /// The datasets of `settings`, refreshed through `trino` as `user`; a new
    /// version marks what `cache` holds of its table stale.
    pub fn new(settings: &Accel, trino: TrinoClient, user: String, cache: Option<ResultCache>) -> Self {
        let datasets = settings
            .datasets
            .iter()
            .map(|c| {
                let ds = Dataset {
                    config: c.clone(),
                    current: RwLock::new(None),
                    status: Mutex::default(),
                    paused: AtomicBool::new(false),
                    wake: Notify::new(),
                    versions: AtomicU64::new(0),
                    #[cfg(test)]
                    panic_next: AtomicBool::new(false),
                };
                // Counted from zero, so that alerts see the first failure.
                for name in ["flightdeck_dataset_refresh_failures_total", "flightdeck_dataset_rows_pulled_total"] {
                    metrics::counter!(name, "table" => c.table.clone()).increment(0);
                }
                (c.table.clone(), Arc::new(ds))
            })
            .collect();
        Datasets {
            inner: Arc::new(Inner {
                datasets,
                access: AccessCheck::new(trino.clone(), settings.access_ttl, ACCESS_DECISIONS),
                trino,
                user,
                slots: Semaphore::new(settings.max_concurrent_refreshes.max(1)),
                memory: MemoryBudget::with_gauges(
                    settings.memory_budget,
                    "flightdeck_accel_budget_bytes",
                    "flightdeck_accel_reserved_bytes",
                ),
                cache,
                dir: settings.dir.clone(),
            }),
        }
    }

    /// Whether any dataset is declared.
    pub fn is_empty(&self) -> bool {
        self.inner.datasets.is_empty()
    }

    /// Starts one supervised refresh worker per dataset on `tasks`; they stop
    /// when `stop` is cancelled.
    pub fn start(&self, stop: &CancellationToken, tasks: &TaskTracker) {
        for ds in self.inner.datasets.values() {
            let (inner, ds, stop) = (Arc::clone(&self.inner), Arc::clone(ds), stop.clone());
            tasks.spawn(refresh::supervise(inner, ds, stop));
        }
    }

    /// Whether every dataset has loaded once.
    pub fn all_loaded(&self) -> bool {
        self.inner.datasets.values().all(|d| d.current().is_some())
    }

    /// The current version of `table`'s dataset, once loaded.
    pub fn version(&self, table: &str) -> Option<Arc<Version>> {
        self.inner.datasets.get(&table.to_lowercase())?.current()
    }

    /// `table`'s current version as a DataFusion table, once loaded.
    pub fn table(&self, table: &str) -> Option<DatasetTable> {
        let ds = self.inner.datasets.get(&table.to_lowercase())?;
        Some(DatasetTable::new(ds.current()?, ds.config.time_column.clone()))
    }

    /// Whether `user` may be answered from `table`'s dataset: always with
    /// `access = "all"`; with `access = "trino"`, when Trino lets the user
    /// read the whole table unfiltered (asked as the user, remembered for
    /// the configured time). False for a table that is no dataset.
    pub async fn may_read(&self, user: &str, table: &str) -> bool {
        let table = table.to_lowercase();
        match self.inner.datasets.get(&table).map(|d| d.config.access) {
            Some(Access::All) => true,
            Some(Access::Trino) => self.inner.access.may_read(user, &table).await,
            None => false,
        }
    }

    /// Asks for a refresh of `table` now; false if no such dataset.
    pub fn refresh_now(&self, table: &str) -> bool {
        self.with(table, |d| d.wake.notify_one())
    }

    /// Stops refreshing `table` (its version stays); false if no such dataset.
    pub fn pause(&self, table: &str) -> bool {
        self.with(table, |d| d.paused.store(true, Ordering::SeqCst))
    }

    /// Refreshes `table` again, at once; false if no such dataset.
    pub fn resume(&self, table: &str) -> bool {
        self.with(table, |d| {
            d.paused.store(false, Ordering::SeqCst);
            d.wake.notify_one();
        })
    }

    fn with(&self, table: &str, f: impl FnOnce(&Dataset)) -> bool {
        self.inner.datasets.get(&table.to_lowercase()).map(|d| f(d)).is_some()
    }

    /// Every dataset, for the admin API, by table.
    pub fn list(&self) -> Vec<DatasetInfo> {
        let mut out: Vec<DatasetInfo> = self.inner.datasets.values().map(|d| info(d)).collect();
        out.sort_by(|a, b| a.table.cmp(&b.table));
        out
    }
}

fn info(d: &Dataset) -> DatasetInfo {
    let state = d.state();
    let current = d.current();
    let status = d.status.lock().expect("dataset status");
    DatasetInfo {
        table: d.config.table.clone(),
        mode: match d.config.mode {
            Mode::Full => "full",
            Mode::Append => "append",
        },
        state,
        rows: current.as_ref().map_or(0, |v| v.rows),
        bytes: current.as_ref().map_or(0, |v| v.bytes),
        version: current.as_ref().map_or(0, |v| v.number),
        watermark: current.as_ref().and_then(|v| v.watermark.as_ref().map(|w| w.literal.clone())),
        last_refresh_at: status.fresh_as_of.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
        last_refresh_ms: status.last_refresh_ms,
        last_refresh_rows_pulled: status.last_rows_pulled,
        lag_secs: status.fresh_as_of.and_then(|t| t.elapsed().ok()).map(|e| e.as_secs()),
        error: status.error.clone(),
        worker_restarts: status.restarts,
    }
}
