//! Cache hits over Flight SQL on loopback against the same queries on Trino
//! directly, and Flightdeck's resident memory against its cache budget.
//!
//!     cargo bench --bench cache_hit [-- --iterations N]
//!
//! Starts the local Trino (scripts/trino.sh) and the `flightdeck` binary as
//! its own process (so its memory can be read from /proc), warms each query
//! into the cache, then times "Trino direct" (Flightdeck's HTTP client on
//! Trino's REST protocol) and cache hits (GetFlightInfo + DoGet) one block
//! after the other, in the same run. Blocks, not interleaving: a hit timed
//! right after a Trino query would mostly measure Trino's leftover work on
//! the shared two cores.
//! Without `--bench` (as in `cargo test --benches`) it runs a few iterations
//! and a small memory fill as a smoke test.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow_flight::FlightDescriptor;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use flightdeck::trino::{Session, TrinoClient, TrinoConfig};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::transport::Channel;

use common::{memory_mib, ms, percentile};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(trino_url: &str, budget: &str) -> (Server, Channel) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flightdeck"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--trino-protocol-listen", ""])
        .args(["--trino-url", trino_url, "--cache-max-bytes", budget, "--cache-ttl-secs", "3600"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start flightdeck");
    let at = common::listening(&mut child, Duration::from_secs(20));
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(ch) = Channel::from_shared(at.flight.clone()).unwrap().connect().await {
            return (server, ch);
        }
        assert!(Instant::now() < deadline, "flightdeck did not accept a connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GetFlightInfo + DoGet; returns rows and bytes of Arrow received.
async fn via_flight(mut client: FlightServiceClient<Channel>, sql: &str) -> (usize, usize) {
    let cmd = CommandStatementQuery { query: sql.into(), transaction_id: None };
    let info =
        client.get_flight_info(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec())).await.unwrap().into_inner();
    let data = client.do_get(info.endpoint[0].ticket.clone().unwrap()).await.unwrap().into_inner();
    let mut s = FlightRecordBatchStream::new_from_flight_data(data.map_err(|e| FlightError::Tonic(Box::new(e))));
    let (mut rows, mut bytes) = (0, 0);
    while let Some(b) = s.next().await {
        let b = b.unwrap();
        rows += b.num_rows();
        bytes += b.get_array_memory_size();
    }
    (rows, bytes)
}

async fn direct(trino: &TrinoClient, sql: &str) -> usize {
    let session = Session { user: "bench".into(), ..Default::default() };
    let (_, batches) = trino.execute(&session, sql).await.unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

#[tokio::main]
async fn main() {
    let (bench, iterations) = common::iterations(200, 3);
    let trino_url = common::start_trino();
    let trino = TrinoClient::new(&TrinoConfig::new(trino_url.parse().unwrap())).unwrap();

    // Hit latency against Trino direct.
    let (server, channel) = start(&trino_url, "1GiB").await;
    let client = FlightServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let queries = [
        (1, "SELECT orderkey, custkey, totalprice, orderdate FROM tpch.tiny.orders WHERE orderkey = 1"),
        (1_000, "SELECT orderkey, custkey, totalprice, orderdate FROM tpch.tiny.orders ORDER BY orderkey LIMIT 1000"),
        (
            100_000,
            "SELECT orderkey, custkey, totalprice, orderdate FROM tpch.sf1.orders ORDER BY orderkey LIMIT 100000",
        ),
    ];
    println!(
        "cache hit over Flight SQL (loopback) vs Trino direct, {iterations} iterations each, one block after the other"
    );
    println!("{:>8} {:<14} {:>10} {:>10} {:>14} {:>10}", "rows", "path", "p50 ms", "p95 ms", "rows/s (p50)", "MiB/s");
    for (expected, sql) in queries {
        let iters = if expected >= 100_000 { iterations.div_ceil(10).max(2) } else { iterations };
        for _ in 0..if bench { 5 } else { 1 } {
            assert_eq!(direct(&trino, sql).await, expected);
            assert_eq!(via_flight(client.clone(), sql).await.0, expected);
        }
        let (mut t_direct, mut t_hit) = (Vec::new(), Vec::new());
        let mut arrow_bytes = 0;
        for _ in 0..iters {
            let start = Instant::now();
            direct(&trino, sql).await;
            t_direct.push(start.elapsed());
        }
        // Let Trino settle before timing hits.
        tokio::time::sleep(Duration::from_secs(if bench { 2 } else { 0 })).await;
        for _ in 0..iters {
            let start = Instant::now();
            arrow_bytes = via_flight(client.clone(), sql).await.1;
            t_hit.push(start.elapsed());
        }
        for (name, mut t) in [("Trino direct", t_direct), ("Flightdeck hit", t_hit)] {
            t.sort();
            let (p50, p95) = (percentile(&t, 0.5), percentile(&t, 0.95));
            let mib_s = arrow_bytes as f64 / (1 << 20) as f64 / p50.as_secs_f64();
            println!(
                "{expected:>8} {name:<14} {:>10.3} {:>10.3} {:>14.0} {:>10.1}",
                ms(p50),
                ms(p95),
                expected as f64 / p50.as_secs_f64(),
                mib_s
            );
        }
    }
    drop(server);

    // Resident memory against the byte budget: fill far past the budget.
    let budget_mib = 64;
    let (server, channel) = start(&trino_url, &format!("{budget_mib}MiB")).await;
    let client = FlightServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let pid = server.0.id();
    let (rss_start, _) = memory_mib(pid);
    let distinct = if bench { 120 } else { 4 };
    let mut filled_mib = 0.0;
    for i in 0..distinct {
        // ~1.3 MiB of Arrow each; distinct literals make distinct entries.
        let sql = format!(
            "SELECT orderkey, custkey, totalprice, orderdate, comment, {i} AS k FROM tpch.tiny.orders LIMIT 10000"
        );
        filled_mib += via_flight(client.clone(), &sql).await.1 as f64 / (1 << 20) as f64;
    }
    let (rss, peak) = memory_mib(pid);
    println!(
        "memory: budget {budget_mib} MiB; {distinct} distinct results, {filled_mib:.0} MiB of Arrow in all; \
         flightdeck RSS {rss_start:.0} MiB at start, {rss:.0} MiB after, peak {peak:.0} MiB"
    );
}
