//! Writes the report's two CSV tables: `class.csv` (one row per window) and
//! `tracks.csv` (one row per track per window where the track is present).
//! Shares have 4 decimals, times 3.

use std::io::{self, Write};

use super::{ClassWindow, Report, TrackWindow};

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
    header.extend(share_columns(report));
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
    header.extend(share_columns(report));
    writer.write_record(&header)?;
    for track_window in &report.track_windows {
        writer.write_record(track_row(track_window))?;
    }
    writer.flush()
}

/// `share_<label>` for every label, then `<view>_<group>` for every view group.
fn share_columns(report: &Report) -> Vec<String> {
    let label_columns = report.labels.iter().map(|label| format!("share_{label}"));
    let view_columns = report.view_groups.iter().map(super::ViewGroup::column_name);
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
