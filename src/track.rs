//! Face tracks: stable IDs across frames by box overlap (IoU), and per-track exponential
//! smoothing of class probabilities so that labels do not flicker from frame to frame.

use opencv::core::Rect;

use crate::detect::iou;

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

/// One face in one frame, after tracking.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedFace {
    /// Track ID, from 1, stable while the face stays in view.
    pub id: u64,
    /// Box in input pixels.
    pub bbox: Rect,
    /// Smoothed class probabilities.
    pub probs: Vec<f32>,
}

struct Track {
    id: u64,
    bbox: Rect,
    probs: Vec<f32>,
    missed: usize,
}

/// Assigns detections to tracks frame by frame.
pub struct Tracker {
    config: TrackConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    /// No tracks yet; the first face gets ID 1.
    pub fn new(config: TrackConfig) -> Self {
        Self {
            config,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Takes one frame's detections (box and class probabilities) and returns them tracked,
    /// in the order given.
    pub fn update(&mut self, detections: &[(Rect, Vec<f32>)]) -> Vec<TrackedFace> {
        // Greedy matching, best overlaps first.
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (d, (bbox, _)) in detections.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                let overlap = iou(*bbox, track.bbox);
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
        let alpha = self.config.smoothing;
        let mut out = Vec::with_capacity(detections.len());
        for (d, (bbox, probs)) in detections.iter().enumerate() {
            let index = match track_of[d] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    track.bbox = *bbox;
                    track.missed = 0;
                    for (s, p) in track.probs.iter_mut().zip(probs) {
                        *s = alpha * *s + (1.0 - alpha) * p;
                    }
                    t
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        bbox: *bbox,
                        probs: probs.clone(),
                        missed: 0,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let track = &self.tracks[index];
            out.push(TrackedFace {
                id: track.id,
                bbox: track.bbox,
                probs: track.probs.clone(),
            });
        }
        let max_missed = self.config.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        out
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

    #[test]
    fn ids_follow_moving_faces_and_smooth() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        let b = Rect::new(300, 0, 100, 100);
        let first = tracker.update(&[(a, vec![1.0, 0.0]), (b, vec![0.0, 1.0])]);
        assert_eq!(first.iter().map(|f| f.id).collect::<Vec<_>>(), vec![1, 2]);
        // Both move a little and are given in the other order.
        let second = tracker.update(&[
            (Rect::new(305, 0, 100, 100), vec![1.0, 0.0]),
            (Rect::new(5, 0, 100, 100), vec![1.0, 0.0]),
        ]);
        assert_eq!(second.iter().map(|f| f.id).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(second[0].probs, vec![0.5, 0.5]);
        assert_eq!(second[1].probs, vec![1.0, 0.0]);
    }

    #[test]
    fn lost_tracks_end_and_new_faces_get_new_ids() {
        let mut tracker = Tracker::new(CONFIG);
        let a = Rect::new(0, 0, 100, 100);
        tracker.update(&[(a, vec![1.0])]);
        for _ in 0..3 {
            tracker.update(&[]);
        }
        let again = tracker.update(&[(a, vec![1.0])]);
        assert_eq!(again[0].id, 2);
    }
}
