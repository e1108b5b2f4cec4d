//! What a live run measures: capture-to-display latency as a fixed-size histogram (memory stays
//! flat however long the run), the frame rate and latency of the last second for the overlay and
//! the status line, and the end-of-run summary written by `--stats-json`.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Width of one histogram bin.
const BIN_MS: f64 = 0.1;
/// Latencies up to this are binned; longer ones count in an overflow bin (their percentiles
/// read as the longest latency seen).
const RANGE_MS: f64 = 5_000.0;
/// The overlay and the status line report over windows of about this length.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Latencies in milliseconds, binned at [`BIN_MS`]: percentiles within a tenth of a millisecond in
/// 200 KB, whatever the run length.
pub struct LatencyHistogram {
    bins: Vec<u32>,
    overflow: u64,
    count: u64,
    sum_ms: f64,
    max_ms: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            bins: vec![0; (RANGE_MS / BIN_MS) as usize],
            overflow: 0,
            count: 0,
            sum_ms: 0.0,
            max_ms: 0.0,
        }
    }
}

impl LatencyHistogram {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        match self.bins.get_mut((ms / BIN_MS) as usize) {
            Some(bin) => *bin += 1,
            None => self.overflow += 1,
        }
        self.count += 1;
        self.sum_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    /// The latency below which a share `q` (0..=1) of the frames fall, in milliseconds: the upper
    /// edge of its bin, never above the longest seen. `None` before the first frame.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (index, bin) in self.bins.iter().enumerate() {
            seen += u64::from(*bin);
            if seen >= rank {
                return Some((((index + 1) as f64) * BIN_MS).min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }

    /// The summary of all latencies counted, `None` before the first frame.
    pub fn summary(&self) -> Option<LatencySummary> {
        Some(LatencySummary {
            p50: round2(self.quantile(0.50)?),
            p95: round2(self.quantile(0.95)?),
            p99: round2(self.quantile(0.99)?),
            mean: round2(self.sum_ms / self.count as f64),
            max: round2(self.max_ms),
        })
    }
}

/// Latency percentiles, mean and maximum, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
    /// Longest.
    pub max: f64,
}

/// Frames shown and their latency over the last [`INTERVAL`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recent {
    /// Frames shown per second.
    pub fps: f64,
    /// Mean capture-to-display latency, milliseconds.
    pub latency_ms: f64,
}

/// Gathers [`Recent`] figures window by window.
pub struct IntervalMeter {
    start: Instant,
    frames: u32,
    latency_sum: Duration,
}

impl IntervalMeter {
    /// A window starting at `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            frames: 0,
            latency_sum: Duration::ZERO,
        }
    }

    /// Counts one frame shown; when the window is full, returns its figures and starts the next.
    pub fn frame(&mut self, latency: Duration, now: Instant) -> Option<Recent> {
        self.frames += 1;
        self.latency_sum += latency;
        let elapsed = now.duration_since(self.start);
        if elapsed < INTERVAL {
            return None;
        }
        let recent = Recent {
            fps: f64::from(self.frames) / elapsed.as_secs_f64(),
            latency_ms: self.latency_sum.as_secs_f64() * 1000.0 / f64::from(self.frames),
        };
        *self = Self {
            start: now,
            frames: 0,
            latency_sum: Duration::ZERO,
        };
        Some(recent)
    }
}

/// The end-of-run figures, as `--stats-json` writes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveStats {
    /// The source as given.
    pub source: String,
    /// Frames the capture thread delivered.
    pub captured: u64,
    /// Frames analysed and shown (or handed to output).
    pub processed: u64,
    /// Frames replaced by a newer one before processing took them.
    pub dropped: u64,
    /// `processed / captured`.
    pub processed_share: f64,
    /// Seconds from the first frame captured to the end.
    pub elapsed_s: f64,
    /// Processed frames per second over the run.
    pub fps: f64,
    /// Capture-to-display latency; `null` when no frame was processed.
    pub latency_ms: Option<LatencySummary>,
}

impl LiveStats {
    /// One line for people: counts, speed and latency percentiles.
    pub fn summary_line(&self) -> String {
        let latency = self.latency_ms.map_or_else(
            || "no frames processed".to_owned(),
            |l| {
                format!(
                    "latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
                    l.p50, l.p95, l.p99
                )
            },
        );
        format!(
            "{}: captured {}, processed {} ({:.1} %), dropped {}; {:.1} fps over {:.1} s; {latency}",
            self.source,
            self.captured,
            self.processed,
            100.0 * self.processed_share,
            self.dropped,
            self.fps,
            self.elapsed_s,
        )
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: f64) -> Duration {
        Duration::from_secs_f64(value / 1000.0)
    }

    #[test]
    fn percentiles_of_known_latencies() -> Result<(), String> {
        let mut histogram = LatencyHistogram::default();
        assert_eq!(histogram.summary(), None);
        for n in 1..=100 {
            histogram.record(ms(f64::from(n)));
        }
        let summary = histogram.summary().ok_or("no summary")?;
        assert!((summary.p50 - 50.0).abs() <= 0.11, "{summary:?}");
        assert!((summary.p95 - 95.0).abs() <= 0.11, "{summary:?}");
        assert!((summary.p99 - 99.0).abs() <= 0.11, "{summary:?}");
        assert!((summary.mean - 50.5).abs() < 0.01, "{summary:?}");
        assert!((summary.max - 100.0).abs() < 0.01, "{summary:?}");
        Ok(())
    }

    #[test]
    fn overflow_reads_as_the_longest_latency() -> Result<(), String> {
        let mut histogram = LatencyHistogram::default();
        histogram.record(ms(2.0));
        histogram.record(ms(9_000.0));
        let summary = histogram.summary().ok_or("no summary")?;
        assert!((summary.p50 - 2.0).abs() <= 0.11, "{summary:?}");
        assert!((summary.p99 - 9_000.0).abs() < 0.01, "{summary:?}");
        Ok(())
    }

    #[test]
    fn a_percentile_never_exceeds_the_longest_latency() -> Result<(), String> {
        // Latencies inside histogram buckets, across the range, one to many samples.
        let mut histogram = LatencyHistogram::default();
        let mut longest = 0.0f64;
        for n in 0..2_000u32 {
            let latency = 0.37 + f64::from(n * 7919 % 997) * 3.01;
            histogram.record(ms(latency));
            longest = longest.max(latency);
            for q in [0.5, 0.9, 0.95, 0.99, 1.0] {
                let value = histogram.quantile(q).ok_or("no quantile")?;
                assert!(
                    value <= longest + 1e-9,
                    "q {q} = {value} > {longest} after {n}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn the_meter_reports_once_per_interval() -> Result<(), String> {
        let start = Instant::now();
        let mut meter = IntervalMeter::new(start);
        assert_eq!(meter.frame(ms(10.0), start + ms(500.0)), None);
        let recent = meter
            .frame(ms(30.0), start + ms(1_000.0))
            .ok_or("no report after a second")?;
        assert!((recent.fps - 2.0).abs() < 1e-9, "{recent:?}");
        assert!((recent.latency_ms - 20.0).abs() < 1e-6, "{recent:?}");
        assert_eq!(meter.frame(ms(10.0), start + ms(1_100.0)), None);
        Ok(())
    }
}
