//! Output files: each is written under a partial name of its own (host, process and a count,
//! so that no other run shares it) and moved into place when complete, so that no reader takes
//! a half-written file for a finished one; a failed write removes its partial file. A finished
//! file never replaces one that another run finished while this one was writing (two runs on one
//! output: the first to finish wins, the other fails naming the file), unless `--overwrite` was
//! given; a file that was there before the run started is replaced, as before.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set by `--overwrite`: a finished file replaces whatever is at its path.
static OVERWRITE: AtomicBool = AtomicBool::new(false);
/// Partial files made by this process so far: each gets its own name.
static PARTIALS: AtomicU64 = AtomicU64::new(0);

/// Lets finished files replace files that other runs finished meanwhile (`--overwrite`).
pub fn allow_overwrite() {
    OVERWRITE.store(true, Ordering::Relaxed);
}

/// What identifies the file at a path: a file replaced or rewritten by another run differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
    modified: i64,
    modified_nanos: i64,
    length: u64,
}

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some(FileId {
        device: metadata.dev(),
        inode: metadata.ino(),
        modified: metadata.mtime(),
        modified_nanos: metadata.mtime_nsec(),
        length: metadata.len(),
    })
}

/// This machine's name, as partial names carry it (runs on a shared disk are told apart).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().replace(['/', '.'], "_"))
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".into())
}

/// One output file being written: its partial name, and what was at its path when writing began.
#[derive(Debug)]
pub struct Claim {
    target: PathBuf,
    partial: PathBuf,
    found: Option<FileId>,
}

impl Claim {
    /// Starts writing `target`: notes what is there now, chooses a partial name no other run
    /// shares, and removes partial files of `target` left by processes of this machine that no
    /// longer run (a run killed with SIGKILL).
    pub fn new(target: &Path) -> Self {
        let host = host();
        remove_stale_partials(target, &host);
        let count = PARTIALS.fetch_add(1, Ordering::Relaxed);
        let mut name = target.as_os_str().to_owned();
        name.push(format!(".{host}-{}-{count}.partial", std::process::id()));
        Self {
            target: target.to_owned(),
            partial: PathBuf::from(name),
            found: file_id(target),
        }
    }

    /// Where the file is written until it is complete.
    pub fn partial(&self) -> &Path {
        &self.partial
    }

    /// Where the file goes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the complete partial file into place. Unless `--overwrite` was given, refuses (and
    /// removes the partial file) when the target changed since [`Claim::new`]: another run
    /// finished it meanwhile, and its file is kept.
    ///
    /// # Errors
    /// The refusal, or the I/O error of moving the file.
    pub fn commit(&self) -> std::io::Result<()> {
        let committed = self.move_into_place();
        if committed.is_err() {
            self.abandon();
        }
        committed
    }

    fn move_into_place(&self) -> std::io::Result<()> {
        let overwrite = OVERWRITE.load(Ordering::Relaxed);
        let taken = || {
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "another run finished this file while this one was writing it; that file is kept (--overwrite replaces it)",
            )
        };
        if !overwrite && file_id(&self.target) != self.found {
            return Err(taken());
        }
        if overwrite || self.found.is_some() {
            return std::fs::rename(&self.partial, &self.target);
        }
        // Nothing was there: a hard link appears only if the path is still free (atomic), where a
        // rename would replace a file another run just finished.
        match std::fs::hard_link(&self.partial, &self.target) {
            Ok(()) => std::fs::remove_file(&self.partial),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(taken()),
            // A file system without hard links: the check above is all there is.
            Err(_) => std::fs::rename(&self.partial, &self.target),
        }
    }

    /// Removes the partial file (nothing happens when it was never made or already moved).
    pub fn abandon(&self) {
        let _ = std::fs::remove_file(&self.partial);
    }

    /// Writes the whole file with `write`, flushed to disk, and commits it; on failure the
    /// partial file is removed.
    ///
    /// # Errors
    /// The first I/O error of `write`, flushing or committing.
    pub fn write(
        &self,
        write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let written = (|| {
            let mut out = BufWriter::new(File::create(&self.partial)?);
            write(&mut out)?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        match written {
            Ok(()) => self.commit(),
            Err(e) => {
                self.abandon();
                Err(e)
            }
        }
    }
}

/// Removes `TARGET.HOST-PID-N.partial` files of this host whose process is gone.
fn remove_stale_partials(target: &Path, host: &str) {
    let (Some(folder), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let prefix = format!("{}.{host}-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".partial"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes a file under a partial name and moves it to `path` when complete (see [`Claim`]); on
/// failure the partial file is removed.
///
/// # Errors
/// The first I/O error of `write`, flushing or committing.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    Claim::new(path).write(write)
}

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_write_error(path, error))]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

/// The one-line message of a [`WriteError`]: the file, the cause, and the fix that fits it.
fn describe_write_error(path: &Path, error: &std::io::Error) -> String {
    let path = path.display();
    match error.kind() {
        // The message says what happened and what to do.
        std::io::ErrorKind::AlreadyExists => format!("{path}: {error}"),
        std::io::ErrorKind::StorageFull => {
            format!("{path}: cannot write: the disk is full; free space or choose another place")
        }
        _ => format!("{path}: cannot write ({error}); choose a writable place"),
    }
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

    #[test]
    fn a_file_another_run_finished_meanwhile_is_kept() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out.jsonl");
        let (first, second) = (Claim::new(&path), Claim::new(&path));
        assert_ne!(
            first.partial(),
            second.partial(),
            "partial names are not shared"
        );
        first.write(|out| out.write_all(b"first"))?;
        let refused = second.write(|out| out.write_all(b"second"));
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("another run finished this file"),
            "{message}"
        );
        assert_eq!(
            std::fs::read(&path)?,
            b"first",
            "the finished file is intact"
        );
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            1,
            "no partial file left"
        );
        // A file that was there before the run started is replaced.
        Claim::new(&path).write(|out| out.write_all(b"third"))?;
        assert_eq!(std::fs::read(&path)?, b"third");
        Ok(())
    }

    #[test]
    fn partial_files_of_dead_processes_are_removed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out.mp4");
        let host = host();
        // PID 4194304 is above Linux's largest: that process cannot run.
        let stale = dir.path().join(format!("out.mp4.{host}-4194304-0.partial"));
        let other_host = dir.path().join("out.mp4.elsewhere-4194304-0.partial");
        let alive = dir
            .path()
            .join(format!("out.mp4.{host}-{}-99.partial", std::process::id()));
        for file in [&stale, &other_host, &alive] {
            std::fs::write(file, b"x")?;
        }
        let claim = Claim::new(&path);
        assert!(!stale.exists(), "a dead run's partial file is removed");
        assert!(
            other_host.exists() && alive.exists(),
            "others are left alone"
        );
        assert!(claim.partial().starts_with(dir.path()));
        Ok(())
    }
}
