//! `emolens annotate` arguments and their validation into an [`AnnotateConfig`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use super::report::ReportOptions;
use crate::annotate::stages::Cadence;
use crate::annotate::{AnnotateConfig, Job};
use crate::detect::DetectConfig;
use crate::track::TrackConfig;
use crate::video::encode::{EncodeOptions, X264_PRESETS};
use crate::video::slowmo::slow_motion_path;

/// File name of the default cascade in `cascades/`.
const DEFAULT_CASCADE: &str = "haarcascade_frontalface_default.xml";
/// Where Debian's opencv-data puts the cascades.
const SYSTEM_CASCADES: &str = "/usr/share/opencv4/haarcascades";

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A GPU provider when one loads, otherwise the CPU (with a note).
    Auto,
    /// The CPU.
    Cpu,
    /// NVIDIA CUDA (needs a build with the `gpu` feature).
    Cuda,
    /// NVIDIA TensorRT (needs a build with the `gpu` feature).
    Tensorrt,
}

/// `emolens annotate`.
#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// Videos to annotate (any container and codec FFmpeg reads).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Annotated video (.mp4) for one input; a folder for several (each written as NAME.mp4).
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: PathBuf,
    /// Emotion model (default: the shipped models/emolens-fer2013.onnx).
    #[arg(long, value_name = "MODEL.onnx", help_heading = "Model")]
    pub model: Option<PathBuf>,
    /// Where inference runs.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto, help_heading = "Model")]
    pub device: DeviceChoice,
    /// Faces per inference call, gathered across frames.
    #[arg(long, default_value_t = 32, help_heading = "Model")]
    pub batch: usize,
    /// One JSON Lines record per face per frame (a folder for several inputs).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub json: Option<PathBuf>,
    /// The same records as CSV (a folder for several inputs).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub csv: Option<PathBuf>,
    /// Also write OUTPUT.slowFx.mp4, played F times slower (video only: audio is dropped).
    #[arg(long, value_name = "F", help_heading = "Outputs")]
    pub slowmo: Option<f64>,
    /// x264 preset of the annotated video.
    #[arg(long, default_value = "veryfast", help_heading = "Outputs")]
    pub preset: String,
    /// x264 constant rate factor, 0..=51 (lower: better quality, larger file).
    #[arg(long, default_value_t = 20, help_heading = "Outputs")]
    pub crf: u8,
    /// Haar cascade XML (default: cascades/haarcascade_frontalface_default.xml).
    #[arg(long, value_name = "FILE", help_heading = "Detection")]
    pub cascade: Option<PathBuf>,
    /// Scale step of the full-frame search, > 1 (larger: faster, may miss faces; known faces
    /// are followed at a fine step regardless).
    #[arg(long, default_value_t = 1.2, help_heading = "Detection")]
    pub scale_factor: f64,
    /// Overlapping hits needed to report a face (larger: fewer false faces).
    #[arg(long, default_value_t = 5, help_heading = "Detection")]
    pub min_neighbors: i32,
    /// Smallest face side in input pixels; detection runs at the resolution that maps it to the
    /// cascade's 24-pixel window.
    #[arg(long, default_value_t = 48, help_heading = "Detection")]
    pub min_face: u32,
    /// Full-frame detection every N frames, faces followed near their last box in between;
    /// 1 detects on every frame.
    #[arg(
        long,
        default_value_t = 15,
        value_name = "N",
        help_heading = "Detection"
    )]
    pub detect_every: usize,
    /// Classify each known face every N frames (a new face at once); in between it keeps its
    /// smoothed probabilities. 1 classifies every face in every frame.
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Model")]
    pub classify_every: usize,
    /// Weight of the past when smoothing each face's probabilities, 0 (off) to 0.95.
    #[arg(long, default_value_t = 0.6, help_heading = "Tracking")]
    pub smooth: f32,
    /// Least box overlap (IoU) for a face to keep its ID from one frame to the next.
    #[arg(long, default_value_t = 0.3, help_heading = "Tracking")]
    pub min_iou: f64,
    /// Blur every face in the annotated video (the box and label are still drawn); for
    /// sharing recordings of people who did not consent to being shown.
    #[arg(long, help_heading = "Outputs")]
    pub blur: bool,
    /// Engagement report into this folder (a folder per input for several): class.csv,
    /// tracks.csv, report.html. The face records go to --json, or to DIR/faces.jsonl.
    #[arg(long, value_name = "DIR", help_heading = "Report")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub report_options: ReportOptions,
    /// Print the time of each stage at the end.
    #[arg(long)]
    pub stats: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Frames a face may go undetected before its track (and ID) ends.
pub(crate) const MAX_MISSED_FRAMES: usize = 12;
/// Largest slow-motion factor.
const MAX_SLOWMO: f64 = 100.0;

/// Validates `emolens annotate` arguments.
///
/// # Errors
/// Says which value is invalid and what is valid.
pub fn annotate_config(args: AnnotateArgs, ort_lib: Option<PathBuf>) -> Result<AnnotateConfig> {
    match args.device {
        DeviceChoice::Auto => eprintln!("note: this build has no GPU support; running on the CPU"),
        DeviceChoice::Cpu => {}
        DeviceChoice::Cuda | DeviceChoice::Tensorrt => bail!(
            "--device {:?} is not available: this build has no GPU support (rebuild with --features gpu), use --device cpu",
            args.device
        ),
    }
    if args.batch == 0 || args.batch > 1024 {
        bail!("--batch {} is out of range: use 1 to 1024", args.batch);
    }
    if !(args.scale_factor > 1.0 && args.scale_factor <= 2.0) {
        bail!(
            "--scale-factor {} is out of range: use a value in (1, 2]",
            args.scale_factor
        );
    }
    if args.min_neighbors < 0 {
        bail!("--min-neighbors must not be negative");
    }
    if args.min_face < 24 {
        bail!(
            "--min-face {} is too small: the cascade finds faces of 24 pixels and more",
            args.min_face
        );
    }
    if args.detect_every == 0 {
        bail!("--detect-every must be at least 1 (1 = detect on every frame)");
    }
    if args.classify_every == 0 {
        bail!("--classify-every must be at least 1 (1 = classify every face in every frame)");
    }
    if !(0.0..=0.95).contains(&args.smooth) {
        bail!(
            "--smooth {} is out of range: use 0 (off) to 0.95",
            args.smooth
        );
    }
    if !(args.min_iou > 0.0 && args.min_iou < 1.0) {
        bail!(
            "--min-iou {} is out of range: use a value in (0, 1)",
            args.min_iou
        );
    }
    if !X264_PRESETS.contains(&args.preset.as_str()) {
        bail!(
            "--preset {} is not an x264 preset: use one of {}",
            args.preset,
            X264_PRESETS.join(", ")
        );
    }
    if args.crf > 51 {
        bail!("--crf {} is out of range: use 0 to 51", args.crf);
    }
    if let Some(f) = args.slowmo {
        if !(f > 1.0 && f <= MAX_SLOWMO) {
            bail!("--slowmo {f} is out of range: use a factor above 1 and at most {MAX_SLOWMO}");
        }
    }
    for input in &args.inputs {
        if !input.is_file() {
            bail!(
                "{}: not found; give an existing video file",
                input.display()
            );
        }
    }
    if args.report.is_some() {
        args.report_options.config(None)?;
    }
    let several = args.inputs.len() > 1;
    let jobs = args
        .inputs
        .iter()
        .map(|input| -> Result<Job> {
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "video".into());
            let place = |path: &Path, extension: &str| -> Result<PathBuf> {
                if several {
                    std::fs::create_dir_all(path).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: cannot create the output folder ({e}); choose a writable folder",
                            path.display()
                        )
                    })?;
                    Ok(path.join(format!("{stem}.{extension}")))
                } else {
                    Ok(path.to_owned())
                }
            };
            let output = place(&args.output, "mp4")?;
            let report = args.report.as_deref().map(|dir| {
                if several {
                    dir.join(&stem)
                } else {
                    dir.to_owned()
                }
            });
            if let Some(dir) = &report {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: cannot create the report folder ({e}); choose a writable folder",
                        dir.display()
                    )
                })?;
            }
            let json = match (&args.json, &report) {
                (Some(path), _) => Some(place(path, "jsonl")?),
                (None, Some(dir)) => Some(dir.join("faces.jsonl")),
                (None, None) => None,
            };
            let csv = args.csv.as_deref().map(|p| place(p, "csv")).transpose()?;
            let slowmo = args.slowmo.map(|f| (slow_motion_path(&output, f), f));
            Ok(Job {
                input: input.clone(),
                output,
                json,
                csv,
                slowmo,
                report,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for job in &jobs {
        let extension = job
            .output
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("");
        if !extension.eq_ignore_ascii_case("mp4") {
            bail!(
                "{}: the annotated video is H.264 in MP4; give an output ending in .mp4",
                job.output.display()
            );
        }
        let mut written: Vec<&Path> = vec![&job.output];
        written.extend(job.json.as_deref());
        written.extend(job.csv.as_deref());
        if let Some((slow, _)) = &job.slowmo {
            written.push(slow);
        }
        for path in written {
            for input in &args.inputs {
                if same_file(path, input) {
                    bail!(
                        "{}: the output would overwrite the input {}; choose another output",
                        path.display(),
                        input.display()
                    );
                }
            }
            super::check_writable_output(path, "mp4")?;
        }
    }
    let cascade = args.cascade.unwrap_or_else(default_cascade);
    Ok(AnnotateConfig {
        jobs,
        model: args.model.unwrap_or_else(crate::util::default_model_path),
        detect: DetectConfig {
            cascade,
            scale_factor: args.scale_factor,
            min_neighbors: args.min_neighbors,
            min_face: args.min_face,
            detect_every: args.detect_every,
        },
        track: TrackConfig {
            min_iou: args.min_iou,
            max_missed: MAX_MISSED_FRAMES,
            smoothing: args.smooth,
        },
        cadence: Cadence {
            classify_every: args.classify_every,
        },
        batch: args.batch,
        encode: EncodeOptions {
            preset: args.preset,
            crf: args.crf,
        },
        blur: args.blur,
        report: args.report.is_some().then_some(args.report_options),
        stats: args.stats,
        progress: !args.quiet,
        ort_lib,
    })
}

/// Whether two paths name the same file (the second exists; the first may not yet).
fn same_file(candidate: &Path, existing: &Path) -> bool {
    let Ok(existing) = existing.canonicalize() else {
        return false;
    };
    if let Ok(candidate) = candidate.canonicalize() {
        return candidate == existing;
    }
    let parent = match candidate.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), candidate.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name) == existing,
        _ => false,
    }
}

/// The bundled cascade, else Debian's copy.
pub(crate) fn default_cascade() -> PathBuf {
    crate::util::data_dirs()
        .into_iter()
        .map(|d| d.join("cascades").join(DEFAULT_CASCADE))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(SYSTEM_CASCADES).join(DEFAULT_CASCADE))
}
