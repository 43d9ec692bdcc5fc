//! Output files: their names and how they are written.
//!
//! A file appears complete or not at all: it is written to a temporary file in the same directory,
//! flushed to disk, then renamed into place. An interrupted run never leaves half a CSV that a
//! spreadsheet would read as if it were whole.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create output directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} already exists; it was left as it is")]
    Exists { path: PathBuf },
}

/// The seed's names: `metrics_YYYYMMDD_HHMMSS.csv` and `.png`, from the run's start time in UTC.
pub fn output_stem(dir: &Path, run_time: Timestamp) -> PathBuf {
    dir.join(format!("metrics_{}", run_time.strftime("%Y%m%d_%H%M%S")))
}

/// Creates `dir` (and its parents) when missing.
pub fn ensure_dir(dir: &Path) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Whether an existing file at the destination may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Leave it and fail: `collect` never overwrites an earlier run's results.
    Keep,
    /// Replace it atomically: `plot -o PNG` writes where it was told.
    Replace,
}

/// Writes `path` atomically: `write` fills a buffered temporary file, which is renamed to `path` only
/// when everything was written and synced.
pub fn write_atomically<F>(path: &Path, existing: Existing, write: F) -> Result<(), OutputError>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let fail = |source| OutputError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    let (file, temp_path) = temp.into_parts();
    let mut writer = BufWriter::new(file);
    write(&mut writer).map_err(fail)?;
    writer.flush().map_err(fail)?;
    let file = writer.into_inner().map_err(|e| fail(e.into_error()))?;
    file.sync_all().map_err(fail)?;
    drop(file);
    let persisted = match existing {
        Existing::Keep => temp_path.persist_noclobber(path),
        Existing::Replace => temp_path.persist(path),
    };
    persisted.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            OutputError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            fail(e.error)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_seed() {
        let t: Timestamp = "2025-11-21T17:48:41Z".parse().unwrap();
        assert_eq!(
            output_stem(Path::new("out"), t),
            PathBuf::from("out/metrics_20251121_174841")
        );
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        let err = write_atomically(&path, Existing::Keep, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn keeps_or_replaces_an_existing_file_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        write_atomically(&path, Existing::Keep, |w| w.write_all(b"one")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let err = write_atomically(&path, Existing::Keep, |w| w.write_all(b"two")).unwrap_err();
        assert!(matches!(err, OutputError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomically(&path, Existing::Replace, |w| w.write_all(b"three")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        ensure_dir(&nested).unwrap();
        assert!(nested.is_dir());
    }
}
