//! The face-analysis core that `annotate` and `live` share (DESIGN.md section 1): detect (YuNet
//! on ONNX Runtime, or a Haar cascade) -> track -> crop -> classify -> smooth.
//!
//! - [`Detector`] is one detector: a search of the whole frame, and a cheap look for known faces
//!   near their last boxes. [`haar`] and [`yunet`] implement it.
//! - [`finder::FaceFinder`] runs a detector over a video: a full search every k-th frame, known
//!   faces followed in every frame, and the [`track::Tracker`], which gives IDs and owns how long
//!   a lost face keeps its box.
//! - [`locate::FaceLocator`] adds which faces are due for classification and their crops
//!   ([`crop`]); [`classify::FaceClassifier`] runs the emotion model on crops in batches and
//!   smooths each face's probabilities. Annotate runs the two on different threads, live mode on
//!   one. [`captions`] says what each face's tag reads.
//! - [`pose`] estimates head yaw and pitch from the five landmarks, which decides `frontal`.

pub mod captions;
pub mod classify;
pub mod crop;
pub mod finder;
pub mod haar;
pub mod locate;
pub mod picture;
pub mod pose;
pub mod recall;
pub mod track;
pub mod yunet;

use std::path::PathBuf;

use anyhow::{Context, Result};
use opencv::core::{Point2f, Rect};

use crate::classifier::Classifier;
use crate::device::Device;
use captions::Captions;
use classify::FaceClassifier;
use crop::FaceCropper;
use finder::FaceFinder;
use locate::{Cadence, FaceLocator};
use picture::Picture;
use track::{TrackConfig, Tracker};

/// The five facial landmarks YuNet gives, in frame pixels: the right eye (on the image's left),
/// the left eye, the nose tip, the right and the left mouth corner.
pub type Landmarks = [Point2f; 5];

/// A face found in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Box in frame pixels.
    pub bbox: Rect,
    /// The detector's confidence, 0..=1 (1 for the Haar cascade, which gives none).
    pub score: f32,
    /// The five landmarks, from detectors that find them.
    pub landmarks: Option<Landmarks>,
}

/// A face detector.
pub trait Detector: Send {
    /// The faces anywhere in the frame.
    ///
    /// # Errors
    /// OpenCV or ONNX Runtime failures.
    fn search(&mut self, picture: &Picture<'_>) -> Result<Vec<Detection>>;

    /// Each of `known` (last frame's boxes) looked for near where it was: the hit that overlaps
    /// it most, or `None` when none is there. Cheaper than [`Detector::search`].
    ///
    /// # Errors
    /// OpenCV or ONNX Runtime failures.
    fn follow(&mut self, picture: &Picture<'_>, known: &[Rect]) -> Result<Vec<Option<Detection>>>;
}

/// Which detector finds the faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DetectorKind {
    /// YuNet, a small CNN face detector on ONNX Runtime: finds profiles, tilted and small faces,
    /// with five landmarks (head pose).
    Yunet,
    /// OpenCV's frontal-face Haar cascade: the cheapest, frontal faces only.
    Haar,
}

/// How faces are found: the detector and its settings, and how often the whole frame is searched.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectConfig {
    /// The detector and its own settings.
    pub detector: DetectorSettings,
    /// Full-frame search every this many frames (known faces are followed in between); 1
    /// searches every frame.
    pub detect_every: usize,
}

/// Everything the face-analysis core needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceConfig {
    /// The ONNX emotion model.
    pub model: PathBuf,
    /// Where the models run.
    pub device: Device,
    /// Face detection.
    pub detect: DetectConfig,
    /// Tracking and smoothing.
    pub track: TrackConfig,
    /// How often known faces are classified.
    pub cadence: Cadence,
    /// Turn faces upright (eyes level) from their landmarks before classifying them.
    pub upright: bool,
    /// Show this view of the model's labels in the tags instead of the labels.
    pub view: Option<String>,
    /// List the action units present in the tags.
    pub show_units: bool,
}

/// The two halves of the core, loaded.
pub struct Core {
    /// Detection, tracking and crops.
    pub locator: FaceLocator,
    /// Classification and smoothing.
    pub classifier: FaceClassifier,
    /// What the faces' tags say.
    pub captions: Captions,
    /// Where the emotion model runs, when that is worth telling (a fallback to the CPU).
    pub note: Option<String>,
}

impl FaceConfig {
    /// Loads the emotion model and the detector (in parallel: each takes tens of milliseconds),
    /// with `threads` ONNX Runtime threads each and `batch` faces per classification call.
    ///
    /// # Errors
    /// A model or detector that is missing, not what it should be, or cannot run on the device
    /// asked for, or a view or unit tags the model cannot give; the message names the file.
    pub fn load(
        &self,
        env: &ort::environment::Environment,
        threads: usize,
        batch: usize,
    ) -> Result<Core> {
        let (classifier, detector) = std::thread::scope(|scope| {
            let detector = scope.spawn(|| self.detect.detector.open(env, self.device));
            let classifier = Classifier::load_on(&self.model, env, threads, self.device)
                .with_context(|| format!("loading model {}", self.model.display()));
            (classifier, detector.join())
        });
        let (classifier, placement) = classifier?;
        let detector =
            detector.map_err(|_| anyhow::anyhow!("loading the face detector panicked"))??;
        let captions = Captions::for_tags(
            &self.model,
            &classifier,
            self.view.as_deref(),
            self.show_units,
        )?;
        let classifier = FaceClassifier::new(classifier, self.track.smoothing, batch)?;
        let size = classifier.classifier().meta().preprocess.size;
        let side = i32::try_from(size[0]).context("model input too large")?;
        let finder = FaceFinder::new(detector, Tracker::new(self.track), self.detect.detect_every);
        let cropper = FaceCropper::new(self.detect.detector.kind(), side, self.upright);
        Ok(Core {
            locator: FaceLocator::new(finder, self.cadence, cropper, classifier.crop_len()),
            classifier,
            captions,
            note: placement.note(),
        })
    }
}

/// One detector's settings.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorSettings {
    /// YuNet.
    Yunet(yunet::YunetConfig),
    /// The Haar cascade.
    Haar(haar::HaarConfig),
}

impl DetectorSettings {
    /// The detector's name, as `--detector` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Yunet(_) => "yunet",
            Self::Haar(_) => "haar",
        }
    }

    /// Loads the detector; YuNet runs on ONNX Runtime on `device`.
    ///
    /// # Errors
    /// A model or cascade that is missing or not what it should be, named with the fix.
    pub fn open(
        &self,
        env: &ort::environment::Environment,
        device: crate::device::Device,
    ) -> Result<Box<dyn Detector>> {
        Ok(match self {
            Self::Yunet(config) => Box::new(yunet::Yunet::load(config, env, device)?),
            Self::Haar(config) => Box::new(haar::Haar::new(config)?),
        })
    }

    /// Which detector this is.
    pub fn kind(&self) -> DetectorKind {
        match self {
            Self::Yunet(_) => DetectorKind::Yunet,
            Self::Haar(_) => DetectorKind::Haar,
        }
    }
}

/// The overlap of two rectangles (empty when they do not overlap).
pub fn intersect(a: Rect, b: Rect) -> Rect {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.width).min(b.x + b.width);
    let y1 = (a.y + a.height).min(b.y + b.height);
    Rect::new(x0, y0, (x1 - x0).max(0), (y1 - y0).max(0))
}

/// Intersection over union of two rectangles, 0..=1.
pub fn iou(a: Rect, b: Rect) -> f64 {
    let i = intersect(a, b);
    let inter = f64::from(i.width) * f64::from(i.height);
    let union =
        f64::from(a.width) * f64::from(a.height) + f64::from(b.width) * f64::from(b.height) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// `r` grown by `margin` of its width and height on each side.
pub fn grow(r: Rect, margin: f64) -> Rect {
    let dx = (f64::from(r.width) * margin).round() as i32;
    let dy = (f64::from(r.height) * margin).round() as i32;
    Rect::new(r.x - dx, r.y - dy, r.width + 2 * dx, r.height + 2 * dy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_known_boxes() {
        let a = Rect::new(0, 0, 10, 10);
        assert!((iou(a, a) - 1.0).abs() < 1e-12);
        assert_eq!(iou(a, Rect::new(20, 20, 5, 5)), 0.0);
        assert!((iou(a, Rect::new(5, 0, 10, 10)) - 50.0 / 150.0).abs() < 1e-12);
        assert_eq!(grow(a, 0.5), Rect::new(-5, -5, 20, 20));
    }
}
