//! The dashboard mode: people in front of dashboards, not a query list.
//!
//! Users open one of a few dashboards (Zipf: the first is the most popular),
//! usually with a filter state someone used recently (Zipf over the recent
//! states: repeats), sometimes with a new time range or market (fresh
//! literals). Each open runs the dashboard's chart queries one after the
//! other. Meanwhile an hour of rows is appended to the energy series every
//! few seconds, and a watcher measures how long an appended row takes to
//! show in answers through Flightdeck. Flightdeck starts from a cold cache
//! at each concurrency, with every table accelerated (the energy series in
//! append mode); Trino direct gets the same opens in the same order. Each
//! target runs a fixed time at each concurrency (long enough for appends
//! to land during it), or a fixed number of opens.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow_flight::flight_service_client::FlightServiceClient;
use flightdeck::trino::{Session, TrinoClient};
use rand::prelude::*;
use serde::Serialize;

use crate::data::Scale;
use crate::workload;

/// The dashboards: chart templates of the workload, by name.
pub const DASHBOARDS: &[&[&str]] = &[
    &["price_by_bucket", "volume_by_fuel", "missing_prices", "weekly_markets", "fuel_mix"],
    &["hourly_profile", "latest_hours", "top_nodes_by_price", "price_spikes"],
    &["emissions_by_market_month", "emission_intensity", "expensive_hours", "fuel_price_by_bucket"],
    &["revenue_by_year", "top_customers", "monthly_orders", "order_priorities", "part_prices"],
];

/// One dashboard opened with one filter state: its chart queries.
pub type Open = Vec<(&'static str, String)>;

/// The sequence of opens drawn with a seed: every target gets the same
/// one, as far as its run goes.
pub struct Opens {
    scale: Scale,
    rng: StdRng,
    /// Per dashboard, the filter states used so far (most recent first).
    states: Vec<Vec<u64>>,
}

impl Opens {
    pub fn new(scale: Scale, seed: u64) -> Opens {
        Opens { scale, rng: StdRng::seed_from_u64(seed), states: vec![Vec::new(); DASHBOARDS.len()] }
    }
}

impl Iterator for Opens {
    type Item = Open;

    fn next(&mut self) -> Option<Open> {
        let zipf = |rng: &mut StdRng, n: usize| -> usize {
            // P(k) proportional to 1/(k+1): a few items take most of the draws.
            let weights: Vec<f64> = (0..n).map(|k| 1.0 / (k as f64 + 1.0)).collect();
            let total: f64 = weights.iter().sum();
            let mut u = rng.random::<f64>() * total;
            for (k, w) in weights.iter().enumerate() {
                if u < *w {
                    return k;
                }
                u -= w;
            }
            n - 1
        };
        let d = zipf(&mut self.rng, DASHBOARDS.len());
        let recent = &mut self.states[d];
        // Two opens in three reuse a recent filter state.
        let state = if !recent.is_empty() && self.rng.random_bool(2.0 / 3.0) {
            recent[zipf(&mut self.rng, recent.len().min(8))]
        } else {
            let fresh = self.rng.random::<u64>();
            recent.insert(0, fresh);
            recent.truncate(8);
            fresh
        };
        Some(workload::charts(self.scale, DASHBOARDS[d], state))
    }
}

/// How long each target runs at each concurrency.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// This many opens.
    Opens(usize),
    /// Opens until this much time has passed; no query starts after it.
    Time(Duration),
}

/// One target at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardResult {
    pub target: String,
    pub concurrency: usize,
    pub queries: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub qps: f64,
    /// Per route that answered: (route, queries, p50, p95, p99).
    pub routes: Vec<(String, usize, f64, f64, f64)>,
    /// Share of queries answered from the result cache (hit or stale).
    pub hit_ratio: f64,
    /// Seconds from an append committed in Trino to an answer through the
    /// target that shows it: median and largest.
    pub freshness_p50_s: Option<f64>,
    pub freshness_max_s: Option<f64>,
    /// Per chart template and route: (template, route, queries, p50, p95,
    /// largest), slowest p95 first.
    pub templates: Vec<(String, String, usize, f64, f64, f64)>,
}

/// The latencies of `(template, route, latency)` by template and route.
pub fn by_template(all: Vec<(&str, String, Duration)>) -> Vec<(String, String, usize, f64, f64, f64)> {
    let mut groups: std::collections::BTreeMap<(String, String), Vec<Duration>> = Default::default();
    for (t, r, d) in all {
        groups.entry((t.to_string(), r)).or_default().push(d);
    }
    let mut out: Vec<_> = groups
        .into_iter()
        .map(|((t, r), l)| {
            let s = crate::report::TemplateLatency::of(&t, l);
            (t, r, s.queries, s.p50_ms, s.p95_ms, s.max_ms)
        })
        .collect();
    out.sort_by(|a, b| b.4.total_cmp(&a.4));
    out
}

/// Shared by the appender and the watcher.
#[derive(Debug, Default)]
pub struct Appends {
    /// Appended hours the watcher has seen through Flightdeck.
    pub seen: AtomicUsize,
    pub stop: AtomicBool,
}

/// Appends an hour of rows for every node to the energy series every
/// `every`, after the last hour there is; records each commit in `log`.
pub async fn append_rows(
    trino: TrinoClient,
    scale: Scale,
    every: Duration,
    state: Arc<Appends>,
    log: Arc<std::sync::Mutex<Vec<(i64, Instant)>>>,
) {
    let session = Session { user: "bench".into(), ..Default::default() };
    let table = format!("{}.prices", scale.energy());
    while !state.stop.load(Ordering::SeqCst) {
        let sql = format!(
            "INSERT INTO {table} SELECT ts + INTERVAL '1' HOUR, node_id, market, fuel_type, price, volume_mwh, emissions_t \
             FROM {table} WHERE ts = (SELECT max(ts) FROM {table})"
        );
        if trino.execute(&session, &sql).await.is_ok() {
            // When the rows were committed, and how many the table holds now.
            let committed = Instant::now();
            let (_, b) = trino.execute(&session, &format!("SELECT count(*) FROM {table}")).await.expect("row count");
            let rows = b[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0);
            log.lock().unwrap().push((rows, committed));
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls the row count through Flightdeck (cache skipped) until it shows
/// each appended hour; the seconds each took.
pub async fn watch_freshness(
    client: FlightServiceClient<tonic::transport::Channel>,
    scale: Scale,
    state: Arc<Appends>,
    log: Arc<std::sync::Mutex<Vec<(i64, Instant)>>>,
) -> Vec<f64> {
    let sql = format!("SELECT count(*) FROM {}.prices", scale.energy());
    let mut seen = 0;
    let mut out = Vec::new();
    while !state.stop.load(Ordering::SeqCst) {
        let pending: Vec<(i64, Instant)> = log.lock().unwrap()[seen..].to_vec();
        if let Some((rows, committed)) = pending.first() {
            let shown = crate::latest_text(client.clone(), &sql).await.ok().and_then(|t| t.parse::<i64>().ok());
            if shown.is_some_and(|n| n >= *rows) {
                out.push(committed.elapsed().as_secs_f64());
                seen += 1;
                state.seen.fetch_add(1, Ordering::SeqCst);
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out
}

pub fn markdown(
    scale: Scale,
    seed: u64,
    length: Length,
    results: &[DashboardResult],
    commit: &str,
    date: &str,
) -> String {
    use std::fmt::Write as _;
    let (option, opens) = match length {
        Length::Opens(n) => (format!("--queries {n}"), format!("{n} dashboard opens")),
        Length::Time(t) => {
            let s = t.as_secs();
            (format!("--seconds {s}"), format!("Dashboard opens for {s} s per target and concurrency"))
        }
    };
    let mut s = format!(
        "\n## Dashboard mode, {} scale ({date})\n\n    cargo bench --bench load -- --scale {} --dashboard {option}\n\n\
         {opens} (seed {seed}) of {} dashboards, users picking dashboards and recent filter states \
         by Zipf, one open in three with fresh literals; an hour of rows appended to the energy series every few \
         seconds while it runs (and after a Flightdeck run, until five appends were seen: \
         freshness is the time from an append's commit in Trino to a count through Flightdeck that includes it). Flightdeck (cache on, every table accelerated, the energy series in append mode \
         refreshed every 2 s) starts each concurrency with an empty cache. Commit `{commit}`.\n\n\
         | target | clients | queries | p50 ms | p95 ms | p99 ms | queries/s | hit ratio | freshness p50 s (max) | by route: queries, p50 / p95 / p99 ms |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        format!("{scale:?}").to_lowercase(),
        format!("{scale:?}").to_lowercase(),
        DASHBOARDS.len()
    );
    for r in results {
        let routes: Vec<String> = r
            .routes
            .iter()
            .map(|(route, n, p50, p95, p99)| format!("{route}: {n}, {p50:.1} / {p95:.1} / {p99:.1}"))
            .collect();
        let fresh = match (r.freshness_p50_s, r.freshness_max_s) {
            (Some(a), Some(b)) => format!("{a:.1} ({b:.1})"),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} % | {fresh} | {} |",
            r.target,
            r.concurrency,
            r.queries,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.qps,
            r.hit_ratio * 100.0,
            routes.join("; ")
        );
    }
    for r in results.iter().filter(|r| r.target == "flightdeck") {
        let slow: Vec<String> = r
            .templates
            .iter()
            .filter(|t| t.4 >= 100.0)
            .map(|(t, route, n, p50, p95, max)| format!("`{t}` ({route}: {n}, {p50:.1} / {p95:.1} / {max:.1})"))
            .collect();
        if !slow.is_empty() {
            let _ = writeln!(
                s,
                "\nCharts with a p95 of 100 ms or more through Flightdeck at {} clients (route: queries, p50 / p95 / \
                 largest ms): {}.",
                r.concurrency,
                slow.join(", ")
            );
        }
    }
    let best = |target: &str| {
        results
            .iter()
            .filter(|r| r.target == target && r.p95_ms < 100.0 && r.errors == 0)
            .map(|r| r.qps)
            .fold(0.0f64, f64::max)
    };
    let _ = writeln!(
        s,
        "\nThroughput at p95 under 100 ms (the best concurrency that kept it): Trino direct {:.1} queries/s, \
         Flightdeck {:.1} queries/s.",
        best("trino"),
        best("flightdeck")
    );
    s
}
