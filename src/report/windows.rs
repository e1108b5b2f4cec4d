//! Time windows: how the covered time is cut and which window a record falls in.

use super::{FaceRecord, TIME_EPSILON};

/// End of the covered time: the duration when known, else the last record's time.
pub(super) fn timeline_end(records: &[FaceRecord], duration: Option<f64>) -> f64 {
    let end =
        duration.unwrap_or_else(|| records.iter().map(|record| record.time).fold(0.0, f64::max));
    if end.is_finite() {
        end.max(0.0)
    } else {
        0.0
    }
}

/// The configured window, or one window over the whole video when it is not usable.
pub(super) fn usable_window(window: f64, duration: f64) -> f64 {
    if window.is_finite() && window > 0.0 {
        window
    } else if duration > 0.0 {
        duration
    } else {
        1.0
    }
}

/// Number of windows: ceil(end / window), at least one when there are records.
pub(super) fn window_count(end: f64, window: f64, has_records: bool) -> usize {
    // Saturating float-to-int conversion; `end` and `window` are finite and positive.
    let count = (end / window - TIME_EPSILON).ceil().max(0.0) as usize;
    if has_records {
        count.max(1)
    } else {
        count
    }
}

/// (start, end) of each window; the last one ends at the covered end when that is later than its start.
pub(super) fn window_bounds(count: usize, window: f64, end: f64) -> Vec<(f64, f64)> {
    (0..count)
        .map(|index| {
            let start = index as f64 * window;
            let full_end = start + window;
            let last = index + 1 == count;
            let window_end = if last && end > start {
                end.min(full_end)
            } else {
                full_end
            };
            (start, window_end)
        })
        .collect()
}

/// Window of a record time: floor(time / window), clamped to the windows there are.
pub(super) fn window_of(time: f64, window: f64, count: usize) -> usize {
    let position = (time / window + TIME_EPSILON).floor();
    let index = if position.is_finite() && position > 0.0 {
        position as usize
    } else {
        0
    };
    index.min(count.saturating_sub(1))
}
