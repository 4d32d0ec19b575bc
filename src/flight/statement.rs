//! How statements run and stream: cache fills, Flight encoding, the DoGet
//! stream with its backpressure, and the small helpers around them.

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::{FlightData, IpcMessage, SchemaAsIpc};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tonic::{Response, Status};

use super::error::trino_status;
use super::params::Bound;
use super::proto::SessionContext;
use super::registry::PendingQuery;
use super::service::{BoxStream, CACHE_HEADER, MAX_FLIGHT_DATA_BYTES, PREFETCH_BATCHES};
use crate::cache::{Directive, FillError, Filled, Outcome};
use crate::memory::MemoryBudget;
use crate::router::Router;

/// How a statement's GetFlightInfo was answered.
pub(super) struct Resolved {
    pub outcome: Outcome,
    pub schema: SchemaRef,
    /// Registry key of the parked query, when it runs on Trino.
    pub registry_key: Option<[u8; 16]>,
    /// Row count, when known (cached results).
    pub rows: Option<u64>,
    /// The client's session after the statement, when it changed it.
    pub session: Option<SessionContext>,
    /// The whole result of a statement that ran to its end (Arrow IPC),
    /// carried in the ticket.
    pub result: Option<Vec<u8>>,
    /// The statement may have written: never run it again for this ticket.
    pub run_once: bool,
    /// How old a cached answer is.
    pub age: Option<std::time::Duration>,
}

impl Resolved {
    pub fn new(outcome: Outcome, schema: SchemaRef, registry_key: Option<[u8; 16]>, rows: Option<u64>) -> Self {
        Resolved { outcome, schema, registry_key, rows, session: None, result: None, run_once: false, age: None }
    }
}

/// Largest result carried inside a ticket. Statements that are not plain
/// reads (DML, DDL, `EXECUTE`, `CALL`, ...) usually answer one row; a larger
/// answer stays parked on the replica that ran it.
pub(super) const INLINE_RESULT_BYTES: usize = 1 << 20;

/// The batches as an Arrow IPC stream, for a ticket.
pub(super) fn ipc_bytes(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, schema)
        .map_err(|e| Status::internal(format!("cannot encode result: {e}")))?;
    for b in batches {
        w.write(b).map_err(|e| Status::internal(format!("cannot encode result: {e}")))?;
    }
    w.finish().map_err(|e| Status::internal(format!("cannot encode result: {e}")))?;
    drop(w);
    Ok(out)
}

/// Streams a result carried in a ticket.
pub(super) fn ipc_stream(bytes: &[u8]) -> Result<BoxStream<FlightData>, Status> {
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
        .map_err(|e| Status::internal(format!("ticket result does not decode: {e}")))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| Status::internal(format!("ticket result does not decode: {e}")))?;
    Ok(flight_stream(schema, futures::stream::iter(batches.into_iter().map(Ok))))
}

/// Batches as the Flight messages DoGet sends, schema first, each at most
/// [`MAX_FLIGHT_DATA_BYTES`].
fn flight_stream(
    schema: SchemaRef,
    batches: impl futures::Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> BoxStream<FlightData> {
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
        .build(batches)
        .map_err(Status::from);
    Box::pin(flight)
}

pub(super) type Fill = Result<Filled, FillError<Status, PendingQuery>>;

/// The fill of a cache entry: runs `sql` on Trino to its end, unless the
/// result outgrows `max_bytes`; then the query is handed back, with what it
/// read, to be streamed uncached.
pub(super) fn filler(
    router: Router,
    ctx: SessionContext,
    bound: Bound,
    max_bytes: u64,
    memory: MemoryBudget,
) -> impl Fn() -> Pin<Box<dyn std::future::Future<Output = Fill> + Send>> + Send + Sync + 'static {
    move || {
        let (router, ctx, bound, memory) = (router.clone(), ctx.clone(), bound.clone(), memory.clone());
        Box::pin(async move {
            let failed = |e: crate::trino::Error| FillError::Failed(trino_status(&e));
            let mut query = router.start_from(&ctx, &bound.sql, bound.origin).await.map_err(failed)?;
            let schema = query.wait_for_schema().await.map_err(failed)?;
            // What Trino says the statement read decides which writes drop the
            // entry and whether users may share it. Trino knows it once the
            // statement is analysed: asked now, beside reading the rows.
            let reads = {
                let (trino, user, id) = (router.trino().clone(), ctx.user.clone(), query.id().to_string());
                tokio::spawn(async move { trino.reads(&user, &id).await })
            };
            let mut batches = Vec::new();
            // The rows are held here until the entry is complete: against the
            // budget, so that many concurrent fills cannot exhaust memory.
            let mut reservation = memory.reservation();
            while let Some(b) = query.next_batch().await.map_err(failed)? {
                reservation
                    .grow(b.get_array_memory_size() as u64)
                    .map_err(|e| FillError::Failed(Status::resource_exhausted(e.to_string())))?;
                batches.push(b);
                if reservation.bytes() > max_bytes {
                    let pending = PendingQuery { query, schema, prefix: batches, reservation: Some(reservation) };
                    return Err(FillError::TooLarge(std::sync::Mutex::new(Some(pending))));
                }
            }
            let encoded = encode(Arc::clone(&schema), &batches)
                .await
                .map_err(|e| FillError::Failed(Status::internal(format!("cannot encode result: {e}"))))?;
            let reads = match reads.await {
                Ok(Ok(r)) => Some(r),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "no account of what the query read");
                    None
                }
                Err(_) => None,
            };
            Ok(Filled { schema, batches, encoded, trino_query_id: query.id().to_string(), reads })
        })
    }
}

/// Encodes batches as the Flight messages DoGet sends, schema first.
pub(super) async fn encode(schema: SchemaRef, batches: &[RecordBatch]) -> Result<Vec<FlightData>, FlightError> {
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
        .build(futures::stream::iter(batches.to_vec().into_iter().map(Ok)))
        .try_collect()
        .await
}

/// Parses the `x-flightdeck-cache` request metadata.
pub(super) fn directive(md: &tonic::metadata::MetadataMap) -> Result<Directive, Status> {
    match md.get(CACHE_HEADER) {
        None => Ok(Directive::Default),
        Some(v) => v
            .to_str()
            .map_err(|_| Status::invalid_argument("x-flightdeck-cache is not ASCII"))?
            .parse()
            .map_err(Status::invalid_argument),
    }
}

/// The parameter batches of a DoPut. Messages that carry only the command
/// (no Arrow data) are skipped.
pub(super) fn parameter_batches(stream: PeekableFlightDataStream) -> FlightRecordBatchStream {
    let data = stream.map_err(FlightError::from).try_filter(|d| futures::future::ready(!d.data_header.is_empty()));
    FlightRecordBatchStream::new_from_flight_data(data)
}

/// A DoGet answer of one small batch (metadata).
pub(super) fn batch_response<E: std::fmt::Display>(
    batch: Result<RecordBatch, E>,
) -> Result<Response<BoxStream<FlightData>>, Status> {
    let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(futures::stream::iter([Ok(batch)]))
        .map_err(Status::from);
    Ok(Response::new(stream.boxed()))
}

/// Streams a query's batches as Flight data. A task pulls Trino pages into
/// a small bounded channel, so Trino is read only as fast as the client
/// reads; when the client goes away the task cancels the Trino query.
pub(super) fn stream_query(
    pending: PendingQuery,
    stop: tokio_util::sync::CancellationToken,
) -> BoxStream<arrow_flight::FlightData> {
    let PendingQuery { mut query, schema, prefix, reservation } = pending;
    let (tx, mut rx) = mpsc::channel(PREFETCH_BATCHES);
    tokio::spawn(async move {
        // Hands a batch to the client, unless it went away or the server
        // must stop; false then.
        let send = |item| {
            let (tx, stop) = (&tx, &stop);
            async move {
                tokio::select! {
                    sent = tx.send(item) => sent.is_ok(),
                    _ = stop.cancelled() => false,
                }
            }
        };
        let mut finished = false;
        for batch in prefix {
            if !send(Ok(batch)).await {
                break;
            }
        }
        // The read-ahead is on its way to the client.
        drop(reservation);
        while !tx.is_closed() && !stop.is_cancelled() {
            let next = tokio::select! {
                _ = tx.closed() => break,
                _ = stop.cancelled() => break,
                next = query.next_batch() => next,
            };
            match next {
                Ok(Some(batch)) => {
                    if !send(Ok(batch)).await {
                        break;
                    }
                }
                Ok(None) => {
                    finished = true;
                    break;
                }
                Err(e) => {
                    let _ = send(Err(FlightError::Tonic(Box::new(trino_status(&e))))).await;
                    finished = true;
                    break;
                }
            }
        }
        if finished {
            return;
        }
        if stop.is_cancelled() {
            let _ = tx.try_send(Err(FlightError::Tonic(Box::new(Status::unavailable(
                "Flightdeck is shutting down: run the statement again",
            )))));
        }
        tracing::debug!(query_id = query.id(), "client went away; cancelling Trino query");
        query.cancel();
    });
    flight_stream(schema, futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

pub(super) fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let msg: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(format!("cannot encode schema: {e}")))?;
    Ok(msg.0)
}
