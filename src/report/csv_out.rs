//! Writes the report's two CSV tables: `class.csv` (one row per window) and
//! `tracks.csv` (one row per track per window where the track is present), and the cohort
//! table `cohort.csv` (one row per video). Shares have 4 decimals, times 3.

use std::io::{self, Write};

use super::cohort::{Cohort, CohortVideo};
use super::{ClassWindow, Report, TrackWindow, ViewGroup};

/// Writes the class-level table, one row per window.
pub(super) fn write_class_csv(report: &Report, out: impl Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = strings(&[
        "window_start",
        "window_end",
        "faces_present",
        "face_records",
        "attentive_share",
        "engagement",
    ]);
    header.extend(share_columns(&report.labels, &report.view_groups));
    writer.write_record(&header)?;
    for window in &report.windows {
        writer.write_record(class_row(window))?;
    }
    writer.flush()
}

/// Writes the per-track table, one row per track per window where present.
pub(super) fn write_tracks_csv(report: &Report, out: impl Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = strings(&[
        "track",
        "window_start",
        "window_end",
        "frames",
        "attention",
        "engagement",
    ]);
    header.extend(share_columns(&report.labels, &report.view_groups));
    writer.write_record(&header)?;
    for track_window in &report.track_windows {
        writer.write_record(track_row(track_window))?;
    }
    writer.flush()
}

/// Writes the cohort table, one row per video: its name and records file, then its whole-video
/// figures ([`super::Overall`]) with the same share columns as `class.csv`.
pub(super) fn write_cohort_csv(cohort: &Cohort, out: impl Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header = strings(&[
        "video",
        "records_file",
        "duration",
        "face_records",
        "mean_faces_present",
        "attention",
        "attentive_share",
        "engagement",
    ]);
    header.extend(share_columns(cohort.labels(), cohort.view_groups()));
    writer.write_record(&header)?;
    for video in &cohort.videos {
        writer.write_record(cohort_row(video))?;
    }
    writer.flush()
}

/// `share_<label>` for every label, then `<view>_<group>` for every view group.
fn share_columns(labels: &[String], view_groups: &[ViewGroup]) -> Vec<String> {
    let label_columns = labels.iter().map(|label| format!("share_{label}"));
    let view_columns = view_groups.iter().map(ViewGroup::column_name);
    label_columns.chain(view_columns).collect()
}

fn class_row(window: &ClassWindow) -> Vec<String> {
    let mut row = vec![
        time(window.start),
        time(window.end),
        window.faces_present.to_string(),
        window.face_records.to_string(),
        number(window.attentive_share),
        number(window.engagement),
    ];
    row.extend(window.expression.iter().map(|&share| number(share)));
    row.extend(window.view_shares.iter().map(|&share| number(share)));
    row
}

fn track_row(track_window: &TrackWindow) -> Vec<String> {
    let mut row = vec![
        track_window.track.to_string(),
        time(track_window.start),
        time(track_window.end),
        track_window.frames.to_string(),
        number(track_window.attention),
        number(track_window.engagement),
    ];
    row.extend(track_window.expression.iter().map(|&share| number(share)));
    row.extend(track_window.view_shares.iter().map(|&share| number(share)));
    row
}

fn cohort_row(video: &CohortVideo) -> Vec<String> {
    let overall = &video.report.overall;
    let mut row = vec![
        video.name.clone(),
        video.records.display().to_string(),
        time(video.report.duration),
        overall.face_records.to_string(),
        number(overall.mean_faces_present),
        number(overall.attention),
        number(overall.attentive_share),
        number(overall.engagement),
    ];
    row.extend(overall.expression.iter().map(|&share| number(share)));
    row.extend(overall.view_shares.iter().map(|&share| number(share)));
    row
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// A time in seconds with 3 decimals.
fn time(seconds: f64) -> String {
    format!("{seconds:.3}")
}

/// A share or index with 4 decimals.
fn number(value: f64) -> String {
    format!("{value:.4}")
}
