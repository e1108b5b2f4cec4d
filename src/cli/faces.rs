//! Options that `annotate` and `live` share: the model and where it runs, face detection,
//! tracking and smoothing, and the x264 settings of the video they write; validated here once.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;

use crate::annotate::stages::Cadence;
use crate::classifier::Device;
use crate::detect::DetectConfig;
use crate::track::TrackConfig;
use crate::video::encode::{EncodeOptions, X264_PRESETS};

/// File name of the default cascade in `cascades/`.
const DEFAULT_CASCADE: &str = "haarcascade_frontalface_default.xml";
/// Where Debian's opencv-data puts the cascades.
const SYSTEM_CASCADES: &str = "/usr/share/opencv4/haarcascades";
/// Frames a face may go undetected before its track (and ID) ends.
const MAX_MISSED_FRAMES: usize = 12;

/// How faces are found, followed and classified.
#[derive(Debug, Clone, Args)]
pub struct FaceOptions {
    /// Emotion model (default: the shipped models/emolens-fer2013.onnx).
    #[arg(long, value_name = "MODEL.onnx", help_heading = "Model")]
    pub model: Option<PathBuf>,
    /// Where inference runs: auto uses CUDA when the ONNX Runtime library and the machine have
    /// it (with a note when it falls back to the CPU); cuda and tensorrt fail when they cannot.
    #[arg(long, value_enum, default_value_t = Device::Auto, help_heading = "Model")]
    pub device: Device,
    /// Classify each known face every N frames (a new face at once); in between it keeps its
    /// smoothed probabilities. 1 classifies every face in every frame.
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Model")]
    pub classify_every: usize,
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
    /// Full-frame detection every N frames (new faces), known faces followed near their last
    /// box in every frame; 1 searches the whole frame every frame.
    #[arg(
        long,
        default_value_t = 15,
        value_name = "N",
        help_heading = "Detection"
    )]
    pub detect_every: usize,
    /// Weight of the past when smoothing each face's probabilities, 0 (off) to 0.95.
    #[arg(long, default_value_t = 0.6, help_heading = "Tracking")]
    pub smooth: f32,
    /// Least box overlap (IoU) for a face to keep its ID from one frame to the next.
    #[arg(long, default_value_t = 0.3, help_heading = "Tracking")]
    pub min_iou: f64,
}

/// The validated [`FaceOptions`].
#[derive(Debug, Clone)]
pub struct FaceSettings {
    /// The ONNX emotion model.
    pub model: PathBuf,
    /// Where inference runs.
    pub device: Device,
    /// Face detection.
    pub detect: DetectConfig,
    /// Tracking and smoothing.
    pub track: TrackConfig,
    /// How often known faces are classified.
    pub cadence: Cadence,
}

impl FaceOptions {
    /// Checks every value.
    ///
    /// # Errors
    /// Says which value is invalid and what is valid.
    pub fn settings(self) -> Result<FaceSettings> {
        if !(self.scale_factor > 1.0 && self.scale_factor <= 2.0) {
            bail!(
                "--scale-factor {} is out of range: use a value in (1, 2]",
                self.scale_factor
            );
        }
        if self.min_neighbors < 0 {
            bail!("--min-neighbors must not be negative");
        }
        if self.min_face < 24 {
            bail!(
                "--min-face {} is too small: the cascade finds faces of 24 pixels and more",
                self.min_face
            );
        }
        if self.detect_every == 0 {
            bail!("--detect-every must be at least 1 (1 = detect on every frame)");
        }
        if self.classify_every == 0 {
            bail!("--classify-every must be at least 1 (1 = classify every face in every frame)");
        }
        if !(0.0..=0.95).contains(&self.smooth) {
            bail!(
                "--smooth {} is out of range: use 0 (off) to 0.95",
                self.smooth
            );
        }
        if !(self.min_iou > 0.0 && self.min_iou < 1.0) {
            bail!(
                "--min-iou {} is out of range: use a value in (0, 1)",
                self.min_iou
            );
        }
        Ok(FaceSettings {
            model: self.model.unwrap_or_else(crate::util::default_model_path),
            device: self.device,
            detect: DetectConfig {
                cascade: self.cascade.unwrap_or_else(default_cascade),
                scale_factor: self.scale_factor,
                min_neighbors: self.min_neighbors,
                min_face: self.min_face,
                detect_every: self.detect_every,
            },
            track: TrackConfig {
                min_iou: self.min_iou,
                max_missed: MAX_MISSED_FRAMES,
                smoothing: self.smooth,
            },
            cadence: Cadence {
                classify_every: self.classify_every,
            },
        })
    }
}

/// x264 settings of the video written.
#[derive(Debug, Clone, Args)]
pub struct VideoOptions {
    /// x264 preset of the video written.
    #[arg(long, default_value = "veryfast", help_heading = "Outputs")]
    pub preset: String,
    /// x264 constant rate factor, 0..=51 (lower: better quality, larger file).
    #[arg(long, default_value_t = 20, help_heading = "Outputs")]
    pub crf: u8,
}

impl VideoOptions {
    /// Checks the preset and rate factor.
    ///
    /// # Errors
    /// Says which value is invalid and what is valid.
    pub fn encode_options(self) -> Result<EncodeOptions> {
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            bail!(
                "--preset {} is not an x264 preset: use one of {}",
                self.preset,
                X264_PRESETS.join(", ")
            );
        }
        if self.crf > 51 {
            bail!("--crf {} is out of range: use 0 to 51", self.crf);
        }
        Ok(EncodeOptions {
            preset: self.preset,
            crf: self.crf,
        })
    }
}

/// The bundled cascade, else Debian's copy.
fn default_cascade() -> PathBuf {
    crate::util::data_dirs()
        .into_iter()
        .map(|d| d.join("cascades").join(DEFAULT_CASCADE))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(SYSTEM_CASCADES).join(DEFAULT_CASCADE))
}
