//! Statements started for a client, waiting to be streamed to it (between
//! Flight SQL's GetFlightInfo and DoGet).
//!
//! Bounded in count, per user and in time: an entry that is evicted or
//! expires is dropped, which cancels the work behind it. One user can hold at
//! most `per_user` entries; when the registry is full, the oldest entry of
//! whoever holds the most goes, so no user can push out everyone else's.
//! A ticket whose entry is gone runs its statement again, unless it may
//! write (then it fails: see the ticket's `run_once`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use tokio::time::Instant;

use super::engine::{BatchStream, Execution, into_stream};
use crate::memory::Reservation;

/// A started statement and the schema promised for it.
pub struct Pending {
    pub schema: SchemaRef,
    /// Batches already read, streamed before the rest.
    pub prefix: Vec<arrow::record_batch::RecordBatch>,
    /// The rest; dropping it cancels the statement.
    pub rest: BatchStream,
    /// The memory budget `prefix` holds.
    pub reservation: Option<Reservation>,
}

impl Pending {
    /// A statement just started, nothing read yet.
    pub fn started(run: Box<dyn Execution>) -> Self {
        Pending { schema: run.schema(), prefix: Vec::new(), rest: into_stream(run), reservation: None }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("schema", &self.schema).field("prefix", &self.prefix.len()).finish()
    }
}

/// Why a query could not be parked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{user} already has {held} queries waiting to be read (the most one user may have): read or cancel them first")]
pub struct UserFull {
    pub user: String,
    pub held: usize,
}

#[derive(Debug)]
struct Entry {
    user: String,
    parked: Instant,
    pending: Pending,
}

/// The registry; cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    entries: Arc<Mutex<HashMap<[u8; 16], Entry>>>,
    capacity: usize,
    per_user: usize,
    ttl: Duration,
}

impl Registry {
    /// At most `capacity` entries, `per_user` of them one user's, each kept `ttl`.
    pub fn new(capacity: u64, per_user: u64, ttl: Duration) -> Self {
        Registry {
            entries: Arc::default(),
            capacity: capacity.max(1) as usize,
            per_user: per_user.max(1) as usize,
            ttl,
        }
    }

    /// Drops expired entries now, cancelling their queries.
    pub fn run_pending_tasks(&self) {
        let expired: Vec<Entry> = {
            let mut entries = self.entries.lock().expect("registry lock");
            let keys: Vec<[u8; 16]> =
                entries.iter().filter(|(_, e)| e.parked.elapsed() >= self.ttl).map(|(k, _)| *k).collect();
            let expired = keys.iter().filter_map(|k| entries.remove(k)).collect();
            gauge(&entries);
            expired
        };
        if !expired.is_empty() {
            metrics::counter!("flightdeck_pending_expired_total").increment(expired.len() as u64);
        }
        // Dropped outside the lock: dropping cancels the Trino queries.
        drop(expired);
    }

    /// Runs [`Registry::run_pending_tasks`] often enough that an expired
    /// query is cancelled within about half its time to live.
    /// Stops when `stop` is cancelled.
    pub async fn janitor(self, stop: tokio_util::sync::CancellationToken) {
        let period = (self.ttl / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => self.run_pending_tasks(),
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Parks `user`'s started query, returning the key its ticket carries.
    pub fn insert(&self, user: &str, pending: Pending) -> Result<[u8; 16], UserFull> {
        let key: [u8; 16] = rand::random();
        let evicted = {
            let mut entries = self.entries.lock().expect("registry lock");
            let held = entries.values().filter(|e| e.user == user).count();
            if held >= self.per_user {
                metrics::counter!("flightdeck_pending_refused_total").increment(1);
                return Err(UserFull { user: user.to_string(), held });
            }
            let evicted = if entries.len() >= self.capacity { evict_one(&mut entries) } else { None };
            entries.insert(key, Entry { user: user.to_string(), parked: Instant::now(), pending });
            gauge(&entries);
            evicted
        };
        if evicted.is_some() {
            metrics::counter!("flightdeck_pending_evicted_total").increment(1);
        }
        drop(evicted);
        Ok(key)
    }

    /// Takes the query for `key`: each started query is streamed once.
    pub fn take(&self, key: &[u8]) -> Option<Pending> {
        let key: [u8; 16] = key.try_into().ok()?;
        let entry = {
            let mut entries = self.entries.lock().expect("registry lock");
            let entry = entries.remove(&key);
            gauge(&entries);
            entry?
        };
        if entry.parked.elapsed() >= self.ttl {
            // Expired, not yet swept: as good as gone.
            return None;
        }
        Some(entry.pending)
    }

    /// Drops every entry, cancelling their queries (at shutdown).
    pub fn clear(&self) -> usize {
        let all: Vec<Entry> = {
            let mut entries = self.entries.lock().expect("registry lock");
            let all = entries.drain().map(|(_, e)| e).collect();
            gauge(&entries);
            all
        };
        all.len()
    }

    /// Entries held now (after expired ones are dropped).
    pub fn len(&self) -> u64 {
        self.run_pending_tasks();
        self.entries.lock().expect("registry lock").len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Publishes the count, under the lock that changed it.
fn gauge(entries: &HashMap<[u8; 16], Entry>) {
    metrics::gauge!("flightdeck_pending_queries").set(entries.len() as f64);
}

/// Removes the oldest entry of the user holding the most.
fn evict_one(entries: &mut HashMap<[u8; 16], Entry>) -> Option<Entry> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for e in entries.values() {
        *counts.entry(e.user.as_str()).or_default() += 1;
    }
    let heaviest = counts.into_iter().max_by_key(|(_, n)| *n).map(|(u, _)| u.to_string())?;
    let key = entries.iter().filter(|(_, e)| e.user == heaviest).min_by_key(|(_, e)| e.parked).map(|(k, _)| *k)?;
    entries.remove(&key)
}
