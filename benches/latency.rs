//! `SELECT 1` latency through Flightdeck against Trino directly, measured
//! side by side in one run (interleaved, so machine noise hits both alike).
//!
//!     cargo bench --bench latency [-- --iterations N]
//!
//! Starts the local Trino (scripts/trino.sh) and an in-process Flightdeck.
//! "Trino direct" is Flightdeck's own HTTP client talking to Trino: the floor
//! for any pass-through. "Flightdeck" is a Flight SQL client doing
//! GetFlightInfo + DoGet over loopback, with the result cache off.
//! "Flightdeck miss" is the same against a second Flightdeck with the cache
//! on and a statement never seen before each time: a cache fill, which also
//! asks Trino what the statement read. Without `--bench` (as in
//! `cargo test --benches`) it runs a handful of iterations as a smoke test.

mod common;

use std::time::{Duration, Instant};

use common::{ms, percentile};

use arrow_flight::FlightDescriptor;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use flightdeck::trino::{Session, TrinoClient, TrinoConfig};
use futures::{StreamExt, TryStreamExt};
use prost::Message;

fn report(name: &str, mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    let (p50, p95) = (percentile(&d, 0.5), percentile(&d, 0.95));
    println!("{name:<22} n={:<5} p50={:>8.2} ms  p95={:>8.2} ms  min={:>8.2} ms", d.len(), ms(p50), ms(p95), ms(d[0]));
    (p50, p95)
}

#[tokio::main]
async fn main() {
    let (bench, iterations) = common::iterations(300, 5);
    let trino_url = common::start_trino();

    // Pass-through: the cache is off, so every query goes to Trino.
    let mut config = flightdeck::Config::for_trino(&trino_url);
    config.cache.enabled = false;
    let app = flightdeck::Application::build(config).await.unwrap();
    let addr = app.flight_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let flight = FlightServiceClient::new(channel);
    // Cache on: every statement below is new to it, so each is a fill.
    let cached = flightdeck::Application::build(flightdeck::Config::for_trino(&trino_url)).await.unwrap();
    let cached_addr = cached.flight_addr();
    tokio::spawn(cached.run_until_stopped(std::future::pending()));
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{cached_addr}")).unwrap().connect().await.unwrap();
    let flight_cached = FlightServiceClient::new(channel);
    let trino = TrinoClient::new(&TrinoConfig::new(trino_url.parse().unwrap())).unwrap();
    let session = Session { user: "bench".into(), ..Default::default() };

    let via_flightdeck = |mut flight: FlightServiceClient<tonic::transport::Channel>, sql: String| async move {
        let cmd = CommandStatementQuery { query: sql, transaction_id: None };
        let info =
            flight.get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec())).await.unwrap().into_inner();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let data = flight.do_get(ticket).await.unwrap().into_inner();
        let mut s = FlightRecordBatchStream::new_from_flight_data(data.map_err(|e| FlightError::Tonic(Box::new(e))));
        let mut n = 0;
        while let Some(b) = s.next().await {
            n += b.unwrap().num_rows();
        }
        assert_eq!(n, 1);
    };
    let direct = |trino: TrinoClient, session: Session, sql: String| async move {
        let (_, batches) = trino.execute(&session, &sql).await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    };

    // Warm up Trino's JIT and both connection pools.
    let select_1 = || "SELECT 1".to_string();
    // A statement no cache has seen, of the same shape as `SELECT 1`.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let fresh = |i: usize| format!("SELECT 1 AS x{run}_{i}");
    for w in 0..if bench { 50 } else { 1 } {
        direct(trino.clone(), session.clone(), select_1()).await;
        via_flightdeck(flight.clone(), select_1()).await;
        via_flightdeck(flight_cached.clone(), format!("SELECT 1 AS warm{run}_{w}")).await;
    }
    let (mut t_direct, mut t_fd, mut t_miss) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations {
        // Rotate which goes first so none always follows another.
        for k in 0..3 {
            let start = Instant::now();
            match (i + k) % 3 {
                0 => {
                    direct(trino.clone(), session.clone(), select_1()).await;
                    t_direct.push(start.elapsed());
                }
                1 => {
                    via_flightdeck(flight.clone(), select_1()).await;
                    t_fd.push(start.elapsed());
                }
                _ => {
                    via_flightdeck(flight_cached.clone(), fresh(i)).await;
                    t_miss.push(start.elapsed());
                }
            }
        }
    }
    println!("SELECT 1, {iterations} iterations each, interleaved");
    let (d50, d95) = report("Trino direct (HTTP)", t_direct);
    let (f50, f95) = report("Flightdeck (Flight SQL)", t_fd);
    let (m50, m95) = report("Flightdeck miss", t_miss);
    println!("ratio Flightdeck/direct: p50 {:.2}x  p95 {:.2}x", ms(f50) / ms(d50), ms(f95) / ms(d95));
    println!("ratio Flightdeck miss/direct: p50 {:.2}x  p95 {:.2}x", ms(m50) / ms(d50), ms(m95) / ms(d95));
}
