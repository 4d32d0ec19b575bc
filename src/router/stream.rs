//! Streaming a started statement to a client at the client's pace.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::engine::BatchStream;
use super::error::{Code, Error};
use super::registry::Pending;

/// Batches decoded ahead of the client: bounds memory per stream while
/// overlapping the engine's next page with sending this one.
pub const PREFETCH_BATCHES: usize = 2;

/// Counts a stream being pumped (`flightdeck_streams_open`) while it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!("flightdeck_streams_open").increment(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("flightdeck_streams_open").decrement(1.0);
    }
}

/// Streams `pending`. A task (tracked by `tasks`) pulls batches into a small
/// bounded channel, so the engine is read only as fast as the client reads;
/// when the client goes away, or `stop` is cancelled (the shutdown grace is
/// over), the task drops the statement, which cancels it.
pub fn pump(pending: Pending, stop: CancellationToken, tasks: &TaskTracker) -> BatchStream {
    let Pending { schema: _, prefix, mut rest, reservation } = pending;
    let (tx, mut rx) = mpsc::channel(PREFETCH_BATCHES);
    tasks.spawn(async move {
        use futures::StreamExt;
        let _open = OpenStream::new();
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
                next = rest.next() => next,
            };
            match next {
                Some(Ok(batch)) => {
                    if !send(Ok(batch)).await {
                        break;
                    }
                }
                Some(Err(e)) => {
                    let _ = send(Err(e)).await;
                    return;
                }
                None => return,
            }
        }
        if stop.is_cancelled() {
            let _ =
                tx.try_send(Err(Error::new(Code::Unavailable, "Flightdeck is shutting down: run the statement again")));
        }
        tracing::debug!("client went away; cancelling the statement");
        drop(rest);
    });
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
