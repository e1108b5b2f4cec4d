//! The faces of one live frame: Haar detection (full searches every k-th frame, known faces
//! followed in between), tracking, and classification of the faces that are due, in one ONNX
//! Runtime call per frame. Live mode does not batch across frames: waiting for more frames would
//! add latency, and one frame's faces already share a call.

use anyhow::{Context, Result};
use ndarray::Array4;
use opencv::core::Mat;
use opencv::imgproc;

use crate::annotate::stages::Cadence;
use crate::classifier::Classifier;
use crate::detect::{face_crop, FaceDetector, GrayLevels};
use crate::track::{Smoother, TrackConfig, TrackedBox, TrackedFace, Tracker};

/// Finds, tracks and classifies faces frame after frame; owns its buffers so that no image or
/// tensor is allocated per frame.
pub struct Analyzer {
    detector: FaceDetector,
    tracker: Tracker,
    smoother: Smoother,
    cadence: Cadence,
    classifier: Classifier,
    /// Frames analysed so far (the classification cadence counts these).
    frames: usize,
    gray: Mat,
    resized: Mat,
    /// One face at the model's input size, gray values 0..=255: `[height, width]`.
    crop: Vec<f32>,
    /// The faces due in this frame, normalised: `[faces, channels, height, width]`; grown when a
    /// frame has more faces than ever before.
    input: Array4<f32>,
    faces: Vec<TrackedFace>,
}

impl Analyzer {
    /// Ties the detector, tracker and classifier together.
    pub fn new(
        detector: FaceDetector,
        track: TrackConfig,
        cadence: Cadence,
        classifier: Classifier,
    ) -> Self {
        let p = &classifier.meta().preprocess;
        let crop = vec![0.0; p.size[0] * p.size[1]];
        let input = classifier.input_batch(1);
        Self {
            detector,
            tracker: Tracker::new(track),
            smoother: Smoother::new(track.smoothing),
            cadence,
            classifier,
            frames: 0,
            gray: Mat::default(),
            resized: Mat::default(),
            crop,
            input,
            faces: Vec::new(),
        }
    }

    /// The emotion labels, in the model's order.
    ///
    /// # Errors
    /// Never for a loaded model.
    pub fn labels(&self) -> Result<Vec<String>> {
        Ok(self.classifier.emotion_head()?.labels.clone())
    }

    /// The tracked and classified faces of one BGR frame.
    ///
    /// # Errors
    /// OpenCV or ONNX Runtime failures.
    pub fn analyze(&mut self, bgr: &Mat) -> Result<&[TrackedFace]> {
        imgproc::cvt_color_def(bgr, &mut self.gray, imgproc::COLOR_BGR2GRAY)
            .context("converting a frame to gray")?;
        let detections = self
            .detector
            .detect(&self.gray)
            .context("detecting faces")?;
        let boxes = self.tracker.update(&detections);
        self.smoother.forget(&self.tracker.take_ended());
        let frame = self.frames;
        self.frames += 1;
        let due: Vec<&TrackedBox> = boxes
            .iter()
            .filter(|face| self.cadence.is_due(frame, face))
            .collect();
        if !due.is_empty() {
            self.classify(&due)?;
        }
        self.faces.clear();
        for face in &boxes {
            let probs = self
                .smoother
                .get(face.id)
                .with_context(|| format!("face #{} was never classified", face.id))?;
            self.faces.push(TrackedFace {
                id: face.id,
                bbox: face.bbox,
                frontal: face.frontal,
                probs: probs.to_vec(),
                units: Vec::new(),
            });
        }
        Ok(&self.faces)
    }

    /// Classifies `due` in one ONNX Runtime call and blends the results into their tracks.
    fn classify(&mut self, due: &[&TrackedBox]) -> Result<()> {
        if self.input.shape()[0] < due.len() {
            self.input = self.classifier.input_batch(due.len());
        }
        let side = i32::try_from(self.classifier.meta().preprocess.size[0])
            .context("model input too large")?;
        let face_len = self.classifier.input_len();
        let slots = self
            .input
            .as_slice_mut()
            .context("input batch is not contiguous")?;
        for (face, slot) in due.iter().zip(slots.chunks_mut(face_len)) {
            face_crop(
                &self.gray,
                GrayLevels::Full,
                face.bbox,
                side,
                &mut self.resized,
                &mut self.crop,
            )
            .context("cropping a face")?;
            self.classifier.normalise(&self.crop, slot);
        }
        let probs = self.classifier.emotion_probs(self.input.slice(ndarray::s![
            ..due.len(),
            ..,
            ..,
            ..
        ]))?;
        for (face, row) in due.iter().zip(probs.rows()) {
            let row = row.as_slice().context("probabilities are not contiguous")?;
            self.smoother.add(face.id, row);
        }
        Ok(())
    }
}
