//! Options that `annotate` and `live` share: the model and where it runs, face detection,
//! tracking and smoothing, what the tags say, and the x264 settings of the video they write;
//! validated here once into the face-analysis core's [`FaceConfig`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;

use crate::device::Device;
use crate::faces::haar::HaarConfig;
use crate::faces::locate::Cadence;
use crate::faces::track::TrackConfig;
use crate::faces::yunet::YunetConfig;
use crate::faces::{DetectConfig, DetectorKind, DetectorSettings, FaceConfig};
use crate::video::encode::{EncodeOptions, X264_PRESETS};

/// The bundled cascade, relative to the install or source folder.
const BUNDLED_CASCADE: &str = "cascades/haarcascade_frontalface_default.xml";
/// Debian's opencv-data copy of the same cascade.
const SYSTEM_CASCADE: &str = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";
/// The bundled YuNet model, relative to the install or source folder.
const BUNDLED_YUNET: &str = "models/yunet_s.onnx";
/// A face not found keeps its box this many frames (a third of a second at 24 fps), then its
/// track and ID end.
const MAX_MISSED_FRAMES: usize = 8;
/// Full-frame searches, by detector: YuNet every 10 frames (0.4 s at 24 fps; a search of a
/// 640x360 frame costs about 7 ms, following a known face 0.3 ms), Haar every 15.
const YUNET_DETECT_EVERY: usize = 10;
const HAAR_DETECT_EVERY: usize = 15;
/// YuNet's working width and the least score of a new face (see README, Detection).
const YUNET_WIDTH: u32 = 640;
const YUNET_THRESHOLD: f32 = 0.7;
/// Haar defaults: scale step, overlapping hits and smallest face of the full search.
const HAAR_SCALE_FACTOR: f64 = 1.2;
const HAAR_MIN_NEIGHBORS: i32 = 5;
const HAAR_MIN_FACE: u32 = 48;

/// How faces are found, followed and classified.
#[derive(Debug, Clone, Args)]
pub struct FaceOptions {
    /// Emotion model (default: the shipped models/emolens-ferplus.int8.onnx).
    #[arg(long, value_name = "MODEL.onnx", help_heading = "Model")]
    pub model: Option<PathBuf>,
    /// Where inference runs (the emotion model and YuNet): auto uses CUDA when the ONNX Runtime
    /// library and the machine have it (with a note when it falls back to the CPU); cuda and
    /// tensorrt fail when they cannot.
    #[arg(long, value_enum, default_value_t = Device::Auto, help_heading = "Model")]
    pub device: Device,
    /// Classify each known face every N frames (a new face at once); in between it keeps its
    /// smoothed probabilities. 1 classifies every face in every frame.
    #[arg(long, default_value_t = 4, value_name = "N", help_heading = "Model")]
    pub classify_every: usize,
    /// Crop faces as boxed, without turning them upright (eyes level) from their landmarks.
    #[arg(long, help_heading = "Model")]
    pub no_align: bool,
    #[command(flatten)]
    pub detection: DetectOptions,
    /// Weight of the past when smoothing each face's probabilities, 0 (off) to 0.95.
    #[arg(long, default_value_t = 0.6, help_heading = "Tracking")]
    pub smooth: f32,
    /// Least box overlap (IoU) for a face to keep its ID from one frame to the next.
    #[arg(long, default_value_t = 0.3, help_heading = "Tracking")]
    pub min_iou: f64,
}

impl FaceOptions {
    /// Checks every value.
    ///
    /// # Errors
    /// Says which value is invalid and what is valid.
    pub fn settings(self, tags: TagOptions) -> Result<FaceConfig> {
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
        Ok(FaceConfig {
            model: self.model.unwrap_or_else(crate::util::default_model_path),
            device: self.device,
            detect: self.detection.config()?,
            track: TrackConfig {
                min_iou: self.min_iou,
                max_missed: MAX_MISSED_FRAMES,
                smoothing: self.smooth,
            },
            cadence: Cadence {
                classify_every: self.classify_every,
            },
            upright: !self.no_align,
            view: tags.view,
            show_units: tags.show_aus,
        })
    }
}

/// Which detector finds the faces, and its settings.
#[derive(Debug, Clone, Args)]
pub struct DetectOptions {
    /// Face detector: yunet (a CNN: profiles, tilted and small faces, landmarks and head pose)
    /// or haar (OpenCV's frontal-face cascade: cheapest, frontal faces only).
    #[arg(long, value_enum, default_value_t = DetectorKind::Yunet, help_heading = "Detection")]
    pub detector: DetectorKind,
    /// Full-frame detection every N frames (new faces), known faces followed near their last
    /// box in every frame; 1 searches the whole frame every frame [default: 10 for yunet, 15
    /// for haar].
    #[arg(long, value_name = "N", help_heading = "Detection")]
    pub detect_every: Option<usize>,
    /// yunet: the ONNX model (default: the shipped models/yunet_s.onnx).
    #[arg(long, value_name = "FILE.onnx", help_heading = "Detection")]
    pub detector_model: Option<PathBuf>,
    /// yunet: width of the working copy the whole frame is searched in (larger finds smaller
    /// faces, costs more; frames are never scaled up) [default: 640].
    #[arg(long, value_name = "PIXELS", help_heading = "Detection")]
    pub detect_width: Option<u32>,
    /// yunet: least score of a new face, 0..1 (higher: fewer false faces, misses more)
    /// [default: 0.7].
    #[arg(long, value_name = "SCORE", help_heading = "Detection")]
    pub detect_threshold: Option<f32>,
    /// haar: cascade XML (default: cascades/haarcascade_frontalface_default.xml).
    #[arg(long, value_name = "FILE", help_heading = "Detection")]
    pub cascade: Option<PathBuf>,
    /// haar: scale step of the full-frame search, > 1 (larger: faster, may miss faces; known
    /// faces are followed at a fine step regardless) [default: 1.2].
    #[arg(long, help_heading = "Detection")]
    pub scale_factor: Option<f64>,
    /// haar: overlapping hits needed to report a face (larger: fewer false faces) [default: 5].
    #[arg(long, help_heading = "Detection")]
    pub min_neighbors: Option<i32>,
    /// haar: smallest face side in input pixels; the search runs at the resolution that maps
    /// it to the cascade's 24-pixel window [default: 48].
    #[arg(long, help_heading = "Detection")]
    pub min_face: Option<u32>,
}

impl DetectOptions {
    /// Checks every value.
    ///
    /// # Errors
    /// Says which value is invalid and what is valid, or that a flag belongs to the other
    /// detector.
    pub fn config(&self) -> Result<DetectConfig> {
        let detect_every = self.detect_every.unwrap_or(match self.detector {
            DetectorKind::Yunet => YUNET_DETECT_EVERY,
            DetectorKind::Haar => HAAR_DETECT_EVERY,
        });
        if detect_every == 0 {
            bail!("--detect-every must be at least 1 (1 = detect on every frame)");
        }
        let detector = match self.detector {
            DetectorKind::Yunet => DetectorSettings::Yunet(self.yunet()?),
            DetectorKind::Haar => DetectorSettings::Haar(self.haar()?),
        };
        Ok(DetectConfig {
            detector,
            detect_every,
        })
    }

    fn yunet(&self) -> Result<YunetConfig> {
        self.refuse_others(
            "haar",
            &[
                ("--cascade", self.cascade.is_some()),
                ("--scale-factor", self.scale_factor.is_some()),
                ("--min-neighbors", self.min_neighbors.is_some()),
                ("--min-face", self.min_face.is_some()),
            ],
        )?;
        let width = self.detect_width.unwrap_or(YUNET_WIDTH);
        if !(64..=4096).contains(&width) {
            bail!("--detect-width {width} is out of range: use 64 to 4096 pixels");
        }
        let threshold = self.detect_threshold.unwrap_or(YUNET_THRESHOLD);
        if !(threshold > 0.0 && threshold < 1.0) {
            bail!("--detect-threshold {threshold} is out of range: use a score in (0, 1)");
        }
        Ok(YunetConfig {
            model: self
                .detector_model
                .clone()
                .unwrap_or_else(|| bundled_or(BUNDLED_YUNET, Path::new(BUNDLED_YUNET))),
            width,
            threshold,
            threads: 1,
        })
    }

    fn haar(&self) -> Result<HaarConfig> {
        self.refuse_others(
            "yunet",
            &[
                ("--detector-model", self.detector_model.is_some()),
                ("--detect-width", self.detect_width.is_some()),
                ("--detect-threshold", self.detect_threshold.is_some()),
            ],
        )?;
        let scale_factor = self.scale_factor.unwrap_or(HAAR_SCALE_FACTOR);
        if !(scale_factor > 1.0 && scale_factor <= 2.0) {
            bail!("--scale-factor {scale_factor} is out of range: use a value in (1, 2]");
        }
        let min_neighbors = self.min_neighbors.unwrap_or(HAAR_MIN_NEIGHBORS);
        if min_neighbors < 0 {
            bail!("--min-neighbors must not be negative");
        }
        let min_face = self.min_face.unwrap_or(HAAR_MIN_FACE);
        if min_face < 24 {
            bail!(
                "--min-face {min_face} is too small: the cascade finds faces of 24 pixels and more"
            );
        }
        Ok(HaarConfig {
            cascade: self
                .cascade
                .clone()
                .unwrap_or_else(|| bundled_or(BUNDLED_CASCADE, Path::new(SYSTEM_CASCADE))),
            scale_factor,
            min_neighbors,
            min_face,
        })
    }

    /// Options of the other detector are refused rather than ignored.
    fn refuse_others(&self, other: &str, given: &[(&str, bool)]) -> Result<()> {
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            bail!("{flag} is a setting of --detector {other}; add --detector {other} or leave {flag} out");
        }
        Ok(())
    }
}

/// What the tags on the faces say.
#[derive(Debug, Clone, Args)]
pub struct TagOptions {
    /// Show this view of the model's labels instead of the labels (e.g. valence: negative,
    /// positive, surprise, neutral; the FER2013 labels have it built in).
    #[arg(long, value_name = "NAME", help_heading = "Outputs")]
    pub view: Option<String>,
    /// List the action units present under each face (models trained with --aus).
    #[arg(long, help_heading = "Outputs")]
    pub show_aus: bool,
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
        check_preset("--preset", &self.preset)?;
        if self.crf > 51 {
            bail!("--crf {} is out of range: use 0 to 51", self.crf);
        }
        Ok(EncodeOptions {
            preset: self.preset,
            crf: self.crf,
        })
    }
}

/// Refuses a `flag` value that is not an x264 preset.
///
/// # Errors
/// Names the flag and lists the presets.
pub fn check_preset(flag: &str, preset: &str) -> Result<()> {
    if !X264_PRESETS.contains(&preset) {
        bail!(
            "{flag} {preset} is not an x264 preset: use one of {}",
            X264_PRESETS.join(", ")
        );
    }
    Ok(())
}

/// The bundled file, else `fallback`.
fn bundled_or(relative: &str, fallback: &Path) -> PathBuf {
    crate::util::bundled(relative).unwrap_or_else(|| fallback.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        faces: FaceOptions,
        #[command(flatten)]
        tags: TagOptions,
    }

    fn settings(args: &[&str]) -> Result<FaceConfig> {
        let flags = Flags::try_parse_from(std::iter::once("emolens").chain(args.iter().copied()))?;
        flags.faces.settings(flags.tags)
    }

    fn refused(args: &[&str], needle: &str) {
        let error = settings(args)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains(needle),
            "{args:?}: `{error}` lacks `{needle}`"
        );
    }

    #[test]
    fn defaults_pick_yunet_with_its_cadence() -> Result<()> {
        let config = settings(&[])?;
        assert!(matches!(config.detect.detector, DetectorSettings::Yunet(_)));
        assert_eq!(config.detect.detect_every, YUNET_DETECT_EVERY);
        assert!(config.upright);
        let haar = settings(&["--detector", "haar", "--min-face", "30"])?;
        assert_eq!(haar.detect.detect_every, HAAR_DETECT_EVERY);
        match haar.detect.detector {
            DetectorSettings::Haar(h) => assert_eq!((h.min_face, h.min_neighbors), (30, 5)),
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn values_out_of_range_and_flags_of_the_other_detector_are_refused() {
        refused(
            &["--detect-every", "0"],
            "--detect-every must be at least 1",
        );
        refused(&["--classify-every", "0"], "--classify-every");
        refused(&["--smooth", "0.99"], "0 (off) to 0.95");
        refused(&["--min-iou", "1"], "(0, 1)");
        refused(
            &["--detect-threshold", "1.5"],
            "--detect-threshold 1.5 is out of range",
        );
        refused(&["--detect-width", "10"], "64 to 4096");
        refused(&["--cascade", "x.xml"], "--detector haar");
        refused(
            &["--detector", "haar", "--detect-width", "960"],
            "--detector yunet",
        );
        refused(&["--detector", "haar", "--min-face", "10"], "24 pixels");
        refused(&["--detector", "haar", "--scale-factor", "1"], "(1, 2]");
    }
}
