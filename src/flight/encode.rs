//! Answers as Flight messages, and the request metadata Flightdeck reads.

use std::pin::Pin;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::{FlightData, IpcMessage, SchemaAsIpc};
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::metadata::MetadataValue;
use tonic::{Response, Status};

use super::error::Error;
use crate::MAX_FLIGHT_DATA_BYTES;
use crate::router::{Body, Directive, Outcome, Route};

pub(super) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Request and response metadata naming how the cache was used.
pub(super) const CACHE_HEADER: &str = "x-flightdeck-cache";
/// Response metadata naming who answered: `cache` or `trino`.
pub(super) const ROUTE_HEADER: &str = "x-flightdeck-route";
/// Response metadata: seconds since a cached answer was computed.
pub(super) const AGE_HEADER: &str = "x-flightdeck-age";

/// Response metadata saying who answered and how the cache was used.
pub(super) fn mark<T>(response: &mut Response<T>, route: Route, cache: Outcome) {
    let md = response.metadata_mut();
    md.insert(ROUTE_HEADER, MetadataValue::from_static(route.as_str()));
    md.insert(CACHE_HEADER, MetadataValue::from_static(cache.as_str()));
}

/// A DoGet answer of one metadata batch.
pub(super) fn rows<E: std::fmt::Display>(
    batch: Result<RecordBatch, E>,
) -> Result<Response<BoxStream<FlightData>>, Status> {
    let batch = batch.map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Response::new(batch_stream(batch)))
}

/// An action's single result.
pub(super) fn action_result(body: Vec<u8>) -> Response<BoxStream<arrow_flight::Result>> {
    Response::new(futures::stream::iter([Ok(arrow_flight::Result { body: body.into() })]).boxed())
}

/// An answer's rows as the Flight messages DoGet sends, schema first.
pub(super) fn body_stream(body: Body) -> BoxStream<FlightData> {
    match body {
        // Encoded when the entry was filled: a hit only copies buffers.
        Body::Cached(entry) => futures::stream::iter(entry.encoded.clone().into_iter().map(Ok)).boxed(),
        Body::Batches(schema, batches) => flight_stream(schema, futures::stream::iter(batches.into_iter().map(Ok))),
        Body::Stream(schema, rows) => {
            flight_stream(schema, rows.map_err(|e| FlightError::Tonic(Box::new(Status::from(e)))))
        }
    }
}

/// Batches as Flight messages, schema first, each at most
/// [`MAX_FLIGHT_DATA_BYTES`].
fn flight_stream(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> BoxStream<FlightData> {
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
        .build(batches)
        .map_err(Status::from);
    Box::pin(flight)
}

/// A DoGet answer of one small batch (metadata).
pub(super) fn batch_stream(batch: RecordBatch) -> BoxStream<FlightData> {
    flight_stream(batch.schema(), futures::stream::iter([Ok(batch)]))
}

/// Parses the `x-flightdeck-cache` request metadata.
pub(super) fn directive(md: &tonic::metadata::MetadataMap) -> Result<Directive, Error> {
    match md.get(CACHE_HEADER) {
        None => Ok(Directive::Default),
        Some(v) => v
            .to_str()
            .map_err(|_| Error::Malformed(format!("{CACHE_HEADER} is not ASCII")))?
            .parse()
            .map_err(Error::Malformed),
    }
}

/// The parameter batches of a DoPut. Messages that carry only the command
/// (no Arrow data) are skipped.
pub(super) fn parameter_batches(stream: PeekableFlightDataStream) -> FlightRecordBatchStream {
    let data = stream.map_err(FlightError::from).try_filter(|d| futures::future::ready(!d.data_header.is_empty()));
    FlightRecordBatchStream::new_from_flight_data(data)
}

/// A schema as the IPC message Flight SQL puts in prepared-statement results.
pub(super) fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Error> {
    let msg: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Error::Internal(format!("cannot encode schema: {e}")))?;
    Ok(msg.0)
}
