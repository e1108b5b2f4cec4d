//! Runs a detector over a video: the whole frame is searched every k-th frame (new faces), every
//! known face is looked for near its last box in every frame, and the tracker turns the hits into
//! tracks. So every frame gets its boxes while full searches stay rare.
//!
//! A shot cut (edited footage: the picture changes all at once) ends every track and searches
//! the whole frame: the faces after a cut are new faces, even where one stands where another
//! stood, and a face that left with the cut does not keep its box for frames that no longer show
//! it.

use anyhow::Result;
use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;

use super::picture::Picture;
use super::track::{TrackedBox, Tracker};
use super::{iou, Detector};

/// Size of the thumbnail two frames are compared on to find a cut.
const THUMBNAIL: Size = Size::new(64, 36);
/// Mean absolute difference of two thumbnails' gray levels (0..=255) above which the frame is a
/// cut. Measured on ../shared/data/videos: motion within a shot stays under 10 (the 99th
/// percentile 2.5 to 6.5), the cuts of the face/no-face clips reach 100 and more.
const CUT_DIFFERENCE: f64 = 30.0;

/// Finds and tracks the faces of consecutive frames.
pub struct FaceFinder {
    detector: Box<dyn Detector>,
    tracker: Tracker,
    /// Full search every this many frames.
    detect_every: usize,
    /// Frames seen so far.
    frames: usize,
    cuts: ShotCuts,
}

impl FaceFinder {
    /// A finder with no faces known yet.
    pub fn new(detector: Box<dyn Detector>, tracker: Tracker, detect_every: usize) -> Self {
        Self {
            detector,
            tracker,
            detect_every: detect_every.max(1),
            frames: 0,
            cuts: ShotCuts::default(),
        }
    }

    /// The tracked faces of the next frame: those found, then the lost ones that keep their box.
    ///
    /// # Errors
    /// The detector's failures.
    pub fn find(&mut self, picture: &Picture<'_>) -> Result<Vec<TrackedBox>> {
        let cut = self.cuts.is_cut(picture)?;
        if cut {
            self.tracker.end_all();
        }
        let full_search = cut || self.frames.is_multiple_of(self.detect_every);
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

/// Finds shot cuts by comparing each frame's thumbnail with the last one.
#[derive(Default)]
struct ShotCuts {
    last: Mat,
    now: Mat,
    difference: Mat,
}

impl ShotCuts {
    /// Whether `picture` starts a new shot (never the first frame).
    fn is_cut(&mut self, picture: &Picture<'_>) -> opencv::Result<bool> {
        let (gray, _) = picture.gray();
        imgproc::resize(
            gray,
            &mut self.now,
            THUMBNAIL,
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )?;
        let cut = if self.last.empty() {
            false
        } else {
            opencv::core::absdiff(&self.now, &self.last, &mut self.difference)?;
            opencv::core::mean_def(&self.difference)?[0] > CUT_DIFFERENCE
        };
        std::mem::swap(&mut self.last, &mut self.now);
        Ok(cut)
    }
}
