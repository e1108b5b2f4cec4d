//! Runs a detector over a video: the whole frame is searched every k-th frame (new faces), every
//! known face is looked for near its last box in every frame, and the tracker turns the hits into
//! tracks. So every frame gets its boxes while full searches stay rare.

use anyhow::Result;

use super::picture::Picture;
use super::track::{TrackedBox, Tracker};
use super::{iou, Detector};

/// Finds and tracks the faces of consecutive frames.
pub struct FaceFinder {
    detector: Box<dyn Detector>,
    tracker: Tracker,
    /// Full search every this many frames.
    detect_every: usize,
    /// Frames seen so far.
    frames: usize,
}

impl FaceFinder {
    /// A finder with no faces known yet.
    pub fn new(detector: Box<dyn Detector>, tracker: Tracker, detect_every: usize) -> Self {
        Self {
            detector,
            tracker,
            detect_every: detect_every.max(1),
            frames: 0,
        }
    }

    /// The tracked faces of the next frame: those found, then the lost ones that keep their box.
    ///
    /// # Errors
    /// The detector's failures.
    pub fn find(&mut self, picture: &Picture<'_>) -> Result<Vec<TrackedBox>> {
        let full_search = self.frames.is_multiple_of(self.detect_every);
        self.frames += 1;
        let same_face = self.tracker.config().min_iou;
        let mut hits = if full_search {
            self.detector.search(picture)?
        } else {
            Vec::new()
        };
        let unfound: Vec<_> = self
            .tracker
            .boxes()
            .into_iter()
            .filter(|known| !hits.iter().any(|h| iou(h.bbox, *known) >= same_face))
            .collect();
        for hit in self
            .detector
            .follow(picture, &unfound)?
            .into_iter()
            .flatten()
        {
            // Two known faces may have walked into one: keep one box per face.
            if !hits.iter().any(|h| iou(h.bbox, hit.bbox) >= same_face) {
                hits.push(hit);
            }
        }
        Ok(self.tracker.update(&hits))
    }

    /// IDs of the tracks that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<u64> {
        self.tracker.take_ended()
    }
}
