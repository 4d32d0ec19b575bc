//! Every gRPC call counted by method and final status code, streams
//! included: a DoGet that fails after its first batch counts as failed.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;
use tonic::codegen::http;

/// Counts the calls of the service it wraps (`flightdeck_requests_total`).
#[derive(Debug, Clone)]
pub struct CallMetrics<S> {
    inner: S,
}

impl<S> CallMetrics<S> {
    pub fn new(inner: S) -> Self {
        CallMetrics { inner }
    }
}

impl<S, B> tonic::codegen::Service<http::Request<B>> for CallMetrics<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rpc = method(req.uri().path());
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await?;
            // An error before any message comes as headers only.
            if let Some(code) = status_of(response.headers()) {
                record(rpc, code);
                return Ok(response);
            }
            Ok(response.map(|body| tonic::body::Body::new(Observed { inner: body, rpc, recorded: false })))
        })
    }
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for CallMetrics<S> {
    const NAME: &'static str = S::NAME;
}

/// A response body that records the call's status from its trailers, or
/// `CANCELLED` when it is dropped unfinished (the client went away).
struct Observed {
    inner: tonic::body::Body,
    rpc: &'static str,
    recorded: bool,
}

impl Observed {
    fn record(&mut self, code: tonic::Code) {
        if !self.recorded {
            self.recorded = true;
            record(self.rpc, code);
        }
    }
}

impl Body for Observed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    self.record(code);
                }
            }
            Poll::Ready(Some(Err(e))) => self.record(e.code()),
            Poll::Ready(None) => self.record(tonic::Code::Ok),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.record(tonic::Code::Cancelled);
    }
}

/// The `grpc-status` of headers or trailers, if they carry one.
fn status_of(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}

fn record(rpc: &'static str, code: tonic::Code) {
    metrics::counter!("flightdeck_requests_total", "rpc" => rpc, "code" => code_name(code)).increment(1);
}

/// The Flight method of a gRPC path, as a label of few values.
fn method(path: &str) -> &'static str {
    match path.rsplit('/').next().unwrap_or("") {
        "Handshake" => "Handshake",
        "ListFlights" => "ListFlights",
        "GetFlightInfo" => "GetFlightInfo",
        "PollFlightInfo" => "PollFlightInfo",
        "GetSchema" => "GetSchema",
        "DoGet" => "DoGet",
        "DoPut" => "DoPut",
        "DoExchange" => "DoExchange",
        "DoAction" => "DoAction",
        "ListActions" => "ListActions",
        _ => "other",
    }
}

/// A status code as gRPC spells it (`INVALID_ARGUMENT`).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_few_and_spelled_as_grpc_does() {
        assert_eq!(method("/arrow.flight.protocol.FlightService/DoGet"), "DoGet");
        assert_eq!(method("/anything/else"), "other");
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        let mut h = http::HeaderMap::new();
        assert_eq!(status_of(&h), None);
        h.insert("grpc-status", "14".parse().unwrap());
        assert_eq!(status_of(&h), Some(tonic::Code::Unavailable));
    }
}
