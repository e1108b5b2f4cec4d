//! Head pose, approximately, from YuNet's five landmarks: roll from the eye line; yaw from how
//! far the nose tip sits beside the face's midline; pitch from how far it sits above or below
//! its usual height between the eyes and the mouth. A face counts as frontal, facing the
//! camera, within [`FRONTAL_YAW`] and [`FRONTAL_PITCH`]: this is what the records' `frontal`
//! and the engagement report's attention mean.
//!
//! The geometry, in units of half the distance between the eyes: the nose tip stands
//! [`NOSE_DEPTH`] in front of the eyes, so turning the head by yaw θ moves it sideways by
//! `NOSE_DEPTH · sin θ` while the eyes close up to `cos θ`: the offset seen is
//! `NOSE_DEPTH · tan θ`. Likewise for pitch against the eye-to-mouth height.

use opencv::core::Point2f;

use super::Landmarks;

/// Depth of the nose tip in front of the eyes, in half eye distances (a generic 3D face model:
/// eye centres about 160 units either side of the midline, 135 behind the nose tip).
const NOSE_DEPTH: f32 = 0.85;
/// Depth of the nose tip in front of the eye-mouth plane, in eye-to-mouth heights (130 of 320
/// units in the same model).
const NOSE_DEPTH_VERTICAL: f32 = 0.41;
/// Where the nose tip sits between the eye line (0) and the mouth line (1) on a face looking
/// straight at the camera: the median of the frontal faces measured on the Pexels clip and
/// the photos of ../shared/data/faces.
const NOSE_HEIGHT_FRONTAL: f32 = 0.56;
/// A face turned further than this to either side (degrees) is not facing the camera.
pub const FRONTAL_YAW: f32 = 30.0;
/// A face tilted up or down further than this (degrees) is not facing the camera.
pub const FRONTAL_PITCH: f32 = 25.0;

/// Head angles in degrees, approximate (a few degrees of noise from frame to frame).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadPose {
    /// Turn to the side: positive when the face turns towards the image's right.
    pub yaw: f32,
    /// Nod: positive when the face tilts down.
    pub pitch: f32,
    /// Tilt of the eye line: positive when it runs down to the image's right.
    pub roll: f32,
}

impl HeadPose {
    /// The pose of a face from its landmarks; `None` when they are degenerate (eyes on one
    /// point, mouth at the eyes' height).
    pub fn from_landmarks(points: &Landmarks) -> Option<Self> {
        let [right_eye, left_eye, nose, mouth_right, mouth_left] = *points;
        let roll = (left_eye.y - right_eye.y).atan2(left_eye.x - right_eye.x);
        // Turn the points about the eyes' midpoint so that the eye line is level.
        let centre = mid(right_eye, left_eye);
        let (sin, cos) = (-roll).sin_cos();
        let level = |p: Point2f| {
            let (x, y) = (p.x - centre.x, p.y - centre.y);
            Point2f::new(cos * x - sin * y, sin * x + cos * y)
        };
        let (left_eye, nose) = (level(left_eye), level(nose));
        let mouth = level(mid(mouth_right, mouth_left));
        let half_eyes = left_eye.x; // the eyes now sit at -half_eyes and +half_eyes
        if half_eyes <= f32::EPSILON || mouth.y <= f32::EPSILON {
            return None;
        }
        let midline = mouth.x / 2.0; // halfway between the eye centre (0) and the mouth centre
        let sideways = (nose.x - midline) / half_eyes;
        let height = nose.y / mouth.y;
        Some(Self {
            yaw: (sideways / NOSE_DEPTH).atan().to_degrees(),
            pitch: ((height - NOSE_HEIGHT_FRONTAL) / NOSE_DEPTH_VERTICAL)
                .atan()
                .to_degrees(),
            roll: roll.to_degrees(),
        })
    }

    /// Whether the face looks at the camera (within [`FRONTAL_YAW`] and [`FRONTAL_PITCH`]).
    pub fn is_frontal(&self) -> bool {
        self.yaw.abs() <= FRONTAL_YAW && self.pitch.abs() <= FRONTAL_PITCH
    }
}

fn mid(a: Point2f, b: Point2f) -> Point2f {
    Point2f::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A face 100 pixels between the eyes, nose `nose_dx` right of the midline at height
    /// `nose_height` between eyes and mouth, turned in the image plane by `roll` degrees.
    fn face(nose_dx: f32, nose_height: f32, roll: f32) -> Landmarks {
        let points = [
            (-50.0, 0.0),
            (50.0, 0.0),
            (nose_dx, 80.0 * nose_height),
            (-35.0, 80.0),
            (35.0, 80.0),
        ];
        let (sin, cos) = roll.to_radians().sin_cos();
        points.map(|(x, y)| Point2f::new(300.0 + cos * x - sin * y, 200.0 + sin * x + cos * y))
    }

    #[test]
    fn a_face_looking_straight_ahead_is_frontal_at_any_roll() {
        for roll in [-30.0, 0.0, 25.0] {
            let pose =
                HeadPose::from_landmarks(&face(0.0, NOSE_HEIGHT_FRONTAL, roll)).expect("a pose");
            assert!(pose.yaw.abs() < 1.0 && pose.pitch.abs() < 1.0, "{pose:?}");
            assert!((pose.roll - roll).abs() < 0.5, "{pose:?}");
            assert!(pose.is_frontal());
        }
    }

    #[test]
    fn a_nose_beside_the_midline_turns_the_head() {
        // tan(45°) · 0.85 · 50 px: the nose 42.5 px beside the midline.
        let turned =
            HeadPose::from_landmarks(&face(42.5, NOSE_HEIGHT_FRONTAL, 10.0)).expect("a pose");
        assert!((turned.yaw - 45.0).abs() < 1.0, "{turned:?}");
        assert!(!turned.is_frontal());
        let other_way =
            HeadPose::from_landmarks(&face(-42.5, NOSE_HEIGHT_FRONTAL, 0.0)).expect("a pose");
        assert!((other_way.yaw + 45.0).abs() < 1.0, "{other_way:?}");
        let down = HeadPose::from_landmarks(&face(0.0, 1.0, 0.0)).expect("a pose");
        assert!(down.pitch > FRONTAL_PITCH && !down.is_frontal(), "{down:?}");
        assert_eq!(HeadPose::from_landmarks(&[Point2f::new(1.0, 1.0); 5]), None);
    }
}
