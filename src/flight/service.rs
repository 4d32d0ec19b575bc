//! The Flight SQL service: decodes commands, authenticates, and hands the
//! statement to the router; results stream back as Trino produces them.
//!
//! ```text
//! client                 Flightdeck                        Trino
//!   | GetFlightInfo(sql)    |  POST /v1/statement             |
//!   |---------------------->|-------------------------------->|
//!   |                       |  GET nextUri .. until columns   |
//!   |   FlightInfo(schema,  |  (query kept in the registry)   |
//!   |   signed ticket)      |                                 |
//!   |<----------------------|                                 |
//!   | DoGet(ticket)         |  GET nextUri .. page by page    |
//!   |---------------------->|-------------------------------->|
//!   |   schema, batches...  |  (pulled as the client reads)   |
//!   |<----------------------|                                 |
//! ```

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
    metadata::{SqlInfoData, XdbcTypeInfoData},
};
use arrow_flight::{Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket};
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use arrow_flight::FlightData;

use super::auth::Authenticator;
use super::error::{sign_status, trino_status};
use super::metadata;
use super::params::{self, Bound};
use super::proto::session_option_value::OptionValue;
use super::proto::{self, Kind, PreparedStatementHandle, SessionContext, StatementTicket};
use super::registry::{PendingQuery, Registry};
use super::session;
use super::signing::{Signer, now_secs};
use super::statement::{
    INLINE_RESULT_BYTES, Resolved, batch_response, directive, filler, ipc_bytes, ipc_stream, parameter_batches,
    schema_bytes, stream_query,
};
use crate::cache::{CacheKey, Directive, FillError, Lookup, Outcome, ResultCache};
use crate::router::Router;
use crate::sql::{Statement, WriteScope};
use crate::trino::{Column, TrinoType, schema_for};

/// Largest FlightData message sent; clients default to 4-16 MiB limits.
pub const MAX_FLIGHT_DATA_BYTES: usize = 2 * 1024 * 1024;
/// Batches decoded ahead of the client: bounds memory per stream while
/// overlapping Trino's next page with sending this one.
pub(super) const PREFETCH_BATCHES: usize = 2;
/// How long a ticket may be redeemed after it was issued.
const TICKET_LIFETIME_SECS: i64 = 3600;
/// Request and response metadata naming how the cache was used.
pub(super) const CACHE_HEADER: &str = "x-flightdeck-cache";
/// Response metadata: seconds since a cached answer was read from Trino.
const AGE_HEADER: &str = "x-flightdeck-age";
/// Name under which a statement is prepared for `DESCRIBE OUTPUT`.
const DESCRIBE_NAME: &str = "flightdeck_describe";

pub(super) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Everything the service needs, shared by all requests.
pub struct ServiceState {
    pub router: Router,
    /// The result cache; `None` when disabled.
    pub cache: Option<ResultCache>,
    /// Session properties and time zone every query runs with (part of the cache key).
    pub session_properties: Vec<(String, String)>,
    pub time_zone: Option<String>,
    pub auth: Authenticator,
    pub signer: Signer,
    pub registry: Registry,
    /// Budget of results buffered outside the cache.
    pub memory: crate::memory::MemoryBudget,
    /// Ids of closed prepared statements (this replica's), so their
    /// handles are refused afterwards. Bounded; entries expire after a day.
    closed_statements: moka::sync::Cache<Vec<u8>, ()>,
    pub default_catalog: Option<String>,
    pub default_schema: Option<String>,
    /// Lifetime of session cookies and prepared-statement handles.
    session_ttl_secs: i64,
    /// Cancelled when open streams must stop (the shutdown grace is over):
    /// each cancels its Trino query.
    pub stop_streams: tokio_util::sync::CancellationToken,
    sql_info: SqlInfoData,
    xdbc_types: XdbcTypeInfoData,
}

impl ServiceState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        router: Router,
        cache: Option<ResultCache>,
        session_properties: Vec<(String, String)>,
        time_zone: Option<String>,
        auth: Authenticator,
        signer: Signer,
        registry: Registry,
        default_catalog: Option<String>,
        default_schema: Option<String>,
        session_ttl: std::time::Duration,
        memory: crate::memory::MemoryBudget,
    ) -> Self {
        ServiceState {
            router,
            cache,
            session_properties,
            time_zone,
            auth,
            signer,
            registry,
            default_catalog,
            default_schema,
            session_ttl_secs: session_ttl.as_secs() as i64,
            stop_streams: tokio_util::sync::CancellationToken::new(),
            memory,
            closed_statements: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(86_400))
                .build(),
            sql_info: metadata::sql_info(),
            xdbc_types: metadata::xdbc_type_info(),
        }
    }
}

impl std::fmt::Debug for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceState")
            .field("router", &self.router)
            .field("cache", &self.cache)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The Flight SQL service.
#[derive(Debug, Clone)]
pub struct FlightdeckService {
    state: Arc<ServiceState>,
}

impl FlightdeckService {
    pub fn new(state: Arc<ServiceState>) -> Self {
        FlightdeckService { state }
    }

    /// The caller's session: authenticated user, and the catalog, schema and
    /// properties of their session cookie or the configured defaults.
    fn session(&self, md: &tonic::metadata::MetadataMap) -> Result<SessionContext, Status> {
        let user = self.state.auth.identify(md)?;
        Ok(session::from_cookie(&self.state.signer, md, &user).unwrap_or_else(|| SessionContext {
            user,
            catalog: self.state.default_catalog.clone(),
            schema: self.state.default_schema.clone(),
            properties: Default::default(),
        }))
    }

    /// The FlightInfo of a metadata command: its schema and the command
    /// itself as the ticket.
    fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        cmd: impl ProstMessageExt,
        schema: SchemaRef,
    ) -> Result<Response<FlightInfo>, Status> {
        self.state.auth.identify(request.metadata())?;
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(cmd.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(endpoint)
            .with_descriptor(request.into_inner());
        Ok(Response::new(info))
    }

    /// Cancels the query behind a FlightInfo this server issued, if it is
    /// still waiting for its DoGet. One already streaming stops when its
    /// client drops the stream.
    fn cancel(&self, user: &str, info: &FlightInfo) -> Result<arrow_flight::CancelStatus, Status> {
        use arrow_flight::CancelStatus;
        let ticket = info
            .endpoint
            .first()
            .and_then(|e| e.ticket.as_ref())
            .ok_or_else(|| Status::invalid_argument("FlightInfo has no ticket"))?;
        let any = Any::decode(ticket.ticket.clone())
            .map_err(|e| Status::invalid_argument(format!("malformed ticket: {e}")))?;
        let Some(tq) = any.unpack::<TicketStatementQuery>().map_err(|e| Status::invalid_argument(e.to_string()))?
        else {
            return Ok(CancelStatus::NotCancellable);
        };
        let t: StatementTicket =
            self.state.signer.verify(Kind::Ticket, &tq.statement_handle).map_err(|e| sign_status(&e))?;
        if t.session.as_ref().is_none_or(|s| s.user != user) {
            return Err(Status::permission_denied("ticket was issued to another user"));
        }
        match self.state.registry.take(&t.registry_key) {
            Some(mut pending) => {
                pending.query.cancel();
                Ok(CancelStatus::Cancelled)
            }
            None => Ok(CancelStatus::NotCancellable),
        }
    }

    /// The cache key of `sql` in `ctx`, or `None` when it is not cached.
    fn cache_key(&self, ctx: &SessionContext, sql: &str) -> Option<(&ResultCache, CacheKey, Vec<String>)> {
        let cache = self.state.cache.as_ref()?;
        let mut properties = self.state.session_properties.clone();
        properties.extend(ctx.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        match cache.key(
            sql,
            &ctx.user,
            ctx.catalog.as_deref(),
            ctx.schema.as_deref(),
            &properties,
            self.state.time_zone.as_deref(),
        ) {
            Ok((key, tables)) => Some((cache, key, tables)),
            Err(reason) => {
                tracing::debug!(%reason, "not cached");
                None
            }
        }
    }

    /// GetFlightInfo for a statement: answered from the cache when it can
    /// be, else started on Trino and parked for DoGet.
    async fn statement_info(
        &self,
        ctx: SessionContext,
        sql: String,
        parameters: Vec<String>,
        descriptor: FlightDescriptor,
        directive: Directive,
    ) -> Result<Response<FlightInfo>, Status> {
        let started = std::time::Instant::now();
        let bound = params::bind(&sql, &parameters).map_err(Status::invalid_argument)?;
        let Resolved { outcome, schema, registry_key, rows, session: changed, result, run_once, age } =
            self.resolve(&ctx, &bound, directive).await?;
        metrics::histogram!("flightdeck_request_seconds", "rpc" => "get_flight_info", "route" => outcome.as_str())
            .record(started.elapsed().as_secs_f64());
        let ticket = StatementTicket {
            sql,
            session: Some(ctx),
            registry_key: registry_key.map(|k| k.to_vec()).unwrap_or_default(),
            expires_at: now_secs() + TICKET_LIFETIME_SECS,
            cache_status: outcome.as_str().to_string(),
            result: result.unwrap_or_default(),
            run_once,
            parameters,
        };
        let handle = self.state.signer.sign(Kind::Ticket, &ticket);
        let ticket = TicketStatementQuery { statement_handle: handle.into() };
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        let mut info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode schema: {e}")))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor)
            .with_ordered(true);
        if let Some(rows) = rows {
            info = info.with_total_records(rows as i64);
        }
        let mut response = Response::new(info);
        response.metadata_mut().insert(CACHE_HEADER, MetadataValue::from_static(outcome.as_str()));
        if let Some(age) = age {
            response.metadata_mut().insert(AGE_HEADER, MetadataValue::from(age.as_secs()));
        }
        if let Some(updated) = changed {
            response
                .metadata_mut()
                .insert("set-cookie", session::set_cookie(&self.state.signer, &updated, self.state.session_ttl_secs));
        }
        Ok(response)
    }

    /// Finds or produces the result of `sql`: a cache entry, or a query
    /// parked in the registry (returning its key).
    async fn resolve(&self, ctx: &SessionContext, bound: &Bound, directive: Directive) -> Result<Resolved, Status> {
        let sql = bound.sql.as_str();
        if let Some((cache, key, tables)) = self.cache_key(ctx, sql) {
            let max = cache.config().max_entry_bytes;
            let fill = filler(self.state.router.clone(), ctx.clone(), bound.clone(), max, self.state.memory.clone());
            match cache.get_or_fill(key.clone(), &ctx.user, tables, directive, fill).await {
                Lookup::Cached(outcome, entry) => {
                    let mut resolved = Resolved::new(outcome, Arc::clone(&entry.schema), None, Some(entry.rows));
                    resolved.age = Some(entry.created.elapsed());
                    return Ok(resolved);
                }
                Lookup::Uncached => {}
                Lookup::NotCached => {
                    return Err(Status::failed_precondition("only-if-cached: no cached result for this statement"));
                }
                Lookup::Failed(e) => match &*e {
                    FillError::Failed(err) if err.code() == tonic::Code::Unavailable => {
                        // Trino is down: an older answer, marked stale, if the
                        // request or the operator allows one that old.
                        let allowed = match directive {
                            Directive::MaxStale(d) => d,
                            _ => cache.config().stale_if_error,
                        };
                        if let Some(entry) = cache.peek_stale(&key, allowed).await {
                            metrics::counter!("flightdeck_cache_stale_if_error_total").increment(1);
                            let mut resolved =
                                Resolved::new(Outcome::Stale, Arc::clone(&entry.schema), None, Some(entry.rows));
                            resolved.age = Some(entry.created.elapsed());
                            return Ok(resolved);
                        }
                        return Err(err.clone());
                    }
                    FillError::Failed(err) => return Err(err.clone()),
                    // Handled inside the cache.
                    FillError::NotShared(_) => {}
                    FillError::TooLarge(slot) => {
                        metrics::counter!("flightdeck_cache_too_large_total").increment(1);
                        // The first caller streams on from what the fill read;
                        // any other waiter runs its own query below.
                        let taken = slot.lock().expect("overflow slot").take();
                        if let Some(pending) = taken {
                            let schema = Arc::clone(&pending.schema);
                            let key = self.park(&ctx.user, pending)?;
                            return Ok(Resolved::new(Outcome::Bypass, schema, Some(key), None));
                        }
                    }
                },
            }
        } else if directive == Directive::OnlyIfCached {
            return Err(Status::failed_precondition("only-if-cached: this statement is never cached"));
        }
        metrics::counter!("flightdeck_cache_bypass_total").increment(1);
        let mut query =
            self.state.router.start_from(ctx, sql, bound.origin.clone()).await.map_err(|e| trino_status(&e))?;
        let schema = query.wait_for_schema().await.map_err(|e| trino_status(&e))?;
        let statement = self.statement(ctx, sql);
        if statement.is_plain_read() {
            let pending = PendingQuery { query, schema: Arc::clone(&schema), prefix: Vec::new(), reservation: None };
            let key = self.park(&ctx.user, pending)?;
            return Ok(Resolved::new(Outcome::Bypass, schema, Some(key), None));
        }
        // Anything that is not a plain read may write, so it runs exactly
        // once, to its end, here: the cache forgets what it changed, a `USE`
        // or `SET SESSION` reaches the client's session cookie, and the
        // ticket carries the answer so that no redemption runs it again.
        let mut prefix = Vec::new();
        let mut reservation = self.state.memory.reservation();
        let drained = loop {
            match query.next_batch().await {
                Ok(Some(b)) => {
                    let grown = reservation.grow(b.get_array_memory_size() as u64);
                    prefix.push(b);
                    if let Err(e) = grown {
                        break Err(Status::resource_exhausted(e.to_string()));
                    }
                    if reservation.bytes() > INLINE_RESULT_BYTES as u64 {
                        break Ok(false);
                    }
                }
                Ok(None) => break Ok(true),
                Err(e) => break Err(trino_status(&e)),
            }
        };
        // A write that failed may still have committed (the connection
        // dropped after Trino's commit, say): forget its tables either way.
        self.forget_writes(&statement).await;
        let finished = drained?;
        let mut resolved = Resolved::new(Outcome::Bypass, Arc::clone(&schema), None, None);
        resolved.run_once = true;
        let mut updated = ctx.clone();
        if session::apply(&mut updated, query.session_updates()) {
            resolved.session = Some(updated);
        }
        if finished {
            resolved.rows = Some(prefix.iter().map(|b| b.num_rows() as u64).sum());
            resolved.result = Some(ipc_bytes(&schema, &prefix)?);
        } else {
            let pending = PendingQuery { query, schema, prefix, reservation: Some(reservation) };
            resolved.registry_key = Some(self.park(&ctx.user, pending)?);
        }
        Ok(resolved)
    }

    /// Parks a started query for its DoGet.
    fn park(&self, user: &str, pending: PendingQuery) -> Result<[u8; 16], Status> {
        self.state.registry.insert(user, pending).map_err(|e| Status::resource_exhausted(e.to_string()))
    }

    fn statement(&self, ctx: &SessionContext, sql: &str) -> Statement {
        Statement::parse(sql, ctx.catalog.as_deref(), ctx.schema.as_deref())
    }

    /// Drops the cache entries of whatever `statement` may have written.
    async fn forget_writes(&self, statement: &Statement) {
        if let Some(scope) = statement.write_scope() {
            self.invalidate(scope).await;
        }
    }

    async fn invalidate(&self, scope: WriteScope) {
        let Some(cache) = &self.state.cache else { return };
        match scope {
            WriteScope::Tables(t) => cache.invalidate_tables(&t).await,
            WriteScope::All => cache.invalidate_all().await,
        }
    }

    /// The stream for a verified ticket and how it is served: the parked
    /// query, the cache entry, or (expired here, or issued by another
    /// replica) the statement run again.
    async fn ticket_stream(
        &self,
        ctx: &SessionContext,
        t: &StatementTicket,
    ) -> Result<(&'static str, BoxStream<FlightData>), Status> {
        let from_ticket = match t.cache_status.as_str() {
            "hit" => Outcome::Hit,
            "stale" => Outcome::Stale,
            "miss" => Outcome::Miss,
            _ => Outcome::Bypass,
        };
        if !t.result.is_empty() {
            return Ok((from_ticket.as_str(), ipc_stream(&t.result)?));
        }
        if let Some(p) = self.state.registry.take(&t.registry_key) {
            return Ok((from_ticket.as_str(), stream_query(p, self.state.stop_streams.clone())));
        }
        if t.run_once {
            return Err(Status::failed_precondition(
                "this statement's result is no longer held here (redeemed already, expired, or issued by another \
                 replica), and it is not run again because it may change data: call GetFlightInfo again",
            ));
        }
        let bound = params::bind(&t.sql, &t.parameters).map_err(Status::invalid_argument)?;
        let cached = self.cache_key(ctx, &bound.sql);
        if let Some((cache, key, _)) = &cached {
            if let Some((_, entry)) = cache.peek(key).await {
                let messages = entry.encoded.clone();
                return Ok((from_ticket.as_str(), futures::stream::iter(messages.into_iter().map(Ok)).boxed()));
            }
        }
        tracing::debug!("ticket's result is neither pending nor cached here; running it again");
        let mut query =
            self.state.router.start_from(ctx, &bound.sql, bound.origin).await.map_err(|e| trino_status(&e))?;
        let schema = query.wait_for_schema().await.map_err(|e| trino_status(&e))?;
        let route = if cached.is_some() { Outcome::Miss } else { Outcome::Bypass };
        let pending = PendingQuery { query, schema, prefix: Vec::new(), reservation: None };
        Ok((route.as_str(), stream_query(pending, self.state.stop_streams.clone())))
    }

    fn verify_handle(&self, handle: &[u8], user: &str) -> Result<PreparedStatementHandle, Status> {
        let h: PreparedStatementHandle =
            self.state.signer.verify(Kind::Prepared, handle).map_err(|e| sign_status(&e))?;
        let owner =
            h.session.as_ref().ok_or_else(|| Status::invalid_argument("prepared statement handle has no session"))?;
        if owner.user != user {
            return Err(Status::permission_denied("prepared statement belongs to another user"));
        }
        if h.expires_at < now_secs() {
            return Err(Status::not_found("prepared statement handle has expired: prepare it again"));
        }
        if self.state.closed_statements.contains_key(&h.id) {
            return Err(Status::not_found("prepared statement was closed: prepare it again"));
        }
        Ok(h)
    }

    /// The session, the statement and its bound parameters.
    fn verify_prepared(&self, handle: &[u8], user: &str) -> Result<(SessionContext, String, Vec<String>), Status> {
        let h = self.verify_handle(handle, user)?;
        Ok((h.session.expect("checked by verify_handle"), h.sql, h.parameters))
    }

    /// The parameter schema of `sql` (`DESCRIBE INPUT`); empty without markers.
    async fn describe_input(&self, ctx: &SessionContext, sql: &str) -> Result<Schema, Status> {
        if self.statement(ctx, sql).markers().is_empty() {
            return Ok(Schema::empty());
        }
        let (_, batches) = self
            .state
            .router
            .execute_prepared(ctx, DESCRIBE_NAME, sql, &format!("DESCRIBE INPUT {DESCRIBE_NAME}"))
            .await
            .map_err(|e| trino_status(&e))?;
        let mut types: Vec<String> = Vec::new();
        for b in &batches {
            let col =
                b.column_by_name("Type").ok_or_else(|| Status::internal("DESCRIBE INPUT has no `Type` column"))?;
            types.extend(col.as_string::<i32>().iter().map(|t| t.unwrap_or("unknown").to_string()));
        }
        if types.iter().any(|t| t == "unknown") {
            // Trino cannot type the values of INSERT ... VALUES (?): take
            // them from the target table's columns.
            if let Some((table, targets)) = params::insert_targets(sql) {
                if let Ok((_, cols)) = self.state.router.execute(ctx, &format!("DESCRIBE {table}")).await {
                    let columns: Vec<(String, String)> = cols
                        .iter()
                        .flat_map(|b| {
                            let (n, t) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
                            (0..b.num_rows())
                                .map(|i| (n.value(i).to_string(), t.value(i).to_string()))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    for (ty, target) in types.iter_mut().zip(&targets) {
                        let found = match target {
                            params::Target::Position(p) => columns.get(*p),
                            params::Target::Name(n) => columns.iter().find(|(c, _)| c == n),
                        };
                        if let (true, Some((_, t))) = (ty == "unknown", found) {
                            *ty = t.clone();
                        }
                    }
                }
            }
        }
        let fields: Vec<_> = types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = format!("parameter_{}", i + 1);
                match t.as_str() {
                    "unknown" => params::any_type_field(&name),
                    t => TrinoType::parse(t).unwrap_or_else(|_| TrinoType::Other(t.to_string())).field(&name),
                }
            })
            .collect();
        Ok(Schema::new(fields))
    }

    /// Runs a statement with no result set to completion; returns its update count.
    async fn run_update(&self, ctx: &SessionContext, bound: &Bound) -> Result<i64, Status> {
        let mut query =
            self.state.router.start_from(ctx, &bound.sql, bound.origin.clone()).await.map_err(|e| trino_status(&e))?;
        let drained = query.drain().await;
        // A write that failed may still have committed: forget its tables either way.
        self.forget_writes(&self.statement(ctx, &bound.sql)).await;
        drained.map_err(|e| trino_status(&e))?;
        // DDL and SET have no count: report 0 rows, as JDBC expects.
        Ok(query.update_count().unwrap_or(0))
    }

    /// The result schema of `sql` without running it: `DESCRIBE OUTPUT`.
    /// Statements without a result set (DDL, DML, SET, ...) get an empty
    /// schema, which tells JDBC to run them as updates.
    async fn describe_output(&self, ctx: &SessionContext, sql: &str) -> Result<SchemaRef, Status> {
        if !self.statement(ctx, sql).has_result_set() {
            return Ok(Arc::new(Schema::empty()));
        }
        let described = self
            .state
            .router
            .execute_prepared(ctx, DESCRIBE_NAME, sql, &format!("DESCRIBE OUTPUT {DESCRIBE_NAME}"))
            .await;
        let batches = match described {
            Ok((_, batches)) => batches,
            Err(e @ crate::trino::Error::Http { status: 400, .. }) => {
                // Trino refuses a statement that does not parse at the HTTP
                // level when it comes in a header; PREPARE reports the same
                // problem as a proper query error (name, location).
                let prefix = format!("PREPARE {DESCRIBE_NAME} FROM ");
                let origin = Arc::new(crate::trino::Origin::prefixed(&prefix, sql));
                return Err(match self.state.router.start_from(ctx, &format!("{prefix}{sql}"), Some(origin)).await {
                    Ok(mut q) => trino_status(&q.drain().await.err().unwrap_or(e)),
                    Err(e) => trino_status(&e),
                });
            }
            Err(e) => return Err(trino_status(&e)),
        };
        let mut columns = Vec::new();
        for b in &batches {
            let text = |name: &str| -> Result<arrow::array::StringArray, Status> {
                let col = b
                    .column_by_name(name)
                    .ok_or_else(|| Status::internal(format!("DESCRIBE OUTPUT has no `{name}` column")))?;
                Ok(arrow::array::AsArray::as_string::<i32>(col.as_ref()).clone())
            };
            let (names, types) = (text("Column Name")?, text("Type")?);
            for i in 0..b.num_rows() {
                let ty = TrinoType::parse(types.value(i)).map_err(Status::internal)?;
                columns.push(Column { name: names.value(i).to_string(), ty });
            }
        }
        if columns.iter().any(|c| c.ty.has_unknown_inside()) {
            // Ambiguous type text: ask for the real columns of an empty run.
            let probe = format!("SELECT * FROM (\n{sql}\n) LIMIT 0");
            if let Ok(mut q) = self.state.router.start(ctx, &probe).await {
                if let Ok(schema) = q.wait_for_schema().await {
                    return Ok(schema);
                }
            }
        }
        Ok(Arc::new(schema_for(&columns)))
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightdeckService {
    type FlightService = FlightdeckService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
        let (user, token) = self.state.auth.handshake(request.metadata()).await?;
        tracing::debug!(%user, "handshake");
        let reply = HandshakeResponse { protocol_version: 0, payload: token.clone().into() };
        let mut response: Response<BoxStream<HandshakeResponse>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        let header =
            MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| Status::internal("token is not ASCII"))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ctx = self.session(request.metadata())?;
        let directive = directive(request.metadata())?;
        self.statement_info(ctx, query.query, Vec::new(), request.into_inner(), directive).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let (ctx, sql, parameters) = self.verify_prepared(&cmd.prepared_statement_handle, &user)?;
        let directive = directive(request.metadata())?;
        self.statement_info(ctx, sql, parameters, request.into_inner(), directive).await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let t: StatementTicket =
            self.state.signer.verify(Kind::Ticket, &ticket.statement_handle).map_err(|e| sign_status(&e))?;
        if t.expires_at < now_secs() {
            return Err(Status::invalid_argument("ticket has expired: call GetFlightInfo again"));
        }
        let ctx = t.session.clone().ok_or_else(|| Status::invalid_argument("ticket has no session"))?;
        if ctx.user != user {
            return Err(Status::permission_denied("ticket was issued to another user"));
        }
        let started = std::time::Instant::now();
        let (route, stream) = self.ticket_stream(&ctx, &t).await?;
        metrics::histogram!("flightdeck_request_seconds", "rpc" => "do_get", "route" => route)
            .record(started.elapsed().as_secs_f64());
        let mut response = Response::new(stream);
        response.metadata_mut().insert(CACHE_HEADER, MetadataValue::from_static(route));
        Ok(response)
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        Err(Status::invalid_argument(format!("unknown ticket type `{}`", message.type_url)))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let ctx = self.session(request.metadata())?;
        // Clients that always prepare (JDBC, ADBC's DB-API) would otherwise
        // pay a Trino round trip for the schema even on a cache hit.
        let cached = match self.cache_key(&ctx, &query.query) {
            Some((cache, key, _)) => cache.peek(&key).await.map(|(_, e)| Arc::clone(&e.schema)),
            None => None,
        };
        let schema = match cached {
            Some(schema) => schema,
            None => self.describe_output(&ctx, &query.query).await?,
        };
        let parameters = self.describe_input(&ctx, &query.query).await?;
        let handle = PreparedStatementHandle {
            sql: query.query,
            session: Some(ctx),
            parameters: Vec::new(),
            id: rand::random::<[u8; 16]>().to_vec(),
            expires_at: now_secs() + self.state.session_ttl_secs,
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: self.state.signer.sign(Kind::Prepared, &handle).into(),
            dataset_schema: schema_bytes(&schema)?,
            parameter_schema: schema_bytes(&parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles are stateless: nothing to free. Remember the id so this
        // replica refuses the handle (and its bound versions) from now on.
        let user = self.state.auth.identify(request.metadata())?;
        let handle = self.verify_handle(&query.prepared_statement_handle, &user)?;
        if !handle.id.is_empty() {
            self.state.closed_statements.insert(handle.id, ());
        }
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let ctx = self.session(request.metadata())?;
        self.run_update(&ctx, &params::Bound { sql: cmd.query, origin: None }).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let mut handle = self.verify_handle(&cmd.prepared_statement_handle, &user)?;
        let mut batches = parameter_batches(request.into_inner());
        let mut bound = None;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| Status::invalid_argument(format!("malformed parameters: {e}")))?;
            for row in 0..batch.num_rows() {
                if bound.is_some() {
                    return Err(Status::invalid_argument("bind one row of parameters to a query"));
                }
                bound = Some(params::literals(&batch, row).map_err(Status::invalid_argument)?);
            }
        }
        handle.parameters = bound.unwrap_or_default();
        // Fail now, not at execution, when the count does not match.
        params::bind(&handle.sql, &handle.parameters).map_err(Status::invalid_argument)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(self.state.signer.sign(Kind::Prepared, &handle).into()),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let handle = self.verify_handle(&cmd.prepared_statement_handle, &user)?;
        let ctx = handle.session.clone().expect("checked by verify_handle");
        // Parameters may come with the update itself, a row per execution
        // (JDBC executeUpdate, ADBC executemany).
        let mut batches = parameter_batches(request.into_inner());
        let mut total = 0;
        let mut ran = false;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| Status::invalid_argument(format!("malformed parameters: {e}")))?;
            for row in 0..batch.num_rows() {
                let literals = params::literals(&batch, row).map_err(Status::invalid_argument)?;
                let bound = params::bind(&handle.sql, &literals).map_err(Status::invalid_argument)?;
                total += self.run_update(&ctx, &bound).await?;
                ran = true;
            }
        }
        if !ran {
            let bound = params::bind(&handle.sql, &handle.parameters).map_err(Status::invalid_argument)?;
            total = self.run_update(&ctx, &bound).await?;
        }
        Ok(total)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.state.sql_info).schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        batch_response(query.into_builder(&self.state.sql_info).build())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.state.xdbc_types).schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        batch_response(query.into_builder(&self.state.xdbc_types).build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ctx = self.session(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::catalogs(&self.state.router, &ctx, query).await?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ctx = self.session(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::db_schemas(&self.state.router, &ctx, query).await?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ctx = self.session(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::tables(&self.state.router, &ctx, query).await?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let ctx = self.session(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::table_types(&self.state.router, &ctx, query).await?))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::PRIMARY_KEYS_SCHEMA))
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::empty(&metadata::PRIMARY_KEYS_SCHEMA)))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::FOREIGN_KEYS_SCHEMA))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::empty(&metadata::FOREIGN_KEYS_SCHEMA)))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::FOREIGN_KEYS_SCHEMA))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::empty(&metadata::FOREIGN_KEYS_SCHEMA)))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::FOREIGN_KEYS_SCHEMA))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        batch_response(Ok::<_, Status>(metadata::empty(&metadata::FOREIGN_KEYS_SCHEMA)))
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let info = FlightInfo::decode(query.info)
            .map_err(|e| Status::invalid_argument(format!("malformed FlightInfo: {e}")))?;
        // The legacy CancelResult numbers its values as CancelStatus does.
        let status = self.cancel(&user, &info)?;
        Ok(ActionCancelQueryResult { result: status as i32 })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let ctx = self.session(request.metadata())?;
        let user = ctx.user.clone();
        let action = request.into_inner();
        match action.r#type.as_str() {
            "CancelFlightInfo" => {
                let req = arrow_flight::CancelFlightInfoRequest::decode(action.body)
                    .map_err(|e| Status::invalid_argument(format!("malformed CancelFlightInfoRequest: {e}")))?;
                let info =
                    req.info.ok_or_else(|| Status::invalid_argument("CancelFlightInfoRequest has no FlightInfo"))?;
                let status = self.cancel(&user, &info)?;
                let result = arrow_flight::CancelFlightInfoResult { status: status as i32 };
                let body = arrow_flight::Result { body: result.encode_to_vec().into() };
                Ok(Response::new(futures::stream::iter([Ok(body)]).boxed()))
            }
            "SetSessionOptions" => {
                let req = proto::SetSessionOptionsRequest::decode(action.body)
                    .map_err(|e| Status::invalid_argument(format!("malformed SetSessionOptionsRequest: {e}")))?;
                let (ctx, errors) = session::set_options(&self.state.router, ctx, req).await;
                let body = proto::SetSessionOptionsResult { errors }.encode_to_vec();
                let mut response =
                    Response::new(futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed());
                response
                    .metadata_mut()
                    .insert("set-cookie", session::set_cookie(&self.state.signer, &ctx, self.state.session_ttl_secs));
                Ok(response)
            }
            "GetSessionOptions" => {
                let mut options = std::collections::HashMap::new();
                let text =
                    |v: &str| proto::SessionOptionValue { option_value: Some(OptionValue::StringValue(v.to_string())) };
                if let Some(c) = &ctx.catalog {
                    options.insert("catalog".to_string(), text(c));
                }
                if let Some(s) = &ctx.schema {
                    options.insert("schema".to_string(), text(s));
                }
                for (k, v) in &ctx.properties {
                    options.insert(k.clone(), text(v));
                }
                let body = proto::GetSessionOptionsResult { session_options: options }.encode_to_vec();
                Ok(Response::new(futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed()))
            }
            "CloseSession" => {
                let body = proto::CloseSessionResult { status: proto::close_session_result::Status::Closed as i32 }
                    .encode_to_vec();
                let mut response =
                    Response::new(futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed());
                response.metadata_mut().insert("set-cookie", session::clear_cookie());
                Ok(response)
            }
            other => Err(Status::unimplemented(format!("action `{other}` is not supported"))),
        }
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<arrow_flight::ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(arrow_flight::ActionType { r#type: name.into(), description: description.into() })
        };
        Some(vec![
            action(
                "CancelFlightInfo",
                "Cancel the query of a FlightInfo.\nRequest: CancelFlightInfoRequest\nResult: CancelFlightInfoResult",
            ),
            action(
                "SetSessionOptions",
                "Set catalog, schema or Trino session properties.\nRequest: SetSessionOptionsRequest\nResult: SetSessionOptionsResult",
            ),
            action(
                "GetSessionOptions",
                "The session's options.\nRequest: GetSessionOptionsRequest\nResult: GetSessionOptionsResult",
            ),
            action("CloseSession", "End the session.\nRequest: CloseSessionRequest\nResult: CloseSessionResult"),
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
