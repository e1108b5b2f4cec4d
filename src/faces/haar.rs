//! Face detection with an OpenCV Haar cascade, made cheap enough for video: the whole-frame
//! search runs on a copy scaled so that the smallest face wanted fills the cascade's 24-pixel
//! window, at a coarse scale step; a known face is looked for near its last box in a small patch
//! at a fine step (about 1 ms, against 7 ms for a full search of a 640x360 frame). The cascade
//! sees frontal faces only, so every face it finds is facing the camera.

use std::path::PathBuf;

use anyhow::Result;
use opencv::core::{Mat, Rect, Size, Vector};
use opencv::imgproc;
use opencv::objdetect::CascadeClassifier;
use opencv::prelude::*;

use super::picture::Picture;
use super::{grow, intersect, iou, Detection, Detector};

/// Side of the window the frontal-face cascades were trained on; smaller faces cannot be found.
const CASCADE_WINDOW: f64 = 24.0;
/// A known face is looked for in its last box grown by this fraction per side.
const SEARCH_MARGIN: f64 = 0.5;
/// A known face may shrink or grow by this factor from one frame to the next.
const SEARCH_SCALE_RANGE: f64 = 1.25;
/// Known faces are searched for at this size: 1.5 cascade windows, detail enough for a sure hit,
/// small enough to be cheap (measured on the Pexels clip: 1.1 ms per face and frame, against
/// 1.7 ms at 48 pixels).
const TRACKING_FACE_SIDE: f64 = 36.0;
/// Overlapping hits needed near a known face: fewer than a full search needs, since the last
/// box already says a face is there.
const TRACKING_MIN_NEIGHBORS: i32 = 3;
/// Scale step near a known face: fine, since only a few scales are tried there.
const TRACKING_SCALE_FACTOR: f64 = 1.1;

/// Haar cascade settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HaarConfig {
    /// The Haar cascade XML file.
    pub cascade: PathBuf,
    /// Step between the scales the full-frame search tries (> 1; larger is faster, finds fewer
    /// faces).
    pub scale_factor: f64,
    /// Overlapping hits needed to report a face (higher: fewer false faces).
    pub min_neighbors: i32,
    /// Smallest face side reported, in input pixels.
    pub min_face: u32,
}

/// The cascade could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: not a usable Haar cascade ({reason}); give an OpenCV cascade XML with --cascade")]
pub struct CascadeError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// A loaded cascade and its buffers.
pub struct Haar {
    cascade: CascadeClassifier,
    config: HaarConfig,
    patch: Mat,
    found: Vector<Rect>,
}

// SAFETY: a CascadeClassifier is plain heap state without thread affinity (OpenCV runs one from
// any thread); the opencv crate leaves it `!Send` only because it holds a raw pointer. Each
// `Haar` is owned and used by one thread at a time.
unsafe impl Send for Haar {}

impl Haar {
    /// Loads the cascade.
    ///
    /// # Errors
    /// [`CascadeError`] when the file is missing or not a cascade.
    pub fn new(config: &HaarConfig) -> Result<Self, CascadeError> {
        // OpenCV's messages span lines; an error here is one line.
        let error = |reason: String| CascadeError {
            path: config.cascade.clone(),
            reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if !config.cascade.is_file() {
            return Err(error("file not found".into()));
        }
        let cascade = CascadeClassifier::new(&config.cascade).map_err(|e| error(e.to_string()))?;
        if cascade.empty().map_err(|e| error(e.to_string()))? {
            return Err(error("OpenCV could not read it".into()));
        }
        Ok(Self {
            cascade,
            config: config.clone(),
            patch: Mat::default(),
            found: Vector::new(),
        })
    }

    /// Looks for a face near `previous`, in a patch scaled so that the face is
    /// [`TRACKING_FACE_SIDE`] pixels whatever its size: a small cascade run instead of a
    /// frame-sized one. Returns the hit that overlaps `previous` most.
    fn search_near(&mut self, gray: &Mat, previous: Rect) -> opencv::Result<Option<Rect>> {
        let bounds = Rect::new(0, 0, gray.cols(), gray.rows());
        let scale = (TRACKING_FACE_SIDE / f64::from(previous.width.max(1))).min(1.0);
        let region = intersect(grow(previous, SEARCH_MARGIN), bounds);
        let size = Size::new(
            (f64::from(region.width) * scale).round() as i32,
            (f64::from(region.height) * scale).round() as i32,
        );
        let window = CASCADE_WINDOW as i32;
        if size.width < window || size.height < window {
            return Ok(None);
        }
        imgproc::resize(
            &Mat::roi(gray, region)?,
            &mut self.patch,
            size,
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )?;
        let side = f64::from(previous.width) * scale;
        let min_side = ((side / SEARCH_SCALE_RANGE) as i32).max(window);
        let max_side = ((side * SEARCH_SCALE_RANGE) as i32).max(min_side);
        self.cascade.detect_multi_scale(
            &self.patch,
            &mut self.found,
            TRACKING_SCALE_FACTOR,
            TRACKING_MIN_NEIGHBORS.min(self.config.min_neighbors),
            0,
            Size::new(min_side, min_side),
            Size::new(max_side, max_side),
        )?;
        Ok(self
            .found
            .iter()
            .map(|r| to_frame(r, (region.x, region.y), scale))
            .max_by(|a, b| iou(*a, previous).total_cmp(&iou(*b, previous))))
    }
}

impl Detector for Haar {
    /// Searches the whole frame, scaled so that the smallest face wanted fills the cascade window.
    fn search(&mut self, picture: &Picture<'_>) -> Result<Vec<Detection>> {
        let (gray, _) = picture.gray();
        let scale = (CASCADE_WINDOW / f64::from(self.config.min_face.max(1))).min(1.0);
        let size = Size::new(
            ((f64::from(gray.cols()) * scale).round() as i32).max(1),
            ((f64::from(gray.rows()) * scale).round() as i32).max(1),
        );
        imgproc::resize(gray, &mut self.patch, size, 0.0, 0.0, imgproc::INTER_AREA)?;
        let window = CASCADE_WINDOW as i32;
        self.cascade.detect_multi_scale(
            &self.patch,
            &mut self.found,
            self.config.scale_factor,
            self.config.min_neighbors,
            0,
            Size::new(window, window),
            Size::default(),
        )?;
        Ok(self
            .found
            .iter()
            .map(|r| found(to_frame(r, (0, 0), scale)))
            .collect())
    }

    fn follow(&mut self, picture: &Picture<'_>, known: &[Rect]) -> Result<Vec<Option<Detection>>> {
        let (gray, _) = picture.gray();
        known
            .iter()
            .map(|previous| Ok(self.search_near(gray, *previous)?.map(found)))
            .collect()
    }
}

/// A cascade hit: the cascade gives no score or landmarks.
fn found(bbox: Rect) -> Detection {
    Detection {
        bbox,
        score: 1.0,
        landmarks: None,
    }
}

/// A box found in a patch scaled by `scale` whose top-left corner is `origin` in the frame.
fn to_frame(r: Rect, origin: (i32, i32), scale: f64) -> Rect {
    Rect::new(
        origin.0 + (f64::from(r.x) / scale).round() as i32,
        origin.1 + (f64::from(r.y) / scale).round() as i32,
        (f64::from(r.width) / scale).round() as i32,
        (f64::from(r.height) / scale).round() as i32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cascade_is_named() {
        let config = HaarConfig {
            cascade: "/nonexistent/cascade.xml".into(),
            scale_factor: 1.1,
            min_neighbors: 5,
            min_face: 48,
        };
        let err = Haar::new(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/nonexistent/cascade.xml"), "{err}");
    }
}
