//! The Trino REST client protocol: submit a statement, follow `nextUri` with
//! no sleeping until it is absent, decode pages into Arrow as they arrive.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use super::decode::BatchDecoder;
use super::error::{Error, Origin, QueryError, Result};
use super::types::{Column, TrinoType};

/// How Flightdeck authenticates itself to Trino.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum TrinoAuth {
    /// No credentials: only `X-Trino-User` (plain HTTP, no authenticator).
    #[default]
    None,
    /// HTTP Basic (Trino's password authenticators).
    Basic { user: String, password: String },
    /// A bearer token (Trino's JWT or OAuth2 authenticators).
    Bearer(String),
}

impl std::fmt::Debug for TrinoAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrinoAuth::None => f.write_str("None"),
            TrinoAuth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: <redacted> }}"),
            TrinoAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Settings of the Trino client.
#[derive(Debug, Clone)]
pub struct TrinoConfig {
    /// Base URL of the coordinator, e.g. `http://127.0.0.1:8080`.
    pub url: Url,
    pub auth: TrinoAuth,
    /// PEM file of extra CA certificates for HTTPS.
    pub ca_file: Option<std::path::PathBuf>,
    /// Time zone sent with every query (`X-Trino-Time-Zone`); Trino's own when unset.
    pub time_zone: Option<String>,
    /// Session properties sent with every query.
    pub session_properties: Vec<(String, String)>,
    /// How long to keep retrying requests that cannot have been acted on
    /// twice before giving up.
    pub retry_budget: Duration,
    /// Connect timeout for each HTTP request.
    pub connect_timeout: Duration,
    /// Whole-request timeout for each HTTP request (Trino answers every
    /// request within about a second, with or without data).
    pub request_timeout: Duration,
    /// Most queries running on Trino at once; further ones wait for a slot.
    pub max_concurrent_queries: usize,
}

impl TrinoConfig {
    /// Settings for a Trino at `url` with no credentials.
    pub fn new(url: Url) -> Self {
        TrinoConfig {
            url,
            auth: TrinoAuth::None,
            ca_file: None,
            time_zone: None,
            session_properties: Vec::new(),
            retry_budget: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_concurrent_queries: 64,
        }
    }
}

/// The session a statement runs in: who runs it and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Trino user (`X-Trino-User`): the client's identity.
    pub user: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Prepared statements visible to this request: (name, SQL).
    pub prepared: Vec<(String, String)>,
    /// Session properties of this client, on top of the configured ones.
    pub properties: Vec<(String, String)>,
    /// The client's time zone, over the configured one.
    pub time_zone: Option<String>,
    /// Other `X-Trino-*` request headers of the client, passed on as given.
    pub headers: Vec<(String, String)>,
}

/// A change to the client's session that Trino asked for in its response
/// headers (`USE`, `SET SESSION`, `RESET SESSION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionUpdate {
    Catalog(String),
    Schema(String),
    SetProperty(String, String),
    ClearProperty(String),
}

/// Counters kept by the client, for tests and metrics.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Result pages fetched from Trino (every `nextUri` GET).
    pub pages_fetched: AtomicU64,
    /// Queries cancelled with `DELETE nextUri`.
    pub queries_cancelled: AtomicU64,
    /// Statements submitted (`POST /v1/statement`).
    pub queries_started: AtomicU64,
    /// Response bytes received from Trino.
    pub bytes_received: AtomicU64,
}

/// A Trino client; cheap to clone.
#[derive(Debug, Clone)]
pub struct TrinoClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    statement_url: Url,
    base: String,
    /// Headers sent on the POST: source, capabilities, auth, time zone, session.
    post_headers: HeaderMap,
    /// Headers sent on every `nextUri` request: auth.
    auth_header: Option<HeaderValue>,
    retry_budget: Duration,
    stats: ClientStats,
    /// Cancellations sent and not yet answered.
    cancels_in_flight: AtomicU64,
    /// One permit per query running on Trino, so that a burst of clients
    /// queues here instead of overloading the coordinator.
    slots: Arc<Semaphore>,
    max_slots: usize,
    /// How long a query waits for a slot before it fails.
    slot_wait: Duration,
}

const TRINO_USER: HeaderName = HeaderName::from_static("x-trino-user");
const TRINO_CATALOG: HeaderName = HeaderName::from_static("x-trino-catalog");
const TRINO_SCHEMA: HeaderName = HeaderName::from_static("x-trino-schema");
const TRINO_PREPARED: HeaderName = HeaderName::from_static("x-trino-prepared-statement");

/// A header value as Trino reads it: ISO-8859-1. A name outside it (`用户`)
/// is refused rather than sent as UTF-8 bytes, which Trino would read as
/// another name (`ç\u{94}¨...`) and run the query as that user.
fn header(v: &str) -> Result<HeaderValue> {
    let latin1: Option<Vec<u8>> = v.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
    latin1.and_then(|bytes| HeaderValue::from_bytes(&bytes).ok()).ok_or_else(|| Error::InvalidHeader(v.to_string()))
}

/// A value URL-encoded as Trino's headers carry it.
pub(crate) fn urlenc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl TrinoClient {
    /// Builds a client (one connection pool, reused by every query).
    pub fn new(cfg: &TrinoConfig) -> Result<Self> {
        let mut http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true);
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Config(format!("invalid CA file {}: {e}", path.display())))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| Error::Config(e.to_string()))?;
        let auth_header = match &cfg.auth {
            TrinoAuth::None => None,
            TrinoAuth::Basic { user, password } => {
                use base64::Engine;
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(header(&format!("Basic {b}"))?)
            }
            TrinoAuth::Bearer(token) => Some(header(&format!("Bearer {token}"))?),
        };
        let mut post_headers = HeaderMap::new();
        post_headers.insert(USER_AGENT, HeaderValue::from_static(concat!("flightdeck/", env!("CARGO_PKG_VERSION"))));
        post_headers.insert("x-trino-source", HeaderValue::from_static("flightdeck"));
        // Without it Trino rounds time and timestamp values to milliseconds.
        post_headers.insert("x-trino-client-capabilities", HeaderValue::from_static("PARAMETRIC_DATETIME"));
        post_headers.insert("content-type", HeaderValue::from_static("text/plain; charset=utf-8"));
        if let Some(tz) = &cfg.time_zone {
            post_headers.insert("x-trino-time-zone", header(tz)?);
        }
        for (k, v) in &cfg.session_properties {
            post_headers.append("x-trino-session", header(&format!("{k}={}", urlenc(v)))?);
        }
        if let Some(a) = &auth_header {
            post_headers.insert(AUTHORIZATION, a.clone());
        }
        let statement_url = cfg.url.join("v1/statement").map_err(|e| Error::Config(e.to_string()))?;
        Ok(TrinoClient {
            inner: Arc::new(Inner {
                http,
                statement_url,
                base: cfg.url.to_string(),
                post_headers,
                auth_header,
                retry_budget: cfg.retry_budget,
                stats: ClientStats::default(),
                cancels_in_flight: AtomicU64::new(0),
                slots: {
                    metrics::gauge!("flightdeck_trino_max_concurrent_queries").set(cfg.max_concurrent_queries as f64);
                    Arc::new(Semaphore::new(cfg.max_concurrent_queries.max(1)))
                },
                max_slots: cfg.max_concurrent_queries.max(1),
                slot_wait: cfg.request_timeout,
            }),
        })
    }

    /// The client's counters.
    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// Submits `sql` and returns the running query after Trino's first answer.
    pub async fn start(&self, session: &Session, sql: &str) -> Result<Query> {
        self.start_from(session, sql, None).await
    }

    /// [`TrinoClient::start`] for text Flightdeck derived from the client's:
    /// positions in the query's errors point into the client's text.
    pub async fn start_from(&self, session: &Session, sql: &str, origin: Option<Arc<Origin>>) -> Result<Query> {
        let slot = self.slot().await?;
        let mut headers = self.inner.post_headers.clone();
        headers.insert(TRINO_USER, header(&session.user)?);
        if let Some(c) = &session.catalog {
            headers.insert(TRINO_CATALOG, header(c)?);
        }
        if let Some(s) = &session.schema {
            headers.insert(TRINO_SCHEMA, header(s)?);
        }
        for (k, v) in &session.properties {
            headers.append("x-trino-session", header(&format!("{k}={}", urlenc(v)))?);
        }
        for (name, stmt) in &session.prepared {
            headers.append(TRINO_PREPARED, header(&format!("{}={}", urlenc(name), urlenc(stmt)))?);
        }
        if let Some(tz) = &session.time_zone {
            headers.insert("x-trino-time-zone", header(tz)?);
        }
        for (name, value) in &session.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::InvalidHeader(name.clone()))?;
            if name.as_str() == "x-trino-source" {
                headers.insert(name, header(value)?);
            } else {
                headers.append(name, header(value)?);
            }
        }
        let body = Bytes::copy_from_slice(sql.as_bytes());
        let url = self.inner.statement_url.clone();
        let (resp_headers, bytes) = self
            .request(Retry::Submit, |http| {
                http.request(Method::POST, url.clone()).headers(headers.clone()).body(body.clone())
            })
            .await?;
        metrics::counter!("flightdeck_trino_queries_total").increment(1);
        self.inner.stats.queries_started.fetch_add(1, Ordering::Relaxed);
        let mut query = Query {
            client: self.clone(),
            user: header(&session.user)?,
            id: String::new(),
            next_uri: None,
            columns: None,
            decoder: None,
            ready: VecDeque::new(),
            update_type: None,
            update_count: None,
            session_updates: Vec::new(),
            origin,
            slot: Some(slot),
        };
        query.apply_headers(&resp_headers);
        query.apply_page(&bytes)?;
        Ok(query)
    }

    /// A slot to run one query, waited for in turn.
    async fn slot(&self) -> Result<Slot> {
        let started = tokio::time::Instant::now();
        let slots = Arc::clone(&self.inner.slots);
        let permit = tokio::time::timeout(self.inner.slot_wait, slots.acquire_owned()).await;
        metrics::histogram!("flightdeck_trino_queue_seconds").record(started.elapsed().as_secs_f64());
        match permit {
            Ok(Ok(permit)) => {
                metrics::gauge!("flightdeck_trino_running_queries").increment(1.0);
                Ok(Slot { _permit: permit, started })
            }
            _ => Err(Error::Busy(self.inner.slot_wait)),
        }
    }

    /// Queries running on Trino now (holding a slot).
    pub fn running(&self) -> usize {
        self.inner.max_slots - self.inner.slots.available_permits()
    }

    /// What a finished query read, from Trino's own record of it
    /// (`/v1/query/{id}`, `referencedTables`): every view and table, with
    /// whether any of them makes the answer depend on the user.
    pub async fn reads(&self, user: &str, query_id: &str) -> Result<crate::sql::Reads> {
        let url = self
            .inner
            .statement_url
            .join(&format!("/v1/query/{}?pruned=true", urlenc(query_id)))
            .map_err(|e| Error::Config(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(TRINO_USER, header(user)?);
        if let Some(a) = &self.inner.auth_header {
            headers.insert(AUTHORIZATION, a.clone());
        }
        let (_, body) = self.request(Retry::Idempotent, |http| http.get(url.clone()).headers(headers.clone())).await?;
        let info: QueryInfo =
            serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("/v1/query/{query_id}: {e}")))?;
        let mut reads = crate::sql::Reads::default();
        for t in info.referenced_tables {
            let (catalog, schema) = (t.catalog.to_lowercase(), t.schema.to_lowercase());
            reads.per_user |= t.view_text.is_some()
                || !t.filters.is_empty()
                || t.columns.iter().any(|c| !c.masks.is_empty())
                || catalog == "system"
                || schema == "information_schema";
            reads.tables.push(format!("{catalog}.{schema}.{}", t.table.to_lowercase()));
        }
        reads.tables.sort();
        reads.tables.dedup();
        Ok(reads)
    }

    /// Whether Trino answers `/v1/info` and has finished starting.
    pub async fn ready(&self) -> Result<bool> {
        let url = self.inner.statement_url.join("/v1/info").map_err(|e| Error::Config(e.to_string()))?;
        let (_, body) =
            self.request(Retry::Idempotent, |http| http.get(url.clone()).timeout(Duration::from_secs(2))).await?;
        let info: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("/v1/info: {e}")))?;
        Ok(info.get("starting").and_then(serde_json::Value::as_bool) == Some(false))
    }

    /// Trino's `/v1/info` document, as Trino wrote it.
    pub async fn info(&self) -> Result<Bytes> {
        let url = self.inner.statement_url.join("/v1/info").map_err(|e| Error::Config(e.to_string()))?;
        let (_, body) =
            self.request(Retry::Idempotent, |http| http.get(url.clone()).timeout(Duration::from_secs(2))).await?;
        Ok(body)
    }

    /// Runs `sql` to completion, returning its batches (for small results).
    pub async fn execute(&self, session: &Session, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let mut q = self.start(session, sql).await?;
        let schema = q.wait_for_schema().await?;
        let mut batches = Vec::new();
        while let Some(b) = q.next_batch().await? {
            batches.push(b);
        }
        Ok((schema, batches))
    }

    /// Sends a request, retrying with back-off what `retry` allows, and
    /// returns the response headers and body.
    async fn request(
        &self,
        retry: Retry,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(HeaderMap, Bytes)> {
        let started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let in_budget = started.elapsed() < self.inner.retry_budget;
            let backoff = || {
                // The protocol asks for 50-100 ms; grow it so a restarting
                // gateway is not hammered.
                Duration::from_millis(50 * u64::from(attempt.min(20)))
            };
            // A transport error is not retried: Trino down is reported at
            // once (Unavailable), and a timed-out submission may have landed.
            let resp = make(&self.inner.http).send().await.map_err(|e| self.transport_error(e))?;
            let status = resp.status();
            if status == StatusCode::OK {
                let headers = resp.headers().clone();
                let body = resp.bytes().await.map_err(|e| self.transport_error(e))?;
                metrics::counter!("flightdeck_trino_bytes_total").increment(body.len() as u64);
                self.inner.stats.bytes_received.fetch_add(body.len() as u64, Ordering::Relaxed);
                return Ok((headers, body));
            }
            let body = resp.text().await.unwrap_or_default();
            if in_budget && retry.after_status(status) {
                tracing::debug!(%status, attempt, "Trino busy, retrying");
                tokio::time::sleep(backoff()).await;
                continue;
            }
            let body = body.chars().take(1000).collect::<String>();
            return Err(match status {
                StatusCode::UNAUTHORIZED => Error::Unauthorized(body),
                _ => Error::Http { status: status.as_u16(), body },
            });
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        Error::Unavailable { url: self.inner.base.clone(), source: e }
    }

    fn get(&self, uri: &str, user: &HeaderValue) -> impl Fn(&reqwest::Client) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(TRINO_USER, user.clone());
        if let Some(a) = &self.inner.auth_header {
            headers.insert(AUTHORIZATION, a.clone());
        }
        let uri = uri.to_string();
        move |http| http.get(&uri).headers(headers.clone())
    }

    fn cancel_in_background(&self, uri: String, user: HeaderValue) {
        let client = self.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        client.inner.stats.queries_cancelled.fetch_add(1, Ordering::Relaxed);
        client.inner.cancels_in_flight.fetch_add(1, Ordering::SeqCst);
        rt.spawn(async move {
            // A cancel that does not reach Trino leaves the query running
            // until Trino's client timeout: try again for a few seconds.
            for attempt in 1..=5u64 {
                let mut req = client.inner.http.delete(&uri).header(TRINO_USER, user.clone());
                if let Some(a) = &client.inner.auth_header {
                    req = req.header(AUTHORIZATION, a.clone());
                }
                match req.send().await {
                    Ok(r) if !r.status().is_server_error() => break,
                    Ok(r) => tracing::debug!(status = %r.status(), attempt, "could not cancel Trino query"),
                    Err(e) => tracing::debug!(error = %e, attempt, "could not cancel Trino query"),
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            client.inner.cancels_in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Waits, at most `limit`, until every cancellation sent so far has
    /// reached Trino (or given up): before the process exits.
    pub async fn cancels_settled(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.inner.cancels_in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Which failures a request may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// A statement submission: retried only when it cannot have reached
    /// the coordinator (no connection, or Trino's own 503 while starting),
    /// never after a gateway's 502/504 or a timeout, which may hide a
    /// statement Trino accepted and would then run twice.
    Submit,
    /// Reads of `nextUri` and `/v1/info`, which Trino serves repeatably.
    Idempotent,
}

impl Retry {
    fn after_status(self, status: StatusCode) -> bool {
        match self {
            Retry::Submit => status == StatusCode::SERVICE_UNAVAILABLE,
            Retry::Idempotent => matches!(
                status,
                StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
            ),
        }
    }
}

/// One page of Trino's answer, borrowing its `data` text from the body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    id: String,
    next_uri: Option<String>,
    columns: Option<Vec<PageColumn>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    error: Option<QueryError>,
    update_type: Option<String>,
    update_count: Option<i64>,
}

/// The part of Trino's `QueryInfo` that says what a query read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryInfo {
    #[serde(default)]
    referenced_tables: Vec<ReferencedTable>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferencedTable {
    catalog: String,
    schema: String,
    table: String,
    #[serde(default)]
    filters: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    columns: Vec<ReferencedColumn>,
    /// Present for views.
    view_text: Option<String>,
}

#[derive(Deserialize)]
struct ReferencedColumn {
    #[serde(default)]
    masks: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct PageColumn {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// A running Trino query. Dropping it before the end cancels the query.
#[derive(Debug)]
pub struct Query {
    client: TrinoClient,
    user: HeaderValue,
    id: String,
    next_uri: Option<String>,
    columns: Option<Vec<Column>>,
    decoder: Option<BatchDecoder>,
    /// Batches decoded while waiting for the schema, not yet handed out.
    ready: VecDeque<RecordBatch>,
    update_type: Option<String>,
    update_count: Option<i64>,
    session_updates: Vec<SessionUpdate>,
    origin: Option<Arc<Origin>>,
    /// This query's place among those running on Trino, given back when
    /// it finishes or is dropped.
    slot: Option<Slot>,
}

/// A query's place among those running on Trino; counted in
/// `flightdeck_trino_running_queries` while held.
#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    /// When the query asked for it: the query's latency runs from here.
    started: tokio::time::Instant,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("flightdeck_trino_running_queries").decrement(1.0);
    }
}

fn decode_component(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl Query {
    /// Session changes Trino asked for so far (`USE`, `SET SESSION`, ...).
    pub fn session_updates(&self) -> &[SessionUpdate] {
        &self.session_updates
    }

    fn apply_headers(&mut self, headers: &HeaderMap) {
        let all = |name: &str| {
            headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect::<Vec<_>>()
        };
        for c in all("x-trino-set-catalog") {
            self.session_updates.push(SessionUpdate::Catalog(c));
        }
        for s in all("x-trino-set-schema") {
            self.session_updates.push(SessionUpdate::Schema(s));
        }
        for kv in all("x-trino-set-session") {
            if let Some((k, v)) = kv.split_once('=') {
                self.session_updates.push(SessionUpdate::SetProperty(k.trim().to_string(), decode_component(v.trim())));
            }
        }
        for k in all("x-trino-clear-session") {
            self.session_updates.push(SessionUpdate::ClearProperty(k.trim().to_string()));
        }
    }

    /// Trino's query id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// True once Trino has sent its last page.
    pub fn is_finished(&self) -> bool {
        self.next_uri.is_none()
    }

    /// The statement's update type (`CREATE TABLE`, `INSERT`, ...), once known.
    pub fn update_type(&self) -> Option<&str> {
        self.update_type.as_deref()
    }

    /// Rows written by DML, once known.
    pub fn update_count(&self) -> Option<i64> {
        self.update_count
    }

    /// The result schema: Trino's columns, or no fields for statements
    /// without a result set. Polls until Trino has said which.
    pub async fn wait_for_schema(&mut self) -> Result<SchemaRef> {
        while self.decoder.is_none() && !self.is_finished() {
            self.advance().await?;
        }
        Ok(match &self.decoder {
            Some(d) => d.schema(),
            None => Arc::new(Schema::empty()),
        })
    }

    /// The next batch of rows: one per non-empty Trino page.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Ok(Some(b));
            }
            if self.is_finished() {
                return Ok(None);
            }
            self.advance().await?;
        }
    }

    /// Reads the query to its end, discarding rows.
    pub async fn drain(&mut self) -> Result<()> {
        while self.next_batch().await?.is_some() {}
        Ok(())
    }

    /// Cancels the query now (it is also cancelled when dropped unfinished).
    pub fn cancel(&mut self) {
        if let Some(uri) = self.next_uri.take() {
            self.client.cancel_in_background(uri, self.user.clone());
        }
    }

    async fn advance(&mut self) -> Result<()> {
        let Some(uri) = self.next_uri.clone() else { return Ok(()) };
        let (headers, bytes) = self.client.request(Retry::Idempotent, self.client.get(&uri, &self.user)).await?;
        self.client.inner.stats.pages_fetched.fetch_add(1, Ordering::Relaxed);
        self.apply_headers(&headers);
        self.apply_page(&bytes)
    }

    fn apply_page(&mut self, body: &[u8]) -> Result<()> {
        let page: Page<'_> = serde_json::from_slice(body)
            .map_err(|e| Error::Protocol(format!("{e}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]))))?;
        self.id = page.id;
        // The query is over (for cancellation purposes) once Trino says so.
        self.next_uri = page.next_uri;
        if self.next_uri.is_none()
            && let Some(slot) = self.slot.take()
        {
            metrics::histogram!("flightdeck_trino_query_seconds").record(slot.started.elapsed().as_secs_f64());
        }
        if let Some(mut e) = page.error {
            self.next_uri = None;
            e.query_id = Some(self.id.clone());
            if let Some(o) = &self.origin {
                o.relocate(&mut e);
            }
            return Err(Error::Query(e));
        }
        if page.update_type.is_some() {
            self.update_type = page.update_type;
        }
        if page.update_count.is_some() {
            self.update_count = page.update_count;
        }
        if self.columns.is_none()
            && let Some(cols) = page.columns
        {
            let columns = cols
                .into_iter()
                .map(|c| {
                    let ty = TrinoType::parse(&c.ty).map_err(Error::Protocol)?;
                    Ok(Column { name: c.name, ty })
                })
                .collect::<Result<Vec<_>>>()?;
            self.decoder = Some(BatchDecoder::new(&columns));
            self.columns = Some(columns);
        }
        if let Some(data) = page.data {
            let decoder = self.decoder.as_mut().ok_or_else(|| Error::Protocol("data arrived before columns".into()))?;
            if decoder.decode(data.get())? > 0 {
                self.ready.push_back(decoder.finish()?);
            }
        }
        Ok(())
    }
}

impl Drop for Query {
    fn drop(&mut self) {
        // A consumer that went away must not leave the query running in Trino.
        self.cancel();
    }
}
