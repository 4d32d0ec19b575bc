//! Versions on disk, for warm restarts: the rows and their slices'
//! statistics as Arrow IPC streams in one file, and a small manifest naming
//! its checksum. Both are written aside and renamed into place, the
//! manifest last, so a crash leaves the previous snapshot or the new one,
//! never half of one; a file that does not match its manifest is refused,
//! never served.
//!
//! The file holds two streams, the statistics (a row per slice) and then
//! the slices, so that a start-up reads it once, hashing as it decodes,
//! and computes nothing again.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use twox_hash::XxHash3_128;

use super::Version;
use super::slice::{Slice, layout, stats_batch, with_stats};

/// The manifest's layout version. 1: one IPC file without statistics.
const FORMAT: u32 = 2;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    table: String,
    version: u64,
    rows: u64,
    /// XXH3-128 of the data file, hex: it detects a torn or damaged file
    /// at memory speed (the directory is trusted; this is no signature).
    xxh3: String,
    /// When this version was written, Unix seconds: how current it was.
    fresh_as_of: u64,
    /// The Iceberg snapshot the version holds, if the table is one.
    #[serde(default)]
    iceberg_snapshot: Option<i64>,
}

/// A version read back from disk.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub version: u64,
    pub schema: SchemaRef,
    pub slices: Vec<Slice>,
    pub fresh_as_of: SystemTime,
    pub iceberg_snapshot: Option<i64>,
}

/// The data file and manifest of `table` in `dir`; the name is the table's
/// hex, so any table name is a safe file name.
fn paths(dir: &Path, table: &str) -> (PathBuf, PathBuf) {
    let stem = hex::encode(table.as_bytes());
    (dir.join(format!("{stem}.arrow")), dir.join(format!("{stem}.json")))
}

/// A reader or writer that hashes what passes through it.
struct Hashing<T> {
    inner: T,
    hash: XxHash3_128,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing { inner, hash: XxHash3_128::new() }
    }

    fn hex(&self) -> String {
        format!("{:032x}", self.hash.finish_128())
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.write(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.write(&buf[..n]);
        Ok(n)
    }
}

fn io(what: &str, path: &Path) -> impl Fn(std::io::Error) -> String {
    let at = format!("{what} {}", path.display());
    move |e| format!("{at}: {e}")
}

/// Writes `table`'s version: data, then manifest, each aside then renamed.
/// Blocking.
pub(super) fn write(dir: &Path, table: &str, version: &Version, fresh_as_of: SystemTime) -> Result<(), String> {
    let (schema, slices) = (&version.schema, &version.slices);
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let (data, manifest) = paths(dir, table);
    let tmp = data.with_extension("arrow.tmp");
    let file = File::create(&tmp).map_err(io("cannot write", &tmp))?;
    let mut hashing = Hashing::new(BufWriter::with_capacity(1 << 20, file));
    let stats = stats_batch(schema, slices)?;
    let mut w = StreamWriter::try_new(&mut hashing, &stats.schema()).map_err(|e| e.to_string())?;
    w.write(&stats).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    let mut w = StreamWriter::try_new(&mut hashing, schema).map_err(|e| e.to_string())?;
    for s in slices {
        w.write(&s.batch).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    drop(w);
    let xxh3 = hashing.hex();
    let file = hashing.inner.into_inner().map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    file.sync_all().map_err(io("cannot sync", &tmp))?;
    std::fs::rename(&tmp, &data).map_err(io("cannot rename", &tmp))?;
    let m = Manifest {
        format: FORMAT,
        table: table.to_string(),
        version: version.number,
        rows: slices.iter().map(|s| s.batch.num_rows() as u64).sum(),
        xxh3,
        fresh_as_of: fresh_as_of.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs(),
        iceberg_snapshot: version.iceberg_snapshot,
    };
    let tmp = manifest.with_extension("json.tmp");
    let mut file = File::create(&tmp).map_err(io("cannot write", &tmp))?;
    file.write_all(&serde_json::to_vec(&m).expect("a manifest serializes")).map_err(io("cannot write", &tmp))?;
    file.sync_all().map_err(io("cannot sync", &tmp))?;
    std::fs::rename(&tmp, &manifest).map_err(io("cannot rename", &tmp))?;
    Ok(())
}

/// `table`'s snapshot in `dir`: `None` when there is none, an error when
/// there is one that does not check out (torn, altered, another table's,
/// of another format). Blocking.
pub(super) fn read(dir: &Path, table: &str) -> Result<Option<Snapshot>, String> {
    let (data, manifest) = paths(dir, table);
    let m: Manifest = match std::fs::read(&manifest) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("manifest {}: {e}", manifest.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read", &manifest)(e)),
    };
    if m.format != FORMAT || m.table != table {
        return Err(format!("manifest {} is not a snapshot of {table} in format {FORMAT}", manifest.display()));
    }
    // One pass: decoded while hashed. What was decoded is used only once
    // the whole file matched its checksum; the decoder validates every
    // array, so a damaged file fails cleanly before that.
    let file = File::open(&data).map_err(io("cannot read", &data))?;
    let mut reader = BufReader::with_capacity(1 << 20, Hashing::new(file));
    let decoded = decode(&mut reader);
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io("cannot read", &data))?;
    if reader.into_inner().hex() != m.xxh3 {
        return Err(format!("{} does not match its checksum (torn or altered)", data.display()));
    }
    let (schema, slices) = decoded.map_err(|e| format!("{}: {e}", data.display()))?;
    let rows: u64 = slices.iter().map(|s| s.batch.num_rows() as u64).sum();
    if rows != m.rows {
        return Err(format!("{} holds {rows} rows, its manifest {}", data.display(), m.rows));
    }
    Ok(Some(Snapshot {
        version: m.version,
        schema,
        slices,
        fresh_as_of: SystemTime::UNIX_EPOCH + Duration::from_secs(m.fresh_as_of),
        iceberg_snapshot: m.iceberg_snapshot,
    }))
}

/// The statistics stream, then the slices.
fn decode(reader: &mut impl Read) -> Result<(SchemaRef, Vec<Slice>), String> {
    let stats: Vec<RecordBatch> = StreamReader::try_new(&mut *reader, None)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let [stats] = <[RecordBatch; 1]>::try_from(stats).map_err(|s| format!("{} statistics batches", s.len()))?;
    let batches = StreamReader::try_new(&mut *reader, None).map_err(|e| e.to_string())?;
    let schema = batches.schema();
    if layout(&schema) != schema {
        return Err("its strings are not held as views".into());
    }
    let batches: Vec<RecordBatch> = batches.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    Ok((schema, with_stats(batches, &stats)?))
}

/// Removes `table`'s snapshot, so that a bad one is not read again.
pub(super) fn discard(dir: &Path, table: &str) {
    let (data, manifest) = paths(dir, table);
    let _ = std::fs::remove_file(manifest);
    let _ = std::fs::remove_file(data);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, ListArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn slices(values: Vec<i64>) -> (SchemaRef, Vec<Slice>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("s", DataType::Utf8View, true),
            Field::new("l", DataType::new_list(DataType::Int64, true), true),
        ]));
        let slices = values
            .chunks(300)
            .map(|chunk| {
                let strings: Vec<Option<String>> =
                    chunk.iter().map(|v| (v % 7 != 0).then(|| format!("é{v}"))).collect();
                let lists =
                    ListArray::from_iter_primitive::<Int64Type, _, _>(chunk.iter().map(|v| Some(vec![Some(*v)])));
                let b = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(Int64Array::from(chunk.to_vec())),
                        Arc::new(StringViewArray::from(strings)),
                        Arc::new(lists),
                    ],
                )
                .unwrap();
                Slice::new(b)
            })
            .collect();
        (schema, slices)
    }

    #[test]
    fn a_snapshot_reads_back_with_its_statistics_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, written) = slices((0..1000).collect());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(read(dir.path(), "m.d.t").unwrap().is_none());
        let mut version = crate::accel::tests::version(written.clone(), schema);
        let v = std::sync::Arc::get_mut(&mut version).unwrap();
        (v.number, v.iceberg_snapshot) = (7, Some(-42));
        write(dir.path(), "m.d.t", &version, at).unwrap();
        let s = read(dir.path(), "m.d.t").unwrap().unwrap();
        assert_eq!((s.version, s.fresh_as_of, s.slices.len(), s.iceberg_snapshot), (7, at, 4, Some(-42)));
        for (got, want) in s.slices.iter().zip(&written) {
            assert_eq!(got.batch, want.batch);
            assert_eq!(got.stats, want.stats, "statistics read back, not computed again");
        }
        assert!(read(dir.path(), "m.d.u").unwrap().is_none(), "another table's");
        // Torn: the data file cut short.
        let (data, _) = paths(dir.path(), "m.d.t");
        let bytes = std::fs::read(&data).unwrap();
        std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
        assert!(read(dir.path(), "m.d.t").unwrap_err().contains("checksum"));
        // Altered: one byte flipped, same length, anywhere.
        for at in [8, bytes.len() / 3, bytes.len() / 2, bytes.len() - 3] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0xff;
            std::fs::write(&data, &flipped).unwrap();
            assert!(read(dir.path(), "m.d.t").is_err(), "byte {at} flipped");
        }
        discard(dir.path(), "m.d.t");
        assert!(read(dir.path(), "m.d.t").unwrap().is_none());
    }

    #[test]
    fn an_empty_version_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, _) = slices(vec![]);
        write(dir.path(), "m.d.t", &crate::accel::tests::version(vec![], Arc::clone(&schema)), SystemTime::UNIX_EPOCH)
            .unwrap();
        let s = read(dir.path(), "m.d.t").unwrap().unwrap();
        assert!(s.slices.is_empty());
        assert_eq!(s.schema, schema);
    }
}
