//! Finding and loading the ONNX Runtime shared library (`load-dynamic`): from `--ort-lib`,
//! `ORT_DYLIB_PATH`, or where `scripts/setup.sh` installs it, with an error that says how to get it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// ONNX Runtime release this build is written against (API 17+; the PyPI wheel's library).
pub const ORT_VERSION: &str = "1.31.1";
/// Environment variable that names the library file.
pub const ORT_ENV_VAR: &str = "ORT_DYLIB_PATH";

/// File name of the library in the PyPI wheel and in our install folder.
fn library_name() -> String {
    format!("libonnxruntime.so.{ORT_VERSION}")
}

/// Where `scripts/setup.sh` puts the library: `$XDG_DATA_HOME/emolens/onnxruntime`, or
/// `~/.local/share/emolens/onnxruntime`.
pub fn install_dir() -> Option<PathBuf> {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(data_home.join("emolens").join("onnxruntime"))
}

/// The library could not be found or loaded.
#[derive(Debug, thiserror::Error)]
pub enum OrtLoadError {
    /// No candidate file exists.
    #[error(
        "ONNX Runtime library not found (looked in: {looked}); run scripts/setup.sh, or give \
         --ort-lib / {ORT_ENV_VAR} the path of libonnxruntime.so.{ORT_VERSION} from the PyPI \
         onnxruntime=={ORT_VERSION} wheel"
    )]
    NotFound {
        /// The places searched, comma-separated.
        looked: String,
    },
    /// A file exists but ONNX Runtime refused to load or start from it.
    #[error("cannot load ONNX Runtime from {path}: {reason}; install onnxruntime=={ORT_VERSION} with scripts/setup.sh")]
    Load {
        /// The library file.
        path: PathBuf,
        /// What ONNX Runtime said.
        reason: String,
    },
}

/// The library to load: `explicit` (the `--ort-lib` flag) if given, else `ORT_DYLIB_PATH`, else
/// the install folder, else next to the executable.
///
/// # Errors
/// [`OrtLoadError::NotFound`] listing where it looked.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, OrtLoadError> {
    if let Some(path) = explicit {
        return existing(path.to_owned());
    }
    if let Some(path) = std::env::var_os(ORT_ENV_VAR).filter(|p| !p.is_empty()) {
        return existing(PathBuf::from(path));
    }
    let mut candidates = Vec::new();
    if let Some(dir) = install_dir() {
        candidates.push(dir.join(library_name()));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
    {
        candidates.push(dir.join(library_name()));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| OrtLoadError::NotFound {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn existing(path: PathBuf) -> Result<PathBuf, OrtLoadError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(OrtLoadError::NotFound {
            looked: path.display().to_string(),
        })
    }
}

/// ONNX Runtime keeps one environment per process and can load its library only once, so the
/// environment is created on first use and shared.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The process's ONNX Runtime environment, loading the library found by [`locate`] on first use.
/// Later calls return the same environment whatever `explicit` says.
///
/// # Errors
/// [`OrtLoadError`] when the library is missing or does not load.
pub fn environment(explicit: Option<&Path>) -> Result<ort::environment::Environment, OrtLoadError> {
    if let Some(ready) = ENVIRONMENT.get() {
        return ready.clone().map_err(|reason| OrtLoadError::Load {
            path: PathBuf::from("(earlier attempt)"),
            reason,
        });
    }
    let path = locate(explicit)?;
    let created = ENVIRONMENT.get_or_init(|| {
        ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|builder| {
                builder
                    .with_name("emolens")
                    .build()
                    .map_err(|e| e.to_string())
            })
    });
    created
        .clone()
        .map_err(|reason| OrtLoadError::Load { path, reason })
}
