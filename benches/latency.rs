//! `SELECT 1` latency through Flightdeck against Trino directly, measured
//! side by side in one run (interleaved, so machine noise hits both alike).
//!
//!     cargo bench --bench latency [-- --iterations N]
//!
//! Starts the local Trino (scripts/trino.sh) and an in-process Flightdeck.
//! "Trino direct" is Flightdeck's own HTTP client talking to Trino: the floor
//! for any pass-through. "Flightdeck" is a Flight SQL client doing
//! GetFlightInfo + DoGet over loopback, with the result cache off. Without `--bench` (as in
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
    let trino = TrinoClient::new(&TrinoConfig::new(trino_url.parse().unwrap())).unwrap();
    let session = Session { user: "bench".into(), ..Default::default() };

    let via_flightdeck = |mut flight: FlightServiceClient<tonic::transport::Channel>| async move {
        let cmd = CommandStatementQuery { query: "SELECT 1".into(), transaction_id: None };
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
    let direct = |trino: TrinoClient, session: Session| async move {
        let (_, batches) = trino.execute(&session, "SELECT 1").await.unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    };

    // Warm up Trino's JIT and both connection pools.
    for _ in 0..if bench { 50 } else { 1 } {
        direct(trino.clone(), session.clone()).await;
        via_flightdeck(flight.clone()).await;
    }
    let (mut t_direct, mut t_fd) = (Vec::new(), Vec::new());
    for i in 0..iterations {
        // Alternate which goes first so neither always follows the other.
        for which in [i % 2, 1 - i % 2] {
            let start = Instant::now();
            if which == 0 {
                direct(trino.clone(), session.clone()).await;
                t_direct.push(start.elapsed());
            } else {
                via_flightdeck(flight.clone()).await;
                t_fd.push(start.elapsed());
            }
        }
    }
    println!("SELECT 1, {iterations} iterations each, interleaved");
    let (d50, d95) = report("Trino direct (HTTP)", t_direct);
    let (f50, f95) = report("Flightdeck (Flight SQL)", t_fd);
    println!("ratio Flightdeck/direct: p50 {:.2}x  p95 {:.2}x", ms(f50) / ms(d50), ms(f95) / ms(d95));
}
