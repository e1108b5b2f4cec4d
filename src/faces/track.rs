//! Face tracks: stable IDs across frames by box overlap (IoU), one rule for how long a lost face
//! lives, and per-track exponential smoothing of class probabilities so that labels do not
//! flicker. [`Tracker`] works on boxes alone, so it runs next to detection and lets the pipeline
//! classify a known face less often than every frame; [`Smoother`] runs where the probabilities
//! arrive.
//!
//! The lifetime rule: a face the detector does not find keeps its last box, marked as not
//! seen, for up to `max_missed` frames (turned away, covered, blurred for a moment); then its
//! track ends and the ID is not used again. A shot cut ends every track at once.

use std::collections::HashMap;

use opencv::core::Rect;

use super::pose::HeadPose;
use super::{iou, Detection, Landmarks};

/// How a track's box follows its detections (an alpha-beta filter on x, y, width and height):
/// the box is predicted to move on at its velocity, then moves this share of the way from the
/// prediction to the new detection. So boxes glide instead of jittering by the detector's few
/// pixels from frame to frame, and keep up with a face that moves steadily (a pan) instead of
/// trailing it as a plain average would. Steady boxes are also cheaper to encode: a tag that
/// moves as one block with the picture is predicted, a jittering one is coded anew.
const POSITION_GAIN: f32 = 0.35;
/// The share of the same difference added to the velocity: the gain pair of Benedict and
/// Bordner, `POSITION_GAIN^2 / (2 - POSITION_GAIN)`, which settles without ringing. On a
/// simulated pan with 2-pixel detector noise it halves the box error and the frame-to-frame
/// jerk of the plain average of the two last detections.
const VELOCITY_GAIN: f32 = 0.075;

/// Tracking settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackConfig {
    /// Least overlap for a detection to continue a track (and for two hits to be one face).
    pub min_iou: f64,
    /// A face not found keeps its box this many frames; then its track ends.
    pub max_missed: usize,
    /// Weight of the past in the probability average, 0..1 (0 = no smoothing).
    pub smoothing: f32,
}

/// One face in one frame with its track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackedBox {
    /// Track ID, from 1, stable while the face stays in view.
    pub id: u64,
    /// Box in input pixels.
    pub bbox: Rect,
    /// The detector found the face in this frame; false for a box kept while it was lost.
    pub seen: bool,
    /// The five landmarks found in this frame, from detectors that give them.
    pub landmarks: Option<Landmarks>,
    /// Head pose from the landmarks.
    pub pose: Option<HeadPose>,
    /// Seen in this frame and facing the camera: within the frontal angles of [`HeadPose`], or
    /// found by a frontal-only detector (Haar).
    pub frontal: bool,
    /// This frame starts the track.
    pub is_new: bool,
}

/// One face in one frame, tracked and classified.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedFace {
    /// Where the face is and how it is turned.
    pub track: TrackedBox,
    /// Smoothed class probabilities.
    pub probs: Vec<f32>,
    /// Smoothed action-unit probabilities (empty when the model has no unit head).
    pub units: Vec<f32>,
}

/// The faces shown `t` (0 to 1) of the way from frame `a` to frame `b`, for a frame made between
/// them: the faces of the nearer frame, with their labels, each one that is in both frames at the
/// box the same share of the way from its box in `a` to its box in `b`.
pub fn faces_between(a: &[TrackedFace], b: &[TrackedFace], t: f64) -> Vec<TrackedFace> {
    let (near, far, toward) = if t < 0.5 { (a, b, t) } else { (b, a, 1.0 - t) };
    near.iter()
        .map(|face| {
            let mut face = face.clone();
            if let Some(other) = far.iter().find(|f| f.track.id == face.track.id) {
                let [x, y, w, h] = [
                    (face.track.bbox.x, other.track.bbox.x),
                    (face.track.bbox.y, other.track.bbox.y),
                    (face.track.bbox.width, other.track.bbox.width),
                    (face.track.bbox.height, other.track.bbox.height),
                ]
                .map(|(from, to)| (f64::from(from) + toward * f64::from(to - from)).round() as i32);
                face.track.bbox = Rect::new(x, y, w, h);
            }
            face
        })
        .collect()
}

struct Track {
    id: u64,
    /// The filtered box, rounded.
    bbox: Rect,
    /// The filtered box: x, y, width, height.
    filtered: [f32; 4],
    /// Their change per frame.
    velocity: [f32; 4],
    missed: usize,
}

impl Track {
    fn new(id: u64, bbox: Rect) -> Self {
        Self {
            id,
            bbox,
            filtered: corners(bbox),
            velocity: [0.0; 4],
            missed: 0,
        }
    }

    /// Moves the box toward a new detection (see [`POSITION_GAIN`]). A lost face's box stays
    /// where it was, so the first detection after frames without one is this many frames'
    /// motion away from the prediction, which the gains absorb.
    fn follow(&mut self, found: Rect) {
        for ((value, velocity), measured) in self
            .filtered
            .iter_mut()
            .zip(&mut self.velocity)
            .zip(corners(found))
        {
            let predicted = *value + *velocity;
            let surprise = measured - predicted;
            *value = predicted + POSITION_GAIN * surprise;
            *velocity += VELOCITY_GAIN * surprise;
        }
        let [x, y, w, h] = self.filtered.map(|v| v.round() as i32);
        self.bbox = Rect::new(x, y, w, h);
        self.missed = 0;
    }
}

fn corners(r: Rect) -> [f32; 4] {
    [r.x, r.y, r.width, r.height].map(|v| v as f32)
}

/// Assigns detections to tracks frame by frame.
pub struct Tracker {
    config: TrackConfig,
    tracks: Vec<Track>,
    next_id: u64,
    ended: Vec<u64>,
}

impl Tracker {
    /// No tracks yet; the first face gets ID 1.
    pub fn new(config: TrackConfig) -> Self {
        Self {
            config,
            tracks: Vec::new(),
            next_id: 1,
            ended: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &TrackConfig {
        &self.config
    }

    /// The last box of every live track (the faces to look for in the next frame).
    pub fn boxes(&self) -> Vec<Rect> {
        self.tracks.iter().map(|t| t.bbox).collect()
    }

    /// Takes one frame's detections and returns them with their tracks, in the order given,
    /// followed by the lost faces that keep their boxes.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<TrackedBox> {
        // Greedy matching, best overlaps first.
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (d, detection) in detections.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                let overlap = iou(detection.bbox, track.bbox);
                if overlap >= self.config.min_iou {
                    pairs.push((overlap, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of = vec![None; detections.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if track_of[d].is_none() && !taken[t] {
                track_of[d] = Some(t);
                taken[t] = true;
            }
        }
        let mut out = Vec::with_capacity(detections.len() + self.tracks.len());
        let mut new_tracks = Vec::new();
        for (detection, track) in detections.iter().zip(track_of) {
            let (id, bbox, is_new) = match track {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    track.follow(detection.bbox);
                    (track.id, track.bbox, false)
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    new_tracks.push(Track::new(id, detection.bbox));
                    (id, detection.bbox, true)
                }
            };
            let pose = detection
                .landmarks
                .as_ref()
                .and_then(HeadPose::from_landmarks);
            out.push(TrackedBox {
                id,
                bbox,
                seen: true,
                landmarks: detection.landmarks,
                pose,
                frontal: pose.is_none_or(|p| p.is_frontal()),
                is_new,
            });
        }
        let max_missed = self.config.max_missed;
        let ended = &mut self.ended;
        self.tracks = std::mem::take(&mut self.tracks)
            .into_iter()
            .zip(taken)
            .filter_map(|(mut track, was_taken)| {
                if was_taken {
                    return Some(track);
                }
                track.missed += 1;
                if track.missed > max_missed {
                    ended.push(track.id);
                    return None;
                }
                out.push(TrackedBox {
                    id: track.id,
                    bbox: track.bbox,
                    seen: false,
                    landmarks: None,
                    pose: None,
                    frontal: false,
                    is_new: false,
                });
                Some(track)
            })
            .chain(new_tracks)
            .collect();
        out
    }

    /// Ends every track (a shot cut: the faces after it are new ones).
    pub fn end_all(&mut self) {
        self.ended.extend(self.tracks.drain(..).map(|t| t.id));
    }

    /// IDs of the tracks that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.ended)
    }
}

/// Each track's class probabilities, averaged over its classifications with an exponential
/// moving average.
pub struct Smoother {
    past_weight: f32,
    by_id: HashMap<u64, Vec<f32>>,
}

impl Smoother {
    /// `past_weight`: weight of the running average at each new classification, 0..1.
    pub fn new(past_weight: f32) -> Self {
        Self {
            past_weight,
            by_id: HashMap::new(),
        }
    }

    /// Blends a new classification of track `id` into its average (the first one starts it)
    /// and returns the average.
    pub fn add(&mut self, id: u64, probs: &[f32]) -> &[f32] {
        let alpha = self.past_weight;
        let average = self
            .by_id
            .entry(id)
            .and_modify(|average| {
                for (s, p) in average.iter_mut().zip(probs) {
                    *s = alpha * *s + (1.0 - alpha) * p;
                }
            })
            .or_insert_with(|| probs.to_vec());
        average
    }

    /// The current average of track `id`, if it was ever classified.
    pub fn get(&self, id: u64) -> Option<&[f32]> {
        self.by_id.get(&id).map(Vec::as_slice)
    }

    /// Drops the averages of tracks that ended.
    pub fn forget(&mut self, ids: &[u64]) {
        for id in ids {
            self.by_id.remove(id);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const CONFIG: TrackConfig = TrackConfig {
        min_iou: 0.3,
        max_missed: 2,
        smoothing: 0.5,
    };

    fn found(bbox: Rect) -> Detection {
        Detection {
            bbox,
            score: 1.0,
            landmarks: None,
        }
    }

    /// A seen, frontal face with these probabilities and units (the drawing tests use it too).
    pub(crate) fn face_with(id: u64, bbox: Rect, probs: Vec<f32>, units: Vec<f32>) -> TrackedFace {
        TrackedFace {
            track: TrackedBox {
                id,
                bbox,
                seen: true,
                landmarks: None,
                pose: None,
                frontal: true,
                is_new: false,
            },
            probs,
            units,
        }
    }

    fn face(id: u64, bbox: Rect, probs: Vec<f32>) -> TrackedFace {
        face_with(id, bbox, probs, Vec::new())
    }

    #[test]
    fn faces_between_frames_move_part_way_and_keep_the_nearer_labels() {
        let a = [
            face(1, Rect::new(0, 0, 100, 100), vec![1.0, 0.0]),
            face(2, Rect::new(500, 0, 50, 50), vec![1.0, 0.0]),
        ];
        let b = [
            face(1, Rect::new(40, 20, 120, 100), vec![0.0, 1.0]),
            face(3, Rect::new(200, 200, 50, 50), vec![0.0, 1.0]),
        ];
        let early = faces_between(&a, &b, 0.25);
        assert_eq!(early.len(), 2, "the faces of the nearer frame");
        assert_eq!(early[0].track.bbox, Rect::new(10, 5, 105, 100));
        assert_eq!(early[0].probs, vec![1.0, 0.0]);
        assert_eq!(early[1].track.bbox, Rect::new(500, 0, 50, 50), "only in a");
        let late = faces_between(&a, &b, 0.75);
        assert_eq!(late.iter().map(|f| f.track.id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(late[0].track.bbox, Rect::new(30, 15, 115, 100));
        assert_eq!(late[0].probs, vec![0.0, 1.0]);
    }

    #[test]
    fn ids_follow_moving_faces() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(300, 0, 100, 100);
        let first = tracker.update(&[found(a), found(b)]);
        assert_eq!(first.iter().map(|f| f.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(first.iter().all(|f| f.is_new && f.seen && f.frontal));
        // Both move a little and are given in the other order.
        let second = tracker.update(&[
            found(Rect::new(305, 0, 100, 100)),
            found(Rect::new(5, 0, 100, 100)),
        ]);
        assert_eq!(second.iter().map(|f| f.id).collect::<Vec<_>>(), vec![2, 1]);
        assert!(second.iter().all(|f| !f.is_new));
        // From standing still, the boxes move POSITION_GAIN of the way: 1.75 pixels, rounded.
        let filtered = vec![Rect::new(2, 0, 100, 100), Rect::new(302, 0, 100, 100)];
        assert_eq!(tracker.boxes(), filtered);
        assert_eq!(
            second[1].bbox, filtered[0],
            "the faces carry the filtered box"
        );
    }

    /// The box of a face found at `found(frame)` in frames 0 to `frames`, as drawn in each.
    fn drawn_boxes(frames: i32, found: impl Fn(i32) -> Rect) -> Vec<Rect> {
        let mut tracker = Tracker::new(CONFIG);
        (0..frames)
            .map(|frame| tracker.update(&[self::found(found(frame))])[0].bbox)
            .collect()
    }

    #[test]
    fn a_box_keeps_up_with_a_steady_pan() {
        // The picture moves 2.5 pixels a frame: after a few frames the box is where the face is,
        // not behind it (a plain average of the last box and the detection trails by 2.5).
        let boxes = drawn_boxes(60, |frame| Rect::new(100, 500 - frame * 5 / 2, 80, 80));
        for (frame, drawn) in boxes.iter().enumerate().skip(30) {
            let truth = 500.0 - frame as f64 * 2.5;
            assert!(
                (f64::from(drawn.y) - truth).abs() <= 1.0,
                "frame {frame}: box at {} for a face at {truth}",
                drawn.y
            );
        }
    }

    #[test]
    fn a_still_face_found_with_jitter_gets_a_steady_box() {
        // The detector's box wobbles by 3 pixels around a still face.
        let wobble = [0, 3, -3, 2, -2, 3, 0, -3];
        let boxes = drawn_boxes(64, |frame| {
            let d = wobble[frame as usize % wobble.len()];
            Rect::new(200 + d, 100 - d, 90 + d, 90)
        });
        for drawn in &boxes[16..] {
            assert!((drawn.x - 200).abs() <= 1, "{drawn:?}");
            assert!((drawn.y - 100).abs() <= 1, "{drawn:?}");
            assert!((drawn.width - 90).abs() <= 1, "{drawn:?}");
        }
    }

    #[test]
    fn a_lost_face_keeps_its_box_for_max_missed_frames_then_ends() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        tracker.update(&[found(a)]);
        for _ in 0..CONFIG.max_missed {
            let kept = tracker.update(&[]);
            assert_eq!(kept.len(), 1, "the lost face keeps its box");
            assert!(!kept[0].seen && !kept[0].frontal);
            assert_eq!((kept[0].id, kept[0].bbox), (1, a));
            assert!(tracker.take_ended().is_empty());
        }
        assert!(tracker.update(&[]).is_empty());
        assert_eq!(tracker.take_ended(), vec![1]);
        let again = tracker.update(&[found(a)]);
        assert_eq!(again[0].id, 2);
        assert!(again[0].is_new);
    }

    #[test]
    fn a_cut_ends_every_track() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        tracker.update(&[found(a)]);
        tracker.end_all();
        let after = tracker.update(&[found(a)]);
        assert_eq!((after[0].id, after[0].is_new), (2, true));
        assert_eq!(tracker.take_ended(), vec![1]);
    }

    #[test]
    fn a_face_found_again_within_max_missed_keeps_its_id() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        tracker.update(&[found(a)]);
        tracker.update(&[]);
        let back = tracker.update(&[found(Rect::new(3, 3, 100, 100))]);
        assert_eq!((back.len(), back[0].id, back[0].seen), (1, 1, true));
    }

    #[test]
    fn smoothing_averages_each_track_apart() {
        let mut smoother = Smoother::new(0.5);
        assert_eq!(smoother.add(1, &[1.0, 0.0]), &[1.0, 0.0]);
        assert_eq!(smoother.add(2, &[0.0, 1.0]), &[0.0, 1.0]);
        assert_eq!(smoother.add(1, &[0.0, 1.0]), &[0.5, 0.5]);
        assert_eq!(smoother.get(2), Some(&[0.0, 1.0][..]));
        smoother.forget(&[2]);
        assert_eq!(smoother.get(2), None);
    }
}
