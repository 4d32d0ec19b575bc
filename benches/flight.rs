//! Criterion benches of the hot paths around Flight:
//!
//! - `cache_hit`: a cache lookup by key and the Flight messages it yields
//!   (what a hit costs Flightdeck, without the network);
//! - `flight_encode`: record batches to Flight messages (a miss's encoding);
//! - `flight_decode`: Flight messages back to record batches (the client side).
//!
//!     cargo bench --bench flight
//!
//! Inputs are recorded Trino pages (`tests/data/trino_pages/`) decoded to
//! Arrow; throughput is in bytes of Arrow data.

mod common;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::FlightData;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flightdeck::cache::{CacheConfig, Directive, FillError, Filled, Reads, ResultCache};
use futures::{StreamExt, TryStreamExt};

async fn encode(schema: SchemaRef, batches: Vec<RecordBatch>) -> Vec<FlightData> {
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(flightdeck::MAX_FLIGHT_DATA_BYTES)
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .try_collect()
        .await
        .unwrap()
}

fn arrow_bytes(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.get_array_memory_size() as u64).sum()
}

fn flight(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let inputs: Vec<(&str, SchemaRef, Vec<RecordBatch>)> = ["lineitem", "orders", "nested"]
        .into_iter()
        .map(|n| {
            let (s, b) = common::recorded_batches(n);
            (n, s, b)
        })
        .collect();

    let mut group = c.benchmark_group("flight_encode");
    for (name, schema, batches) in &inputs {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        group.throughput(Throughput::Bytes(arrow_bytes(batches)));
        group.bench_with_input(
            BenchmarkId::new(*name, format!("{rows}x{}", schema.fields().len())),
            batches,
            |b, batches| b.to_async(&rt).iter(|| encode(Arc::clone(schema), batches.clone())),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("flight_decode");
    for (name, schema, batches) in &inputs {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let messages = rt.block_on(encode(Arc::clone(schema), batches.clone()));
        group.throughput(Throughput::Bytes(arrow_bytes(batches)));
        group.bench_with_input(
            BenchmarkId::new(*name, format!("{rows}x{}", schema.fields().len())),
            &messages,
            |b, messages| {
                b.to_async(&rt).iter(|| async {
                    let stream = futures::stream::iter(messages.clone().into_iter().map(Ok));
                    let mut decoded = FlightRecordBatchStream::new_from_flight_data(stream);
                    let mut n = 0;
                    while let Some(batch) = decoded.next().await {
                        n += batch.unwrap().num_rows();
                    }
                    assert_eq!(n, rows);
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("cache_hit");
    for (name, schema, batches) in &inputs {
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let cache = ResultCache::new(CacheConfig::default());
        let sql = format!("SELECT * FROM tpch.tiny.{name}");
        let key = || {
            cache.key(&flightdeck::sql::Statement::parse(&sql, Some("tpch"), Some("tiny")), "bench", &[], None).unwrap()
        };
        let encoded = rt.block_on(encode(Arc::clone(schema), batches.clone()));
        let filled = Filled {
            schema: Arc::clone(schema),
            batches: batches.clone(),
            encoded,
            trino_query_id: "q".into(),
            reads: Some(Reads { tables: vec![format!("tpch.tiny.{name}")], per_user: false }),
            local: false,
        };
        let slot = std::sync::Mutex::new(Some(filled));
        let (k, tables) = key();
        let fill = move || {
            let f = slot.lock().unwrap().take().expect("filled once");
            async move { Ok::<_, FillError<String, ()>>(f) }
        };
        rt.block_on(cache.get_or_fill(k, "bench", tables, Directive::Default, fill));
        group.throughput(Throughput::Bytes(arrow_bytes(batches)));
        group.bench_function(BenchmarkId::new(*name, format!("{rows}x{}", schema.fields().len())), |b| {
            b.to_async(&rt).iter(|| async {
                let (k, _) = key();
                let (_, entry) = cache.peek(&k).await.expect("cached");
                // The hit path sends the encoded messages as they are.
                let sent: usize = futures::stream::iter(entry.encoded.clone())
                    .map(|m| m.data_body.len())
                    .collect::<Vec<_>>()
                    .await
                    .iter()
                    .sum();
                assert!(sent > 0);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, flight);
criterion_main!(benches);
