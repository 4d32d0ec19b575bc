//! The dashboard load harness: one run, seeded queries, the same ones sent
//! to Trino directly and through Flightdeck, at several concurrencies.
//!
//!     scripts/bench.sh                       # the full sweep, results into docs/
//!     cargo bench --bench load -- --help     # every option
//!
//! Modes: `trino` (Trino's REST protocol, straight to Trino), `passthrough`
//! (Flight SQL to a Flightdeck with its cache off), `cache` (Flight SQL to a
//! Flightdeck whose cache was warmed with every query first), `local`
//! (Flight SQL to a Flightdeck with its cache off and every benchmark table
//! accelerated: the local engine answers what it can, Trino the rest; each
//! query's literals are drawn fresh, and each concurrency draws its own
//! statements, so nothing repeats across runs). Flightdeck
//! runs as its own process, so its CPU time and resident memory are read
//! from /proc. Without `--bench` (as in `cargo test --all-targets`) it makes
//! a short smoke run on small data and fails if Flightdeck is not clearly
//! faster with a warm cache, or clearly slower passing through, than Trino
//! measured in the same run.

#[path = "../common/mod.rs"]
mod common;
mod dashboard;
mod data;
mod report;
mod workload;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::FlightDescriptor;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use flightdeck::trino::{Session, TrinoClient, TrinoConfig};
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;

use data::Scale;
use report::{Report, RunResult, TemplateLatency};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Trino,
    Passthrough,
    Cache,
    Local,
}

const ALL_MODES: [Mode; 4] = [Mode::Trino, Mode::Passthrough, Mode::Cache, Mode::Local];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Trino => "trino",
            Mode::Passthrough => "passthrough",
            Mode::Cache => "cache",
            Mode::Local => "local",
        }
    }
}

struct Options {
    scale: Scale,
    queries: usize,
    concurrency: Vec<usize>,
    seed: u64,
    write_docs: bool,
    smoke: bool,
    /// Run the dashboard mode instead of the query-list modes.
    dashboard: bool,
    /// The dashboard mode runs each target this long at each concurrency
    /// (`--seconds`, 30 unless `--queries` sets a number of opens instead).
    seconds: Option<u64>,
    /// Build the data in Trino and stop (for scripts/bench-dashboard.py).
    data_only: bool,
    workload: workload::Workload,
    /// Templates left out of the workload.
    skip: Vec<String>,
    /// The query-list modes to run.
    modes: Vec<Mode>,
    /// The dashboard mode appends each query here as a CSV line: target,
    /// clients, start (ms from the run's start), latency (ms), chart, route.
    timeline: Option<String>,
    /// How clients reach Trino and Flightdeck: Flight SQL (Trino direct
    /// through Flightdeck's own Trino client) or Trino's HTTP protocol on
    /// both (one JSON client, to Trino and to Flightdeck's Trino port).
    protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Flight,
    Trino,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if args.iter().any(|a| a == "--help") {
        println!(
            "options: --scale smoke|full  --queries N  --concurrency 1,4,16,64  --seed N  --write-docs  --dashboard\n\
             \x20        --workload all|energy|tpch  --skip template,...  --modes trino,passthrough,cache,local\n\
             \x20        --protocol flight|trino  --data-only  --timeline FILE (dashboard mode: every query, as CSV)\n\
             \x20        --seconds N (dashboard mode: each target and concurrency runs N s; default 30, or --queries opens)\n\
             (without --bench: a smoke run with ratio checks)"
        );
        std::process::exit(0);
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    let scale = match value("--scale").as_deref() {
        Some("full") => Scale::Full,
        Some("smoke") => Scale::Smoke,
        None if smoke => Scale::Smoke,
        None => Scale::Full,
        Some(other) => panic!("unknown scale {other}"),
    };
    Options {
        scale,
        queries: value("--queries").and_then(|n| n.parse().ok()).unwrap_or(if smoke { 40 } else { 200 }),
        concurrency: value("--concurrency")
            .map(|s| s.split(',').map(|n| n.trim().parse().expect("concurrency")).collect())
            .unwrap_or_else(|| if smoke { vec![1, 4] } else { vec![1, 4, 16, 64] }),
        seed: value("--seed").and_then(|n| n.parse().ok()).unwrap_or(42),
        write_docs: args.iter().any(|a| a == "--write-docs"),
        dashboard: args.iter().any(|a| a == "--dashboard"),
        seconds: value("--seconds")
            .map(|s| s.parse().expect("--seconds"))
            .or_else(|| value("--queries").is_none().then_some(30)),
        timeline: value("--timeline"),
        data_only: args.iter().any(|a| a == "--data-only"),
        workload: value("--workload").map_or(workload::Workload::All, |w| {
            workload::Workload::parse(&w).unwrap_or_else(|| panic!("unknown workload {w}"))
        }),
        skip: value("--skip").map_or_else(Vec::new, |s| s.split(',').map(|t| t.trim().to_string()).collect()),
        modes: value("--modes").map_or_else(
            || ALL_MODES.to_vec(),
            |m| {
                m.split(',')
                    .map(|m| {
                        *ALL_MODES.iter().find(|x| x.name() == m.trim()).unwrap_or_else(|| panic!("unknown mode {m}"))
                    })
                    .collect()
            },
        ),
        protocol: match value("--protocol").as_deref() {
            None | Some("flight") => Protocol::Flight,
            Some("trino") => Protocol::Trino,
            Some(other) => panic!("unknown protocol {other}"),
        },
        smoke,
    }
}

/// A Flightdeck process; killed on drop.
struct Flightdeck {
    child: Child,
    flight: Channel,
    admin: String,
    /// Base URL of its Trino-protocol port.
    trino_http: String,
    /// Its configuration and dataset snapshots (gigabytes at full scale),
    /// removed once the process is gone.
    _dir: tempfile::TempDir,
}

impl Drop for Flightdeck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Flightdeck {
    /// A Flightdeck with its cache on or off, and `datasets` accelerated
    /// (ready once every one has loaded): `[[datasets]]` tables of TOML.
    async fn start(trino_url: &str, cache: bool, datasets: &[String]) -> Flightdeck {
        let tmp = tempfile::Builder::new().prefix("flightdeck-bench-").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut file = format!(
            "[admin]\ntoken = \"{ADMIN_TOKEN}\"\n\n[accel]\ndir = {:?}\nmemory_budget = \"16GiB\"\n",
            dir.join("accel")
        );
        for table in datasets {
            file.push_str(&format!("\n[[datasets]]\n{table}\n"));
        }
        let config = dir.join("flightdeck.toml");
        std::fs::write(&config, file).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_flightdeck"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--trino-protocol-listen",
                "127.0.0.1:0",
            ])
            .args([
                "--trino-url",
                trino_url,
                "--cache",
                if cache { "true" } else { "false" },
                "--cache-ttl-secs",
                "3600",
            ])
            .args(["--pending-queries", "4096"])
            .args(["--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start flightdeck");
        let at = common::listening(&mut child, Duration::from_secs(30));
        let trino_http = at.trino.expect("the Trino protocol is served");
        // Loading sf1 into the datasets takes a while.
        let deadline = Instant::now() + Duration::from_secs(if datasets.is_empty() { 30 } else { 900 });
        loop {
            let ready = reqwest::get(format!("{}/ready", at.admin)).await.is_ok_and(|r| r.status().is_success());
            if ready && let Ok(flight) = Channel::from_shared(at.flight.clone()).unwrap().connect().await {
                return Flightdeck { child, flight, admin: at.admin, trino_http, _dir: tmp };
            }
            assert!(child.try_wait().unwrap().is_none(), "flightdeck exited before it was ready");
            assert!(Instant::now() < deadline, "flightdeck was not ready in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// (CPU seconds, resident MiB, peak resident MiB) from /proc.
    fn usage(&self) -> (f64, f64, f64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name: utime and stime are the 12th and 13th.
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let cpu = (ticks(11) + ticks(12)) / 100.0;
        let (rss, peak) = common::memory_mib(pid);
        (cpu, rss, peak)
    }

    /// Its counters so far.
    async fn counters(&self) -> Counters {
        let text = reqwest::get(format!("{}/metrics", self.admin)).await.unwrap().text().await.unwrap();
        let metric = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64
        };
        Counters {
            trino_queries: metric("flightdeck_trino_queries_total"),
            trino_bytes: metric("flightdeck_trino_bytes_total"),
            plans_reused: metric("flightdeck_local_plan_reuse_total{outcome=\"reused\"}"),
            partial_hits: metric("flightdeck_local_slice_partials_total{outcome=\"hit\"}"),
            partial_misses: metric("flightdeck_local_slice_partials_total{outcome=\"miss\"}"),
        }
    }
}

/// Counters read before and after a run: queries and bytes sent to and
/// received from Trino, local queries that reused a kept plan, and whole
/// slices whose partial aggregates were found kept and not.
#[derive(Default)]
struct Counters {
    trino_queries: u64,
    trino_bytes: u64,
    plans_reused: u64,
    partial_hits: u64,
    partial_misses: u64,
}

/// Rows of `sql` through Flightdeck, the route that answered it and the
/// cache's outcome.
async fn via_flight(client: FlightServiceClient<Channel>, sql: &str) -> Result<(usize, String, String), String> {
    let (batches, route, cache) = fetch(client, sql, None).await?;
    Ok((batches.iter().map(|b| b.num_rows()).sum(), route, cache))
}

/// The first value of `sql`'s answer as text, through Flightdeck with the
/// result cache skipped.
async fn latest_text(client: FlightServiceClient<Channel>, sql: &str) -> Result<String, String> {
    let (batches, ..) = fetch(client, sql, Some("no-cache")).await?;
    let b = batches.iter().find(|b| b.num_rows() > 0).ok_or("no rows")?;
    arrow::util::display::array_value_to_string(b.column(0), 0).map_err(|e| e.to_string())
}

/// GetFlightInfo (with an `x-flightdeck-cache` directive, if any) and DoGet
/// of `sql`: the batches, and DoGet's route and cache outcome.
async fn fetch(
    mut client: FlightServiceClient<Channel>,
    sql: &str,
    directive: Option<&str>,
) -> Result<(Vec<arrow::record_batch::RecordBatch>, String, String), String> {
    let cmd = CommandStatementQuery { query: sql.into(), transaction_id: None };
    let mut request = tonic::Request::new(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()));
    if let Some(d) = directive {
        request.metadata_mut().insert("x-flightdeck-cache", d.parse().map_err(|_| "a directive")?);
    }
    let info = client.get_flight_info(request).await.map_err(|e| e.message().to_string())?.into_inner();
    let ticket = info.endpoint.first().and_then(|e| e.ticket.clone()).ok_or("no ticket")?;
    let data = client.do_get(ticket).await.map_err(|e| e.message().to_string())?;
    let header = |k: &str| data.metadata().get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (route, cache) = (header("x-flightdeck-route"), header("x-flightdeck-cache"));
    let data = data.into_inner();
    let s = FlightRecordBatchStream::new_from_flight_data(data.map_err(|e| FlightError::Tonic(Box::new(e))));
    let batches = s.try_collect().await.map_err(|e| e.to_string())?;
    Ok((batches, route, cache))
}

/// `sql` through Trino's HTTP protocol at `base`, as a Trino client sends
/// it: POST, then every nextUri. The rows, and the route Flightdeck names
/// (`trino` from Trino itself) and cache outcome.
async fn via_http(http: &reqwest::Client, base: &str, sql: &str) -> Result<(usize, String, String), String> {
    let mut response = http
        .post(format!("{base}/v1/statement"))
        .header("X-Trino-User", "bench")
        .header("X-Trino-Client-Capabilities", "PARAMETRIC_DATETIME")
        .body(sql.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (mut rows, mut route, mut cache) = (0, "trino".to_string(), String::new());
    loop {
        let header = |k: &str| response.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        if let (Some(r), Some(c)) = (header("x-flightdeck-route"), header("x-flightdeck-cache")) {
            (route, cache) = (r, c);
        }
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
        }
        let page: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if let Some(e) = page.get("error") {
            return Err(e["message"].to_string());
        }
        rows += page.get("data").and_then(|d| d.as_array()).map_or(0, Vec::len);
        let Some(next) = page.get("nextUri").and_then(|u| u.as_str()) else { return Ok((rows, route, cache)) };
        response = http.get(next).header("X-Trino-User", "bench").send().await.map_err(|e| e.to_string())?;
    }
}

async fn via_trino(trino: &TrinoClient, sql: &str) -> Result<usize, String> {
    let session = Session { user: "bench".into(), ..Default::default() };
    let (_, batches) = trino.execute(&session, sql).await.map_err(|e| e.to_string())?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// Sends every query once with `concurrency` workers; returns latencies
/// with the route that answered (in order of completion) and the number of
/// errors.
async fn run(
    mode: Mode,
    queries: &Arc<Vec<(&'static str, String)>>,
    concurrency: usize,
    trino: &TrinoClient,
    fd: Option<&Flightdeck>,
    http: Option<(&reqwest::Client, &str)>,
) -> (Vec<(Duration, String, &'static str)>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (queries, next, done, trino) = (Arc::clone(queries), Arc::clone(&next), Arc::clone(&done), trino.clone());
        let client = fd.map(|f| FlightServiceClient::new(f.flight.clone()).max_decoding_message_size(256 << 20));
        let http = http.map(|(c, base)| (c.clone(), base.to_string()));
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((name, sql)) = queries.get(i) else { break };
                let start = Instant::now();
                let result = match (&http, &client) {
                    (Some((h, base)), _) => via_http(h, base, sql).await.map(|(rows, route, _)| (rows, route)),
                    (None, Some(c)) => via_flight(c.clone(), sql).await.map(|(rows, route, _)| (rows, route)),
                    (None, None) => via_trino(&trino, sql).await.map(|rows| (rows, "trino".to_string())),
                };
                let took = start.elapsed();
                match result {
                    Ok((_, route)) => lat.push((took, route, *name)),
                    Err(e) => {
                        lat.push((took, String::new(), *name));
                        errors += 1;
                        eprintln!("\n{} {name}: {e}", mode.name());
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            (lat, errors)
        }));
    }
    let total = queries.len();
    // One line rewritten in place on a terminal; a line every 10 s in logs.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = tokio::spawn({
        let done = Arc::clone(&done);
        async move {
            let started = Instant::now();
            loop {
                let n = done.load(Ordering::SeqCst);
                if tty {
                    eprint!("\r{:<12} c={concurrency:<3} {n:>5}/{total}", mode.name());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                } else {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    eprintln!(
                        "{:<12} c={concurrency:<3} {:>5}/{total} after {:.0}s",
                        mode.name(),
                        done.load(Ordering::SeqCst),
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    });
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    progress.abort();
    if tty {
        eprint!("\r{:<40}\r", "");
    }
    (lat, errors)
}

/// Waits for a quiet machine before a measured run ([`common::settle`], at
/// most 30 s); says how long when it took more than one sample.
async fn settled(what: &str, concurrency: usize) {
    let waited = tokio::task::spawn_blocking(|| common::settle(Duration::from_secs(30))).await.unwrap();
    if waited > 1.5 {
        eprintln!("{what} c={concurrency}: waited {waited:.0} s for a quiet machine");
    }
}

/// The `p` quantile of sorted latencies in milliseconds; 0 when there are none.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() { 0.0 } else { common::ms(common::percentile(sorted, p)) }
}

#[tokio::main]
async fn main() {
    let opts = options();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/trino.sh");
    assert!(Command::new(script).arg("start").status().unwrap().success());
    let trino_url = format!("http://127.0.0.1:{}", std::env::var("TRINO_PORT").unwrap_or_else(|_| "8080".into()));
    let trino = TrinoClient::new(&TrinoConfig::new(trino_url.parse().unwrap())).unwrap();
    let started = Instant::now();
    data::ensure(&trino, opts.scale).await;
    eprintln!("data ready in {:.1}s", started.elapsed().as_secs_f64());
    if opts.data_only {
        return;
    }

    let queries = Arc::new(workload::queries(opts.scale, opts.workload, &opts.skip, opts.queries, opts.seed));
    if opts.dashboard {
        return run_dashboards(&opts, &trino, &trino_url).await;
    }
    let wants = |m: Mode| opts.modes.contains(&m);
    let passthrough = match wants(Mode::Passthrough) || opts.smoke {
        true => Some(Flightdeck::start(&trino_url, false, &[]).await),
        false => None,
    };
    let cached = match wants(Mode::Cache) {
        true => Some(Flightdeck::start(&trino_url, true, &[]).await),
        false => None,
    };
    let accelerated = match wants(Mode::Local) {
        true => {
            let tables = datasets(opts.scale, opts.workload, "1h");
            Some(Flightdeck::start(&trino_url, false, &tables).await)
        }
        false => None,
    };
    // Warm Trino's JIT and plans on a handful of queries first.
    for (_, sql) in queries.iter().take(10) {
        via_trino(&trino, sql).await.expect("warm-up query");
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    if let Some(cached) = &cached {
        // Warm the cache with every query once, through the protocol measured:
        // its user is the one whose answers are cached.
        let through = (opts.protocol == Protocol::Trino).then_some((&http, cached.trino_http.as_str()));
        let warm = run(Mode::Cache, &queries, 4, &trino, Some(cached), through).await;
        assert_eq!(warm.1, 0, "warming the cache failed");
    }

    if opts.protocol == Protocol::Trino {
        for (_, sql) in queries.iter().take(10) {
            via_http(&http, &trino_url, sql).await.expect("warm-up query");
        }
    }
    let mut results = Vec::new();
    for (level, &concurrency) in opts.concurrency.iter().enumerate() {
        // Each concurrency its own statements (Trino and Flightdeck the
        // same ones), so that nothing a local run keeps from the runs
        // before it (plans, partial aggregates) meets the same literals
        // again. The cache mode runs the statements it was warmed with.
        let fresh = match level {
            0 => Arc::clone(&queries),
            n => Arc::new(workload::queries(
                opts.scale,
                opts.workload,
                &opts.skip,
                opts.queries,
                opts.seed.wrapping_add(n as u64),
            )),
        };
        for &mode in &opts.modes {
            let queries = if mode == Mode::Cache { &queries } else { &fresh };
            let fd = match mode {
                Mode::Trino => None,
                Mode::Passthrough => passthrough.as_ref(),
                Mode::Cache => cached.as_ref(),
                Mode::Local => accelerated.as_ref(),
            };
            if !opts.smoke {
                settled(mode.name(), concurrency).await;
            }
            // Through Flightdeck, its own; to Trino direct, the client's.
            let counters = async || match fd {
                Some(f) => f.counters().await,
                None => Counters {
                    trino_queries: trino.stats().queries_started.load(Ordering::Relaxed),
                    trino_bytes: trino.stats().bytes_received.load(Ordering::Relaxed),
                    ..Counters::default()
                },
            };
            let before_cpu = fd.map(Flightdeck::usage);
            let before = counters().await;
            let http = match (opts.protocol, fd) {
                (Protocol::Flight, _) => None,
                (Protocol::Trino, Some(f)) => Some((&http, f.trino_http.as_str())),
                (Protocol::Trino, None) => Some((&http, trino_url.as_str())),
            };
            let start = Instant::now();
            let (mut lat, errors) = run(mode, queries, concurrency, &trino, fd, http).await;
            let wall = start.elapsed().as_secs_f64();
            let after = counters().await;
            let (cpu, rss, peak) = match (fd.map(Flightdeck::usage), before_cpu) {
                (Some((c1, r, p)), Some((c0, _, _))) => (Some(c1 - c0), Some(r), Some(p)),
                _ => (None, None, None),
            };
            lat.sort();
            let local: Vec<Duration> = lat.iter().filter(|(_, r, _)| r == "local").map(|(d, _, _)| *d).collect();
            let mut names: Vec<&str> = lat.iter().filter(|(_, r, _)| r == "local").map(|(_, _, n)| *n).collect();
            names.sort();
            names.dedup();
            let local_by_template = names
                .into_iter()
                .map(|name| {
                    let l = lat.iter().filter(|(_, r, n)| r == "local" && *n == name).map(|(d, _, _)| *d).collect();
                    TemplateLatency::of(name, l)
                })
                .collect();
            let lat: Vec<Duration> = lat.into_iter().map(|(d, _, _)| d).collect();
            let r = RunResult {
                local_queries: local.len(),
                local_p50_ms: pct(&local, 0.50),
                local_p95_ms: pct(&local, 0.95),
                mode: mode.name().into(),
                concurrency,
                queries: lat.len(),
                errors,
                p50_ms: pct(&lat, 0.50),
                p95_ms: pct(&lat, 0.95),
                p99_ms: pct(&lat, 0.99),
                qps: lat.len() as f64 / wall,
                flightdeck_cpu_s: cpu,
                flightdeck_rss_mib: rss,
                flightdeck_peak_rss_mib: peak,
                trino_queries: after.trino_queries - before.trino_queries,
                trino_bytes: after.trino_bytes - before.trino_bytes,
                plans_reused: after.plans_reused - before.plans_reused,
                partials_kept: (after.partial_hits - before.partial_hits, after.partial_misses - before.partial_misses),
                local_by_template,
            };
            println!("{}", r.line());
            results.push(r);
        }
    }
    let report = Report::new(opts.scale, opts.seed, opts.workload, opts.skip.len(), results);
    report.write(opts.write_docs);

    if opts.smoke {
        let passthrough = passthrough.as_ref().expect("a smoke run starts the pass-through Flightdeck");
        smoke_checks(&report, &queries, &trino, passthrough).await;
    }
}

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

/// `[[datasets]]` tables for every table of the workload: the energy series
/// as a time series (append on `ts`, refreshed every `energy_interval`,
/// held in time order so time ranges skip what they do not cover), tpch as
/// full copies.
fn datasets(scale: Scale, workload: workload::Workload, energy_interval: &str) -> Vec<String> {
    let energy = format!("{}.prices", scale.energy());
    data::tables(scale)
        .into_iter()
        .filter(|t| workload.reads(scale, t))
        .map(|t| match t == energy {
            true => format!(
                "table = \"{t}\"\nmode = \"append\"\ntime_column = \"ts\"\noverlap = \"0s\"\ninterval = \"{energy_interval}\""
            ),
            false => format!("table = \"{t}\"\nmode = \"full\"\ninterval = \"1h\""),
        })
        .collect()
}

/// The dashboard mode ([`dashboard`]): Trino direct and Flightdeck, at each
/// concurrency, side by side.
async fn run_dashboards(opts: &Options, trino: &TrinoClient, trino_url: &str) {
    let length = match opts.seconds {
        Some(s) => dashboard::Length::Time(Duration::from_secs(s)),
        None => dashboard::Length::Opens(opts.queries),
    };
    let fd = Flightdeck::start(trino_url, true, &datasets(opts.scale, workload::Workload::All, "2s")).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let mut results = Vec::new();
    for &concurrency in &opts.concurrency {
        // `--modes local` leaves Trino direct out (to compare Flightdeck
        // builds side by side).
        for target in ["trino", "flightdeck"].into_iter().filter(|t| *t != "trino" || opts.modes.contains(&Mode::Trino))
        {
            let flight = (target == "flightdeck").then_some(&fd);
            if let Some(f) = flight {
                let cleared = reqwest::Client::new()
                    .delete(format!("{}/admin/cache", f.admin))
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .unwrap();
                assert!(cleared.status().is_success(), "clearing the cache: {}", cleared.status());
            }
            settled(target, concurrency).await;
            let appends = Arc::new(dashboard::Appends::default());
            let log = Arc::new(std::sync::Mutex::new(Vec::new()));
            let appender = tokio::spawn(dashboard::append_rows(
                trino.clone(),
                opts.scale,
                Duration::from_secs(3),
                Arc::clone(&appends),
                Arc::clone(&log),
            ));
            let watcher = flight.map(|f| {
                tokio::spawn(dashboard::watch_freshness(
                    FlightServiceClient::new(f.flight.clone()),
                    opts.scale,
                    Arc::clone(&appends),
                    Arc::clone(&log),
                ))
            });
            // The same opens in the same order for every target, each
            // taken by the next user free.
            let opens = Arc::new(std::sync::Mutex::new(dashboard::Opens::new(opts.scale, opts.seed).enumerate()));
            let started = Instant::now();
            let deadline = match length {
                dashboard::Length::Time(t) => Some(started + t),
                dashboard::Length::Opens(_) => None,
            };
            let mut users = Vec::new();
            for _ in 0..concurrency {
                let (opens, trino) = (Arc::clone(&opens), trino.clone());
                let run_start = started;
                let client =
                    flight.map(|f| FlightServiceClient::new(f.flight.clone()).max_decoding_message_size(256 << 20));
                // Through Trino's protocol: one JSON client, to Trino or to Flightdeck's port.
                let http = (opts.protocol == Protocol::Trino)
                    .then(|| (http.clone(), flight.map_or(trino_url.to_string(), |f| f.trino_http.clone())));
                users.push(tokio::spawn(async move {
                    let mut out = Vec::new();
                    let next = || match (opens.lock().unwrap().next(), length) {
                        (Some((i, _)), dashboard::Length::Opens(n)) if i >= n => None,
                        (next, _) => next.map(|(_, open)| open),
                    };
                    while let Some(open) = next() {
                        for (template, sql) in open {
                            if deadline.is_some_and(|d| Instant::now() >= d) {
                                return out;
                            }
                            let start = Instant::now();
                            let answered = match (&http, &client) {
                                (Some((h, base)), _) => {
                                    via_http(h, base, &sql).await.map(|(_, route, cache)| (route, cache))
                                }
                                (None, Some(c)) => {
                                    via_flight(c.clone(), &sql).await.map(|(_, route, cache)| (route, cache))
                                }
                                (None, None) => {
                                    via_trino(&trino, &sql).await.map(|_| ("trino".to_string(), String::new()))
                                }
                            };
                            out.push((start.duration_since(run_start), start.elapsed(), answered, template));
                        }
                    }
                    out
                }));
            }
            let mut all = Vec::new();
            let mut by_template = Vec::new();
            let mut timeline = String::new();
            for u in users {
                for (at, d, a, t) in u.await.unwrap() {
                    let route = a.as_ref().map_or("error".to_string(), |(r, _)| r.clone());
                    timeline.push_str(&format!(
                        "{target},{concurrency},{:.1},{:.1},{t},{route}\n",
                        at.as_secs_f64() * 1e3,
                        d.as_secs_f64() * 1e3
                    ));
                    by_template.push((t, route, d));
                    all.push((d, a));
                }
            }
            if let Some(path) = &opts.timeline {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open --timeline");
                f.write_all(timeline.as_bytes()).expect("write --timeline");
            }
            let wall = started.elapsed().as_secs_f64();
            // Flightdeck's runs are shorter than the append period: rows go
            // on being appended until five of them were seen (or a minute).
            if flight.is_some() {
                let until = Instant::now() + Duration::from_secs(60);
                while appends.seen.load(Ordering::SeqCst) < 5 && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            appends.stop.store(true, Ordering::SeqCst);
            appender.await.unwrap();
            let mut freshness = match watcher {
                Some(w) => w.await.unwrap(),
                None => Vec::new(),
            };
            freshness.sort_by(f64::total_cmp);
            let errors = all.iter().filter(|(_, a)| a.is_err()).count();
            let mut lat: Vec<Duration> = all.iter().map(|(d, _)| *d).collect();
            lat.sort();
            let mut routes = Vec::new();
            for route in ["cache", "local", "trino"] {
                let mut l: Vec<Duration> =
                    all.iter().filter(|(_, a)| a.as_ref().is_ok_and(|(r, _)| r == route)).map(|(d, _)| *d).collect();
                l.sort();
                if !l.is_empty() {
                    routes.push((route.to_string(), l.len(), pct(&l, 0.5), pct(&l, 0.95), pct(&l, 0.99)));
                }
            }
            let hits = all.iter().filter(|(_, a)| a.as_ref().is_ok_and(|(r, _)| r == "cache")).count();
            let r = dashboard::DashboardResult {
                target: target.into(),
                concurrency,
                queries: all.len(),
                errors,
                p50_ms: pct(&lat, 0.5),
                p95_ms: pct(&lat, 0.95),
                p99_ms: pct(&lat, 0.99),
                qps: all.len() as f64 / wall,
                routes,
                hit_ratio: hits as f64 / all.len().max(1) as f64,
                freshness_p50_s: freshness.get(freshness.len() / 2).copied(),
                freshness_max_s: freshness.last().copied(),
                templates: dashboard::by_template(by_template),
            };
            println!("{}", serde_json::to_string(&r).unwrap());
            results.push(r);
        }
    }
    let report = Report::new(opts.scale, opts.seed, opts.workload, opts.skip.len(), Vec::new());
    let md = dashboard::markdown(opts.scale, opts.seed, length, &results, &report.commit, &report.date);
    println!("{md}");
    if opts.write_docs {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&md);
        std::fs::write(&path, text).unwrap();
    }
}

/// CI's checks: what each mode did, not how fast (timings on a shared
/// machine are for `docs/benchmarks.md`, printed here for the log).
async fn smoke_checks(
    report: &Report,
    queries: &Arc<Vec<(&'static str, String)>>,
    trino: &TrinoClient,
    passthrough: &Flightdeck,
) {
    let get =
        |mode: &str| report.results.iter().find(|r| r.mode == mode && r.concurrency == 1).expect("concurrency 1 ran");
    let (direct, cache) = (get("trino"), get("cache"));
    assert_eq!(report.results.iter().map(|r| r.errors).sum::<usize>(), 0, "queries failed");
    // Every answer of the warmed cache came from it.
    assert_eq!(cache.trino_queries, 0, "the warm cache sent {} queries to Trino", cache.trino_queries);
    // Pass-through against Trino, query by query in turn, so both see the
    // same machine: printed, not asserted.
    let client = FlightServiceClient::new(passthrough.flight.clone()).max_decoding_message_size(256 << 20);
    let (mut t_direct, mut t_pass) = (Vec::new(), Vec::new());
    for (i, (_, sql)) in queries.iter().enumerate() {
        for which in [i % 2, 1 - i % 2] {
            let start = Instant::now();
            if which == 0 {
                via_trino(trino, sql).await.unwrap();
                t_direct.push(start.elapsed());
            } else {
                via_flight(client.clone(), sql).await.unwrap();
                t_pass.push(start.elapsed());
            }
        }
    }
    t_direct.sort();
    t_pass.sort();
    let (d50, p50) = (pct(&t_direct, 0.5), pct(&t_pass, 0.5));
    println!("paired: trino p50 {d50:.2} ms, passthrough p50 {p50:.2} ms ({:.2}x)", p50 / d50);
    let local = get("local");
    assert!(local.local_queries > 0, "the local engine answered none of the accelerated workload");
    println!("smoke checks passed: cache p95 {:.2} ms vs trino p95 {:.2} ms", cache.p95_ms, direct.p95_ms);
}
