//! The detection half of the face-analysis core: finds and tracks the faces of a frame, decides
//! which are due for classification, and crops those at the model's input size. Annotate runs
//! it on the detection thread, live mode before [`super::classify::FaceClassifier`] on one.

use anyhow::Result;

use super::crop::FaceCropper;
use super::finder::FaceFinder;
use super::picture::Picture;
use super::track::TrackedBox;

/// How often faces are classified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cadence {
    /// A known face is classified every this many frames (a new one at once), staggered by
    /// track ID so that the work spreads evenly over frames.
    pub classify_every: usize,
}

impl Cadence {
    /// Whether `face` is classified in frame number `frame`.
    pub fn is_due(self, frame: usize, face: &TrackedBox) -> bool {
        face.is_new || (frame as u64 + face.id).is_multiple_of(self.classify_every.max(1) as u64)
    }
}

/// The faces of one frame, and the crops of those due for classification.
pub struct Located {
    /// The tracked faces.
    pub faces: Vec<TrackedBox>,
    /// Whether each face is classified in this frame (otherwise it keeps its smoothed
    /// probabilities).
    pub due: Vec<bool>,
    /// The crops of the due faces, in order: `[faces, height, width]` gray values 0..=255 at
    /// the model's input size.
    pub crops: Vec<f32>,
    /// Tracks that ended at this frame.
    pub ended: Vec<u64>,
}

/// Finds, tracks and crops the faces of consecutive frames.
pub struct FaceLocator {
    finder: FaceFinder,
    cadence: Cadence,
    cropper: FaceCropper,
    /// Values per crop.
    crop_len: usize,
}

impl FaceLocator {
    /// Ties a finder to the classification cadence and a cropper of `crop_len` values per face.
    pub fn new(
        finder: FaceFinder,
        cadence: Cadence,
        cropper: FaceCropper,
        crop_len: usize,
    ) -> Self {
        Self {
            finder,
            cadence,
            cropper,
            crop_len,
        }
    }

    /// The faces of frame number `frame`.
    ///
    /// # Errors
    /// Detection or cropping failures.
    pub fn locate(&mut self, frame: usize, picture: &Picture<'_>) -> Result<Located> {
        let faces = self.finder.find(picture)?;
        let due: Vec<bool> = faces
            .iter()
            .map(|face| face.seen && self.cadence.is_due(frame, face))
            .collect();
        let mut crops = vec![0.0f32; due.iter().filter(|d| **d).count() * self.crop_len];
        let due_faces = faces.iter().zip(&due).filter(|(_, due)| **due);
        for ((face, _), out) in due_faces.zip(crops.chunks_mut(self.crop_len)) {
            self.cropper.crop(picture, face, out)?;
        }
        Ok(Located {
            faces,
            due,
            crops,
            ended: self.finder.take_ended(),
        })
    }
}
