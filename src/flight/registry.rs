//! Queries started by GetFlightInfo, waiting for their DoGet.
//!
//! Bounded in count and time: an entry that is evicted or expires is
//! dropped, which cancels its Trino query. A ticket whose entry is gone
//! (expired, or issued by another replica) runs its statement again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::SchemaRef;

use crate::trino::Query;

/// A started query and the schema promised for it.
#[derive(Debug)]
pub struct PendingQuery {
    pub query: Query,
    pub schema: SchemaRef,
    /// Batches already read from the query, streamed before the rest.
    pub prefix: Vec<arrow::record_batch::RecordBatch>,
}

type Slot = Arc<Mutex<Option<PendingQuery>>>;

/// The registry; cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    cache: moka::sync::Cache<[u8; 16], Slot>,
    ttl: Duration,
}

impl Registry {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Registry { cache: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build(), ttl }
    }

    /// Drops expired and evicted entries now, cancelling their queries.
    /// The cache only does this on access, so a quiet server calls it
    /// periodically (see [`Registry::janitor`]).
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    /// Runs [`Registry::run_pending_tasks`] often enough that an expired
    /// query is cancelled within about half its time to live.
    pub async fn janitor(self) {
        let period = (self.ttl / 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            self.run_pending_tasks();
        }
    }

    /// Stores a started query, returning the key its ticket carries.
    pub fn insert(&self, pending: PendingQuery) -> [u8; 16] {
        let key: [u8; 16] = rand::random();
        self.cache.insert(key, Arc::new(Mutex::new(Some(pending))));
        key
    }

    /// Takes the query for `key`: each started query is streamed once.
    pub fn take(&self, key: &[u8]) -> Option<PendingQuery> {
        let key: [u8; 16] = key.try_into().ok()?;
        let slot = self.cache.remove(&key)?;
        let taken = slot.lock().expect("registry slot lock").take();
        taken
    }

    /// Entries held now (after pending evictions run).
    pub fn len(&self) -> u64 {
        self.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
