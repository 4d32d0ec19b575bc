//! The result cache: bounded in bytes, single-flight, isolated per user, and
//! never serving superseded data as fresh.
//!
//! - **Bounded**: `moka` weighs each entry by its real bytes (Arrow buffers
//!   plus the encoded Flight messages) against `max_bytes`; a result larger
//!   than `max_entry_bytes` is streamed through uncached.
//! - **Single flight**: concurrent identical misses share one fill
//!   (`try_get_with`); a failed fill is not cached and every waiter gets
//!   its error.
//! - **Freshness**: an entry is fresh for `ttl`, then served as *stale* for
//!   `stale_while_revalidate` while exactly one background refresh runs.
//!   Freshness is judged on the tokio clock, so tests can pause time.
//! - **Invalidation**: every write bumps a generation for the tables it
//!   names. An entry remembers the generation its fill started at; an entry
//!   whose tables were written since is never served, so an invalidation
//!   that races a fill wins.

mod key;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;
use tokio::time::Instant;

pub use key::{Bypass, CacheKey, Cacheable, cacheable};

pub use crate::sql::Reads;
use crate::sql::Statement;

/// Cache settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Byte budget of all entries.
    pub max_bytes: u64,
    /// Results larger than this stream through uncached.
    pub max_entry_bytes: u64,
    /// How long an entry is fresh.
    pub ttl: Duration,
    /// How long after `ttl` an entry may still be served, marked stale,
    /// while one refresh runs.
    pub stale_while_revalidate: Duration,
    /// How long past that an entry is kept, to be served marked stale
    /// while Trino cannot be reached.
    pub stale_if_error: Duration,
    /// Catalogs or `catalog.schema` prefixes whose results all users share.
    pub shared_namespaces: Vec<String>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_bytes: 1 << 30,
            max_entry_bytes: 64 << 20,
            ttl: Duration::from_secs(60),
            stale_while_revalidate: Duration::from_secs(30),
            stale_if_error: Duration::ZERO,
            shared_namespaces: Vec::new(),
        }
    }
}

/// What a fill produced.
#[derive(Debug)]
pub struct Filled {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// The Flight messages for the hit path, schema message first.
    pub encoded: Vec<FlightData>,
    pub trino_query_id: String,
    /// What the statement read, as Trino reported it; `None` when unknown.
    pub reads: Option<Reads>,
    /// Answered by the local engine.
    pub local: bool,
}

/// Tag of an entry whose reads are unknown: any write drops it.
const ANY_TABLE: &str = "*";

/// A cached result.
#[derive(Debug)]
pub struct CachedResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub encoded: Vec<FlightData>,
    /// Bytes held: Arrow buffers plus encoded messages.
    pub bytes: u64,
    pub rows: u64,
    pub tables: Vec<String>,
    pub created: Instant,
    pub trino_query_id: String,
    /// Answered by the local engine.
    pub local: bool,
    pub hits: AtomicU64,
    /// Write generation when the fill started.
    generation: u64,
    refreshing: AtomicBool,
    summary: String,
}

impl CachedResult {
    fn new(f: Filled, mut tables: Vec<String>, generation: u64, summary: String) -> Self {
        // Tagged with everything it named and everything Trino says it read,
        // so a write to a base table drops entries that read a view over it.
        match &f.reads {
            Some(r) => tables.extend(r.tables.iter().cloned()),
            None => tables.push(ANY_TABLE.to_string()),
        }
        tables.sort();
        tables.dedup();
        let arrow: usize =
            f.batches.iter().map(|b| b.get_array_memory_size() + crate::trino::decode::Beyond::held_bytes(b)).sum();
        let encoded: usize =
            f.encoded.iter().map(|d| d.data_header.len() + d.data_body.len() + d.app_metadata.len()).sum();
        CachedResult {
            rows: f.batches.iter().map(|b| b.num_rows() as u64).sum(),
            schema: f.schema,
            batches: f.batches,
            encoded: f.encoded,
            bytes: (arrow + encoded + summary.len() + 256) as u64,
            tables,
            created: Instant::now(),
            trino_query_id: f.trino_query_id,
            local: f.local,
            hits: AtomicU64::new(0),
            generation,
            refreshing: AtomicBool::new(false),
            summary,
        }
    }
}

/// How a request wants the cache used (`x-flightdeck-cache` metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Directive {
    #[default]
    Default,
    /// Run on Trino and refresh the entry.
    NoCache,
    /// Accept an entry at most this old.
    MaxAge(Duration),
    /// Answer from the cache or fail.
    OnlyIfCached,
    /// As `Default`, and when Trino cannot be reached, accept an entry this
    /// far past its stale window (within what the cache keeps).
    MaxStale(Duration),
}

impl std::str::FromStr for Directive {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "no-cache" => Ok(Directive::NoCache),
            "only-if-cached" => Ok(Directive::OnlyIfCached),
            _ => match (
                s.strip_prefix("max-age=").map(str::parse::<u64>),
                s.strip_prefix("max-stale=").map(str::parse::<u64>),
            ) {
                (Some(Ok(n)), _) => Ok(Directive::MaxAge(Duration::from_secs(n))),
                (_, Some(Ok(n))) => Ok(Directive::MaxStale(Duration::from_secs(n))),
                _ => Err(format!(
                    "x-flightdeck-cache: expected no-cache, max-age=N, max-stale=N or only-if-cached, got `{s}`"
                )),
            },
        }
    }
}

/// How a lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Stale,
    Miss,
    Bypass,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Stale => "stale",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
        }
    }
}

/// A fill's failure: the statement's own error, or a result too large to
/// cache (carrying what was read, for the first caller to stream on).
#[derive(Debug)]
pub enum FillError<E, P> {
    Failed(E),
    TooLarge(Mutex<Option<P>>),
    /// Filled under a shared key, but Trino's account of what it read does
    /// not prove every user gets the same answer: the rows, for the first
    /// caller to keep under its own key.
    NotShared(Mutex<Option<Filled>>),
}

/// Result of [`ResultCache::get_or_fill`].
#[derive(Debug)]
pub enum Lookup<E, P> {
    Cached(Outcome, Arc<CachedResult>),
    /// `only-if-cached` and nothing usable is cached.
    NotCached,
    /// The fill failed; shared by every waiter of that fill.
    Failed(Arc<FillError<E, P>>),
    /// Writes kept superseding the fills: run the statement uncached.
    Uncached,
}

/// One entry, as the admin API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EntryInfo {
    pub id: String,
    pub summary: String,
    pub user: Option<String>,
    pub bytes: u64,
    pub rows: u64,
    pub age_ms: u64,
    pub hits: u64,
    pub tables: Vec<String>,
    pub trino_query_id: String,
}

/// Write generations: a global counter, and the last one per table.
#[derive(Debug, Default)]
struct Generations {
    counter: AtomicU64,
    tables: Mutex<HashMap<String, u64>>,
    /// Generation of the last write to any table.
    any_table: AtomicU64,
    /// Generation of the last "invalidate everything".
    all: AtomicU64,
    /// The last generation at which each table's data was refreshed
    /// (`mark_stale`): entries that read it are served stale until redone.
    refreshed: Mutex<HashMap<String, u64>>,
    /// Generation of the last refresh of any table.
    any_refreshed: AtomicU64,
}

type Classified = Result<Cacheable, Bypass>;

/// The result cache; cheap to clone.
#[derive(Debug, Clone)]
pub struct ResultCache {
    cache: moka::future::Cache<CacheKey, Arc<CachedResult>>,
    config: Arc<CacheConfig>,
    generations: Arc<Generations>,
    /// Statements already classified (normalized text, tables read), so the
    /// hit path does not parse SQL on every request. Bounded by text size.
    classified: moka::sync::Cache<(String, Option<String>, Option<String>), Arc<Classified>>,
    /// Shared keys whose statements turned out to read per-user or
    /// unshared relations: they are keyed per user from then on.
    unshared: moka::sync::Cache<CacheKey, ()>,
    /// Background refreshes: tracked, and stopped when `stop` is cancelled.
    tasks: tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
}

impl ResultCache {
    pub fn new(config: CacheConfig) -> Self {
        metrics::gauge!("flightdeck_cache_max_bytes").set(config.max_bytes as f64);
        let cache = moka::future::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|_k: &CacheKey, v: &Arc<CachedResult>| u32::try_from(v.bytes).unwrap_or(u32::MAX))
            // A backstop only: freshness is judged on the tokio clock.
            .time_to_live(config.ttl + config.stale_while_revalidate + config.stale_if_error + Duration::from_secs(1))
            .eviction_listener(|_k, _v, cause| {
                let reason = match cause {
                    moka::notification::RemovalCause::Expired => "expired",
                    moka::notification::RemovalCause::Explicit => "invalidated",
                    moka::notification::RemovalCause::Replaced => "replaced",
                    moka::notification::RemovalCause::Size => "size",
                };
                metrics::counter!("flightdeck_cache_evictions_total", "reason" => reason).increment(1);
            })
            .build();
        let classified = moka::sync::Cache::builder()
            .max_capacity(16 << 20)
            .weigher(|k: &(String, Option<String>, Option<String>), v: &Arc<Classified>| {
                let text = v
                    .as_ref()
                    .as_ref()
                    .map_or(0, |c| c.canonical.len() + c.tables.iter().map(String::len).sum::<usize>());
                u32::try_from(k.0.len() + text + 64).unwrap_or(u32::MAX)
            })
            .build();
        let unshared = moka::sync::Cache::builder().max_capacity(100_000).build();
        ResultCache {
            cache,
            config: Arc::new(config),
            generations: Arc::default(),
            classified,
            unshared,
            tasks: tokio_util::task::TaskTracker::new(),
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Runs background refreshes on `tasks`, and stops them when `stop` is
    /// cancelled (their fills are dropped, which cancels their queries).
    pub fn with_lifecycle(
        mut self,
        stop: tokio_util::sync::CancellationToken,
        tasks: tokio_util::task::TaskTracker,
    ) -> Self {
        self.stop = stop;
        self.tasks = tasks;
        self
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The key for `stmt` run by `user`, or why it is not cached.
    pub fn key(
        &self,
        stmt: &Statement,
        user: &str,
        session_properties: &[(String, String)],
        time_zone: Option<&str>,
    ) -> Result<(CacheKey, Vec<String>), Bypass> {
        let (catalog, schema) = stmt.namespace();
        let classified = self
            .classified
            .get_with((stmt.text().to_string(), catalog.map(str::to_string), schema.map(str::to_string)), || {
                Arc::new(cacheable(stmt))
            });
        let Cacheable { canonical, tables, complete } = classified.as_ref().clone()?;
        let shared = complete && !tables.is_empty() && tables.iter().all(|t| self.in_shared_namespace(t));
        let mut props = session_properties.to_vec();
        props.sort();
        let mut key = CacheKey {
            sql: canonical,
            user: (!shared).then(|| user.to_string()),
            catalog: catalog.map(str::to_string),
            schema: schema.map(str::to_string),
            session_properties: props,
            time_zone: time_zone.map(str::to_string),
        };
        if shared && self.unshared.contains_key(&key) {
            key.user = Some(user.to_string());
        }
        Ok((key, tables))
    }

    fn in_shared_namespace(&self, table: &str) -> bool {
        self.config
            .shared_namespaces
            .iter()
            .any(|ns| table.strip_prefix(ns.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
    }

    /// Whether Trino's account of what a statement read proves that every
    /// user gets the same answer: known, no view, filter, mask or per-user
    /// schema, and every relation in a shared namespace.
    fn provably_shared(&self, reads: Option<&Reads>) -> bool {
        reads.is_some_and(|r| {
            !r.per_user && !r.tables.is_empty() && r.tables.iter().all(|t| self.in_shared_namespace(t))
        })
    }

    fn current_generation(&self) -> u64 {
        self.generations.counter.load(Ordering::SeqCst)
    }

    /// False once any table the entry read was written after its fill began.
    fn is_current(&self, e: &CachedResult) -> bool {
        if self.generations.all.load(Ordering::SeqCst) > e.generation {
            return false;
        }
        if e.tables.iter().any(|t| t == ANY_TABLE) && self.generations.any_table.load(Ordering::SeqCst) > e.generation {
            return false;
        }
        let tables = self.generations.tables.lock().expect("generations lock");
        e.tables.iter().all(|t| tables.get(t).is_none_or(|&g| g <= e.generation))
    }

    /// Whether a table the entry read was refreshed after its fill began.
    fn is_refreshed_since(&self, e: &CachedResult) -> bool {
        if e.tables.iter().any(|t| t == ANY_TABLE)
            && self.generations.any_refreshed.load(Ordering::SeqCst) > e.generation
        {
            return true;
        }
        let refreshed = self.generations.refreshed.lock().expect("generations lock");
        e.tables.iter().any(|t| refreshed.get(t).is_some_and(|&g| g > e.generation))
    }

    /// Marks `tables` refreshed (new data, nothing that makes old answers
    /// wrong to show for a moment): entries that read them are served as
    /// stale while one revalidation runs, as past their TTL.
    pub fn mark_stale(&self, tables: &[String]) {
        let generation = self.generations.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut refreshed = self.generations.refreshed.lock().expect("generations lock");
        for t in tables {
            refreshed.insert(t.to_lowercase(), generation);
        }
        self.generations.any_refreshed.store(generation, Ordering::SeqCst);
    }

    /// Marks `tables` written: entries that read them are dropped and fills
    /// in flight for them will not be served as fresh.
    pub async fn invalidate_tables(&self, written: &[String]) {
        let generation = self.generations.counter.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let mut tables = self.generations.tables.lock().expect("generations lock");
            for t in written {
                tables.insert(t.clone(), generation);
            }
        }
        self.generations.any_table.store(generation, Ordering::SeqCst);
        let doomed: Vec<Arc<CacheKey>> = self
            .cache
            .iter()
            .filter(|(_, v)| v.tables.iter().any(|t| t == ANY_TABLE || written.contains(t)))
            .map(|(k, _)| k)
            .collect();
        for k in doomed {
            self.cache.invalidate(k.as_ref()).await;
        }
        self.update_gauges();
    }

    /// Drops every entry; fills in flight are not served as fresh.
    pub async fn invalidate_all(&self) {
        let generation = self.generations.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.generations.all.store(generation, Ordering::SeqCst);
        self.cache.invalidate_all();
        self.cache.run_pending_tasks().await;
        self.update_gauges();
    }

    /// Drops one entry by its admin id; true if it existed.
    pub async fn invalidate_id(&self, id: &str) -> bool {
        let found: Vec<Arc<CacheKey>> = self.cache.iter().filter(|(k, _)| k.id() == id).map(|(k, _)| k).collect();
        for k in &found {
            self.cache.invalidate(k.as_ref()).await;
        }
        self.update_gauges();
        !found.is_empty()
    }

    /// The entry for `key` if it may still be served, with its freshness.
    pub async fn peek(&self, key: &CacheKey) -> Option<(Outcome, Arc<CachedResult>)> {
        let e = self.cache.get(key).await?;
        if !self.is_current(&e) {
            return None;
        }
        let age = e.created.elapsed();
        if age < self.config.ttl && !self.is_refreshed_since(&e) {
            Some((Outcome::Hit, e))
        } else if age < self.config.ttl + self.config.stale_while_revalidate {
            Some((Outcome::Stale, e))
        } else {
            None
        }
    }

    /// An entry past its stale window but within `allowed` more, not
    /// superseded by a write: for when Trino cannot be reached.
    pub async fn peek_stale(&self, key: &CacheKey, allowed: Duration) -> Option<Arc<CachedResult>> {
        let e = self.cache.get(key).await?;
        let within = e.created.elapsed() < self.config.ttl + self.config.stale_while_revalidate + allowed;
        (within && self.is_current(&e)).then(|| {
            e.hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("flightdeck_cache_stale_total").increment(1);
            e
        })
    }

    /// Answers from the cache, or runs `fill` once for all concurrent
    /// callers with the same key and caches what it returns.
    pub async fn get_or_fill<F, Fut, E, P>(
        &self,
        mut key: CacheKey,
        owner: &str,
        tables: Vec<String>,
        directive: Directive,
        fill: F,
    ) -> Lookup<E, P>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Filled, FillError<E, P>>> + Send + 'static,
        E: Send + Sync + 'static,
        P: Send + 'static,
    {
        let fill = Arc::new(fill);
        match (directive, self.peek(&key).await) {
            (Directive::NoCache, _) => {}
            (Directive::OnlyIfCached, Some((outcome, e))) => return self.serve(outcome, e),
            (Directive::OnlyIfCached, None) => return Lookup::NotCached,
            (Directive::MaxAge(max), Some((_, e))) if e.created.elapsed() <= max => return self.serve(Outcome::Hit, e),
            (Directive::MaxAge(_), _) => {}
            (Directive::Default | Directive::MaxStale(_), Some((Outcome::Stale, e))) => {
                self.refresh_in_background(key.clone(), tables.clone(), Arc::clone(&e), Arc::clone(&fill));
                return self.serve(Outcome::Stale, e);
            }
            (Directive::Default | Directive::MaxStale(_), Some((outcome, e))) => return self.serve(outcome, e),
            (Directive::Default | Directive::MaxStale(_), None) => {}
        }
        // Whatever is there may not be served: replace it, but keep it at
        // hand while it is not superseded, to put back if the fill fails
        // (an answer for when Trino cannot be reached: `peek_stale`).
        let previous = self.cache.get(&key).await.filter(|e| self.is_current(e));
        self.cache.invalidate(&key).await;
        // A fill that began before a write finished may hold rows from before
        // it; a caller must not get those, even one that joined the fill
        // after the write: such a fill is dropped and run again, a few times
        // at most under a stream of writes, then the caller runs uncached.
        for _ in 0..3 {
            let generation = self.current_generation();
            let summary = summarize(&key);
            let started = Instant::now();
            let (fill, fill_tables) = (Arc::clone(&fill), tables.clone());
            let (shared, this) = (key.user.is_none(), self.clone());
            let result = self
                .cache
                .try_get_with(key.clone(), async move {
                    let filled = fill().await?;
                    if shared && !this.provably_shared(filled.reads.as_ref()) {
                        return Err(FillError::NotShared(Mutex::new(Some(filled))));
                    }
                    Ok::<_, FillError<E, P>>(Arc::new(CachedResult::new(filled, fill_tables, generation, summary)))
                })
                .await;
            metrics::histogram!("flightdeck_cache_fill_seconds").record(started.elapsed().as_secs_f64());
            self.update_gauges();
            match result {
                Ok(e) if self.is_current(&e) => {
                    metrics::counter!("flightdeck_cache_misses_total").increment(1);
                    return Lookup::Cached(Outcome::Miss, e);
                }
                Ok(superseded) => {
                    metrics::counter!("flightdeck_cache_superseded_fills_total").increment(1);
                    // Drop it unless another waiter already replaced it.
                    if self.cache.get(&key).await.is_some_and(|e| Arc::ptr_eq(&e, &superseded)) {
                        self.cache.invalidate(&key).await;
                    }
                }
                Err(e) => {
                    let FillError::NotShared(slot) = &*e else {
                        if let Some(p) = previous
                            && self.is_current(&p)
                        {
                            self.cache.entry(key).or_insert(p).await;
                        }
                        return Lookup::Failed(e);
                    };
                    // Keyed per user from now on. The caller that ran the fill
                    // keeps its rows; any other waiter fills its own.
                    metrics::counter!("flightdeck_cache_not_shared_total").increment(1);
                    self.unshared.insert(key.clone(), ());
                    key.user = Some(owner.to_string());
                    let mine = slot.lock().expect("not-shared slot").take();
                    if let Some(filled) = mine {
                        let entry = Arc::new(CachedResult::new(filled, tables.clone(), generation, summarize(&key)));
                        self.cache.insert(key.clone(), Arc::clone(&entry)).await;
                        if self.is_current(&entry) {
                            metrics::counter!("flightdeck_cache_misses_total").increment(1);
                            return Lookup::Cached(Outcome::Miss, entry);
                        }
                    }
                    self.cache.invalidate(&key).await;
                }
            }
        }
        Lookup::Uncached
    }

    fn serve<E, P>(&self, outcome: Outcome, e: Arc<CachedResult>) -> Lookup<E, P> {
        e.hits.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Stale => metrics::counter!("flightdeck_cache_stale_total").increment(1),
            _ => metrics::counter!("flightdeck_cache_hits_total").increment(1),
        }
        Lookup::Cached(outcome, e)
    }

    /// Starts one refresh of a stale entry; others serving it meanwhile do not.
    fn refresh_in_background<F, Fut, E, P>(
        &self,
        key: CacheKey,
        tables: Vec<String>,
        stale: Arc<CachedResult>,
        fill: Arc<F>,
    ) where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Filled, FillError<E, P>>> + Send + 'static,
        E: Send + Sync + 'static,
        P: Send + 'static,
    {
        if stale.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        self.tasks.spawn(async move {
            let generation = this.current_generation();
            let filled = tokio::select! {
                filled = fill() => filled,
                _ = this.stop.cancelled() => return,
            };
            match filled {
                Ok(filled) if key.user.is_none() && !this.provably_shared(filled.reads.as_ref()) => {
                    this.unshared.insert(key.clone(), ());
                    this.cache.invalidate(&key).await;
                }
                Ok(filled) => {
                    let fresh = CachedResult::new(filled, tables, generation, summarize(&key));
                    this.cache.insert(key, Arc::new(fresh)).await;
                    metrics::counter!("flightdeck_cache_refreshes_total").increment(1);
                }
                Err(_) => {
                    // Let a later request try again.
                    stale.refreshing.store(false, Ordering::SeqCst);
                }
            }
            this.update_gauges();
        });
    }

    /// Entries for the admin API, largest first.
    pub fn entries(&self) -> Vec<EntryInfo> {
        let mut out: Vec<EntryInfo> = self
            .cache
            .iter()
            .map(|(k, v)| EntryInfo {
                id: k.id(),
                summary: v.summary.clone(),
                user: k.user.clone(),
                bytes: v.bytes,
                rows: v.rows,
                age_ms: v.created.elapsed().as_millis() as u64,
                hits: v.hits.load(Ordering::Relaxed),
                tables: v.tables.clone(),
                trino_query_id: v.trino_query_id.clone(),
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.bytes));
        out
    }

    /// Bytes held by entries, after pending evictions.
    pub async fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.weighted_size()
    }

    fn update_gauges(&self) {
        metrics::gauge!("flightdeck_cache_bytes").set(self.cache.weighted_size() as f64);
        metrics::gauge!("flightdeck_cache_entries").set(self.cache.entry_count() as f64);
    }
}

/// Encodes batches as the Flight messages a hit sends, schema first, each
/// at most [`crate::MAX_FLIGHT_DATA_BYTES`].
pub async fn encode(
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<FlightData>, arrow_flight::error::FlightError> {
    use futures::TryStreamExt;
    // The encoder needs owned batches; cloning one shares its buffers.
    let owned = batches.to_vec();
    arrow_flight::encode::FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(crate::MAX_FLIGHT_DATA_BYTES)
        .build(futures::stream::iter(owned.into_iter().map(Ok)))
        .try_collect()
        .await
}

fn summarize(key: &CacheKey) -> String {
    let mut s: String = key.sql.chars().take(200).collect();
    if key.sql.len() > s.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests;
