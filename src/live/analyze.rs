//! The faces of one live frame, through the face-analysis core (`crate::faces`) that annotate
//! uses too: detection, tracking, crops, then the due faces classified in one ONNX Runtime call
//! per frame. Live mode does not batch across frames: waiting for more frames would add latency,
//! and one frame's faces already share a call.

use anyhow::{Context, Result};
use opencv::core::Mat;
use opencv::imgproc;

use crate::faces::classify::FaceClassifier;
use crate::faces::locate::FaceLocator;
use crate::faces::picture::Picture;
use crate::faces::track::TrackedFace;
use crate::faces::Core;

/// Finds, tracks and classifies faces frame after frame; owns its buffers so that no image or
/// tensor is allocated per frame.
pub struct Analyzer {
    locator: FaceLocator,
    classifier: FaceClassifier,
    /// Frames analysed so far (the classification cadence counts these).
    frames: usize,
    gray: Mat,
    /// The due faces' probabilities, a row each.
    probs: Vec<f32>,
}

impl Analyzer {
    /// Runs the loaded core.
    pub fn new(core: Core) -> Self {
        Self {
            locator: core.locator,
            classifier: core.classifier,
            frames: 0,
            gray: Mat::default(),
            probs: Vec::new(),
        }
    }

    /// The classifier (labels, units, the model's metadata).
    pub fn classifier(&self) -> &FaceClassifier {
        &self.classifier
    }

    /// The tracked and classified faces of one BGR frame.
    ///
    /// # Errors
    /// OpenCV or ONNX Runtime failures.
    pub fn analyze(&mut self, bgr: &Mat) -> Result<Vec<TrackedFace>> {
        imgproc::cvt_color_def(bgr, &mut self.gray, imgproc::COLOR_BGR2GRAY)
            .context("converting a frame to gray")?;
        let picture = Picture::Bgr {
            bgr,
            gray: &self.gray,
        };
        let located = self.locator.locate(self.frames, &picture)?;
        self.frames += 1;
        self.probs.clear();
        self.classifier.classify(&located.crops, &mut self.probs)?;
        let mut rows = self.probs.chunks(self.classifier.row_len());
        self.classifier.smooth(&located, &mut rows)
    }
}
