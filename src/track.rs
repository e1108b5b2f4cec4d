//! Face tracks: stable IDs across frames by box overlap (IoU), and per-track exponential
//! smoothing of class probabilities so that labels do not flicker from frame to frame.
//! [`Tracker`] works on boxes alone, so it runs next to detection and lets the pipeline classify
//! a known face less often than every frame; [`Smoother`] runs where the probabilities arrive.

use std::collections::HashMap;

use opencv::core::Rect;

use crate::detect::{iou, Detection};

/// Tracking settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackConfig {
    /// Least overlap for a detection to continue a track.
    pub min_iou: f64,
    /// A track without a detection for this many frames ends.
    pub max_missed: usize,
    /// Weight of the past in the probability average, 0..1 (0 = no smoothing).
    pub smoothing: f32,
}

/// One face in one frame with its track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedBox {
    /// Track ID, from 1, stable while the face stays in view.
    pub id: u64,
    /// Box in input pixels.
    pub bbox: Rect,
    /// The detector saw the face frontal in this frame (not a box carried over).
    pub frontal: bool,
    /// This frame starts the track.
    pub is_new: bool,
}

/// One face in one frame, tracked and classified.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedFace {
    /// Track ID, from 1, stable while the face stays in view.
    pub id: u64,
    /// Box in input pixels.
    pub bbox: Rect,
    /// The detector saw the face frontal in this frame (not a box carried over).
    pub frontal: bool,
    /// Smoothed class probabilities.
    pub probs: Vec<f32>,
    /// Smoothed action-unit probabilities (empty when the model has no unit head).
    pub units: Vec<f32>,
}

struct Track {
    id: u64,
    bbox: Rect,
    missed: usize,
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

    /// Takes one frame's detections and returns them with their tracks, in the order given.
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
        for (track, was_taken) in self.tracks.iter_mut().zip(&taken) {
            if !was_taken {
                track.missed += 1;
            }
        }
        let mut out = Vec::with_capacity(detections.len());
        for (detection, track) in detections.iter().zip(track_of) {
            let (id, is_new) = match track {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    track.bbox = detection.bbox;
                    track.missed = 0;
                    (track.id, false)
                }
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    self.tracks.push(Track {
                        id,
                        bbox: detection.bbox,
                        missed: 0,
                    });
                    (id, true)
                }
            };
            out.push(TrackedBox {
                id,
                bbox: detection.bbox,
                frontal: detection.frontal,
                is_new,
            });
        }
        let max_missed = self.config.max_missed;
        let ended = &mut self.ended;
        self.tracks.retain(|t| {
            let keep = t.missed <= max_missed;
            if !keep {
                ended.push(t.id);
            }
            keep
        });
        out
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
mod tests {
    use super::*;

    const CONFIG: TrackConfig = TrackConfig {
        min_iou: 0.3,
        max_missed: 2,
        smoothing: 0.5,
    };

    fn seen(bbox: Rect) -> Detection {
        Detection {
            bbox,
            frontal: true,
        }
    }

    #[test]
    fn ids_follow_moving_faces() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(300, 0, 100, 100);
        let first = tracker.update(&[seen(a), seen(b)]);
        assert_eq!(first.iter().map(|f| f.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(first.iter().all(|f| f.is_new));
        // Both move a little and are given in the other order.
        let second = tracker.update(&[
            seen(Rect::new(305, 0, 100, 100)),
            Detection {
                bbox: Rect::new(5, 0, 100, 100),
                frontal: false,
            },
        ]);
        assert_eq!(second.iter().map(|f| f.id).collect::<Vec<_>>(), vec![2, 1]);
        assert!(second.iter().all(|f| !f.is_new));
        assert!(!second[1].frontal);
    }

    #[test]
    fn lost_tracks_end_and_new_faces_get_new_ids() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        tracker.update(&[seen(a)]);
        for _ in 0..3 {
            tracker.update(&[]);
        }
        assert_eq!(tracker.take_ended(), vec![1]);
        assert!(tracker.take_ended().is_empty());
        let again = tracker.update(&[seen(a)]);
        assert_eq!(again[0].id, 2);
        assert!(again[0].is_new);
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
