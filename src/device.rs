//! Where ONNX Runtime runs a model (CPU, CUDA or TensorRT), and opening a session there. The
//! emotion model and the YuNet face detector both open theirs here, so `--device` means the same
//! for both.

use std::path::Path;

use ort::session::Session;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// CUDA when the ONNX Runtime library and the machine have it, otherwise the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// NVIDIA CUDA (needs the onnxruntime-gpu library, CUDA and cuDNN).
    Cuda,
    /// NVIDIA TensorRT (needs the onnxruntime-gpu library, CUDA, cuDNN and TensorRT).
    Tensorrt,
}

/// Where a model was placed, and why not on a GPU when `auto` fell back to the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The execution provider: `CPU`, `CUDA` or `TensorRT`.
    pub provider: &'static str,
    /// Why `auto` runs on the CPU.
    pub fallback: Option<String>,
}

impl Placement {
    fn cpu(fallback: Option<String>) -> Self {
        Self {
            provider: "CPU",
            fallback,
        }
    }

    fn gpu(provider: &'static str) -> Self {
        Self {
            provider,
            fallback: None,
        }
    }

    /// The line to show when `auto` fell back to the CPU.
    pub fn note(&self) -> Option<String> {
        self.fallback.as_ref().map(|reason| {
            format!("note: running on the CPU; ONNX Runtime cannot use CUDA here ({reason})")
        })
    }
}

/// A session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// ONNX Runtime rejected the file.
    #[error("ONNX Runtime: {0}")]
    Ort(ort::Error),
    /// A GPU was asked for and cannot be used.
    #[error("--device {device}: the GPU cannot be used ({reason}); install the onnxruntime-gpu library with CUDA 13 and cuDNN 9 and give it with --ort-lib, or use --device cpu")]
    Device {
        /// The device asked for.
        device: &'static str,
        /// ONNX Runtime's reason.
        reason: String,
    },
}

// By hand rather than `#[from]`: the message already holds the cause (told once in the chain).
impl From<ort::Error> for SessionError {
    fn from(error: ort::Error) -> Self {
        Self::Ort(error)
    }
}

/// Opens the model file for `device`: `auto` tries CUDA and falls back to the CPU (the
/// [`Placement`] says why); an explicit GPU that cannot be used is an error. `threads` caps ONNX
/// Runtime's threads for one run (0: its default, one per core), so that a pipeline can keep
/// cores for its other stages.
///
/// # Errors
/// [`SessionError`] when ONNX Runtime cannot read the file or the GPU asked for cannot be used.
pub fn open_session(
    path: &Path,
    env: &ort::environment::Environment,
    threads: usize,
    device: Device,
) -> Result<(Session, Placement), SessionError> {
    let open = |provider: Option<ort::ep::ExecutionProviderDispatch>| -> ort::Result<Session> {
        let mut builder = Session::builder(env)?;
        if threads > 0 {
            builder = builder
                .with_intra_threads(threads)
                .map_err(ort::Error::<()>::from)?;
        }
        if let Some(provider) = provider {
            builder = builder
                .with_execution_providers([provider.error_on_failure()])
                .map_err(ort::Error::<()>::from)?;
        }
        builder.commit_from_file(path)
    };
    let reason = |e: ort::Error| e.to_string().trim_end_matches('.').to_owned();
    let on_gpu = |device: &'static str, session: Result<Session, ort::Error>| {
        session.map_err(|e| SessionError::Device {
            device,
            reason: reason(e),
        })
    };
    let cuda = || ort::ep::CUDA::default().build();
    Ok(match device {
        Device::Cpu => (open(None)?, Placement::cpu(None)),
        Device::Cuda => (on_gpu("cuda", open(Some(cuda())))?, Placement::gpu("CUDA")),
        Device::Tensorrt => (
            on_gpu("tensorrt", open(Some(ort::ep::TensorRT::default().build())))?,
            Placement::gpu("TensorRT"),
        ),
        Device::Auto => match open(Some(cuda())) {
            Ok(session) => (session, Placement::gpu("CUDA")),
            Err(e) => (open(None)?, Placement::cpu(Some(reason(e)))),
        },
    })
}
