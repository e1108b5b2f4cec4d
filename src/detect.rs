//! Face detection with an OpenCV Haar cascade, made cheap enough for video: a full-frame search
//! runs every k-th frame on a copy scaled so that the smallest face wanted fills the cascade's
//! 24-pixel window, at a coarse scale step; every known face is looked for near its last box in
//! every frame, in a small patch at a fine step (about 1 ms, against 7 ms for a full search of a
//! 640x360 frame).

use std::path::PathBuf;

use opencv::core::{Mat, Rect, Size, Vector};
use opencv::imgproc;
use opencv::objdetect::CascadeClassifier;
use opencv::prelude::*;

/// Side of the window the frontal-face cascades were trained on; smaller faces cannot be found.
const CASCADE_WINDOW: f64 = 24.0;
/// Between full searches, a face is looked for in its last box grown by this fraction per side.
const SEARCH_MARGIN: f64 = 0.5;
/// Between full searches, the face may shrink or grow by this factor from one frame to the next.
const SEARCH_SCALE_RANGE: f64 = 1.25;
/// Between full searches, faces are searched for at this size: 1.5 cascade windows, detail
/// enough for a sure hit, small enough to be cheap (measured on the Pexels clip: 1.1 ms per face
/// and frame, against 1.7 ms at 48 pixels).
const TRACKING_FACE_SIDE: f64 = 36.0;
/// Overlapping hits needed near a known face: fewer than a full search needs, since the last
/// box already says a face is there.
const TRACKING_MIN_NEIGHBORS: i32 = 3;
/// Scale step near a known face: fine, since only a few scales are tried there.
const TRACKING_SCALE_FACTOR: f64 = 1.1;
/// Frames a face not found keeps its last box (a third of a second at 24 fps).
const MAX_CARRIED_FRAMES: usize = 8;
/// A full-search hit overlapping a known face this much is that face.
const SAME_FACE_IOU: f64 = 0.3;

/// Detection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectConfig {
    /// The Haar cascade XML file.
    pub cascade: PathBuf,
    /// Step between the scales the full-frame search tries (> 1; larger is faster, finds fewer
    /// faces).
    pub scale_factor: f64,
    /// Overlapping hits needed to report a face (higher: fewer false faces).
    pub min_neighbors: i32,
    /// Smallest face side reported, in input pixels.
    pub min_face: u32,
    /// Full-frame search every this many frames; 1 searches every frame.
    pub detect_every: usize,
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

/// A face found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    /// Box in frame pixels.
    pub bbox: Rect,
    /// The cascade found the face in this frame; false for a box kept from the last frame
    /// while the face was not found near it (turned away, covered, blurred).
    pub frontal: bool,
}

/// A face of the last frame, to look for near its box in the next one.
struct KnownFace {
    bbox: Rect,
    /// Frames since the cascade last found it.
    unseen: usize,
}

/// A stateful per-video detector: remembers the last boxes to search near them.
pub struct FaceDetector {
    cascade: CascadeClassifier,
    config: DetectConfig,
    patch: Mat,
    found: Vector<Rect>,
    known: Vec<KnownFace>,
    frames_seen: usize,
}

impl FaceDetector {
    /// Loads the cascade.
    ///
    /// # Errors
    /// [`CascadeError`] when the file is missing or not a cascade.
    pub fn new(config: &DetectConfig) -> Result<Self, CascadeError> {
        let error = |reason: String| CascadeError {
            path: config.cascade.clone(),
            reason,
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
            known: Vec::new(),
            frames_seen: 0,
        })
    }

    /// The faces in `gray` (the whole frame, 8-bit grayscale), in its pixel coordinates.
    ///
    /// # Errors
    /// OpenCV's error when resizing or detection fails.
    pub fn detect(&mut self, gray: &Mat) -> opencv::Result<Vec<Detection>> {
        let every = self.config.detect_every.max(1);
        let full_search = self.frames_seen.is_multiple_of(every);
        self.frames_seen += 1;
        let known = std::mem::take(&mut self.known);
        let mut found = if full_search {
            self.search_whole(gray)?
        } else {
            Vec::new()
        };
        let mut unseen = vec![0; found.len()];
        for face in known {
            if found
                .iter()
                .any(|f| iou(f.bbox, face.bbox) >= SAME_FACE_IOU)
            {
                continue; // the full search found it again
            }
            if let Some(bbox) = self.search_near(gray, face.bbox)? {
                found.push(Detection {
                    bbox,
                    frontal: true,
                });
                unseen.push(0);
            } else if face.unseen < (every - 1).min(MAX_CARRIED_FRAMES) {
                // Not found near its last box (turned away, covered, blurred): the box stays for
                // a few frames, at most until the next full search, so that a face that is still
                // there keeps its box.
                found.push(Detection {
                    bbox: face.bbox,
                    frontal: false,
                });
                unseen.push(face.unseen + 1);
            }
        }
        self.known = found
            .iter()
            .zip(unseen)
            .map(|(f, unseen)| KnownFace {
                bbox: f.bbox,
                unseen,
            })
            .collect();
        Ok(found)
    }

    /// Searches the whole frame, scaled so that the smallest face wanted fills the cascade window.
    fn search_whole(&mut self, gray: &Mat) -> opencv::Result<Vec<Detection>> {
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
            .map(|r| Detection {
                bbox: to_frame(r, (0, 0), scale),
                frontal: true,
            })
            .collect())
    }

    /// Looks for a face near `previous`, in a patch scaled so that the face is
    /// [`TRACKING_FACE_SIDE`] pixels whatever its size: a small cascade run instead of a
    /// frame-sized one. Returns the hit that overlaps `previous` most.
    fn search_near(&mut self, gray: &Mat, previous: Rect) -> opencv::Result<Option<Rect>> {
        let bounds = Rect::new(0, 0, gray.cols(), gray.rows());
        let scale = (TRACKING_FACE_SIDE / f64::from(previous.width.max(1))).min(1.0);
        let grow = (f64::from(previous.width) * SEARCH_MARGIN) as i32;
        let region = intersect(
            Rect::new(
                previous.x - grow,
                previous.y - grow,
                previous.width + 2 * grow,
                previous.height + 2 * grow,
            ),
            bounds,
        );
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

/// A box found in a patch scaled by `scale` whose top-left corner is `origin` in the frame.
fn to_frame(r: Rect, origin: (i32, i32), scale: f64) -> Rect {
    Rect::new(
        origin.0 + (f64::from(r.x) / scale).round() as i32,
        origin.1 + (f64::from(r.y) / scale).round() as i32,
        (f64::from(r.width) / scale).round() as i32,
        (f64::from(r.height) / scale).round() as i32,
    )
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

/// How a gray picture codes black and white.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrayLevels {
    /// 0 to 255, as OpenCV's BGR-to-gray conversion gives (and as the models were trained).
    Full,
    /// 16 to 235, as the luma plane of video holds.
    Video,
}

impl GrayLevels {
    /// The 0..=255 value of a sample.
    fn full_range(self, sample: u8) -> f32 {
        match self {
            Self::Full => f32::from(sample),
            Self::Video => ((f32::from(sample) - 16.0) * (255.0 / 219.0)).clamp(0.0, 255.0),
        }
    }
}

/// Writes the face in `rect` of `gray`, resized to `side` x `side`, as 0..=255 floats into `out`.
///
/// # Errors
/// OpenCV's error when the crop or resize fails.
pub fn face_crop(
    gray: &Mat,
    levels: GrayLevels,
    rect: Rect,
    side: i32,
    resized: &mut Mat,
    out: &mut [f32],
) -> opencv::Result<()> {
    let bounds = Rect::new(0, 0, gray.cols(), gray.rows());
    let rect = intersect(rect, bounds);
    let roi = Mat::roi(gray, rect)?;
    imgproc::resize(
        &roi,
        resized,
        Size::new(side, side),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )?;
    for (o, p) in out.iter_mut().zip(resized.data_bytes()?) {
        *o = levels.full_range(*p);
    }
    Ok(())
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
    }

    #[test]
    fn video_levels_stretch_to_full_range() {
        assert_eq!(GrayLevels::Video.full_range(16), 0.0);
        assert_eq!(GrayLevels::Video.full_range(235), 255.0);
        assert_eq!(GrayLevels::Video.full_range(250), 255.0);
        assert_eq!(GrayLevels::Full.full_range(7), 7.0);
    }

    #[test]
    fn missing_cascade_is_named() {
        let config = DetectConfig {
            cascade: "/nonexistent/cascade.xml".into(),
            scale_factor: 1.1,
            min_neighbors: 5,
            min_face: 48,
            detect_every: 5,
        };
        let err = FaceDetector::new(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/nonexistent/cascade.xml"), "{err}");
    }
}
