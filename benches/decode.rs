//! Trino JSON to Arrow decoding, on pages recorded from Trino 476
//! (`tests/data/trino_pages/`, made by `scripts/record-trino-pages.py`).
//!
//!     cargo bench --bench decode
//!
//! Throughput is reported in bytes of JSON; each benchmark id names its
//! row count, so rows/s = rows / time.

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flightdeck::trino::Column;
use flightdeck::trino::decode::BatchDecoder;

/// Columns and `data` pages (as JSON text) of a recorded query; small
/// recordings are repeated to `min_rows` so per-page costs do not dominate.
fn load(name: &str, min_rows: usize) -> (Vec<Column>, Vec<String>, usize) {
    let (columns, pages) = common::recorded(name);
    let mut rows: Vec<serde_json::Value> = pages.iter().flat_map(|p| p.as_array().unwrap().clone()).collect();
    let original = rows.len();
    while rows.len() < min_rows {
        rows.extend_from_slice(&rows[..original].to_vec());
    }
    // One page per ~1 MB, like Trino's default target result size.
    let per_page = 4096;
    let pages = rows.chunks(per_page).map(|c| serde_json::Value::Array(c.to_vec()).to_string()).collect();
    (columns, pages, rows.len())
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("trino_json_to_arrow");
    for (name, min_rows) in [("lineitem", 0), ("orders", 0), ("scalars", 4096), ("temporal", 4096), ("nested", 4096)] {
        let (columns, pages, rows) = load(name, min_rows);
        let bytes: usize = pages.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::new(name, format!("{rows}x{}", columns.len())), &pages, |b, pages| {
            b.iter(|| {
                let mut d = BatchDecoder::new(&columns);
                let mut n = 0;
                for p in pages {
                    d.decode(p).unwrap();
                    n += d.finish().unwrap().num_rows();
                }
                assert_eq!(n, rows);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
