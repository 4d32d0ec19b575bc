//! The admin HTTP server: Prometheus `/metrics`, `/health`, `/ready`, and an
//! admin API (bearer token) to list and invalidate cache entries.
//!
//! | route | what |
//! |---|---|
//! | `GET /metrics` | Prometheus text format |
//! | `GET /health` | 200 while the process serves |
//! | `GET /ready` | 200 when Trino answers `/v1/info` and has started and every dataset has loaded, else 503 (also once shutdown begins) |
//! | `GET /admin/cache/entries` | cache entries: id, statement, user, bytes, rows, age, hits, tables |
//! | `DELETE /admin/cache` | invalidate every entry |
//! | `DELETE /admin/cache/entries/{id}` | invalidate one entry |
//! | `DELETE /admin/cache/tables/{catalog.schema.table}` | invalidate entries that read a table |
//! | `GET /admin/datasets` | accelerated datasets: state, rows, bytes, version, watermark, last refresh, lag, error |
//! | `POST /admin/datasets/{table}/refresh` | refresh now (202) |
//! | `POST /admin/datasets/{table}/pause`, `.../resume` | stop and restart refreshing |

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::accel::Datasets;
use crate::cache::ResultCache;
use crate::trino::TrinoClient;

/// What the admin routes need.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub cache: Option<ResultCache>,
    /// Accelerated datasets; `/ready` waits until each has loaded once.
    pub datasets: Option<Datasets>,
    pub trino: TrinoClient,
    pub token: Option<String>,
    /// Cancelled when shutdown begins: `/ready` answers 503 from then on,
    /// so load balancers stop sending new work while streams drain.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            register_at_zero();
            handle
        })
        .clone()
}

/// Counters of rare events start at zero rather than appear with the first
/// event, so that dashboards show 0 and `rate()` sees the first increase.
fn register_at_zero() {
    for name in [
        "flightdeck_cache_bypass_total",
        "flightdeck_cache_hits_total",
        "flightdeck_cache_misses_total",
        "flightdeck_cache_not_shared_total",
        "flightdeck_cache_refreshes_total",
        "flightdeck_cache_stale_if_error_total",
        "flightdeck_cache_stale_total",
        "flightdeck_cache_superseded_fills_total",
        "flightdeck_cache_too_large_total",
        "flightdeck_memory_exhausted_total",
        "flightdeck_pending_evicted_total",
        "flightdeck_pending_expired_total",
        "flightdeck_pending_refused_total",
        "flightdeck_trino_bytes_total",
        "flightdeck_trino_queries_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for reason in ["expired", "invalidated", "replaced", "size"] {
        metrics::counter!("flightdeck_cache_evictions_total", "reason" => reason).increment(0);
    }
    for name in ["flightdeck_streams_open", "flightdeck_pending_queries", "flightdeck_trino_running_queries"] {
        metrics::gauge!(name).increment(0.0);
    }
}

/// An error answer of the admin API, as JSON.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let state = Arc::new(state);
    let admin = Router::new()
        .route("/admin/cache/entries", get(list_entries))
        .route("/admin/cache", delete(invalidate_all))
        .route("/admin/cache/entries/{id}", delete(invalidate_entry))
        .route("/admin/cache/tables/{table}", delete(invalidate_table))
        .route("/admin/datasets", get(list_datasets))
        .route("/admin/datasets/{table}/{action}", post(dataset_action))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), require_token));
    let handle = prometheus();
    Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .merge(admin)
        .with_state(state)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(state): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return ApiError(StatusCode::FORBIDDEN, "admin API disabled: configure an admin token".into()).into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.as_bytes(), token.as_bytes()) {
        return ApiError(StatusCode::UNAUTHORIZED, "missing or wrong admin bearer token".into()).into_response();
    }
    next.run(req).await
}

/// Asks Trino whether it is up every `period` until `stop`, for the
/// `flightdeck_trino_up` gauge (alerts need it without waiting for a
/// client to fail).
pub async fn probe_trino(trino: TrinoClient, period: std::time::Duration, stop: tokio_util::sync::CancellationToken) {
    // The first probe waits a period: at start `/ready` is being asked anyway.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let _ = trino_up(&trino).await;
            }
            _ = stop.cancelled() => return,
        }
    }
}

/// Whether Trino answers and has started, also as `flightdeck_trino_up`.
async fn trino_up(trino: &TrinoClient) -> crate::trino::Result<bool> {
    let ready = trino.ready().await;
    metrics::gauge!("flightdeck_trino_up").set(if matches!(ready, Ok(true)) { 1.0 } else { 0.0 });
    ready
}

async fn ready(State(state): State<Arc<AdminState>>) -> Response {
    if state.shutdown.is_cancelled() {
        return ApiError(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()).into_response();
    }
    if state.datasets.as_ref().is_some_and(|d| !d.all_loaded()) {
        return ApiError(StatusCode::SERVICE_UNAVAILABLE, "accelerated datasets are still loading".into())
            .into_response();
    }
    match trino_up(&state.trino).await {
        Ok(true) => (StatusCode::OK, "ready").into_response(),
        Ok(false) => ApiError(StatusCode::SERVICE_UNAVAILABLE, "Trino is starting".into()).into_response(),
        Err(e) => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

fn cache(state: &AdminState) -> Result<&ResultCache, ApiError> {
    state.cache.as_ref().ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "the result cache is disabled".into()))
}

async fn list_entries(State(state): State<Arc<AdminState>>) -> Result<Response, ApiError> {
    let entries = cache(&state)?.entries();
    Ok(Json(json!({ "entries": entries })).into_response())
}

async fn invalidate_all(State(state): State<Arc<AdminState>>) -> Result<Response, ApiError> {
    cache(&state)?.invalidate_all().await;
    Ok(Json(json!({ "invalidated": "all" })).into_response())
}

async fn invalidate_entry(State(state): State<Arc<AdminState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if cache(&state)?.invalidate_id(&id).await {
        Ok(Json(json!({ "invalidated": id })).into_response())
    } else {
        Err(ApiError(StatusCode::NOT_FOUND, format!("no cache entry {id}")))
    }
}

async fn invalidate_table(
    State(state): State<Arc<AdminState>>,
    Path(table): Path<String>,
) -> Result<Response, ApiError> {
    let table = table.to_ascii_lowercase();
    if table.split('.').count() != 3 {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("`{table}` is not catalog.schema.table")));
    }
    cache(&state)?.invalidate_tables(std::slice::from_ref(&table)).await;
    Ok(Json(json!({ "invalidated_table": table })).into_response())
}

fn datasets(state: &AdminState) -> Result<&Datasets, ApiError> {
    state
        .datasets
        .as_ref()
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no accelerated datasets are configured".into()))
}

async fn list_datasets(State(state): State<Arc<AdminState>>) -> Result<Response, ApiError> {
    Ok(Json(datasets(&state)?.list()).into_response())
}

async fn dataset_action(
    State(state): State<Arc<AdminState>>,
    Path((table, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let d = datasets(&state)?;
    let (found, status) = match action.as_str() {
        "refresh" => (d.refresh_now(&table), StatusCode::ACCEPTED),
        "pause" => (d.pause(&table), StatusCode::OK),
        "resume" => (d.resume(&table), StatusCode::ACCEPTED),
        other => return Err(ApiError(StatusCode::NOT_FOUND, format!("no dataset action `{other}`"))),
    };
    if !found {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no dataset `{table}`")));
    }
    Ok((status, Json(json!({ "table": table.to_lowercase(), "action": action }))).into_response())
}
