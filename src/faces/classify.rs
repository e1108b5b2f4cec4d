//! The classification half of the face-analysis core: runs the emotion model (and its
//! action-unit head, when it has one) on face crops in batches, and smooths each face's
//! probabilities over time. Annotate gathers the crops of several frames into one call; live
//! mode classifies each frame's due faces at once.

use anyhow::{Context, Result};
use ndarray::Array4;

use super::locate::Located;
use super::track::{Smoother, TrackedFace};
use crate::classifier::Classifier;

/// A model with its input batch and the faces' running averages.
pub struct FaceClassifier {
    classifier: Classifier,
    smoother: Smoother,
    /// `[batch, channels, height, width]`, reused for every call.
    input: Array4<f32>,
    /// Emotion labels.
    labels: Vec<String>,
    /// Action-unit labels (empty without a unit head).
    units: Vec<String>,
    /// One face's pixels in every channel: `[channels, height, width]`.
    pixels: Vec<f32>,
}

impl FaceClassifier {
    /// Classifies up to `batch` faces per ONNX Runtime call and smooths with `smoothing` (the
    /// weight of the past, 0..1).
    ///
    /// # Errors
    /// A model without an emotion head.
    pub fn new(classifier: Classifier, smoothing: f32, batch: usize) -> Result<Self> {
        let labels = classifier.emotion_head()?.labels.clone();
        let units = classifier
            .unit_head()
            .map(|h| h.labels.clone())
            .unwrap_or_default();
        Ok(Self {
            input: classifier.input_batch(batch.max(1)),
            smoother: Smoother::new(smoothing),
            classifier,
            labels,
            units,
            pixels: Vec::new(),
        })
    }

    /// The model.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The emotion labels, in the model's order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The action units, in the model's order (empty without a unit head).
    pub fn units(&self) -> &[String] {
        &self.units
    }

    /// Gray values per crop: `height * width` of the model's input.
    pub fn crop_len(&self) -> usize {
        let size = self.classifier.meta().preprocess.size;
        size[0] * size[1]
    }

    /// Probabilities of every crop, a row each of the emotions followed by the action units,
    /// appended to `out`; `crops` holds `[faces, height, width]` gray values 0..=255.
    ///
    /// # Errors
    /// ONNX Runtime failures.
    pub fn classify(&mut self, crops: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let crop_len = self.crop_len();
        let channels = self.classifier.meta().preprocess.channels;
        let batch = self.input.shape()[0];
        for chunk in crops.chunks(crop_len * batch) {
            let faces = chunk.len() / crop_len;
            let slots = self
                .input
                .as_slice_mut()
                .context("input batch is not contiguous")?;
            for (slot, crop) in slots
                .chunks_mut(crop_len * channels)
                .zip(chunk.chunks(crop_len))
            {
                // A gray crop fills every channel of a colour model.
                self.pixels.clear();
                for _ in 0..channels {
                    self.pixels.extend_from_slice(crop);
                }
                self.classifier.normalise(&self.pixels, slot);
            }
            self.classifier
                .probabilities_into(self.input.slice(ndarray::s![..faces, .., .., ..]), out)?;
        }
        Ok(())
    }

    /// The faces of one frame with their smoothed probabilities: each due face takes the next
    /// row of `rows` (from [`Self::classify`]), the others keep their averages.
    ///
    /// # Errors
    /// Fewer rows than due faces, or a face never classified.
    pub fn smooth<'a>(
        &mut self,
        located: &Located,
        rows: &mut impl Iterator<Item = &'a [f32]>,
    ) -> Result<Vec<TrackedFace>> {
        self.smoother.forget(&located.ended);
        let classes = self.labels.len();
        located
            .faces
            .iter()
            .zip(&located.due)
            .map(|(face, due)| {
                let probs = if *due {
                    let row = rows.next().context("fewer classifications than crops")?;
                    self.smoother.add(face.id, row)
                } else {
                    self.smoother
                        .get(face.id)
                        .with_context(|| format!("face #{} was never classified", face.id))?
                };
                let (emotions, units) = probs.split_at(classes.min(probs.len()));
                Ok(TrackedFace {
                    track: *face,
                    probs: emotions.to_vec(),
                    units: units.to_vec(),
                })
            })
            .collect()
    }

    /// Faces per ONNX Runtime call.
    pub fn batch(&self) -> usize {
        self.input.shape()[0]
    }

    /// Values per row of [`Self::classify`]: emotions and units.
    pub fn row_len(&self) -> usize {
        self.labels.len() + self.units.len()
    }
}
