//! Versions on disk, for warm restarts: the rows as an Arrow IPC file and a
//! small manifest naming its checksum. Both are written aside and renamed
//! into place, the manifest last, so a crash leaves the previous snapshot
//! or the new one, never half of one; a file that does not match its
//! manifest is refused, never served.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};

/// The manifest's layout version.
const FORMAT: u32 = 1;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    table: String,
    version: u64,
    rows: u64,
    /// Of the data file, hex.
    sha256: String,
    /// When this version was written, Unix seconds: how current it was.
    fresh_as_of: u64,
}

/// A version read back from disk.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub version: u64,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub fresh_as_of: SystemTime,
}

/// The data file and manifest of `table` in `dir`; the name is the table's
/// hex, so any table name is a safe file name.
fn paths(dir: &Path, table: &str) -> (PathBuf, PathBuf) {
    let stem = hex::encode(table.as_bytes());
    (dir.join(format!("{stem}.arrow")), dir.join(format!("{stem}.json")))
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io(what: &str, path: &Path) -> impl Fn(std::io::Error) -> String {
    let at = format!("{what} {}", path.display());
    move |e| format!("{at}: {e}")
}

/// Writes `table`'s version: data, then manifest, each aside then renamed.
/// Blocking.
pub(super) fn write(
    dir: &Path,
    table: &str,
    version: u64,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    fresh_as_of: SystemTime,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let (data, manifest) = paths(dir, table);
    let tmp = data.with_extension("arrow.tmp");
    let file = File::create(&tmp).map_err(io("cannot write", &tmp))?;
    let mut hashing = Hashing { inner: BufWriter::new(file), hash: Sha256::new() };
    {
        let mut w = FileWriter::try_new(&mut hashing, schema).map_err(|e| e.to_string())?;
        for b in batches {
            w.write(b).map_err(|e| e.to_string())?;
        }
        w.finish().map_err(|e| e.to_string())?;
    }
    let sha256 = hex::encode(hashing.hash.finalize());
    let file = hashing.inner.into_inner().map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    file.sync_all().map_err(io("cannot sync", &tmp))?;
    std::fs::rename(&tmp, &data).map_err(io("cannot rename", &tmp))?;
    let m = Manifest {
        format: FORMAT,
        table: table.to_string(),
        version,
        rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
        sha256,
        fresh_as_of: fresh_as_of.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs(),
    };
    let tmp = manifest.with_extension("json.tmp");
    let mut file = File::create(&tmp).map_err(io("cannot write", &tmp))?;
    file.write_all(&serde_json::to_vec(&m).expect("a manifest serializes")).map_err(io("cannot write", &tmp))?;
    file.sync_all().map_err(io("cannot sync", &tmp))?;
    std::fs::rename(&tmp, &manifest).map_err(io("cannot rename", &tmp))?;
    Ok(())
}

/// `table`'s snapshot in `dir`: `None` when there is none, an error when
/// there is one that does not check out (torn, altered, another table's).
/// Blocking.
pub(super) fn read(dir: &Path, table: &str) -> Result<Option<Snapshot>, String> {
    let (data, manifest) = paths(dir, table);
    let m: Manifest = match std::fs::read(&manifest) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("manifest {}: {e}", manifest.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read", &manifest)(e)),
    };
    if m.format != FORMAT || m.table != table {
        return Err(format!("manifest {} is not a snapshot of {table}", manifest.display()));
    }
    // Checked in one streaming pass, then decoded in another: the file is
    // never held twice.
    let mut file = std::io::BufReader::with_capacity(1 << 20, File::open(&data).map_err(io("cannot read", &data))?);
    let mut hash = Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut chunk).map_err(io("cannot read", &data))?;
        if n == 0 {
            break;
        }
        hash.update(&chunk[..n]);
    }
    if hex::encode(hash.finalize()) != m.sha256 {
        return Err(format!("{} does not match its checksum (torn or altered)", data.display()));
    }
    let file = std::io::BufReader::with_capacity(1 << 20, File::open(&data).map_err(io("cannot read", &data))?);
    let reader = FileReader::try_new(file, None).map_err(|e| e.to_string())?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if rows != m.rows {
        return Err(format!("{} holds {rows} rows, its manifest {}", data.display(), m.rows));
    }
    Ok(Some(Snapshot {
        version: m.version,
        schema,
        batches,
        fresh_as_of: SystemTime::UNIX_EPOCH + Duration::from_secs(m.fresh_as_of),
    }))
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

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(values: Vec<i64>) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let b = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(values))]).unwrap();
        (schema, b)
    }

    #[test]
    fn a_snapshot_reads_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, b) = batch((0..1000).collect());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(read(dir.path(), "m.d.t").unwrap().is_none());
        write(dir.path(), "m.d.t", 7, &schema, std::slice::from_ref(&b), at).unwrap();
        let s = read(dir.path(), "m.d.t").unwrap().unwrap();
        assert_eq!((s.version, s.fresh_as_of, s.batches), (7, at, vec![b.clone()]));
        assert!(read(dir.path(), "m.d.u").unwrap().is_none(), "another table's");
        // Torn: the data file cut short.
        let (data, _) = paths(dir.path(), "m.d.t");
        let bytes = std::fs::read(&data).unwrap();
        std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
        assert!(read(dir.path(), "m.d.t").unwrap_err().contains("checksum"));
        // Altered: one byte flipped, same length.
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        std::fs::write(&data, &flipped).unwrap();
        assert!(read(dir.path(), "m.d.t").is_err());
        discard(dir.path(), "m.d.t");
        assert!(read(dir.path(), "m.d.t").unwrap().is_none());
    }
}
