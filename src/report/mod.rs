//! Classroom engagement report from per-face records.
//!
//! Reads the JSON Lines face records of `emolens annotate --json`, cuts the video
//! into fixed time windows and measures, per face track and for the whole class:
//! attention (share of frames in which the face was seen frontal), the expression
//! mix (share of frames per top label, and per view group) and the engagement index
//! (share of frames that were frontal *and* showed an engaged expression).
//! The result is written as two CSV files and one self-contained HTML page.
//! Several videos' reports are put side by side by [`cohort`].

mod charts;
pub mod cohort;
mod csv_out;
mod error;
mod html;
mod legend;
mod records;
mod tally;
mod windows;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::model_meta::Views;

use crate::records::FaceRecord;
pub use error::ReportError;
pub use records::{parse_records, read_records};
use tally::{class_windows, overall, track_summaries, track_windows, LabelScheme, Tallies};
use windows::{timeline_end, usable_window, window_bounds, window_count};

/// File name of the report page that [`write_report`] writes.
const REPORT_PAGE: &str = "report.html";

/// Most time windows a report has: its time and memory grow with the records, not with the
/// window given (about 100 bytes per window).
pub const MAX_WINDOWS: usize = 100_000;
/// Longest video a report takes, in seconds (about 11.6 days): record times and `--duration`
/// beyond it are refused.
pub const MAX_SECONDS: f64 = 1e6;
/// Highest frame number a record may carry (a million seconds at 1000 frames per second).
pub const MAX_FRAME: u64 = 1_000_000_000;

/// Slack for floating-point time arithmetic (a time 1e-9 s before a window edge
/// counts as on the edge).
const TIME_EPSILON: f64 = 1e-9;

/// Settings of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Seconds per time window, > 0. A window that is not positive and finite
    /// is taken as one window covering the whole video.
    pub window: f64,
    /// Video duration in seconds when known; otherwise the last record's time is used.
    pub duration: Option<f64>,
    /// Labels that count as an engaged expression; empty means [`default_engaged`].
    pub engaged_labels: Vec<String>,
    /// A track is attentive in a window when its attention is at least this.
    pub attentive_threshold: f64,
}

impl Default for ReportConfig {
    /// Ten-second windows, unknown duration, default engaged labels, threshold 0.5.
    fn default() -> Self {
        ReportConfig {
            window: 10.0,
            duration: None,
            engaged_labels: Vec::new(),
            attentive_threshold: 0.5,
        }
    }
}

/// Reads a window length such as "10s", "10", "1.5s", "90s" or "2m" (minutes) into seconds.
pub fn parse_window(text: &str) -> Result<f64, ReportError> {
    let bad = |reason: &str| ReportError::BadWindow {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = text.trim().to_ascii_lowercase();
    let (number, seconds_per_unit) = split_time_unit(&trimmed);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| bad("not a number of seconds or minutes"))?;
    let seconds = value * seconds_per_unit;
    if !seconds.is_finite() {
        return Err(bad("not a finite length"));
    }
    if seconds <= 0.0 {
        return Err(bad("must be longer than zero"));
    }
    if seconds > MAX_SECONDS {
        return Err(bad("longer than any video a report takes (1,000,000 s)"));
    }
    Ok(seconds)
}

/// Splits "2m" into ("2", 60.0), "10s" into ("10", 1.0) and "10" into ("10", 1.0).
fn split_time_unit(text: &str) -> (&str, f64) {
    if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else {
        (text, 1.0)
    }
}

/// One group of one view, as a column of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewGroup {
    /// View name, e.g. "valence".
    pub view: String,
    /// Group name, e.g. "negative".
    pub group: String,
    /// Labels in the group.
    pub labels: Vec<String>,
}

impl ViewGroup {
    /// Column name `<view>_<group>`.
    pub fn column_name(&self) -> String {
        format!("{}_{}", self.view, self.group)
    }
}

/// Class-level measures of one time window.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassWindow {
    /// Window index, from 0.
    pub index: usize,
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// Number of distinct tracks with a record in the window.
    pub faces_present: usize,
    /// Number of face records in the window.
    pub face_records: usize,
    /// Share of present tracks whose attention reaches the threshold (0 when none).
    pub attentive_share: f64,
    /// Mean engagement index of the present tracks (0 when none).
    pub engagement: f64,
    /// Share of all face records per top label, in label order.
    pub expression: Vec<f64>,
    /// Share of all face records per view group, in [`Report::view_groups`] order.
    pub view_shares: Vec<f64>,
}

/// Measures of one track in one time window where it was present.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackWindow {
    /// Track id.
    pub track: u64,
    /// Window index, from 0.
    pub window: usize,
    /// Window start in seconds.
    pub start: f64,
    /// Window end in seconds.
    pub end: f64,
    /// Records of the track in the window.
    pub frames: usize,
    /// Share of those records seen frontal.
    pub attention: f64,
    /// Engagement index: share of records frontal and with an engaged label.
    pub engagement: f64,
    /// Share of records per top label, in label order (sums to 1).
    pub expression: Vec<f64>,
    /// Share of records per view group, in [`Report::view_groups`] order.
    pub view_shares: Vec<f64>,
    /// Most frequent top label (first in label order on a tie).
    pub dominant_label: String,
}

/// Whole-video summary of one track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSummary {
    /// Track id.
    pub track: u64,
    /// Time of the first record, in seconds.
    pub first_seen: f64,
    /// Time of the last record, in seconds.
    pub last_seen: f64,
    /// Number of records.
    pub records: usize,
    /// Share of records seen frontal.
    pub attention: f64,
    /// Engagement index over all records.
    pub engagement: f64,
    /// Share of records per top label, in label order.
    pub expression: Vec<f64>,
    /// Most frequent top label (first in label order on a tie).
    pub dominant_label: String,
}

/// Class-level averages over the whole video.
#[derive(Debug, Clone, PartialEq)]
pub struct Overall {
    /// Number of face records.
    pub face_records: usize,
    /// Number of windows with at least one face.
    pub windows_with_faces: usize,
    /// Mean faces present over windows with faces.
    pub mean_faces_present: f64,
    /// Share of all face records seen frontal.
    pub attention: f64,
    /// Mean attentive share over windows with faces.
    pub attentive_share: f64,
    /// Mean class engagement over windows with faces.
    pub engagement: f64,
    /// Share of all face records per top label, in label order.
    pub expression: Vec<f64>,
    /// Share of all face records per view group, in [`Report::view_groups`] order.
    pub view_shares: Vec<f64>,
}

/// A computed engagement report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The model's labels, in order.
    pub labels: Vec<String>,
    /// View groups used for the view-share columns.
    pub view_groups: Vec<ViewGroup>,
    /// Labels counted as engaged expressions.
    pub engaged_labels: Vec<String>,
    /// Window length in seconds.
    pub window: f64,
    /// Covered time in seconds (the duration, or the last record's time).
    pub duration: f64,
    /// Attention threshold for the attentive share.
    pub attentive_threshold: f64,
    /// One entry per window.
    pub windows: Vec<ClassWindow>,
    /// One entry per track per window where present, sorted by track then window.
    pub track_windows: Vec<TrackWindow>,
    /// One entry per track, sorted by track id.
    pub tracks: Vec<TrackSummary>,
    /// Class-level averages.
    pub overall: Overall,
}

/// Paths of the files written by [`write_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// Class-level CSV, one row per window.
    pub class_csv: PathBuf,
    /// Per-track CSV, one row per track per window where present.
    pub tracks_csv: PathBuf,
    /// Self-contained HTML page.
    pub html: PathBuf,
}

/// Labels that count as engaged by default: every label except those in the
/// "negative" group of a "valence" view, when the views have one.
pub fn default_engaged(labels: &[String], views: &Views) -> Vec<String> {
    let negative: &[String] = views
        .get(crate::model_meta::VALENCE_VIEW)
        .and_then(|view| view.get(crate::model_meta::NEGATIVE_GROUP))
        .map_or(&[], Vec::as_slice);
    labels
        .iter()
        .filter(|label| !negative.contains(label))
        .cloned()
        .collect()
}

/// Checks that the records (read from `path`) carry the model's labels in the model's order.
/// Passes when either side is empty.
///
/// # Errors
/// [`ReportError::LabelMismatch`] naming the file and both label lists.
pub fn check_labels(
    records: &[FaceRecord],
    labels: &[String],
    path: &Path,
) -> Result<(), ReportError> {
    let Some(first) = records.first() else {
        return Ok(());
    };
    if labels.is_empty() || first.prob_labels().eq(labels.iter().map(String::as_str)) {
        return Ok(());
    }
    Err(ReportError::LabelMismatch {
        path: path.to_path_buf(),
        found: first.prob_labels().collect::<Vec<_>>().join(", "),
        expected: labels.join(", "),
    })
}

/// Computes the report. `labels` is the model's label order; when empty it is
/// taken from the first record's `probs`. Top labels missing from it are added
/// at the end (see [`check_labels`] to reject such input instead).
///
/// # Errors
/// [`ReportError::TooManyWindows`] when the window is so short for the video's length that the
/// report would have more than [`MAX_WINDOWS`] windows.
pub fn build(
    records: &[FaceRecord],
    labels: &[String],
    views: &Views,
    config: &ReportConfig,
) -> Result<Report, ReportError> {
    let labels = resolve_labels(records, labels);
    let views = if views.is_empty() {
        crate::model_meta::default_views(&labels)
    } else {
        views.clone()
    };
    let engaged_labels = if config.engaged_labels.is_empty() {
        default_engaged(&labels, &views)
    } else {
        config.engaged_labels.clone()
    };
    let view_groups = flatten_views(&views);
    let scheme = LabelScheme::new(&labels, &engaged_labels, &view_groups);

    let duration = timeline_end(records, config.duration);
    let window = usable_window(config.window, duration);
    let count = window_count(duration, window, !records.is_empty());
    if count > MAX_WINDOWS {
        return Err(ReportError::TooManyWindows {
            count,
            window,
            duration,
        });
    }
    let bounds = window_bounds(count, window, duration);

    let tallies = Tallies::collect(records, &scheme, window, bounds.len());
    let track_windows = track_windows(&tallies, &bounds, &scheme);
    let windows = class_windows(
        &tallies,
        &track_windows,
        &bounds,
        &scheme,
        config.attentive_threshold,
    );
    let tracks = track_summaries(&tallies, &scheme);
    let overall = overall(&tallies, &windows, &scheme);
    Ok(Report {
        labels,
        view_groups,
        engaged_labels,
        window,
        duration,
        attentive_threshold: config.attentive_threshold,
        windows,
        track_windows,
        tracks,
        overall,
    })
}

/// The model's labels, or the first record's, plus any top label missing from them.
fn resolve_labels(records: &[FaceRecord], labels: &[String]) -> Vec<String> {
    let mut resolved: Vec<String> = if labels.is_empty() {
        records
            .first()
            .map(|record| record.prob_labels().map(str::to_string).collect())
            .unwrap_or_default()
    } else {
        labels.to_vec()
    };
    for record in records {
        if !resolved.contains(&record.label) {
            resolved.push(record.label.clone());
        }
    }
    resolved
}

/// All groups of all views, in view then group name order.
fn flatten_views(views: &Views) -> Vec<ViewGroup> {
    views
        .iter()
        .flat_map(|(view, groups)| {
            groups.iter().map(move |(group, labels)| ViewGroup {
                view: view.clone(),
                group: group.clone(),
                labels: labels.clone(),
            })
        })
        .collect()
}

/// Writes `class.csv`, `tracks.csv` and `report.html` into `dir`, creating it if
/// missing. Each file is written under a partial name and moved into place when complete.
pub fn write_report(report: &Report, dir: &Path) -> Result<ReportFiles, ReportError> {
    fs::create_dir_all(dir).map_err(|error| ReportError::Write {
        path: dir.to_path_buf(),
        error,
    })?;
    let files = ReportFiles {
        class_csv: dir.join("class.csv"),
        tracks_csv: dir.join("tracks.csv"),
        html: dir.join(REPORT_PAGE),
    };
    write_atomically(&files.class_csv, |out| {
        csv_out::write_class_csv(report, out)
    })?;
    write_atomically(&files.tracks_csv, |out| {
        csv_out::write_tracks_csv(report, out)
    })?;
    let page = html::render_page(report);
    write_atomically(&files.html, |out| out.write_all(page.as_bytes()))?;
    Ok(files)
}

/// Writes one report file atomically, naming it in the error.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), ReportError> {
    crate::output::write_atomically(path, write).map_err(|error| ReportError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// A few lines for the terminal: windows, tracks, class averages and expression mix.
pub fn summary(report: &Report) -> String {
    let header = format!(
        "{} windows of {} over {}",
        report.windows.len(),
        format_seconds(report.window),
        format_seconds(report.duration)
    );
    if report.tracks.is_empty() {
        return format!("{header}\nno faces found");
    }
    let overall = &report.overall;
    format!(
        "{header}\n{} tracks, {} face records, {:.1} faces present on average\n\
         class average over {} windows with faces: attentive share {:.2}, engagement index {:.2}\n\
         expression mix: {}",
        report.tracks.len(),
        overall.face_records,
        overall.mean_faces_present,
        overall.windows_with_faces,
        overall.attentive_share,
        overall.engagement,
        expression_mix_text(&report.labels, &overall.expression)
    )
}

/// "happy 52 %, sad 26 %, ...": labels by share, largest first, leaving out those that round to 0 %.
fn expression_mix_text(labels: &[String], shares: &[f64]) -> String {
    top_labels_text(labels, shares, usize::MAX)
}

/// Like [`expression_mix_text`], but only the `limit` largest shares.
fn top_labels_text(labels: &[String], shares: &[f64], limit: usize) -> String {
    let mut pairs: Vec<(&String, f64)> = labels.iter().zip(shares.iter().copied()).collect();
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let parts: Vec<String> = pairs
        .iter()
        .map(|(label, share)| (label, (share * 100.0).round()))
        .filter(|(_, percent)| *percent >= 1.0)
        .take(limit)
        .map(|(label, percent)| format!("{label} {percent:.0} %"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// Seconds as "12 s", "1.5 s" or "2 min 30 s".
fn format_seconds(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{} s", trim_number(seconds));
    }
    let minutes = (seconds / 60.0).floor();
    let rest = seconds - minutes * 60.0;
    if rest < 0.05 {
        format!("{minutes:.0} min")
    } else {
        format!("{minutes:.0} min {} s", trim_number(rest))
    }
}

/// A number with at most one decimal and no trailing ".0".
fn trim_number(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_string)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::windows::window_of;
    use super::*;

    /// The report of records the tests make, which always fit the window limit.
    fn built(
        records: &[FaceRecord],
        labels: &[String],
        views: &Views,
        config: &ReportConfig,
    ) -> Report {
        build(records, labels, views, config).expect("a report within the window limit")
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    pub(super) fn fer() -> Vec<String> {
        strings(&crate::dataset::FER2013_LABELS)
    }

    /// A record whose probs put everything on its top label (the cohort tests use it too).
    pub(super) fn record_with(
        labels: &[String],
        id: u64,
        time: f64,
        label: &str,
        frontal: bool,
    ) -> FaceRecord {
        FaceRecord {
            frame: (time * 25.0) as u64,
            time,
            id,
            bbox: [0, 0, 10, 10],
            frontal,
            yaw: None,
            pitch: None,
            landmarks: None,
            label: label.to_string(),
            confidence: 1.0,
            probs: crate::records::LabelValues(
                labels
                    .iter()
                    .map(|name| (name.clone(), if name == label { 1.0 } else { 0.0 }))
                    .collect(),
            ),
            aus: Default::default(),
        }
    }

    fn record(id: u64, time: f64, label: &str, frontal: bool) -> FaceRecord {
        record_with(&fer(), id, time, label, frontal)
    }

    /// Two tracks over two 10 s windows (see the test below for the known answers).
    fn two_tracks() -> Vec<FaceRecord> {
        vec![
            record(1, 0.0, "happy", true),
            record(1, 1.0, "happy", true),
            record(1, 2.0, "sad", true),
            record(1, 3.0, "neutral", false),
            record(2, 5.0, "surprise", true),
            record(2, 6.0, "surprise", true),
            record(1, 12.0, "angry", false),
            record(2, 15.0, "happy", true),
            record(2, 16.0, "fear", true),
        ]
    }

    fn config(window: f64, duration: Option<f64>) -> ReportConfig {
        ReportConfig {
            window,
            duration,
            ..ReportConfig::default()
        }
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    fn assert_shares(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!(close(*a, *e), "{actual:?} vs {expected:?}");
        }
    }

    fn label_share(report: &Report, shares: &[f64], label: &str) -> f64 {
        let index = report
            .labels
            .iter()
            .position(|l| l == label)
            .expect("the label is one of the report's");
        shares[index]
    }

    #[test]
    fn assigns_windows_and_clamps() {
        assert_eq!(window_of(0.0, 10.0, 3), 0);
        assert_eq!(window_of(9.999, 10.0, 3), 0);
        assert_eq!(window_of(10.0, 10.0, 3), 1);
        assert_eq!(window_of(0.3, 0.1, 10), 3);
        assert_eq!(window_of(29.9, 10.0, 3), 2);
        assert_eq!(window_of(35.0, 10.0, 3), 2);
        assert_eq!(window_of(-1.0, 10.0, 3), 0);
        assert_eq!(window_count(25.0, 10.0, true), 3);
        assert_eq!(window_count(20.0, 10.0, true), 2);
        assert_eq!(window_count(0.0, 10.0, true), 1);
        assert_eq!(window_count(0.0, 10.0, false), 0);
        assert_eq!(
            window_bounds(3, 10.0, 25.0),
            vec![(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
        );
    }

    #[test]
    fn records_after_the_duration_fall_in_the_last_window() {
        let records = vec![record(1, 5.0, "happy", true), record(1, 25.0, "sad", true)];
        let report = built(&records, &fer(), &Views::new(), &config(10.0, Some(20.0)));
        assert_eq!(report.windows.len(), 2);
        assert_eq!(report.windows[1].face_records, 1);
        assert!(close(
            label_share(&report, &report.windows[1].expression, "sad"),
            1.0
        ));
    }

    #[test]
    fn without_duration_the_last_record_time_sets_the_end() {
        let report = built(&two_tracks(), &fer(), &Views::new(), &config(10.0, None));
        assert!(close(report.duration, 16.0));
        assert_eq!(report.windows.len(), 2);
        assert!(close(report.windows[1].end, 16.0));
    }

    #[test]
    fn measures_two_tracks_across_two_windows() {
        let report = built(
            &two_tracks(),
            &fer(),
            &Views::new(),
            &config(10.0, Some(20.0)),
        );
        let columns: Vec<String> = report
            .view_groups
            .iter()
            .map(ViewGroup::column_name)
            .collect();
        assert_eq!(
            columns,
            [
                "valence_negative",
                "valence_neutral",
                "valence_positive",
                "valence_surprise"
            ]
        );
        let keys: Vec<(u64, usize)> = report
            .track_windows
            .iter()
            .map(|tw| (tw.track, tw.window))
            .collect();
        assert_eq!(keys, [(1, 0), (1, 1), (2, 0), (2, 1)]);

        let first = &report.track_windows[0];
        assert_eq!(first.frames, 4);
        assert!(close(first.attention, 0.75));
        assert!(close(first.engagement, 0.5));
        // angry, disgust, fear, happy, sad, surprise, neutral
        assert_shares(&first.expression, &[0.0, 0.0, 0.0, 0.5, 0.25, 0.0, 0.25]);
        assert_shares(&first.view_shares, &[0.25, 0.25, 0.5, 0.0]);
        assert_eq!(first.dominant_label, "happy");

        let track1_late = &report.track_windows[1];
        assert!(close(track1_late.attention, 0.0));
        assert!(close(track1_late.engagement, 0.0));
        let track2_early = &report.track_windows[2];
        assert!(close(track2_early.attention, 1.0));
        assert!(close(track2_early.engagement, 1.0));
        let track2_late = &report.track_windows[3];
        assert!(close(track2_late.engagement, 0.5));
        assert_eq!(track2_late.dominant_label, "fear"); // tie: first in label order

        let early = &report.windows[0];
        assert_eq!((early.faces_present, early.face_records), (2, 6));
        assert!(close(early.attentive_share, 1.0));
        assert!(close(early.engagement, 0.75));
        assert_shares(
            &early.expression,
            &[0.0, 0.0, 0.0, 2.0 / 6.0, 1.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0],
        );
        let late = &report.windows[1];
        assert_eq!((late.faces_present, late.face_records), (2, 3));
        assert!(close(late.attentive_share, 0.5));
        assert!(close(late.engagement, 0.25));

        let track1 = &report.tracks[0];
        assert_eq!((track1.track, track1.records), (1, 5));
        assert!(close(track1.first_seen, 0.0) && close(track1.last_seen, 12.0));
        assert!(close(track1.attention, 0.6));
        assert!(close(track1.engagement, 0.4));
        assert_eq!(track1.dominant_label, "happy");
        let track2 = &report.tracks[1];
        assert!(close(track2.engagement, 0.75));
        assert_eq!(track2.dominant_label, "surprise");

        assert_eq!(report.overall.face_records, 9);
        assert!(close(report.overall.attentive_share, 0.75));
        assert!(close(report.overall.engagement, 0.5));
    }

    #[test]
    fn attentive_share_follows_the_threshold() {
        let strict = ReportConfig {
            attentive_threshold: 0.8,
            ..config(10.0, Some(20.0))
        };
        let report = built(&two_tracks(), &fer(), &Views::new(), &strict);
        assert!(close(report.windows[0].attentive_share, 0.5)); // 0.75 < 0.8, 1.0 counts
        let exact = ReportConfig {
            attentive_threshold: 0.75,
            ..strict
        };
        let report = built(&two_tracks(), &fer(), &Views::new(), &exact);
        assert!(close(report.windows[0].attentive_share, 1.0)); // >= counts
    }

    #[test]
    fn configured_engaged_labels_replace_the_default() {
        let only_happy = ReportConfig {
            engaged_labels: strings(&["happy"]),
            ..config(10.0, Some(20.0))
        };
        let report = built(&two_tracks(), &fer(), &Views::new(), &only_happy);
        assert!(close(report.track_windows[2].engagement, 0.0)); // track 2 early: surprise only
        assert_eq!(report.engaged_labels, ["happy"]);
    }

    #[test]
    fn default_view_and_engaged_labels_for_fer() {
        let views = crate::model_meta::default_views(&fer());
        let valence = &views["valence"];
        assert_eq!(valence["negative"], ["angry", "disgust", "fear", "sad"]);
        assert_eq!(valence["positive"], ["happy"]);
        assert_eq!(valence["surprise"], ["surprise"]);
        assert_eq!(valence["neutral"], ["neutral"]);
        assert_eq!(
            default_engaged(&fer(), &views),
            ["happy", "surprise", "neutral"]
        );

        let mut shuffled = fer();
        shuffled.reverse();
        assert!(!crate::model_meta::default_views(&shuffled).is_empty());
        assert!(crate::model_meta::default_views(&fer()[..6]).is_empty());
        assert!(crate::model_meta::default_views(&strings(&["calm", "busy"])).is_empty());
        assert_eq!(default_engaged(&fer(), &Views::new()), fer());
    }

    #[test]
    fn given_views_replace_the_default() {
        let mut views = Views::new();
        views.insert(
            "mood".to_string(),
            BTreeMap::from([("up".to_string(), strings(&["happy", "surprise"]))]),
        );
        let report = built(&two_tracks(), &fer(), &views, &config(10.0, Some(20.0)));
        assert_eq!(report.view_groups.len(), 1);
        assert_eq!(report.view_groups[0].column_name(), "mood_up");
        assert_eq!(report.engaged_labels, fer()); // no valence view: every label
        assert_shares(&report.windows[0].view_shares, &[4.0 / 6.0]);
    }

    #[test]
    fn empty_input_without_duration_has_no_windows() {
        let report = built(&[], &fer(), &Views::new(), &config(10.0, None));
        assert!(report.windows.is_empty());
        assert!(report.tracks.is_empty() && report.track_windows.is_empty());
        assert_eq!(report.labels, fer());
        assert!(summary(&report).contains("no faces found"));
        let bare = built(&[], &[], &Views::new(), &config(10.0, None));
        assert!(bare.labels.is_empty() && bare.view_groups.is_empty());
    }

    #[test]
    fn empty_input_with_duration_has_zero_windows() {
        let report = built(&[], &fer(), &Views::new(), &config(10.0, Some(25.0)));
        assert_eq!(report.windows.len(), 3);
        for window in &report.windows {
            assert_eq!((window.faces_present, window.face_records), (0, 0));
            assert!(close(window.attentive_share, 0.0) && close(window.engagement, 0.0));
            assert_shares(&window.expression, &[0.0; 7]);
        }
        assert!(close(report.windows[2].end, 25.0));
    }

    #[test]
    fn labels_come_from_the_first_record_in_key_order() {
        let labels = strings(&["neutral", "happy", "sad"]);
        let records = vec![record_with(&labels, 4, 1.0, "happy", true)];
        let report = built(&records, &[], &Views::new(), &config(10.0, None));
        assert_eq!(report.labels, labels);
        assert!(report.view_groups.is_empty());
        assert_shares(&report.windows[0].expression, &[0.0, 1.0, 0.0]);
    }

    #[test]
    fn check_labels_rejects_another_label_order() {
        let records = vec![record(1, 0.0, "happy", true)];
        let path = Path::new("faces.jsonl");
        assert!(check_labels(&records, &fer(), path).is_ok());
        assert!(check_labels(&records, &[], path).is_ok());
        let mut other = fer();
        other.swap(0, 1);
        let message = check_labels(&records, &other, path)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("faces.jsonl: "), "{message}");
        assert!(message.contains("angry, disgust"), "{message}");
    }

    #[test]
    fn parses_window_lengths() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(parse_window("10s")?, 10.0);
        assert_eq!(parse_window("10")?, 10.0);
        assert_eq!(parse_window("1.5s")?, 1.5);
        assert_eq!(parse_window("2m")?, 120.0);
        assert_eq!(parse_window("90s")?, 90.0);
        assert_eq!(parse_window(" 30 S ")?, 30.0);
        for bad in ["0", "0s", "-5s", "abc", "", "s", "10h", "inf", "NaN"] {
            assert!(parse_window(bad).is_err(), "{bad} was accepted");
        }
        let message = parse_window("-5s").unwrap_err().to_string();
        assert_eq!(
            message,
            "window `-5s`: must be longer than zero; give a length such as 10s, 1.5s, 90 or 2m"
        );
        assert!(parse_window("ten")
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        Ok(())
    }

    #[test]
    fn summary_reports_engagement_with_attention_and_mix() {
        let report = built(
            &two_tracks(),
            &fer(),
            &Views::new(),
            &config(10.0, Some(20.0)),
        );
        let text = summary(&report);
        assert!(text.contains("2 windows of 10 s over 20 s"), "{text}");
        assert!(text.contains("2 tracks"), "{text}");
        assert!(
            text.contains("attentive share 0.75, engagement index 0.50"),
            "{text}"
        );
        assert!(
            text.contains("expression mix: happy 33 %, surprise 22 %"),
            "{text}"
        );
    }

    fn read(path: &Path) -> std::io::Result<String> {
        fs::read_to_string(path)
    }

    #[test]
    fn writes_csv_headers_and_rows() -> Result<(), Box<dyn std::error::Error>> {
        let records = vec![record(7, 1.0, "happy", true), record(7, 2.0, "sad", false)];
        let report = built(&records, &fer(), &Views::new(), &config(10.0, Some(10.0)));
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("new").join("report");
        let files = write_report(&report, &out)?;

        let class = read(&files.class_csv)?;
        let mut lines = class.lines();
        assert_eq!(
            lines.next().unwrap_or_default(),
            "window_start,window_end,faces_present,face_records,attentive_share,engagement,\
             share_angry,share_disgust,share_fear,share_happy,share_sad,share_surprise,share_neutral,\
             valence_negative,valence_neutral,valence_positive,valence_surprise"
        );
        assert_eq!(
            lines.next().unwrap_or_default(),
            "0.000,10.000,1,2,1.0000,0.5000,0.0000,0.0000,0.0000,0.5000,0.5000,0.0000,0.0000,\
             0.5000,0.0000,0.5000,0.0000"
        );
        assert_eq!(lines.next(), None);

        let tracks = read(&files.tracks_csv)?;
        let mut lines = tracks.lines();
        assert!(lines
            .next()
            .unwrap_or_default()
            .starts_with("track,window_start,window_end,frames,attention,engagement,share_angry,"));
        assert_eq!(
            lines.next().unwrap_or_default(),
            "7,0.000,10.000,2,0.5000,0.5000,0.0000,0.0000,0.0000,0.5000,0.5000,0.0000,0.0000,\
             0.5000,0.0000,0.5000,0.0000"
        );

        let mut names: Vec<String> = fs::read_dir(&out)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        assert_eq!(names, ["class.csv", "report.html", "tracks.csv"]);
        Ok(())
    }

    #[test]
    fn empty_report_files_keep_headers_and_say_no_faces() -> Result<(), Box<dyn std::error::Error>>
    {
        let report = built(&[], &fer(), &Views::new(), &config(10.0, Some(20.0)));
        let dir = tempfile::tempdir()?;
        let files = write_report(&report, dir.path())?;
        let class = read(&files.class_csv)?;
        assert_eq!(class.lines().count(), 3);
        assert!(class
            .lines()
            .nth(1)
            .unwrap_or_default()
            .starts_with("0.000,10.000,0,0,0.0000,0.0000,"));
        assert_eq!(read(&files.tracks_csv)?.lines().count(), 1);
        assert!(read(&files.html)?.contains("No faces were found in this video"));
        Ok(())
    }

    #[test]
    fn unwritable_folder_names_the_path() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let blocker = dir.path().join("file");
        fs::write(&blocker, "x")?;
        let report = built(&[], &fer(), &Views::new(), &config(10.0, None));
        let message = write_report(&report, &blocker.join("out"))
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("could not write"), "{message}");
        assert!(message.contains("file/out"), "{message}");
        Ok(())
    }

    #[test]
    fn html_escapes_labels_and_is_self_contained() {
        let labels = strings(&["<b>", "calm & \"quiet\""]);
        let records = vec![
            record_with(&labels, 1, 0.5, "<b>", true),
            record_with(&labels, 2, 12.0, "calm & \"quiet\"", false),
        ];
        let report = built(&records, &labels, &Views::new(), &config(10.0, Some(20.0)));
        let page = html::render_page(&report);
        assert!(page.contains("&lt;b&gt;"));
        assert!(!page.contains("<b>"));
        assert!(page.contains("calm &amp; &quot;quiet&quot;"));
        assert!(page.contains("<svg"));
        assert_eq!(page.matches("<svg").count(), 4);
        assert!(!page.contains("<script"));
        let namespace = "http://www.w3.org/2000/svg";
        assert_eq!(
            page.matches("http").count(),
            page.matches(namespace).count()
        );
        assert!(!page.contains("No faces were found"));
    }

    #[test]
    fn html_uses_the_fixed_emotion_colours() {
        let report = built(
            &two_tracks(),
            &fer(),
            &Views::new(),
            &config(10.0, Some(20.0)),
        );
        let page = html::render_page(&report);
        // The page's colours are the video's: each label's palette colour.
        for (index, label) in fer().iter().enumerate() {
            let colour = crate::palette::hex(crate::palette::label_rgb(label, index));
            assert!(page.contains(&colour), "{label}: {colour} missing");
        }
    }

    #[test]
    fn windows_and_times_are_bounded() {
        let long = [record(1, 5.0e5, "happy", true)];
        let error = build(&long, &fer(), &Views::new(), &config(1.0, None));
        assert!(
            matches!(
                error,
                Err(ReportError::TooManyWindows { count: 500_000, .. })
            ),
            "{error:?}"
        );
        assert!(build(&long, &fer(), &Views::new(), &config(10.0, None)).is_ok());
        for text in ["2000000s", "1e300", "0.0s"] {
            assert!(parse_window(text).is_err(), "{text}");
        }
    }
}
