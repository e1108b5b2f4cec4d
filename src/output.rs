//! Output files: each is written under a partial name beside it and renamed into place when
//! complete, so that no reader takes a half-written file for a finished one; a failed write
//! removes its partial file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where a file is written until it is complete: `path` with `.partial` appended.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes a file under its [`partial_path`], flushed to disk, and renames it to `path` when
/// complete; on failure the partial file is removed.
///
/// # Errors
/// The first I/O error of `write`, flushing or renaming.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let partial = partial_path(path);
    let written = (|| {
        let mut out = BufWriter::new(File::create(&partial)?);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write ({error}); choose a writable place")]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

/// Writes `bytes` as the file `path` with [`write_atomically`].
///
/// # Errors
/// [`WriteError`] naming the file.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomically(path, |out| out.write_all(bytes)).map_err(|error| WriteError {
        path: path.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_appears_whole_or_not_at_all() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("m.onnx");
        write_file(&path, b"abc")?;
        assert_eq!(std::fs::read(&path)?, b"abc");
        let failed = write_atomically(&dir.path().join("x"), |out| {
            out.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            1,
            "only the finished file"
        );
        let err = write_file(&dir.path().join("missing/m.onnx"), b"x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("missing/m.onnx"), "{err}");
        Ok(())
    }
}
