//! Whether a user may read a dataset: Trino decides, asked as that user,
//! and the answer is remembered per user and table for a bounded time.
//! Past half that time, the next query is answered with the remembered
//! decision while Trino is asked again in the background, so a user who
//! keeps querying never waits for Trino's answer after the first; one who
//! comes back after the whole time does.
//!
//! The copy holds every row and column the service user reads. A user may
//! read it only when Trino lets them select all of the table's columns with
//! no row filter or column mask and through no view: then they would see
//! exactly the copy's rows. Anything else (denied, a filter or mask, Trino
//! unsure) is a "no", and the query goes to Trino, which applies its rules.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;
use tokio::time::Instant;

use crate::trino::{Error, Session, TrinoClient};

type Pair = (String, String);

/// Asks Trino, remembers its answers.
#[derive(Debug, Clone)]
pub struct AccessCheck {
    trino: TrinoClient,
    /// (user, table) to whether allowed, and when Trino said so.
    decisions: Cache<Pair, (bool, Instant)>,
    ttl: Duration,
    /// Pairs being asked again in the background.
    renewing: Arc<Mutex<HashSet<Pair>>>,
}

impl AccessCheck {
    /// Decisions are kept for `ttl`, at most `capacity` of them.
    pub fn new(trino: TrinoClient, ttl: Duration, capacity: u64) -> Self {
        AccessCheck {
            trino,
            decisions: Cache::builder().time_to_live(ttl).max_capacity(capacity).build(),
            ttl,
            renewing: Arc::default(),
        }
    }

    /// Whether `user` sees exactly the dataset's copy of `table`
    /// (`catalog.schema.table`). Concurrent checks of one pair ask Trino once;
    /// a check Trino could not answer is not remembered.
    pub async fn may_read(&self, user: &str, table: &str) -> bool {
        let key = (user.to_string(), table.to_string());
        let asked = self
            .decisions
            .try_get_with(key.clone(), async { Ok::<_, Error>((self.ask(user, table).await?, Instant::now())) });
        match asked.await {
            Ok((allowed, at)) => {
                if self.renewal_due(at) {
                    self.renew(key);
                }
                allowed
            }
            Err(e) => {
                tracing::warn!(%user, %table, error = %e, "cannot ask Trino whether the user may read the dataset");
                false
            }
        }
    }

    /// Whether a decision made at `at` is past half its time, when queries
    /// still use it but Trino is asked again.
    fn renewal_due(&self, at: Instant) -> bool {
        at.elapsed() > self.ttl / 2
    }

    /// Asks Trino again about `key` in the background, once at a time; the
    /// answer replaces the remembered one. If Trino cannot answer, the old
    /// decision expires at its time and the next query asks.
    fn renew(&self, key: Pair) {
        if !self.renewing.lock().expect("not poisoned").insert(key.clone()) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            // Another query may have read the old decision just before a
            // renewal replaced it: the new one needs no renewal yet.
            let fresh = this.decisions.get(&key).await.is_some_and(|(_, at)| !this.renewal_due(at));
            if fresh {
                this.renewing.lock().expect("not poisoned").remove(&key);
                return;
            }
            match this.ask(&key.0, &key.1).await {
                Ok(allowed) => this.decisions.insert(key.clone(), (allowed, Instant::now())).await,
                Err(e) => tracing::warn!(user = %key.0, table = %key.1, error = %e, "cannot ask Trino again"),
            }
            this.renewing.lock().expect("not poisoned").remove(&key);
        });
    }

    /// Trino's answer: `Ok(false)` when it refused or restricts the user,
    /// `Err` when it could not be asked.
    async fn ask(&self, user: &str, table: &str) -> Result<bool, Error> {
        let name = crate::sql::quote_name(table.split('.'));
        let session = Session { user: user.to_string(), ..Default::default() };
        // Planned, access-checked and answered without reading a row.
        let run = async {
            let mut query = self.trino.start(&session, &format!("SELECT * FROM {name} LIMIT 0")).await?;
            query.drain().await?;
            Ok::<_, Error>(query.id().to_string())
        };
        let id = match run.await {
            Ok(id) => id,
            // Denied, or no such table for this user.
            Err(Error::Query(q)) if q.error_type == "USER_ERROR" => {
                tracing::debug!(%user, %table, error = %q.error_name, "Trino refuses the user the dataset's table");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let reads = self.trino.reads(user, &id).await?;
        Ok(!reads.per_user && reads.tables == [table.to_string()])
    }
}
