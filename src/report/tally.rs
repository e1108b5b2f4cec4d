//! Counting face records per window, per track and window, and per track, and turning the
//! counts into the report's shares.

use std::collections::{BTreeMap, HashMap};

use super::windows::window_of;
use super::{ClassWindow, Overall, TrackSummary, TrackWindow, ViewGroup};
use crate::records::FaceRecord;

/// Label lookups resolved once for the whole computation.
pub(super) struct LabelScheme {
    labels: Vec<String>,
    index_of: HashMap<String, usize>,
    engaged: Vec<bool>,
    group_members: Vec<Vec<usize>>,
}

impl LabelScheme {
    pub(super) fn new(
        labels: &[String],
        engaged_labels: &[String],
        view_groups: &[ViewGroup],
    ) -> Self {
        let index_of: HashMap<String, usize> = labels
            .iter()
            .enumerate()
            .map(|(index, label)| (label.clone(), index))
            .collect();
        let engaged = labels
            .iter()
            .map(|label| engaged_labels.contains(label))
            .collect();
        let group_members = view_groups
            .iter()
            .map(|group| {
                group
                    .labels
                    .iter()
                    .filter_map(|label| index_of.get(label).copied())
                    .collect()
            })
            .collect();
        LabelScheme {
            labels: labels.to_vec(),
            index_of,
            engaged,
            group_members,
        }
    }

    fn label_index(&self, label: &str) -> Option<usize> {
        self.index_of.get(label).copied()
    }

    fn dominant_label(&self, tally: &Tally) -> String {
        tally
            .dominant()
            .and_then(|index| self.labels.get(index))
            .cloned()
            .unwrap_or_default()
    }
}

/// Counts over a set of face records.
#[derive(Debug, Clone)]
pub(super) struct Tally {
    records: usize,
    frontal: usize,
    engaged: usize,
    label_counts: Vec<usize>,
    first_time: f64,
    last_time: f64,
}

impl Tally {
    fn new(label_count: usize) -> Self {
        Tally {
            records: 0,
            frontal: 0,
            engaged: 0,
            label_counts: vec![0; label_count],
            first_time: f64::INFINITY,
            last_time: f64::NEG_INFINITY,
        }
    }

    fn add(&mut self, record: &FaceRecord, label: usize, engaged_label: bool) {
        self.records += 1;
        self.frontal += usize::from(record.frontal);
        self.engaged += usize::from(record.frontal && engaged_label);
        self.label_counts[label] += 1;
        self.first_time = self.first_time.min(record.time);
        self.last_time = self.last_time.max(record.time);
    }

    fn attention(&self) -> f64 {
        share(self.frontal, self.records)
    }

    fn engagement(&self) -> f64 {
        share(self.engaged, self.records)
    }

    fn expression_shares(&self) -> Vec<f64> {
        self.label_counts
            .iter()
            .map(|&count| share(count, self.records))
            .collect()
    }

    fn view_shares(&self, group_members: &[Vec<usize>]) -> Vec<f64> {
        group_members
            .iter()
            .map(|members| {
                let in_group: usize = members.iter().map(|&label| self.label_counts[label]).sum();
                share(in_group, self.records)
            })
            .collect()
    }

    /// Index of the most frequent label; the first one on a tie; None when empty.
    fn dominant(&self) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (index, &count) in self.label_counts.iter().enumerate() {
            if count > 0 && best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((index, count));
            }
        }
        best.map(|(index, _)| index)
    }
}

/// `part / whole`, 0 when `whole` is 0.
pub(super) fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Mean of the values, 0 when there are none.
pub(super) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), value| {
        (sum + value, count + 1)
    });
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

/// Record counts per window, per track and window, and per track.
pub(super) struct Tallies {
    per_window: Vec<Tally>,
    per_track_window: BTreeMap<(u64, usize), Tally>,
    per_track: BTreeMap<u64, Tally>,
}

impl Tallies {
    pub(super) fn collect(
        records: &[FaceRecord],
        scheme: &LabelScheme,
        window: f64,
        window_count: usize,
    ) -> Self {
        let label_count = scheme.labels.len();
        let mut tallies = Tallies {
            per_window: vec![Tally::new(label_count); window_count],
            per_track_window: BTreeMap::new(),
            per_track: BTreeMap::new(),
        };
        for record in records {
            let Some(label) = scheme.label_index(&record.label) else {
                continue;
            };
            let engaged = scheme.engaged[label];
            let window_index = window_of(record.time, window, window_count);
            tallies.per_window[window_index].add(record, label, engaged);
            tallies
                .per_track_window
                .entry((record.id, window_index))
                .or_insert_with(|| Tally::new(label_count))
                .add(record, label, engaged);
            tallies
                .per_track
                .entry(record.id)
                .or_insert_with(|| Tally::new(label_count))
                .add(record, label, engaged);
        }
        tallies
    }
}

/// Per-track measures in each window where the track is present.
pub(super) fn track_windows(
    tallies: &Tallies,
    bounds: &[(f64, f64)],
    scheme: &LabelScheme,
) -> Vec<TrackWindow> {
    tallies
        .per_track_window
        .iter()
        .map(|(&(track, window), tally)| TrackWindow {
            track,
            window,
            start: bounds[window].0,
            end: bounds[window].1,
            frames: tally.records,
            attention: tally.attention(),
            engagement: tally.engagement(),
            expression: tally.expression_shares(),
            view_shares: tally.view_shares(&scheme.group_members),
            dominant_label: scheme.dominant_label(tally),
        })
        .collect()
}

/// Class-level measures of each window.
pub(super) fn class_windows(
    tallies: &Tallies,
    track_windows: &[TrackWindow],
    bounds: &[(f64, f64)],
    scheme: &LabelScheme,
    attentive_threshold: f64,
) -> Vec<ClassWindow> {
    tallies
        .per_window
        .iter()
        .zip(bounds)
        .enumerate()
        .map(|(index, (tally, &(start, end)))| {
            let present: Vec<&TrackWindow> = track_windows
                .iter()
                .filter(|tw| tw.window == index)
                .collect();
            let attentive = present
                .iter()
                .filter(|tw| tw.attention >= attentive_threshold)
                .count();
            ClassWindow {
                index,
                start,
                end,
                faces_present: present.len(),
                face_records: tally.records,
                attentive_share: share(attentive, present.len()),
                engagement: mean(present.iter().map(|tw| tw.engagement)),
                expression: tally.expression_shares(),
                view_shares: tally.view_shares(&scheme.group_members),
            }
        })
        .collect()
}

/// Whole-video summary of each track.
pub(super) fn track_summaries(tallies: &Tallies, scheme: &LabelScheme) -> Vec<TrackSummary> {
    tallies
        .per_track
        .iter()
        .map(|(&track, tally)| TrackSummary {
            track,
            first_seen: tally.first_time,
            last_seen: tally.last_time,
            records: tally.records,
            attention: tally.attention(),
            engagement: tally.engagement(),
            expression: tally.expression_shares(),
            dominant_label: scheme.dominant_label(tally),
        })
        .collect()
}

/// Class-level averages; window means are over windows with at least one face.
pub(super) fn overall(tallies: &Tallies, windows: &[ClassWindow], scheme: &LabelScheme) -> Overall {
    let mut all = Tally::new(scheme.labels.len());
    for tally in &tallies.per_window {
        all.records += tally.records;
        all.frontal += tally.frontal;
        all.engaged += tally.engaged;
        for (total, count) in all.label_counts.iter_mut().zip(&tally.label_counts) {
            *total += count;
        }
    }
    let with_faces: Vec<&ClassWindow> = windows.iter().filter(|w| w.faces_present > 0).collect();
    Overall {
        face_records: all.records,
        windows_with_faces: with_faces.len(),
        mean_faces_present: mean(with_faces.iter().map(|w| w.faces_present as f64)),
        attention: all.attention(),
        attentive_share: mean(with_faces.iter().map(|w| w.attentive_share)),
        engagement: mean(with_faces.iter().map(|w| w.engagement)),
        expression: all.expression_shares(),
        view_shares: all.view_shares(&scheme.group_members),
    }
}
