//! Trino's client protocol, in front of the same router as Flight SQL: an
//! unchanged Trino client (the `trino` Python client and its SQLAlchemy
//! dialect, JDBC, the CLI) gets the cache and the local engine by pointing
//! at this port.
//!
//! ```text
//! POST /v1/statement ─ headers → Session ─ PREPARE/EXECUTE read here ─ router.plan ─ redeem
//!        └─ first page (columns, first rows) ─ nextUri /v1/statement/executing/{id}/{slug}/{token}
//! GET  nextUri ─ next page (rows up to ~1 MB, or what comes within 1 s) ─ … ─ no nextUri: done
//! DELETE nextUri ─ drops the answer: a Trino query behind it is cancelled
//! ```
//!
//! Every answer, whichever route produced it, is Arrow here and written
//! back as Trino writes each type ([`encode`]). A retried GET of the page
//! just served gets that page again.

mod encode;
mod statement;
mod tls;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{FutureExt, StreamExt};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::cache::Directive;
use crate::config::TlsFiles;
use crate::flight::Authenticator;
use crate::router::{BatchStream, Body, Code, Error, Outcome, Request, Route, Router, Session, Update};
use crate::trino::decode::Beyond;
use crate::trino::types::TrinoType;
use crate::trino::{TrinoClient, urlenc};
pub use encode::Datetimes;
use statement::Front;

/// Longest a GET waits for rows before answering with none (Trino's own
/// long-poll limit).
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Longest the submitting POST waits for an answer before it returns
/// without one.
const SUBMIT_WAIT: Duration = Duration::from_millis(100);
/// Size of the JSON rows a page holds before the next page is due (Trino's
/// default `targetResultSize`).
const TARGET_PAGE_BYTES: usize = 1 << 20;
/// How long an answer waits for its client's next GET before it is dropped
/// (and a Trino query behind it cancelled): Trino's `query.client.timeout`.
const ABANDONED_AFTER: Duration = Duration::from_secs(300);
/// How long, and within how many bytes, final pages are kept for a retry.
const FINISHED_KEPT: Duration = Duration::from_secs(30);
const FINISHED_BYTES: u64 = 64 << 20;
/// How long checked Basic credentials are trusted without bcrypt: clients
/// send them on every request.
const LOGIN_TTL: Duration = Duration::from_secs(30);

/// The protocol's state: the router, and the answers being paged.
#[derive(Debug)]
pub struct TrinoProtocol {
    router: Router,
    auth: Authenticator,
    /// Catalog and schema of a session that names none.
    defaults: (Option<String>, Option<String>),
    trino: TrinoClient,
    queries: moka::sync::Cache<String, Arc<Mutex<Query>>>,
    /// The last page of answers complete, kept a little while for a client
    /// that lost it and asks again, within a bound on bytes.
    finished: moka::sync::Cache<String, Arc<Finished>>,
    /// Hashes of Basic credentials checked recently, salted per process.
    logins: moka::sync::Cache<[u8; 32], ()>,
    salt: [u8; 16],
    sequence: AtomicU64,
    /// Scheme of the URIs handed out when no proxy says otherwise.
    https: bool,
}

impl TrinoProtocol {
    pub fn new(
        router: Router,
        auth: Authenticator,
        defaults: (Option<String>, Option<String>),
        trino: TrinoClient,
        https: bool,
    ) -> Self {
        TrinoProtocol {
            router,
            auth,
            defaults,
            trino,
            queries: moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(ABANDONED_AFTER).build(),
            finished: moka::sync::Cache::builder()
                .max_capacity(FINISHED_BYTES)
                .weigher(|_, f: &Arc<Finished>| u32::try_from(f.page.0.len()).unwrap_or(u32::MAX))
                .time_to_live(FINISHED_KEPT)
                .build(),
            logins: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(LOGIN_TTL).build(),
            salt: rand::random(),
            sequence: AtomicU64::new(0),
            https,
        }
    }

    /// The HTTP routes of the protocol.
    pub fn routes(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/v1/statement", post(submit))
            .route("/v1/statement/executing/{id}/{slug}/{token}", get(next_page).delete(cancel))
            .route("/v1/info", get(info))
            .with_state(self)
    }

    /// Serves on `listener` until `stop`; over TLS when `tls` is given.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<TlsFiles>,
        stop: CancellationToken,
    ) -> std::io::Result<()> {
        // Abandoned answers are dropped (their Trino queries cancelled) by
        // the cache's housekeeping, which otherwise runs only when it is used.
        let queries = self.queries.clone();
        let janitor = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            while tokio::select! { _ = tick.tick() => true, _ = janitor.cancelled() => false } {
                queries.run_pending_tasks();
            }
        });
        let app = self.routes();
        let stop = stop.cancelled_owned();
        match tls {
            None => axum::serve(listener, app).with_graceful_shutdown(stop).await,
            Some(files) => {
                let listener = tls::TlsListener::new(listener, &files)?;
                axum::serve(listener, app).with_graceful_shutdown(stop).await
            }
        }
    }

    /// The user a request runs as, or the response refusing it.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<String, Response> {
        let named = header_str(headers, "x-trino-user").filter(|u| !u.is_empty());
        if !self.auth.requires_password() {
            // As a Trino without an authenticator: whatever credentials come
            // along are not checked, the user is the one named.
            let basic_user = basic(headers).ok().flatten().map(|(u, _)| u);
            return Ok(named.or(basic_user).unwrap_or_else(|| self.auth.default_user().to_string()));
        }
        let Some((user, password)) = basic(headers).map_err(unauthorized)? else {
            return Err(unauthorized("Basic credentials are required".into()));
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(self.salt)
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if !self.logins.contains_key(&key) {
            if let Err(status) = self.auth.login(&user, &password).await {
                return Err(unauthorized(status.message().to_string()));
            }
            self.logins.insert(key, ());
        }
        match named {
            Some(n) if n != user => {
                Err((StatusCode::FORBIDDEN, format!("Access Denied: User {user} cannot impersonate user {n}"))
                    .into_response())
            }
            _ => Ok(user),
        }
    }

    fn query_id(&self) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) % 100_000;
        let tail: String = (0..5).map(|_| (b'a' + rand::random_range(0..26u8)) as char).collect();
        format!("{}_{n:05}_{tail}", chrono::Utc::now().format("%Y%m%d_%H%M%S"))
    }

    /// The scheme and authority clients reached this server at.
    fn base(&self, headers: &HeaderMap) -> String {
        let scheme = header_str(headers, "x-forwarded-proto")
            .unwrap_or_else(|| if self.https { "https".into() } else { "http".into() });
        let host = header_str(headers, "x-forwarded-host")
            .or_else(|| header_str(headers, "host"))
            .unwrap_or_else(|| "localhost".into());
        format!("{scheme}://{host}")
    }
}

/// One answer being paged to its client.
struct Query {
    id: String,
    slug: String,
    user: String,
    started: Instant,
    datetimes: Datetimes,
    /// The router at work on the statement, until it answers.
    planning: Option<AbortOnDropHandle<Ready>>,
    /// Once known: who answered.
    route: Option<(Route, Outcome)>,
    /// The `columns` JSON, once the schema is known.
    columns: Option<String>,
    types: Vec<TrinoType>,
    /// Rows not yet read; `None` once the answer is complete.
    rows: Option<BatchStream>,
    /// A batch partly sent, and the first row not sent.
    held: Option<Held>,
    update: Option<Update>,
    error: Option<Error>,
    /// Response headers for the next page (session changes).
    headers: Vec<(HeaderName, String)>,
    /// For `EXECUTE IMMEDIATE`: the whole text, the statement's, and where
    /// it starts, to report error positions as Trino counts them.
    immediate: Option<(String, String, usize)>,
    /// The token of the next page to make.
    token: u64,
    /// The last page made, its token and headers, for a retried GET.
    last: Option<(u64, Page)>,
    sent_rows: u64,
}

/// A batch partly sent.
struct Held {
    batch: RecordBatch,
    /// What its columns carry beside the Arrow values.
    beyond: Vec<Option<Beyond>>,
    /// The first row not sent.
    at: usize,
}

/// The final page of an answer, for a retried GET.
#[derive(Debug)]
struct Finished {
    slug: String,
    user: String,
    token: u64,
    page: Page,
}

/// A page's JSON and response headers.
type Page = Arc<(String, Vec<(HeaderName, String)>)>;

/// What the router made of a statement.
struct Ready {
    route: Route,
    cache: Outcome,
    schema: Option<arrow::datatypes::SchemaRef>,
    rows: Option<BatchStream>,
    update: Option<Update>,
    headers: Vec<(HeaderName, String)>,
    error: Option<Error>,
}

impl Ready {
    fn failed(e: Error) -> Ready {
        Ready {
            route: Route::Trino,
            cache: Outcome::Bypass,
            schema: None,
            rows: None,
            update: None,
            headers: Vec::new(),
            error: Some(e),
        }
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("id", &self.id).field("user", &self.user).field("token", &self.token).finish()
    }
}

impl Query {
    fn finished(&self) -> bool {
        self.planning.is_none() && self.rows.is_none() && self.held.is_none()
    }

    fn done(&self) -> bool {
        self.finished() || self.error.is_some()
    }

    fn fail(&mut self, mut e: Error) {
        if let Some((outer, inner, at)) = &self.immediate {
            relocate(&mut e, outer, inner, *at);
        }
        self.error = Some(e);
        (self.planning, self.rows, self.held) = (None, None, None);
    }

    fn take(&mut self, ready: Ready) {
        self.planning = None;
        self.route = Some((ready.route, ready.cache));
        self.update = ready.update;
        self.headers.extend(ready.headers);
        if let Some(schema) = ready.schema {
            self.types = encode::column_types(&schema);
            self.columns = Some(encode::columns(&schema, &self.types, self.datetimes));
        }
        self.rows = ready.rows;
        if let Some(e) = ready.error {
            self.fail(e);
        }
    }

    /// Waits until `deadline` for the router to answer.
    async fn planned(&mut self, deadline: tokio::time::Instant) {
        let Some(handle) = self.planning.as_mut() else { return };
        let outcome = if deadline <= tokio::time::Instant::now() {
            handle.now_or_never()
        } else {
            tokio::time::timeout_at(deadline, handle).await.ok()
        };
        match outcome {
            None => {}
            Some(Ok(ready)) => self.take(ready),
            Some(Err(e)) => self.fail(Error::internal(format!("the statement's task failed: {e}"))),
        }
    }

    /// Rows up to a page's worth, waiting until `deadline` for the first.
    async fn fill(&mut self, data: &mut String, deadline: tokio::time::Instant) {
        let mut any = false;
        loop {
            if let Some(mut held) = self.held.take() {
                let (batch, from) = (&held.batch, held.at);
                let mut at = from;
                while at < batch.num_rows() && data.len() < TARGET_PAGE_BYTES {
                    let to = (at + 64).min(batch.num_rows());
                    encode::rows(batch, &held.beyond, &self.types, self.datetimes, at, to, data);
                    at = to;
                }
                self.sent_rows += (at - from) as u64;
                any |= at > from;
                if at < batch.num_rows() {
                    held.at = at;
                    self.held = Some(held);
                    return;
                }
            }
            let Some(stream) = self.rows.as_mut() else { return };
            let next = if any || deadline <= tokio::time::Instant::now() {
                // Only what is ready now: a page does not wait once it has rows.
                match stream.next().now_or_never() {
                    Some(n) => n,
                    None => return,
                }
            } else {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(n) => n,
                    Err(_) => return,
                }
            };
            match next {
                Some(Ok(batch)) => self.held = Some(Held { beyond: encode::beyond(&batch), batch, at: 0 }),
                Some(Err(e)) => {
                    self.fail(e);
                    return;
                }
                None => {
                    self.rows = None;
                    return;
                }
            }
        }
    }

    /// The next page, with what comes within `wait`.
    async fn page(&mut self, base: &str, wait: Duration) -> Page {
        let deadline = tokio::time::Instant::now() + wait;
        self.planned(deadline).await;
        let mut data = String::new();
        if self.error.is_none() && self.planning.is_none() {
            self.fill(&mut data, deadline).await;
        }
        let mut out = String::with_capacity(data.len() + 512);
        // The host is the client's own header: escaped like any text.
        let info = encode::json_string(&format!("{base}/ui/query.html?{}", self.id));
        let _ = write!(out, r#"{{"id":"{}","infoUri":{info}"#, self.id);
        if !self.done() {
            let next = format!("{base}/v1/statement/executing/{}/{}/{}", self.id, self.slug, self.token + 1);
            let _ = write!(out, r#","nextUri":{}"#, encode::json_string(&next));
        }
        if let Some(c) = &self.columns {
            out.push_str(r#","columns":"#);
            out.push_str(c);
        }
        if !data.is_empty() {
            data.pop(); // the last row's comma
            out.push_str(r#","data":["#);
            out.push_str(&data);
            out.push(']');
        }
        let state = match (&self.error, self.done()) {
            (Some(_), _) => "FAILED",
            (None, true) => "FINISHED",
            (None, false) if self.planning.is_some() => "QUEUED",
            (None, false) => "RUNNING",
        };
        stats(&mut out, state, self.started.elapsed(), self.sent_rows);
        if let Some(e) = &self.error {
            out.push_str(r#","error":"#);
            error_json(e, &mut out);
        }
        out.push_str(r#","warnings":[]"#);
        if let Some(u) = &self.update {
            let _ = write!(out, r#","updateType":{}"#, encode::json_string(&u.kind));
            if let Some(n) = u.count {
                let _ = write!(out, r#","updateCount":{n}"#);
            }
        }
        out.push('}');
        let mut headers = std::mem::take(&mut self.headers);
        if let Some((route, cache)) = self.route {
            headers.push((HeaderName::from_static("x-flightdeck-route"), route.as_str().to_string()));
            headers.push((HeaderName::from_static("x-flightdeck-cache"), cache.as_str().to_string()));
        }
        let page = Arc::new((out, headers));
        self.last = Some((self.token, Arc::clone(&page)));
        self.token += 1;
        page
    }
}

/// `e`'s position (and the `line L:C: ` its message starts with) moved from
/// an `EXECUTE IMMEDIATE`'s statement to the whole text.
fn relocate(e: &mut Error, outer: &str, inner: &str, at: usize) {
    let Some(i) = e.details.iter().position(|(k, _)| *k == "x-trino-error-location") else { return };
    let Some((line, column)) =
        e.details[i].1.split_once(':').and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)))
    else {
        return;
    };
    let Some((l, c)) = statement::outer_position(outer, inner, at, line, column) else { return };
    e.details[i].1 = format!("{l}:{c}");
    let (old, new) = (format!("line {line}:{column}: "), format!("line {l}:{c}: "));
    for (k, v) in e.details.iter_mut() {
        if *k == "x-trino-error-message"
            && let Some(rest) = v.strip_prefix(&old)
        {
            *v = format!("{new}{rest}");
        }
    }
    e.message = e.message.replacen(&old, &new, 1);
}

/// Runs `request` through the router: its answer, ready to page.
async fn answer(router: Router, request: Request) -> Ready {
    let before = request.session.clone();
    let plan = match router.plan(request).await {
        Ok(plan) => plan,
        Err(e) => return Ready::failed(e),
    };
    let mut headers = Vec::new();
    if let Some(after) = &plan.session {
        session_changes(&before, after, &mut headers);
    }
    let answer = match router.redeem(&plan.ticket).await {
        Ok(a) => a,
        Err(e) => return Ready { headers, ..Ready::failed(e) },
    };
    let (schema, rows): (_, BatchStream) = match answer.body {
        Body::Cached(entry) => {
            let batches: Vec<_> = entry.batches.iter().cloned().map(Ok).collect();
            (Arc::clone(&entry.schema), Box::pin(futures::stream::iter(batches)))
        }
        Body::Batches(schema, batches) => (schema, Box::pin(futures::stream::iter(batches.into_iter().map(Ok)))),
        Body::Stream(schema, stream) => (schema, stream),
    };
    Ready {
        route: answer.route,
        cache: answer.cache,
        schema: Some(schema),
        rows: Some(rows),
        update: plan.update,
        headers,
        error: None,
    }
}

/// Checks a statement to prepare as Trino does (it is parsed, not run): a
/// text the local reading takes is accepted here; anything else is asked
/// of Trino, whose error, if any, is the client's.
async fn prepare(router: Router, session: Session, original: String, name: String, text: String) -> Ready {
    let added = (HeaderName::from_static("x-trino-added-prepare"), format!("{}={}", urlenc(&name), urlenc(&text)));
    let accepted = || Ready {
        route: Route::Trino,
        cache: Outcome::Bypass,
        schema: Some(Arc::new(arrow::datatypes::Schema::empty())),
        rows: None,
        update: Some(Update { kind: "PREPARE".into(), count: None }),
        headers: vec![added.clone()],
        error: None,
    };
    if crate::sql::Statement::parse(&text, None, None).syntax().is_some() {
        return accepted();
    }
    // The client's text as written (its `?` markers are not parameters to
    // bind here), so that positions in Trino's error are the client's.
    match router.execute(&session, &original).await {
        Ok(_) => accepted(),
        Err(e) => Ready::failed(e),
    }
}

/// Trino's `stats` object: the fields clients read for progress.
fn stats(out: &mut String, state: &str, elapsed: Duration, rows: u64) {
    let ms = elapsed.as_millis();
    let progress = if state == "RUNNING" { 0.0 } else { 100.0 };
    let _ = write!(
        out,
        r#","stats":{{"state":"{state}","queued":false,"scheduled":true,"progressPercentage":{progress:.1},"runningPercentage":0.0,"nodes":1,"totalSplits":0,"queuedSplits":0,"runningSplits":0,"completedSplits":0,"cpuTimeMillis":0,"wallTimeMillis":{ms},"queuedTimeMillis":0,"elapsedTimeMillis":{ms},"processedRows":{rows},"processedBytes":0,"physicalInputBytes":0,"peakMemoryBytes":0,"spilledBytes":0}}"#
    );
}

/// Trino's `QueryError` for an error: Trino's own name, code, type and
/// position when Trino produced it.
fn error_json(e: &Error, out: &mut String) {
    let detail = |k: &str| e.details.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
    let (name, code, kind) =
        match (detail("x-trino-error-name"), detail("x-trino-error-code"), detail("x-trino-error-type")) {
            (Some(n), Some(c), Some(t)) if !n.is_empty() => (n.to_string(), c.parse().unwrap_or(0), t.to_string()),
            _ => {
                let (n, c, t) = match e.code {
                    Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition => {
                        ("GENERIC_USER_ERROR", 0, "USER_ERROR")
                    }
                    Code::NotFound => ("NOT_FOUND", 5, "USER_ERROR"),
                    Code::PermissionDenied => ("PERMISSION_DENIED", 4, "USER_ERROR"),
                    Code::Cancelled => ("USER_CANCELED", 3, "USER_ERROR"),
                    Code::DeadlineExceeded => ("EXCEEDED_TIME_LIMIT", 131_075, "INSUFFICIENT_RESOURCES"),
                    Code::ResourceExhausted => ("GENERIC_INSUFFICIENT_RESOURCES", 131_072, "INSUFFICIENT_RESOURCES"),
                    Code::Unavailable | Code::Internal => ("GENERIC_INTERNAL_ERROR", 65_536, "INTERNAL_ERROR"),
                };
                (n.to_string(), c, t.to_string())
            }
        };
    let message = encode::json_string(detail("x-trino-error-message").unwrap_or(&e.message));
    let location = detail("x-trino-error-location")
        .and_then(|l| l.split_once(':'))
        .and_then(|(l, c)| Some((l.parse::<u32>().ok()?, c.parse::<u32>().ok()?)))
        .map(|(l, c)| format!(r#","errorLocation":{{"lineNumber":{l},"columnNumber":{c}}}"#))
        .unwrap_or_default();
    let _ = write!(
        out,
        r#"{{"message":{message},"errorCode":{code},"errorName":"{name}","errorType":"{kind}"{location},"failureInfo":{{"type":"io.trino.spi.TrinoException","message":{message},"suppressed":[],"stack":[]{location}}}}}"#
    );
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string())
}

/// Every value of a header, whether sent on several lines (JDBC) or joined
/// by commas on one (the Python client).
fn header_list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `name=value` entries, both URL-encoded (`+` for a space, as Java and
/// Python's `quote_plus` write them).
fn encoded_pairs(headers: &HeaderMap, name: &str) -> Result<Vec<(String, String)>, String> {
    header_list(headers, name)
        .into_iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(|| format!("{name}: `{kv}` is not name=value"))?;
            Ok((form_decode(k.trim())?, form_decode(v.trim())?))
        })
        .collect()
}

fn form_decode(s: &str) -> Result<String, String> {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

/// Basic credentials, if sent.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, String> {
    let Some(v) = headers.get("authorization") else { return Ok(None) };
    let v = v.to_str().map_err(|_| "authorization header is not ASCII".to_string())?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(format!("unsupported authorization scheme `{scheme}`"));
    }
    crate::flight::basic_user_password(rest).map(Some).map_err(str::to_string)
}

fn unauthorized(message: String) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, message).into_response();
    r.headers_mut().insert("www-authenticate", HeaderValue::from_static("Basic realm=\"Flightdeck\""));
    r
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

/// Client headers passed on to Trino as they came.
const PASSED_ON: [&str; 5] =
    ["x-trino-source", "x-trino-client-tags", "x-trino-client-info", "x-trino-trace-token", "x-trino-role"];

/// The session a request describes, and its prepared statements.
fn session(
    headers: &HeaderMap,
    user: String,
    defaults: &(Option<String>, Option<String>),
) -> Result<(Session, BTreeMap<String, String>), String> {
    let mut s = Session::of(&user);
    s.catalog = header_str(headers, "x-trino-catalog").filter(|c| !c.is_empty()).or_else(|| defaults.0.clone());
    s.schema = header_str(headers, "x-trino-schema").filter(|c| !c.is_empty()).or_else(|| defaults.1.clone());
    s.time_zone = header_str(headers, "x-trino-time-zone").filter(|z| !z.is_empty());
    s.properties = encoded_pairs(headers, "x-trino-session")?.into_iter().collect();
    for name in PASSED_ON {
        for v in headers.get_all(name) {
            let v = v.to_str().map_err(|_| format!("{name} is not ASCII"))?;
            if !v.trim().is_empty() {
                s.client.push((name.to_string(), v.to_string()));
            }
        }
    }
    let prepared = encoded_pairs(headers, "x-trino-prepared-statement")?.into_iter().collect();
    Ok((s, prepared))
}

/// Response headers telling the client what a statement changed in its session.
fn session_changes(before: &Session, after: &Session, out: &mut Vec<(HeaderName, String)>) {
    if after.catalog != before.catalog
        && let Some(c) = &after.catalog
    {
        out.push((HeaderName::from_static("x-trino-set-catalog"), c.clone()));
    }
    if after.schema != before.schema
        && let Some(s) = &after.schema
    {
        out.push((HeaderName::from_static("x-trino-set-schema"), s.clone()));
    }
    for (k, v) in &after.properties {
        if before.properties.get(k) != Some(v) {
            out.push((HeaderName::from_static("x-trino-set-session"), format!("{k}={}", urlenc(v))));
        }
    }
    for k in before.properties.keys() {
        if !after.properties.contains_key(k) {
            out.push((HeaderName::from_static("x-trino-clear-session"), k.clone()));
        }
    }
}

fn respond(page: &Page) -> Response {
    let (body, headers) = page.as_ref();
    let mut r = (StatusCode::OK, [("content-type", "application/json")], body.clone()).into_response();
    for (k, v) in headers.iter().cloned() {
        // Values come from the client's own text or Trino: non-ASCII is
        // sent encoded rather than dropped.
        let v = HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_str(&urlenc(&v)).expect("ASCII"));
        r.headers_mut().append(k, v);
    }
    r
}

async fn submit(State(p): State<Arc<TrinoProtocol>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match p.authenticate(&headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Ok(sql) = String::from_utf8(body.to_vec()) else {
        return bad_request("the statement is not UTF-8".into());
    };
    if sql.trim().is_empty() {
        return bad_request("SQL statement is empty".into());
    }
    let (mut session, prepared) = match session(&headers, user.clone(), &p.defaults) {
        Ok(s) => s,
        Err(msg) => return bad_request(msg),
    };
    let directive = match header_str(&headers, "x-flightdeck-cache").map(|d| d.parse::<Directive>()) {
        None => Directive::Default,
        Some(Ok(d)) => d,
        Some(Err(msg)) => return bad_request(msg),
    };
    let parametric = header_list(&headers, "x-trino-client-capabilities").iter().any(|c| c == "PARAMETRIC_DATETIME");
    let mut q = Query {
        id: p.query_id(),
        slug: hex::encode(rand::random::<[u8; 12]>()),
        user,
        started: Instant::now(),
        datetimes: if parametric { Datetimes::Parametric } else { Datetimes::Milliseconds },
        planning: None,
        route: None,
        columns: None,
        types: Vec::new(),
        rows: None,
        held: None,
        update: None,
        error: None,
        headers: Vec::new(),
        immediate: None,
        token: 0,
        last: None,
        sent_rows: 0,
    };
    let user_error = |msg: String, name: &'static str, code: &'static str| {
        let mut e = Error::invalid_argument(msg);
        e.details = vec![
            ("x-trino-error-name", name.to_string()),
            ("x-trino-error-code", code.to_string()),
            ("x-trino-error-type", "USER_ERROR".to_string()),
        ];
        e
    };
    let not_found = |name: &str| user_error(format!("Prepared statement not found: {name}"), "NOT_FOUND", "5");
    let run = |session: Session, sql: String, parameters: Vec<String>| {
        AbortOnDropHandle::new(tokio::spawn(answer(p.router.clone(), Request { session, sql, parameters, directive })))
    };
    match statement::read(&sql) {
        Err(msg) => q.fail(user_error(msg, "SYNTAX_ERROR", "1")),
        Ok(Front::Prepare { name, sql: text }) => {
            let checked = prepare(p.router.clone(), session, sql.clone(), name, text);
            q.planning = Some(AbortOnDropHandle::new(tokio::spawn(checked)));
        }
        Ok(Front::Deallocate { name }) => {
            if prepared.contains_key(&name) {
                q.headers.push((HeaderName::from_static("x-trino-deallocated-prepare"), urlenc(&name)));
                q.update = Some(Update { kind: "DEALLOCATE".into(), count: None });
                q.columns = Some("[]".into());
            } else {
                q.fail(not_found(&name));
            }
        }
        Ok(Front::Execute { name, args }) => match prepared.get(&name) {
            Some(text) => q.planning = Some(run(session, text.clone(), args)),
            None => q.fail(not_found(&name)),
        },
        Ok(Front::Immediate { sql: text, args, at }) => {
            q.immediate = Some((sql.clone(), text.clone(), at));
            q.planning = Some(run(session, text, args));
        }
        Ok(Front::Kill { id, message }) if p.queries.contains_key(&id) => {
            // One of Flightdeck's ids: its answer is dropped (cancelling a
            // Trino query behind it), as Trino kills its own.
            match p.queries.get(&id) {
                Some(target) if target.lock().await.user == q.user => {
                    let mut e = user_error(
                        format!("Query killed. Message: {}", message.unwrap_or_default()),
                        "ADMINISTRATIVELY_KILLED",
                        "38",
                    );
                    e.code = Code::Cancelled;
                    target.lock().await.fail(e);
                    q.update = Some(Update { kind: "CALL".into(), count: None });
                    q.columns = Some("[]".into());
                }
                _ => q.fail(user_error(format!("Access Denied: Cannot kill query {id}"), "PERMISSION_DENIED", "4")),
            }
        }
        Ok(Front::Kill { .. } | Front::Plain) => {
            if statement::describes_prepared(&sql) {
                // Trino answers these from the client's prepared statements.
                for (name, text) in &prepared {
                    let entry = format!("{}={}", urlenc(name), urlenc(text));
                    session.client.push(("x-trino-prepared-statement".into(), entry));
                }
            }
            q.planning = Some(run(session, sql, Vec::new()));
        }
    }
    // A quick answer (a cache hit, a local answer, a short Trino query)
    // comes with this response; a slow one returns soon, as Trino's does,
    // with the nextUri a client can cancel with while the answer is made.
    let page = q.page(&p.base(&headers), SUBMIT_WAIT).await;
    if !q.done() {
        p.queries.insert(q.id.clone(), Arc::new(Mutex::new(q)));
    }
    respond(&page)
}

/// The query a nextUri names, if it is the requester's.
async fn find(p: &TrinoProtocol, headers: &HeaderMap, id: &str, slug: &str) -> Result<Arc<Mutex<Query>>, Response> {
    let user = p.authenticate(headers).await?;
    let gone = || (StatusCode::NOT_FOUND, format!("Query not found: {id}")).into_response();
    let q = p.queries.get(id).ok_or_else(gone)?;
    {
        let g = q.lock().await;
        // In a session without passwords the user is whatever the client
        // says: the slug, known only to the submitter, is the check.
        if g.slug != slug || (p.auth.requires_password() && g.user != user) {
            return Err(gone());
        }
    }
    Ok(q)
}

async fn next_page(
    State(p): State<Arc<TrinoProtocol>>,
    Path((id, slug, token)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    if let Some(f) = p.finished.get(&id) {
        let user = match p.authenticate(&headers).await {
            Ok(u) => u,
            Err(r) => return r,
        };
        if f.slug == slug && f.token == token && (!p.auth.requires_password() || f.user == user) {
            return respond(&f.page);
        }
        return (StatusCode::NOT_FOUND, format!("Query not found: {id}")).into_response();
    }
    let q = match find(&p, &headers, &id, &slug).await {
        Ok(q) => q,
        Err(r) => return r,
    };
    let mut g = q.lock().await;
    // The page just served, asked for again (a retry after a lost answer).
    if let Some((t, page)) = &g.last
        && *t == token
    {
        return respond(page);
    }
    // Only the page the last one pointed to; it may carry an error that
    // came since (a kill).
    if token != g.token {
        return (StatusCode::NOT_FOUND, format!("Query not found: {id} (no page {token})")).into_response();
    }
    let page = g.page(&p.base(&headers), MAX_WAIT).await;
    if g.done() {
        // Only the final page is kept, for a while, not the answer.
        let f = Finished { slug: g.slug.clone(), user: g.user.clone(), token, page: Arc::clone(&page) };
        p.finished.insert(id.clone(), Arc::new(f));
        p.queries.invalidate(&id);
    }
    respond(&page)
}

async fn cancel(
    State(p): State<Arc<TrinoProtocol>>,
    Path((id, slug, _token)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    match find(&p, &headers, &id, &slug).await {
        Ok(q) => {
            p.queries.invalidate(&id);
            // Dropping the rows cancels a Trino query behind them; the
            // cache may hold on to the entry a while longer.
            let mut g = q.lock().await;
            (g.planning, g.rows, g.held) = (None, None, None);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

/// Trino's own `/v1/info`, so clients and health checks see the version
/// of the Trino behind.
async fn info(State(p): State<Arc<TrinoProtocol>>) -> Response {
    match p.trino.info().await {
        Ok(body) => (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
