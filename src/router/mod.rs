//! Where a statement is answered, decided once: from the result cache, or
//! by an engine (Trino; a local engine will sit beside it).
//!
//! Protocol adapters turn their requests into a [`Request`] and call
//! [`Router::plan`]; what the client must hand back to be served is a
//! [`Ticket`], which [`Router::redeem`] turns into an [`Answer`]. The
//! ticket carries the route, so the decision is not taken again.
//!
//! ```text
//! plan(request) ─ read statement once ─┬─ cacheable ─ cache.get_or_fill ─┬─ hit/stale ─► Route::Cache
//!                                      │                                 └─ miss: engine fills ─► Route::Trino
//!                                      ├─ plain read ─ engine.start ─ park ─► Route::Trino (streamed at redeem)
//!                                      └─ may write ─ engine runs it to its end once, forgets what it wrote,
//!                                                     answer in the ticket ─► Route::Trino
//! ```

mod engine;
mod error;
mod params;
mod registry;
mod session;
mod stream;
mod trino;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::trino::TrinoEngine;
use crate::cache::{CacheKey, CachedResult, FillError, Filled, Lookup, ResultCache};
pub use crate::cache::{Directive, Outcome};
use crate::memory::MemoryBudget;
use crate::sql::{Reads, Statement, WriteScope};
pub use engine::{BatchStream, Engine, Execution, Local, Refusal, into_stream};
pub use error::{Code, Error, Result};
pub use params::{Bound, literals};
pub use registry::{Pending, Registry};
pub use session::{Change, Session};
pub use stream::PREFETCH_BATCHES;

/// Largest answer of a statement that may write carried inside its ticket.
/// Such statements usually answer one row; a larger answer stays parked on
/// the replica that ran it.
pub const INLINE_RESULT_BYTES: usize = 1 << 20;

/// Who produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A result cached earlier.
    Cache,
    /// Trino ran the statement for this request.
    Trino,
    /// The local engine answered from accelerated datasets.
    Local,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Cache => "cache",
            Route::Trino => "trino",
            Route::Local => "local",
        }
    }
}

/// A statement to answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub session: Session,
    /// The client's text, `?` markers and all.
    pub sql: String,
    /// Values for the markers, as SQL literals.
    pub parameters: Vec<String>,
    pub directive: Directive,
}

/// What the client hands back to get the rows: everything a redemption
/// needs, so that any replica can serve it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub sql: String,
    pub parameters: Vec<String>,
    pub session: Session,
    pub route: Route,
    pub cache: Outcome,
    /// The started statement waiting in this replica's registry.
    pub parked: Option<[u8; 16]>,
    /// The whole answer of a statement that ran to its end (Arrow IPC).
    pub result: Vec<u8>,
    /// The statement may have written: never run it again for this ticket.
    pub run_once: bool,
}

/// The answer to [`Router::plan`].
#[derive(Debug)]
pub struct Plan {
    pub route: Route,
    pub cache: Outcome,
    pub schema: SchemaRef,
    /// Row count, when known.
    pub rows: Option<u64>,
    /// How old a cached answer is.
    pub age: Option<Duration>,
    /// The client's session after the statement, when it changed it.
    pub session: Option<Session>,
    /// For a statement that ran to its end without a result set of its own:
    /// what kind it was and the rows it wrote.
    pub update: Option<Update>,
    pub ticket: Ticket,
}

/// What a statement run for its effect did, as the engine tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// `INSERT`, `CREATE TABLE`, `SET SESSION`, ...
    pub kind: String,
    /// Rows written, for DML.
    pub count: Option<i64>,
}

/// The rows of a redeemed ticket.
#[derive(Debug)]
pub struct Answer {
    pub route: Route,
    pub cache: Outcome,
    pub body: Body,
}

/// Rows, in the form they are at hand.
pub enum Body {
    /// A cache entry (also holding its pre-encoded Flight messages).
    Cached(Arc<CachedResult>),
    /// Rows in memory.
    Batches(SchemaRef, Vec<RecordBatch>),
    /// Rows as the engine produces them; dropping the stream cancels it.
    Stream(SchemaRef, BatchStream),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Cached(e) => f.debug_tuple("Cached").field(&e.rows).finish(),
            Body::Batches(_, b) => f.debug_tuple("Batches").field(&b.len()).finish(),
            Body::Stream(..) => f.write_str("Stream"),
        }
    }
}

/// What a statement looks like before it runs.
#[derive(Debug)]
pub struct Prepared {
    pub schema: SchemaRef,
    pub parameters: Schema,
}

/// Why a session option was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionError {
    InvalidName,
    InvalidValue,
}

/// Everything the router is built from.
#[derive(Debug)]
pub struct Parts {
    pub engine: Arc<dyn Engine>,
    /// Answers what it can from accelerated datasets; `None` when off.
    pub local: Option<Arc<dyn Local>>,
    /// The result cache; `None` when disabled.
    pub cache: Option<ResultCache>,
    pub registry: Registry,
    /// Budget of results buffered outside the cache.
    pub memory: MemoryBudget,
    /// Session properties every statement runs with (part of the cache key).
    pub session_properties: Vec<(String, String)>,
    /// The time zone every statement runs in (part of the cache key).
    pub time_zone: Option<String>,
    /// Cancelled when open streams must stop (the shutdown grace is over).
    pub stop_streams: CancellationToken,
    /// Where background work is tracked, so shutdown can wait for it.
    pub tasks: TaskTracker,
}

/// The router; cheap to clone.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Parts>,
}

type Fill = std::result::Result<Filled, FillError<Error, Pending>>;

impl Router {
    pub fn new(parts: Parts) -> Self {
        Router { inner: Arc::new(parts) }
    }

    /// The result cache, when enabled.
    pub fn cache(&self) -> Option<&ResultCache> {
        self.inner.cache.as_ref()
    }

    /// The registry of started statements waiting for their client.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The budget of results buffered outside the cache.
    pub fn memory(&self) -> &MemoryBudget {
        &self.inner.memory
    }

    /// Reads the client's text once, and binds its parameters.
    fn read(&self, session: &Session, sql: &str, parameters: &[String]) -> Result<(Statement, Bound)> {
        let (catalog, schema) = (session.catalog.as_deref(), session.schema.as_deref());
        let written = Statement::parse(sql, catalog, schema);
        let bound = params::bind(&written, parameters).map_err(Error::invalid_argument)?;
        // Bound literals change the text; without parameters it is the same.
        let stmt = if bound.origin.is_some() { Statement::parse(&bound.sql, catalog, schema) } else { written };
        Ok((stmt, bound))
    }

    /// The cache key of `stmt` in `session`, or `None` when it is not cached.
    fn cache_key(&self, session: &Session, stmt: &Statement) -> Option<(&ResultCache, CacheKey, Vec<String>)> {
        let cache = self.inner.cache.as_ref()?;
        if session.has_client_state() {
            tracing::debug!("not cached: the client sent roles or prepared statements");
            return None;
        }
        let mut properties = self.inner.session_properties.clone();
        properties.extend(session.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        let time_zone = session.time_zone.as_deref().or(self.inner.time_zone.as_deref());
        match cache.key(stmt, &session.user, &properties, time_zone) {
            Ok((key, tables)) => Some((cache, key, tables)),
            Err(reason) => {
                tracing::debug!(%reason, "not cached");
                None
            }
        }
    }

    /// Decides where `req` is answered and starts it there: the schema,
    /// and the ticket that gets the rows.
    pub async fn plan(&self, req: Request) -> Result<Plan> {
        let (stmt, bound) = self.read(&req.session, &req.sql, &req.parameters)?;
        let mut plan = self.resolve(&req.session, &stmt, &bound, req.directive).await?;
        plan.ticket.sql = req.sql;
        plan.ticket.parameters = req.parameters;
        plan.ticket.session = req.session;
        metrics::counter!("flightdeck_routed_total", "route" => plan.route.as_str(), "cache" => plan.cache.as_str())
            .increment(1);
        Ok(plan)
    }

    async fn resolve(&self, session: &Session, stmt: &Statement, bound: &Bound, directive: Directive) -> Result<Plan> {
        if let (Some(local), Some(query)) = (&self.inner.local, stmt.explained()) {
            return self.explain(local.as_ref(), session, &query, bound).await;
        }
        if let Some((cache, key, tables)) = self.cache_key(session, stmt) {
            let fill = self.filler(session.clone(), stmt.clone(), bound.clone(), cache.config().max_entry_bytes);
            match cache.get_or_fill(key.clone(), &session.user, tables, directive, fill).await {
                Lookup::Cached(outcome, entry) => return Ok(cached(outcome, &entry)),
                Lookup::Uncached => {}
                Lookup::NotCached => {
                    return Err(Error::failed_precondition("only-if-cached: no cached result for this statement"));
                }
                Lookup::Failed(e) => match &*e {
                    FillError::Failed(err) if err.code == Code::Unavailable => {
                        // The engine is down: an older answer, marked stale, if
                        // the request or the operator allows one that old.
                        let allowed = match directive {
                            Directive::MaxStale(d) => d,
                            _ => cache.config().stale_if_error,
                        };
                        if let Some(entry) = cache.peek_stale(&key, allowed).await {
                            metrics::counter!("flightdeck_cache_stale_if_error_total").increment(1);
                            return Ok(cached(Outcome::Stale, &entry));
                        }
                        return Err(err.clone());
                    }
                    FillError::Failed(err) => return Err(err.clone()),
                    // Handled inside the cache.
                    FillError::NotShared(_) => {}
                    FillError::TooLarge(slot) => {
                        metrics::counter!("flightdeck_cache_too_large_total").increment(1);
                        // The first caller streams on from what the fill read;
                        // any other waiter runs its own below.
                        let taken = slot.lock().expect("overflow slot").take();
                        if let Some(pending) = taken {
                            let schema = Arc::clone(&pending.schema);
                            let parked = self.park(&session.user, pending)?;
                            return Ok(started(Outcome::Bypass, schema, Some(parked)));
                        }
                    }
                },
            }
        } else if directive == Directive::OnlyIfCached {
            return Err(Error::failed_precondition("only-if-cached: this statement is never cached"));
        }
        metrics::counter!("flightdeck_cache_bypass_total").increment(1);
        if stmt.is_plain_read() {
            let (route, run) = start(&self.inner, session, stmt, bound).await?;
            let pending = Pending::started(run);
            let schema = Arc::clone(&pending.schema);
            let parked = self.park(&session.user, pending)?;
            let mut plan = started(Outcome::Bypass, schema, Some(parked));
            (plan.route, plan.ticket.route) = (route, route);
            return Ok(plan);
        }
        self.run_once(session, stmt, bound).await
    }

    /// `EXPLAIN` of a query: the route it would take first, then the local
    /// plan, or Trino's plan with the reason it is not answered locally.
    async fn explain(&self, local: &dyn Local, session: &Session, query: &Statement, bound: &Bound) -> Result<Plan> {
        let explained = match session_refusal(&self.inner, session) {
            Some(refusal) => Err(refusal),
            None => local.explain(session, query).await,
        };
        let (route, text) = match explained {
            Ok(plan) => (Route::Local, format!("Flightdeck route: local (DataFusion)\n\n{plan}")),
            Err(refusal) => {
                let (_, batches) = self.inner.engine.execute(session, &bound.sql).await?;
                let mut trino = String::new();
                for b in &batches {
                    let column = b.column(0).as_string_opt::<i32>().ok_or_else(|| Error::internal("a plan is text"))?;
                    trino.extend(column.iter().flatten());
                }
                (Route::Trino, format!("Flightdeck route: trino, because {refusal}\n\n{trino}"))
            }
        };
        let schema = Arc::new(Schema::new(vec![self.inner.engine.field("varchar", "Query Plan")]));
        let text = arrow::array::StringArray::from(vec![text]);
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(text)])?;
        let mut plan = started(Outcome::Bypass, Arc::clone(&schema), None);
        (plan.route, plan.ticket.route, plan.rows) = (route, route, Some(1));
        plan.ticket.result = ipc_bytes(&schema, &[batch])?;
        Ok(plan)
    }

    /// Runs a statement that may write exactly once, to its end, now: the
    /// cache forgets what it changed, a `USE` or `SET SESSION` reaches the
    /// client's session, and the ticket carries the answer so that no
    /// redemption runs it again.
    async fn run_once(&self, session: &Session, stmt: &Statement, bound: &Bound) -> Result<Plan> {
        let run = self.inner.engine.start(session, bound).await;
        let drained = match run {
            Ok(mut run) => {
                let mut prefix = Vec::new();
                let mut reservation = self.inner.memory.reservation();
                let finished = loop {
                    match run.next_batch().await {
                        Ok(Some(b)) => {
                            let grown = reservation.grow(b.get_array_memory_size() as u64);
                            prefix.push(b);
                            if let Err(e) = grown {
                                break Err(e.into());
                            }
                            if reservation.bytes() > INLINE_RESULT_BYTES as u64 {
                                break Ok(false);
                            }
                        }
                        Ok(None) => break Ok(true),
                        Err(e) => break Err(e),
                    }
                };
                finished.map(|finished| (run, prefix, reservation, finished))
            }
            Err(e) => Err(e),
        };
        // A write that failed may still have committed (the connection
        // dropped after the commit, say): forget its tables either way.
        self.forget_writes(stmt).await;
        let (run, prefix, reservation, finished) = drained?;
        let schema = run.schema();
        let mut plan = started(Outcome::Bypass, Arc::clone(&schema), None);
        plan.ticket.run_once = true;
        let mut updated = session.clone();
        if updated.apply(&run.changes()) {
            plan.session = Some(updated);
        }
        plan.update = run.update_type().map(|kind| Update { kind, count: run.update_count() });
        if finished {
            plan.rows = Some(prefix.iter().map(|b| b.num_rows() as u64).sum());
            plan.ticket.result = ipc_bytes(&schema, &prefix)?;
        } else {
            let pending = Pending { schema, prefix, rest: into_stream(run), reservation: Some(reservation) };
            plan.ticket.parked = Some(self.park(&session.user, pending)?);
        }
        Ok(plan)
    }

    /// The fill of a cache entry: runs the statement to its end, unless the
    /// result outgrows `max_bytes`; then the execution is handed back, with
    /// what it read, to be streamed uncached.
    fn filler(
        &self,
        session: Session,
        stmt: Statement,
        bound: Bound,
        max_bytes: u64,
    ) -> impl Fn() -> futures::future::BoxFuture<'static, Fill> + Send + Sync + 'static {
        let (parts, memory) = (Arc::clone(&self.inner), self.inner.memory.clone());
        move || {
            let (parts, session, stmt, bound, memory) =
                (Arc::clone(&parts), session.clone(), stmt.clone(), bound.clone(), memory.clone());
            Box::pin(async move {
                let (route, mut run) = start(&parts, &session, &stmt, &bound).await.map_err(FillError::Failed)?;
                let schema = run.schema();
                // What the engine says the statement read decides which writes
                // drop the entry and whether users may share it. Trino knows it
                // once the statement is analysed: asked now, beside the rows.
                // A local answer read the datasets of the tables it names.
                let reads = {
                    let (engine, session, id) = (Arc::clone(&parts.engine), session.clone(), run.id().to_string());
                    let local = (route == Route::Local)
                        .then(|| Reads { tables: stmt.tables().unwrap_or_default(), per_user: false });
                    parts.tasks.spawn(async move {
                        match local {
                            Some(reads) => Ok(Some(reads)),
                            None => engine.reads(&session, &id).await,
                        }
                    })
                };
                let mut batches = Vec::new();
                // The rows are held here until the entry is complete: against
                // the budget, so that many concurrent fills cannot exhaust memory.
                let mut reservation = memory.reservation();
                while let Some(b) = run.next_batch().await.map_err(FillError::Failed)? {
                    let bytes = b.get_array_memory_size() + crate::trino::decode::Beyond::held_bytes(&b);
                    reservation.grow(bytes as u64).map_err(|e| FillError::Failed(e.into()))?;
                    batches.push(b);
                    if reservation.bytes() > max_bytes {
                        let pending =
                            Pending { schema, prefix: batches, rest: into_stream(run), reservation: Some(reservation) };
                        return Err(FillError::TooLarge(Mutex::new(Some(pending))));
                    }
                }
                let encoded = crate::cache::encode(Arc::clone(&schema), &batches)
                    .await
                    .map_err(|e| FillError::Failed(Error::internal(format!("cannot encode result: {e}"))))?;
                let reads = reads.await.ok().and_then(Result::ok).flatten();
                Ok(Filled {
                    schema,
                    batches,
                    encoded,
                    trino_query_id: run.id().to_string(),
                    reads,
                    local: route == Route::Local,
                })
            })
        }
    }

    /// Parks a started statement for its client.
    fn park(&self, user: &str, pending: Pending) -> Result<[u8; 16]> {
        self.inner.registry.insert(user, pending).map_err(|e| Error::resource_exhausted(e.to_string()))
    }

    /// Drops the cache entries of whatever `stmt` may have written.
    async fn forget_writes(&self, stmt: &Statement) {
        let (Some(cache), Some(scope)) = (&self.inner.cache, stmt.write_scope()) else { return };
        match scope {
            WriteScope::Tables(t) => cache.invalidate_tables(&t).await,
            WriteScope::All => cache.invalidate_all().await,
        }
    }

    /// The rows of a ticket: the answer it carries, the parked statement,
    /// the cache entry, or (expired here, or issued by another replica) the
    /// statement run again on its route.
    pub async fn redeem(&self, t: &Ticket) -> Result<Answer> {
        let answer = |route, cache, body| Ok(Answer { route, cache, body });
        if !t.result.is_empty() {
            let (schema, batches) = from_ipc(&t.result)?;
            return answer(t.route, t.cache, Body::Batches(schema, batches));
        }
        if let Some(p) = t.parked.and_then(|k| self.inner.registry.take(&k)) {
            let schema = Arc::clone(&p.schema);
            return answer(t.route, t.cache, Body::Stream(schema, self.stream(p)));
        }
        if t.run_once {
            return Err(Error::failed_precondition(
                "this statement's result is no longer held here (redeemed already, expired, or issued by another \
                 replica), and it is not run again because it may change data: call GetFlightInfo again",
            ));
        }
        let (stmt, bound) = self.read(&t.session, &t.sql, &t.parameters)?;
        let cached = self.cache_key(&t.session, &stmt);
        if let Some((cache, key, _)) = &cached
            && let Some((_, entry)) = cache.peek(key).await
        {
            return answer(t.route, t.cache, Body::Cached(entry));
        }
        tracing::debug!("ticket's result is neither pending nor cached here; running it again");
        let (route, run) = start(&self.inner, &t.session, &stmt, &bound).await?;
        let pending = Pending::started(run);
        let schema = Arc::clone(&pending.schema);
        let outcome = if cached.is_some() { Outcome::Miss } else { Outcome::Bypass };
        answer(route, outcome, Body::Stream(schema, self.stream(pending)))
    }

    fn stream(&self, pending: Pending) -> BatchStream {
        stream::pump(pending, self.inner.stop_streams.clone(), &self.inner.tasks)
    }

    /// Cancels the statement parked under `key`; false if none is.
    pub fn cancel(&self, key: &[u8]) -> bool {
        // Dropping the statement cancels it.
        self.inner.registry.take(key).is_some()
    }

    /// Runs a statement with no result set to its end; returns its update
    /// count (0 for DDL and SET, as JDBC expects).
    pub async fn update(&self, session: &Session, sql: &str, parameters: &[String]) -> Result<i64> {
        let (stmt, bound) = self.read(session, sql, parameters)?;
        let run = self.inner.engine.start(session, &bound).await;
        let counted = match run {
            Ok(mut run) => loop {
                match run.next_batch().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break Ok(run.update_count().unwrap_or(0)),
                    Err(e) => break Err(e),
                }
            },
            Err(e) => Err(e),
        };
        // A write that failed may still have committed: forget its tables either way.
        self.forget_writes(&stmt).await;
        counted
    }

    /// The result and parameter schemas of `sql`, without running it. A
    /// statement without a result set (DDL, DML, SET, ...) gets an empty
    /// schema, which tells clients to run it as an update.
    pub async fn prepare(&self, session: &Session, sql: &str) -> Result<Prepared> {
        let stmt = Statement::parse(sql, session.catalog.as_deref(), session.schema.as_deref());
        // Clients that always prepare (JDBC, ADBC's DB-API) would otherwise
        // pay an engine round trip for the schema even on a cache hit.
        let cached = match self.cache_key(session, &stmt) {
            Some((cache, key, _)) => cache.peek(&key).await.map(|(_, e)| Arc::clone(&e.schema)),
            None => None,
        };
        // Nor, for a statement the local engine answers, a round trip for
        // what it would answer.
        let local = match (&cached, &self.inner.local) {
            (None, Some(local))
                if stmt.is_plain_read()
                    && stmt.markers().is_empty()
                    && session_refusal(&self.inner, session).is_none() =>
            {
                local.describe(session, &stmt).await.ok()
            }
            _ => None,
        };
        let schema = match cached.or(local) {
            Some(schema) => schema,
            None if !stmt.has_result_set() => Arc::new(Schema::empty()),
            None => self.inner.engine.describe_output(session, &stmt).await?,
        };
        let parameters = if stmt.markers().is_empty() {
            Schema::empty()
        } else {
            self.inner.engine.describe_input(session, &stmt).await?
        };
        Ok(Prepared { schema, parameters })
    }

    /// Binding `parameters` to `sql` would succeed: checked when they are
    /// bound, not when the statement runs.
    pub fn check_binding(&self, sql: &str, parameters: &[String]) -> Result<()> {
        self.read(&Session::default(), sql, parameters).map(drop)
    }

    /// Runs text Flightdeck wrote itself (metadata listings) to its end.
    pub async fn execute(&self, session: &Session, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.inner.engine.execute(session, sql).await
    }

    /// The schemas of `catalog` the user may see; fails if it does not
    /// exist or is hidden from them.
    pub async fn schemas(&self, session: &Session, catalog: &str) -> Result<Vec<String>> {
        self.inner.engine.schemas(session, catalog).await
    }

    /// The Arrow field of a column of the engine's type `type_name`.
    pub fn field(&self, type_name: &str, column: &str) -> arrow::datatypes::Field {
        self.inner.engine.field(type_name, column)
    }

    /// Applies session options: `catalog` and `schema` are checked against
    /// what the user may see, other names are engine session properties,
    /// checked by the engine. Returns the new session and the options
    /// refused. A `None` value clears the option.
    pub async fn set_options(
        &self,
        mut session: Session,
        options: Vec<(String, Option<String>)>,
    ) -> (Session, Vec<(String, OptionError)>) {
        let mut refused = Vec::new();
        // Catalog first, schema next. Clients may also set them one call at
        // a time, in any order: setting the catalog leaves the schema as it
        // is, and checks run without the session's catalog and schema so a
        // half-set pair does not fail them.
        let mut options = options;
        options.sort_by_key(|(name, _)| match name.as_str() {
            "catalog" => 0,
            "schema" => 1,
            _ => 2,
        });
        for (name, value) in options {
            match (name.as_str(), value) {
                ("catalog", Some(c)) => match self.schemas(&session.without_namespace(), &c).await {
                    Ok(_) => session.catalog = Some(c),
                    Err(e) => {
                        tracing::info!(error = %e, "session option refused: catalog");
                        refused.push((name, OptionError::InvalidValue));
                    }
                },
                ("catalog", None) => session.catalog = None,
                ("schema", value) => session.schema = value,
                (property, Some(v)) => {
                    let mut probe = session.clone();
                    probe.properties.insert(property.to_string(), v);
                    match self.inner.engine.check_properties(&probe).await {
                        Ok(()) => session = probe,
                        Err(e) => {
                            tracing::info!(error = %e, "session option refused: property");
                            let why = if e.message.contains("does not exist") {
                                OptionError::InvalidName
                            } else {
                                OptionError::InvalidValue
                            };
                            refused.push((name, why));
                        }
                    }
                }
                (property, None) => {
                    session.properties.remove(property);
                }
            }
        }
        (session, refused)
    }
}

/// Starts a plain read: locally when the local engine takes it, else on
/// the engine. Refusals are counted by reason.
async fn start(
    parts: &Parts,
    session: &Session,
    stmt: &Statement,
    bound: &Bound,
) -> Result<(Route, Box<dyn Execution>)> {
    if let Some(local) = &parts.local
        && stmt.is_plain_read()
    {
        let started = match session_refusal(parts, session) {
            Some(refusal) => Err(refusal),
            None => local.start(session, stmt).await,
        };
        match started {
            Ok(run) => return Ok((Route::Local, run)),
            Err(refusal) => {
                tracing::debug!(%refusal, "answered by Trino");
                metrics::counter!("flightdeck_local_refusals_total", "reason" => refusal.kind).increment(1);
            }
        }
    }
    Ok((Route::Trino, parts.engine.start(session, bound).await?))
}

/// Why the local engine may not answer anything in `session`: it answers
/// in UTC, and as the user alone.
fn session_refusal(parts: &Parts, session: &Session) -> Option<Refusal> {
    if session.has_client_state() {
        return Some(Refusal::new("session", "the client sent roles or prepared statements"));
    }
    // `SET TIME ZONE` comes back from Trino as the session property
    // `time_zone_id`, which wins over the zone the client's header names.
    let zone = session.properties.get("time_zone_id").map(String::as_str);
    match zone.or(session.time_zone.as_deref()).or(parts.time_zone.as_deref()) {
        Some(z) if !is_utc(z) => Some(Refusal::new("session", format!("time zone {z}"))),
        _ => None,
    }
}

/// Names Trino reads as UTC itself.
fn is_utc(zone: &str) -> bool {
    let z = zone.trim();
    ["UTC", "Z", "GMT", "UT", "UCT", "Etc/UTC", "Etc/GMT", "Etc/UCT", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"]
        .iter()
        .any(|u| u.eq_ignore_ascii_case(z))
        || ["+00:00", "-00:00", "+0", "GMT0", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0"].contains(&z)
}

/// A plan answered from a cache entry.
fn cached(outcome: Outcome, entry: &CachedResult) -> Plan {
    let route = match outcome {
        Outcome::Miss if entry.local => Route::Local,
        Outcome::Miss => Route::Trino,
        _ => Route::Cache,
    };
    let mut plan = started(outcome, Arc::clone(&entry.schema), None);
    plan.route = route;
    plan.ticket.route = route;
    plan.rows = Some(entry.rows);
    plan.age = Some(entry.created.elapsed());
    plan
}

/// A plan for a statement the engine runs.
fn started(cache: Outcome, schema: SchemaRef, parked: Option<[u8; 16]>) -> Plan {
    Plan {
        route: Route::Trino,
        cache,
        schema,
        rows: None,
        age: None,
        session: None,
        update: None,
        ticket: Ticket {
            sql: String::new(),
            parameters: Vec::new(),
            session: Session::default(),
            route: Route::Trino,
            cache,
            parked,
            result: Vec::new(),
            run_once: false,
        },
    }
}

/// The batches as an Arrow IPC stream, for a ticket.
fn ipc_bytes(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, schema)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()?;
    drop(w);
    Ok(out)
}

/// The batches of an Arrow IPC stream carried in a ticket.
fn from_ipc(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let bad = |e: arrow::error::ArrowError| Error::internal(format!("ticket result does not decode: {e}"));
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(bad)?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<_, _>>().map_err(bad)?;
    Ok((schema, batches))
}
