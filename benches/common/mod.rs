//! Helpers shared by the benches.

#![allow(dead_code)]

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use flightdeck::trino::decode::BatchDecoder;
use flightdeck::trino::{Column, TrinoType};

/// A query recorded from Trino (`tests/data/trino_pages/`): its columns and
/// each `data` page as parsed JSON rows.
pub fn recorded(name: &str) -> (Vec<Column>, Vec<serde_json::Value>) {
    let path = format!("{}/tests/data/trino_pages/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let columns = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Column {
            name: c["name"].as_str().unwrap().into(),
            ty: TrinoType::parse(c["type"].as_str().unwrap()).unwrap(),
        })
        .collect();
    (columns, v["pages"].as_array().unwrap().clone())
}

/// A recorded query decoded into one batch per page.
pub fn recorded_batches(name: &str) -> (SchemaRef, Vec<RecordBatch>) {
    let (columns, pages) = recorded(name);
    let mut d = BatchDecoder::new(&columns);
    let batches = pages
        .iter()
        .map(|p| {
            d.decode(&p.to_string()).unwrap();
            d.finish().unwrap()
        })
        .collect();
    (d.schema(), batches)
}

/// Whether this is a real run (`--bench`) and how many iterations to make:
/// `--iterations N`, else `bench` for a real run and `smoke` in test mode.
pub fn iterations(bench: usize, smoke: usize) -> (bool, usize) {
    let args: Vec<String> = std::env::args().collect();
    let is_bench = args.iter().any(|a| a == "--bench");
    let n = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if is_bench { bench } else { smoke });
    (is_bench, n)
}

/// Starts the project's local Trino (idempotent) and returns its URL.
pub fn start_trino() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/trino.sh");
    assert!(std::process::Command::new(script).arg("start").status().unwrap().success());
    format!("http://127.0.0.1:{}", std::env::var("TRINO_PORT").unwrap_or_else(|_| "8080".into()))
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Resident and peak resident memory of a process, in MiB (from /proc).
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Where a `flightdeck serve` child listens, as it prints once bound: each
/// address is given as `127.0.0.1:0` and the system picks the port, so no
/// other process can take it between a pick and the bind.
pub struct Listening {
    /// `http://host:port` of the Flight SQL port, for a tonic channel.
    pub flight: String,
    /// `http://host:port` of the admin port.
    pub admin: String,
    /// `http://host:port` of the Trino-protocol port, when served.
    pub trino: Option<String>,
}

/// Reads `child`'s stdout (piped) until it has said where it listens, and
/// keeps reading it after, so that its log never fills the pipe. Panics with
/// what it printed if it exits first or says nothing for `within`.
pub fn listening(child: &mut std::process::Child, within: Duration) -> Listening {
    use std::io::BufRead;
    let out = child.stdout.take().expect("flightdeck's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // The receiver is gone once the addresses are read: drain.
            let _ = tx.send(line);
        }
    });
    let after = |line: &str, what: &str| {
        line.strip_prefix(what).and_then(|rest| rest.split_once("://")).map(|(_, a)| format!("http://{a}"))
    };
    let (mut flight, mut trino, mut seen) = (None, None, Vec::new());
    let deadline = std::time::Instant::now() + within;
    loop {
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(wait) else {
            let status = child.try_wait().ok().flatten();
            panic!("flightdeck did not say where it listens (exit: {status:?}); it printed:\n{}", seen.join("\n"));
        };
        if let Some(a) = after(&line, "flightdeck: Flight SQL listening on ") {
            flight = Some(a);
        } else if let Some(a) = after(&line, "flightdeck: Trino protocol on ") {
            trino = Some(a);
        } else if let Some(admin) = after(&line, "flightdeck: admin HTTP on ") {
            // The last of the addresses it prints.
            let flight = flight.expect("the Flight SQL address comes before the admin one");
            return Listening { flight, admin, trino };
        }
        seen.push(line);
    }
}

/// The share of the machine's CPU time that was busy over `over` (from
/// /proc/stat); `None` where /proc cannot be read.
pub fn machine_busy(over: Duration) -> Option<f64> {
    // (busy, total) jiffies of all CPUs since boot.
    let sample = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is in user).
        let total: u64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4).unwrap_or(&0);
        Some((total - idle, total))
    };
    let (b0, t0) = sample()?;
    std::thread::sleep(over);
    let (b1, t1) = sample()?;
    Some((b1 - b0) as f64 / (t1 - t0).max(1) as f64)
}

/// Waits until the machine is quiet (under a fifth busy over a second) or
/// `at_most` passed, so a measured run does not share the cores with what
/// the run before left behind (Trino goes on working for seconds after its
/// last answer). The seconds waited.
pub fn settle(at_most: Duration) -> f64 {
    let start = std::time::Instant::now();
    while start.elapsed() < at_most {
        match machine_busy(Duration::from_secs(1)) {
            Some(busy) if busy >= 0.2 => continue,
            _ => break,
        }
    }
    start.elapsed().as_secs_f64()
}
