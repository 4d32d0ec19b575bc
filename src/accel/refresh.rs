//! Loading and refreshing one dataset, and the worker that does it on time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::compute::{
    BatchCoalescer, SortOptions, concat, filter_record_batch, interleave_record_batch, sort_to_indices,
};
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use tokio_util::sync::CancellationToken;

use super::slice::{Slice, layout, marked, relayout};
use super::{Dataset, Inner, Mode, Version};
use crate::memory::Reservation;
use crate::trino::Session;

/// The largest value of the time column, in the column's own unit, and
/// the same as a Trino literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    pub value: i64,
    pub literal: String,
}

/// Keeps `ds` refreshed until `stop`: runs the worker, and starts it again
/// if it panics (reported as the dataset's error and counted).
pub(super) async fn supervise(inner: Arc<Inner>, ds: Arc<Dataset>, stop: CancellationToken) {
    loop {
        let worker = tokio::spawn(run(Arc::clone(&inner), Arc::clone(&ds), stop.clone()));
        match worker.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                tracing::error!(table = %ds.config.table, "dataset refresh worker panicked; restarting it");
                metrics::counter!("flightdeck_dataset_refresh_failures_total", "table" => ds.config.table.clone())
                    .increment(1);
                metrics::counter!("flightdeck_dataset_worker_restarts_total", "table" => ds.config.table.clone())
                    .increment(1);
                let mut status = ds.status.lock().expect("dataset status");
                status.refreshing = false;
                status.restarts += 1;
                status.error = Some("the refresh worker stopped unexpectedly and was restarted".into());
            }
            Err(_) => return,
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// Refreshes `ds` every interval (plus jitter), at once when asked, and
/// after a failure with back-off, until `stop`.
async fn run(inner: Arc<Inner>, ds: Arc<Dataset>, stop: CancellationToken) {
    let table = ds.config.table.clone();
    if ds.current().is_none() {
        load_snapshot(&inner, &ds).await;
        release_freed_memory().await;
    }
    // The version on disk, and when this worker wrote it.
    let (mut on_disk, mut written_at) = (ds.current().map(|v| v.number), None::<Instant>);
    let mut failures: u32 = 0;
    loop {
        if !ds.paused.load(Ordering::SeqCst) {
            let permit = tokio::select! {
                p = inner.slots.acquire() => p.expect("slots are never closed"),
                _ = stop.cancelled() => break,
            };
            ds.status.lock().expect("dataset status").refreshing = true;
            #[cfg(test)]
            if ds.panic_next.swap(false, Ordering::SeqCst) {
                panic!("a refresh worker's test panic");
            }
            let started = (Instant::now(), SystemTime::now());
            let outcome = tokio::select! {
                outcome = refresh(&inner, &ds) => outcome,
                // Dropping the refresh cancels its Trino query.
                _ = stop.cancelled() => break,
            };
            drop(permit);
            let took = started.0.elapsed();
            metrics::histogram!("flightdeck_dataset_refresh_seconds", "table" => table.clone())
                .record(took.as_secs_f64());
            let mut written = None;
            {
                let mut status = ds.status.lock().expect("dataset status");
                status.refreshing = false;
                match outcome {
                    Ok((pulled, version)) => {
                        written = version;
                        failures = 0;
                        status.error = None;
                        status.fresh_as_of = Some(started.1);
                        status.last_refresh_ms = Some(took.as_millis() as u64);
                        status.last_rows_pulled = Some(pulled);
                        let fresh = started.1.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                        metrics::gauge!("flightdeck_dataset_last_refresh_timestamp_seconds", "table" => table.clone())
                            .set(fresh.as_secs_f64());
                        metrics::counter!("flightdeck_dataset_rows_pulled_total", "table" => table.clone())
                            .increment(pulled);
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(%table, error = %e, failures, "dataset refresh failed; the previous version stays");
                        status.error = Some(e);
                        metrics::counter!("flightdeck_dataset_refresh_failures_total", "table" => table.clone())
                            .increment(1);
                    }
                }
            }
            if let Some(version) = written {
                // What the refresh freed goes back before the snapshot
                // is written (seconds, for gigabytes); what writing it
                // used, after.
                release_freed_memory().await;
                // A snapshot is the whole dataset: an append every few
                // seconds would write it again each time. At most one a
                // minute; a later one, or the one at shutdown, catches up.
                if written_at.is_none_or(|at| at.elapsed() >= SNAPSHOT_SPACING) {
                    (on_disk, written_at) = (Some(version.number), Some(Instant::now()));
                    persist(&inner, &ds, version).await;
                    release_freed_memory().await;
                }
            }
        }
        let wait = next_wait(ds.config.interval, failures);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ds.wake.notified() => {}
            _ = stop.cancelled() => break,
        }
    }
    // Stopping: the newest version, if a snapshot is behind it.
    if let Some(version) = ds.current()
        && on_disk != Some(version.number)
    {
        persist(&inner, &ds, version).await;
    }
}

/// The shortest time between two snapshots of one dataset.
const SNAPSHOT_SPACING: Duration = Duration::from_secs(60);

/// Gives the memory a refresh freed (pages of Trino's answer, the rows as
/// read, the version replaced) back to the system. glibc keeps freed heap
/// memory for reuse; after a load of gigabytes that would stay resident.
async fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory of the allocator.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

/// The time to the next refresh: the interval plus up to 10 % jitter, so
/// that replicas started together drift apart; after failures, a back-off
/// from one second, doubling, never longer than the interval.
pub(super) fn next_wait(interval: Duration, failures: u32) -> Duration {
    if failures > 0 {
        let backoff = Duration::from_secs(1 << failures.min(16).saturating_sub(1));
        return backoff.min(interval);
    }
    let jitter = interval.mul_f64(rand::random::<f64>() * 0.1);
    interval + jitter
}

/// One refresh: a new version swapped in, or an error leaving the old one.
/// Returns the rows read from Trino and the new version; no version when
/// the table's snapshot is the one held.
async fn refresh(inner: &Inner, ds: &Dataset) -> Result<(u64, Option<Arc<Version>>), String> {
    let current = ds.current();
    let built = if ds.config.snapshots {
        let snapshots = snapshots(inner, ds).await?;
        let Some(&(latest, _)) = snapshots.last() else {
            return Err(format!("{} has no snapshot", ds.config.table));
        };
        let held = current.as_ref().and_then(|v| v.iceberg_snapshot);
        if held == Some(latest) {
            return Ok((0, None));
        }
        let appended = held.and_then(|h| appended_since(&snapshots, h));
        let incremental = match (&ds.config.mode, &current, appended) {
            (Mode::Append, Some(v), Some(ids)) => snapshot_append(inner, ds, v, &ids, latest).await?,
            _ => None,
        };
        match incremental {
            Some(built) => built,
            None => full(inner, ds, Some(latest)).await?,
        }
    } else {
        let incremental = match (&ds.config.mode, &current) {
            (Mode::Append, Some(v)) => v.watermark.clone().map(|w| (Arc::clone(v), w)),
            _ => None,
        };
        match incremental {
            Some((old, watermark)) => match append(inner, ds, &old, &watermark).await? {
                Some(built) => built,
                None => {
                    tracing::info!(table = %ds.config.table, "append refresh cannot be trusted; reading the whole table");
                    full(inner, ds, None).await?
                }
            },
            None => full(inner, ds, None).await?,
        }
    };
    // What was held while building becomes the version's count.
    let version = install(inner, ds, built.schema, built.slices, built.watermark, built.iceberg_snapshot, built.held)?;
    Ok((built.pulled, Some(version)))
}

/// The Iceberg table's snapshots, oldest first: id and operation.
async fn snapshots(inner: &Inner, ds: &Dataset) -> Result<Vec<(i64, String)>, String> {
    let sql = format!(
        "SELECT snapshot_id, operation FROM {} ORDER BY committed_at, snapshot_id",
        metadata_table(&ds.config.table, "snapshots")
    );
    let (_, batches, _) = pull(inner, ds, &sql).await?;
    let mut out = Vec::new();
    for b in &batches {
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().ok_or("snapshot ids are not bigint")?;
        let ops = arrow::compute::cast(b.column(1), &DataType::Utf8).map_err(|e| e.to_string())?;
        let ops = ops.as_any().downcast_ref::<arrow::array::StringArray>().ok_or("operations are not varchar")?;
        out.extend((0..b.num_rows()).map(|i| (ids.value(i), ops.value(i).to_string())));
    }
    Ok(out)
}

/// `"catalog"."schema"."table$kind"`: one of an Iceberg table's metadata tables.
fn metadata_table(table: &str, kind: &str) -> String {
    let parts: Vec<&str> = table.split('.').collect();
    let name = format!("{}${kind}", parts[2]);
    crate::sql::quote_name([parts[0], parts[1], &name])
}

/// The snapshots after `held`, when every one of them only appended files;
/// `None` when `held` is no longer listed (expired) or one of them did
/// anything else (overwrite, delete, replace).
pub(super) fn appended_since(snapshots: &[(i64, String)], held: i64) -> Option<Vec<i64>> {
    let at = snapshots.iter().position(|(id, _)| *id == held)?;
    let after = &snapshots[at + 1..];
    after.iter().all(|(_, op)| op == "append").then(|| after.iter().map(|(id, _)| *id).collect())
}

/// Writes `version` to the snapshot directory, if there is one. Outside the
/// refresh's time: the data is current once the version is swapped in.
async fn persist(inner: &Inner, ds: &Dataset, version: Arc<Version>) {
    if let Some(dir) = &inner.dir {
        let (dir, table) = (dir.clone(), ds.config.table.clone());
        let fresh_as_of = SystemTime::now();
        let written = tokio::task::spawn_blocking(move || super::snapshot::write(&dir, &table, &version, fresh_as_of))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = written {
            // The version is served all the same; a restart reads more.
            tracing::warn!(table = %ds.config.table, error = %e, "cannot write the dataset's snapshot");
            metrics::counter!("flightdeck_dataset_snapshot_failures_total", "table" => ds.config.table.clone())
                .increment(1);
        }
    }
}

/// Installs the snapshot in `inner.dir`, if there is a good one; a bad one
/// is discarded (the first refresh then reads the table whole).
async fn load_snapshot(inner: &Inner, ds: &Dataset) {
    let Some(dir) = inner.dir.clone() else { return };
    let table = ds.config.table.clone();
    let started = Instant::now();
    let read = {
        let (dir, table) = (dir.clone(), table.clone());
        tokio::task::spawn_blocking(move || super::snapshot::read(&dir, &table))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    };
    let snapshot = match read {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(%table, error = %e, "discarding the dataset's snapshot; reading the table whole");
            metrics::counter!("flightdeck_dataset_snapshot_failures_total", "table" => table.clone()).increment(1);
            super::snapshot::discard(&dir, &table);
            return;
        }
    };
    let fresh_as_of = snapshot.fresh_as_of;
    ds.versions.store(snapshot.version.saturating_sub(1), Ordering::SeqCst);
    let (schema, slices) = (snapshot.schema, snapshot.slices);
    let watermark = match &ds.config.time_column {
        Some(column) => schema.index_of(column).ok().and_then(|index| max_time(&slices, index)),
        None => None,
    };
    match install(inner, ds, schema, slices, watermark, snapshot.iceberg_snapshot, inner.memory.reservation()) {
        Ok(v) => {
            tracing::info!(%table, rows = v.rows, ms = started.elapsed().as_millis() as u64, "dataset loaded from its snapshot");
            ds.status.lock().expect("dataset status").fresh_as_of = Some(fresh_as_of);
        }
        Err(e) => {
            tracing::warn!(%table, error = %e, "the dataset's snapshot does not fit; reading the table whole");
        }
    }
}

/// The relation a refresh reads.
fn relation(ds: &Dataset) -> String {
    match &ds.config.source {
        Some(sql) => format!("({sql})"),
        None => crate::sql::quote_name(ds.config.table.split('.')),
    }
}

/// A new version, as a refresh built it.
struct Built {
    slices: Vec<Slice>,
    schema: SchemaRef,
    /// Rows read from Trino.
    pulled: u64,
    /// The largest time, known from building (no pass over the version).
    watermark: Option<i64>,
    /// The Iceberg snapshot read, for `snapshots` datasets.
    iceberg_snapshot: Option<i64>,
    /// Memory held while building (read rows, sort copies); it becomes the
    /// version's.
    held: Reservation,
}

/// Every row, sorted by the time column in append mode; of Iceberg
/// snapshot `snapshot` when given, so the version holds exactly it.
async fn full(inner: &Inner, ds: &Dataset, snapshot: Option<i64>) -> Result<Built, String> {
    let pin = snapshot.map(|id| format!(" FOR VERSION AS OF {id}")).unwrap_or_default();
    let (read, batches, mut held) = pull(inner, ds, &format!("SELECT * FROM {}{pin}", relation(ds))).await?;
    let pulled = rows(&batches);
    let schema = marked(&layout(&read), &batches, None);
    let (slices, watermark) = match &ds.config.time_column {
        Some(column) => {
            let index = schema.index_of(column).map_err(|e| format!("time column: {e}"))?;
            let ty = schema.field(index).data_type().clone();
            let slices = sorted(ds, batches, index, &schema, &mut held)?;
            let watermark = max_time(&slices, index);
            let slices = match horizon(ds, &ty, watermark)? {
                Some(h) => within(&slices, index, h.value, i64::MAX)?,
                None => slices,
            };
            // The horizon keeps the largest time unless it keeps nothing.
            let watermark = watermark.filter(|_| !slices.is_empty());
            (slices, watermark)
        }
        None => (coalesced(&read, &schema, batches)?, None),
    };
    Ok(Built { slices, schema, pulled, watermark, iceberg_snapshot: snapshot, held })
}

/// The old version and the rows of the files `appended` snapshots added,
/// read as of snapshot `latest`; `None` (read it all) when the schema
/// changed or a new row lies before the watermark (it would belong
/// inside the sorted slices, not after them).
async fn snapshot_append(
    inner: &Inner,
    ds: &Dataset,
    old: &Version,
    appended: &[i64],
    latest: i64,
) -> Result<Option<Built>, String> {
    let column = ds.config.time_column.as_deref().expect("append mode has a time column");
    let index = old.schema.index_of(column).map_err(|e| e.to_string())?;
    let ids: Vec<String> = appended.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT * FROM {} FOR VERSION AS OF {latest} WHERE \"$path\" IN \
         (SELECT data_file.file_path FROM {} WHERE status = 1 AND snapshot_id IN ({}))",
        relation(ds),
        metadata_table(&ds.config.table, "entries"),
        ids.join(", ")
    );
    let Some((schema, fresh, pulled, held)) = pull_sorted(inner, ds, old, &sql, index).await? else {
        return Ok(None);
    };
    let watermark = old.watermark.as_ref().map(|w| w.value);
    let first = fresh.iter().filter_map(|s| s.stats.min[index].as_ref().and_then(time_value)).min();
    let nulls = fresh.iter().any(|s| s.stats.nulls[index] > 0);
    if nulls || matches!((first, watermark), (Some(f), Some(w)) if f < w) {
        return Ok(None);
    }
    let ty = schema.field(index).data_type().clone();
    let horizon = horizon(ds, &ty, max_time(&fresh, index).or(watermark))?;
    let mut head = match &horizon {
        Some(h) => within(&old.slices, index, h.value, i64::MAX)?,
        None => old.slices.clone(),
    };
    if !ds.config.key.is_empty() {
        head = without_keys(&schema, head, &fresh, &ds.config.key)?;
    }
    head.extend(fresh);
    let watermark = max_time(&head, index);
    Ok(Some(Built { slices: head, schema, pulled, watermark, iceberg_snapshot: Some(latest), held }))
}

/// The old version up to `watermark - overlap`, then what Trino has from
/// there on; `None` when that cannot be trusted.
async fn append(inner: &Inner, ds: &Dataset, old: &Version, watermark: &Watermark) -> Result<Option<Built>, String> {
    let column = ds.config.time_column.as_deref().expect("append mode has a time column");
    let index = old.schema.index_of(column).map_err(|e| e.to_string())?;
    let ty = old.schema.field(index).data_type().clone();
    let mut cutoff = cutoff(&ty, watermark.value, ds.config.overlap)?;
    // Nothing older than the retention horizon is read or kept.
    let horizon = horizon(ds, &ty, Some(watermark.value))?;
    if let Some(h) = &horizon
        && h.value > cutoff.value
    {
        cutoff = h.clone();
    }
    let sql = format!("SELECT * FROM {} WHERE {} >= {}", relation(ds), crate::sql::quote_ident(column), cutoff.literal);
    let Some((schema, fresh, pulled, held)) = pull_sorted(inner, ds, old, &sql, index).await? else {
        return Ok(None);
    };
    // Rows at the watermark that are gone now: deleted, or the time column
    // went backwards. An append cannot express that; a full read can.
    let max = match max_time(&fresh, index) {
        Some(max) if max >= watermark.value => max,
        _ => return Ok(None),
    };
    let from = horizon.map_or(i64::MIN, |h| h.value);
    let mut head = within(&old.slices, index, from, cutoff.value)?;
    if !ds.config.key.is_empty() {
        head = without_keys(&schema, head, &fresh, &ds.config.key)?;
    }
    head.extend(fresh);
    // Everything kept lies below the cutoff, so the re-read rows hold the largest time.
    Ok(Some(Built { slices: head, schema, pulled, watermark: Some(max), iceberg_snapshot: None, held }))
}

/// The rows `sql` reads, sorted into slices by the time column at `index`,
/// the number read and the memory held; `None` when their schema is no
/// longer `old`'s.
async fn pull_sorted(
    inner: &Inner,
    ds: &Dataset,
    old: &Version,
    sql: &str,
    index: usize,
) -> Result<Option<(SchemaRef, Vec<Slice>, u64, Reservation)>, String> {
    let (read, fresh, mut held) = pull(inner, ds, sql).await?;
    let schema = marked(&layout(&read), &fresh, Some(&old.schema));
    if schema != old.schema {
        return Ok(None);
    }
    let pulled = rows(&fresh);
    let fresh = sorted(ds, fresh, index, &schema, &mut held)?;
    Ok(Some((schema, fresh, pulled, held)))
}

/// Runs `sql` on Trino as the service user and reads all of it, within the
/// datasets' budget and the dataset's limit.
async fn pull(inner: &Inner, ds: &Dataset, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>, Reservation), String> {
    let session = Session { user: inner.user.clone(), ..Default::default() };
    let mut query = inner.trino.start(&session, sql).await.map_err(|e| e.to_string())?;
    let schema = query.wait_for_schema().await.map_err(|e| e.to_string())?;
    // What is read is held until the version is built: counted as it comes.
    let mut reservation = inner.memory.reservation();
    let mut batches = Vec::new();
    while let Some(b) = query.next_batch().await.map_err(|e| e.to_string())? {
        reservation.grow(held_bytes(std::slice::from_ref(&b))).map_err(|e| format!("{}: {e}", ds.config.table))?;
        check_limit(ds, reservation.bytes())?;
        batches.push(b);
    }
    Ok((schema, batches, reservation))
}

fn check_limit(ds: &Dataset, bytes: u64) -> Result<(), String> {
    match ds.config.max_bytes {
        Some(max) if bytes > max => {
            Err(format!("{} holds more than its limit of {max} bytes (max_bytes): not loaded", ds.config.table))
        }
        _ => Ok(()),
    }
}

/// Swaps in a version of `batches`, its bytes reserved first, and marks
/// the cache entries that read the table stale.
/// `watermark` is the largest value of the time column in `batches`.
fn install(
    inner: &Inner,
    ds: &Dataset,
    schema: SchemaRef,
    slices: Vec<Slice>,
    watermark: Option<i64>,
    iceberg_snapshot: Option<i64>,
    mut reservation: Reservation,
) -> Result<Arc<Version>, String> {
    let bytes = slices.iter().map(|s| held_bytes(std::slice::from_ref(&s.batch))).sum();
    check_limit(ds, bytes)?;
    reservation.resize(bytes).map_err(|e| format!("{}: {e}", ds.config.table))?;
    let time = match &ds.config.time_column {
        Some(column) => Some(schema.field(schema.index_of(column).map_err(|e| e.to_string())?).data_type().clone()),
        None => None,
    };
    // The horizon now is no older than the one the rows were kept by, a
    // moment ago: every row from it on is held.
    let held_from = match &time {
        Some(ty) => horizon(ds, ty, watermark)?.map(|h| h.value),
        None => None,
    };
    let watermark = match (&time, watermark) {
        (Some(ty), Some(value)) => Some(self::watermark(ty, value)?),
        _ => None,
    };
    let number = ds.versions.fetch_add(1, Ordering::SeqCst) + 1;
    let rows = slices.iter().map(|s| s.batch.num_rows() as u64).sum();
    let version = Version {
        number,
        schema,
        slices,
        rows,
        bytes,
        watermark,
        held_from,
        iceberg_snapshot,
        _reservation: reservation,
    };
    let table = ds.config.table.clone();
    metrics::gauge!("flightdeck_dataset_rows", "table" => table.clone()).set(rows as f64);
    metrics::gauge!("flightdeck_dataset_bytes", "table" => table.clone()).set(bytes as f64);
    let version = Arc::new(version);
    *ds.current.write().expect("dataset lock") = Some(Arc::clone(&version));
    if let Some(cache) = &inner.cache {
        cache.mark_stale(&[table]);
    }
    Ok(version)
}

/// The bytes `batches` hold. Measured per slice: the arrays of a batch read
/// from IPC share one buffer, which `get_array_memory_size` would count once
/// per array. String views count their views and the string buffers they
/// keep (which a slice's own size leaves out).
pub(super) fn held_bytes(batches: &[RecordBatch]) -> u64 {
    use arrow::array::AsArray;
    batches
        .iter()
        .flat_map(|b| b.columns())
        .map(|c| {
            let own = c.to_data().get_slice_memory_size().unwrap_or_else(|_| c.get_array_memory_size());
            let strings: usize = match c.data_type() {
                DataType::Utf8View => c.as_string_view().data_buffers().iter().map(|b| b.len()).sum(),
                DataType::BinaryView => c.as_binary_view().data_buffers().iter().map(|b| b.len()).sum(),
                _ => 0,
            };
            (own + strings) as u64
        })
        .sum()
}

/// Rows per batch of a dataset: a refresh copies only the batches the
/// re-read stretch touches, and keeps the others as they are.
const BATCH_ROWS: usize = 64 * 1024;

fn rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// `batches` in slices of [`BATCH_ROWS`], ordered by the time column at
/// `index` (nulls first, as they are below every watermark), in the layout
/// of `schema`. The slices are made from the rows as read and then turned to
/// views, so that each one holds its own strings (views made first would
/// point into every batch read, and a snapshot would write all of them for
/// each slice).
pub(super) fn sorted(
    ds: &Dataset,
    batches: Vec<RecordBatch>,
    index: usize,
    schema: &SchemaRef,
    held: &mut Reservation,
) -> Result<Vec<Slice>, String> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    // Only the time column is concatenated to find the order; the sorted
    // copy is made slice by slice from the batches as read, which are
    // dropped after. The copy is counted before it is made.
    let read = held_bytes(&batches);
    held.grow(read).map_err(|e| format!("{}: {e}", ds.config.table))?;
    let times: Vec<&dyn arrow::array::Array> = batches.iter().map(|b| b.column(index).as_ref()).collect();
    let all = concat(&times).map_err(|e| e.to_string())?;
    let order = sort_to_indices(&all, Some(SortOptions { descending: false, nulls_first: true }), None)
        .map_err(|e| e.to_string())?;
    drop(all);
    // Global row number to (batch, row in batch).
    let mut starts = Vec::with_capacity(batches.len());
    let mut at = 0usize;
    for b in &batches {
        starts.push(at);
        at += b.num_rows();
    }
    let locate = |row: usize| {
        let batch = starts.partition_point(|&s| s <= row) - 1;
        (batch, row - starts[batch])
    };
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let slices = order
        .values()
        .chunks(BATCH_ROWS)
        .map(|chunk| {
            let rows: Vec<(usize, usize)> = chunk.iter().map(|&r| locate(r as usize)).collect();
            let b = interleave_record_batch(&refs, &rows).map_err(|e| e.to_string())?;
            relayout(&b, schema).map(Slice::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The rows as read are gone now.
    drop(refs);
    drop(batches);
    held.resize(held.bytes().saturating_sub(read)).expect("shrinking never fails");
    Ok(slices)
}

/// `batches` (of schema `read`) in slices of [`BATCH_ROWS`], in their
/// order, in the layout of `schema`.
fn coalesced(read: &SchemaRef, schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<Slice>, String> {
    let mut coalescer = BatchCoalescer::new(Arc::clone(read), BATCH_ROWS);
    let mut out = Vec::new();
    for b in batches {
        coalescer.push_batch(b).map_err(|e| e.to_string())?;
        while let Some(done) = coalescer.next_completed_batch() {
            out.push(Slice::new(relayout(&done, schema)?));
        }
    }
    coalescer.finish_buffered_batch().map_err(|e| e.to_string())?;
    while let Some(done) = coalescer.next_completed_batch() {
        out.push(Slice::new(relayout(&done, schema)?));
    }
    Ok(out)
}

/// The time column's values as i64 in its own unit (days for a date).
fn times(a: &ArrayRef) -> Result<Int64Array, String> {
    let as_i64 = arrow::compute::cast(a, &DataType::Int64).map_err(|e| e.to_string())?;
    Ok(as_i64.as_primitive::<Int64Type>().clone())
}

/// The time column's value of a statistic, in the column's unit.
pub(super) fn time_value(s: &ScalarValue) -> Option<i64> {
    match s {
        ScalarValue::TimestampSecond(v, _)
        | ScalarValue::TimestampMillisecond(v, _)
        | ScalarValue::TimestampMicrosecond(v, _)
        | ScalarValue::TimestampNanosecond(v, _)
        | ScalarValue::Int64(v) => *v,
        ScalarValue::Date32(v) | ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int8(v) => v.map(i64::from),
        _ => None,
    }
}

/// The largest time in `slices`, from their statistics.
fn max_time(slices: &[Slice], index: usize) -> Option<i64> {
    slices.iter().filter_map(|s| s.stats.max[index].as_ref().and_then(time_value)).max()
}

/// The rows of `slices` whose time lies in `[from, to)`; nulls count as
/// before every time (never re-read, and kept unless a horizon is set).
pub(super) fn within(slices: &[Slice], index: usize, from: i64, to: i64) -> Result<Vec<Slice>, String> {
    let mut out = Vec::new();
    for s in slices {
        // A slice wholly inside is kept as it is, one wholly outside dropped,
        // by its statistics: only the slices at the edges are read.
        let min = s.stats.min[index].as_ref().and_then(time_value);
        let max = s.stats.max[index].as_ref().and_then(time_value);
        let nulls = s.stats.nulls[index] > 0;
        if !nulls && min.is_some_and(|m| m >= from) && max.is_some_and(|m| m < to) {
            out.push(s.clone());
            continue;
        }
        if !nulls && (min.is_some_and(|m| m >= to) || max.is_some_and(|m| m < from)) {
            continue;
        }
        let t = times(s.batch.column(index))?;
        let keep: BooleanArray = t.iter().map(|v| Some(v.map_or(from == i64::MIN, |v| v >= from && v < to))).collect();
        let kept = filter_record_batch(&s.batch, &keep).map_err(|e| e.to_string())?;
        if kept.num_rows() > 0 {
            out.push(Slice::new(kept));
        }
    }
    Ok(out)
}

/// The oldest time kept under the dataset's retention: from now for
/// timestamps and dates, from the watermark for integer columns.
fn horizon(ds: &Dataset, ty: &DataType, watermark: Option<i64>) -> Result<Option<Watermark>, String> {
    let Some(retention) = ds.config.retention else { return Ok(None) };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let value = match ty {
        DataType::Timestamp(TimeUnit::Second, _) => now.as_secs() as i64,
        DataType::Timestamp(TimeUnit::Millisecond, _) => now.as_millis() as i64,
        DataType::Timestamp(TimeUnit::Microsecond, _) => now.as_micros() as i64,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => now.as_nanos() as i64,
        DataType::Date32 => (now.as_secs() / 86_400) as i64,
        _ => match watermark {
            Some(w) => w,
            None => return Ok(None),
        },
    };
    cutoff(ty, value, retention).map(Some)
}

/// `head` without the rows whose key appears in `fresh`.
fn without_keys(schema: &SchemaRef, head: Vec<Slice>, fresh: &[Slice], key: &[String]) -> Result<Vec<Slice>, String> {
    let indices: Vec<usize> =
        key.iter().map(|k| schema.index_of(k).map_err(|e| format!("key: {e}"))).collect::<Result<_, _>>()?;
    let fields: Vec<arrow::row::SortField> =
        indices.iter().map(|&i| arrow::row::SortField::new(schema.field(i).data_type().clone())).collect();
    let converter = arrow::row::RowConverter::new(fields).map_err(|e| e.to_string())?;
    let columns = |b: &RecordBatch| indices.iter().map(|&i| Arc::clone(b.column(i))).collect::<Vec<_>>();
    let mut seen = std::collections::HashSet::new();
    for s in fresh {
        let keys = converter.convert_columns(&columns(&s.batch)).map_err(|e| e.to_string())?;
        seen.extend(keys.iter().map(|r| r.as_ref().to_vec()));
    }
    let mut out = Vec::new();
    for s in head {
        let keys = converter.convert_columns(&columns(&s.batch)).map_err(|e| e.to_string())?;
        let keep: BooleanArray = keys.iter().map(|r| Some(!seen.contains(r.as_ref()))).collect();
        if keep.true_count() == keep.len() {
            out.push(s);
            continue;
        }
        let kept = filter_record_batch(&s.batch, &keep).map_err(|e| e.to_string())?;
        if kept.num_rows() > 0 {
            out.push(Slice::new(kept));
        }
    }
    Ok(out)
}

/// The watermark `value` of a time column of type `ty`.
fn watermark(ty: &DataType, value: i64) -> Result<Watermark, String> {
    let array: ArrayRef = match ty {
        DataType::Timestamp(unit, tz) => {
            let a = Int64Array::from(vec![value]);
            arrow::compute::cast(&a, &DataType::Timestamp(*unit, tz.clone())).map_err(|e| e.to_string())?
        }
        DataType::Date32 => Arc::new(arrow::array::Date32Array::from(vec![value as i32])),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            arrow::compute::cast(&Int64Array::from(vec![value]), ty).map_err(|e| e.to_string())?
        }
        other => return Err(format!("time column of type {other}: use a timestamp, date or integer column")),
    };
    let literal = crate::sql::literal::literal(&array, 0)?;
    Ok(Watermark { value, literal })
}

/// `watermark - overlap`, in the column's unit: whole days for a date,
/// seconds for an integer column (epoch seconds, or any counter).
pub(super) fn cutoff(ty: &DataType, watermark_value: i64, overlap: Duration) -> Result<Watermark, String> {
    let back: i64 = match ty {
        DataType::Timestamp(TimeUnit::Second, _) => overlap.as_secs() as i64,
        DataType::Timestamp(TimeUnit::Millisecond, _) => overlap.as_millis() as i64,
        DataType::Timestamp(TimeUnit::Microsecond, _) => overlap.as_micros() as i64,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => overlap.as_nanos() as i64,
        DataType::Date32 => overlap.as_secs().div_ceil(86_400) as i64,
        _ => overlap.as_secs() as i64,
    };
    watermark(ty, watermark_value.saturating_sub(back))
}
