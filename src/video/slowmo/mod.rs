//! Slow motion at the input's frame rate: the settings, the [`Timeline`] that says which input
//! frames are slowed and where every input frame and output frame falls, the in-between pictures
//! ([`interpolate`], FFmpeg's `minterpolate`) and the slowed sound ([`audio`], FFmpeg's `atempo`,
//! pitch kept). The annotate pipeline's slow-motion stage puts them together with the overlays.

pub mod audio;
pub mod interpolate;

use std::path::{Path, PathBuf};

/// Smallest slow-motion factor.
pub const MIN_FACTOR: f64 = 1.25;
/// Largest slow-motion factor.
pub const MAX_FACTOR: f64 = 8.0;

/// How the in-between frames are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FramesMode {
    /// Each in-between frame is a cross-fade of its two neighbours: smooth and cheap.
    Blend,
    /// Motion-compensated interpolation: moving things are moved, not faded; about 20 times
    /// the cost of blend.
    Mci,
    /// Each input frame is repeated: no new pictures, the cheapest; it stutters.
    Repeat,
}

impl FramesMode {
    /// The `mi_mode` of FFmpeg's `minterpolate` filter.
    pub fn minterpolate_mode(self) -> &'static str {
        match self {
            Self::Blend => "blend",
            Self::Mci => "mci",
            Self::Repeat => "dup",
        }
    }
}

/// What a slow-motion copy is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowMotion {
    /// How many times slower, [`MIN_FACTOR`] to [`MAX_FACTOR`].
    pub factor: f64,
    /// How the in-between frames are made.
    pub frames: FramesMode,
    /// Keep the input's sound, slowed with its pitch kept.
    pub audio: bool,
    /// Only this part is slowed (seconds from the first frame, start before end); the rest plays
    /// at normal speed.
    pub only: Option<(f64, f64)>,
}

/// Where the slowed part lies in input frames, and where each frame lands in the output, whose
/// frames (slots) follow each other at the input's frame rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    factor: f64,
    rate: f64,
    /// First slowed input frame.
    start: usize,
    /// First input frame after the slowed part; `None`: the part runs to the end.
    end: Option<usize>,
}

impl Timeline {
    /// The timeline of `slow` for a video at `rate` frames per second.
    pub fn new(slow: &SlowMotion, rate: f64) -> Self {
        // A boundary falls on the first frame at or after its time.
        let frame_at = |seconds: f64| (seconds * rate - 1e-6).ceil().max(0.0) as usize;
        let (start, end) = match slow.only {
            Some((from, to)) => (frame_at(from), Some(frame_at(to).max(frame_at(from)))),
            None => (0, None),
        };
        Self {
            factor: slow.factor,
            rate,
            start,
            end,
        }
    }

    /// Whether input frame `index` is slowed.
    pub fn is_slowed(&self, index: usize) -> bool {
        index >= self.start && self.end.is_none_or(|end| index < end)
    }

    /// First slowed input frame.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Output frames made from `frames` slowed input frames.
    pub fn slowed_slots(&self, frames: usize) -> usize {
        (frames as f64 * self.factor).round() as usize
    }

    /// Where slowed input frame `index` lies, in output frames from the start of the slowed part.
    pub fn position_in_part(&self, index: usize) -> f64 {
        index.saturating_sub(self.start) as f64 * self.factor
    }

    /// The input position (a fractional frame index) shown by output frame `slot` of the slowed
    /// part.
    pub fn source_of(&self, slot: usize) -> f64 {
        self.start as f64 + slot as f64 / self.factor
    }

    /// The output frame of input frame `index`, which is not slowed.
    pub fn slot_of_unslowed(&self, index: usize) -> usize {
        match self.end {
            Some(end) if index >= end => {
                let slowed = end - self.start;
                index - slowed + self.slowed_slots(slowed)
            }
            _ => index,
        }
    }

    /// The slowed part in seconds of the input, from its first frame: where the sound is slowed.
    pub fn seconds(&self) -> (f64, Option<f64>) {
        (
            self.start as f64 / self.rate,
            self.end.map(|end| end as f64 / self.rate),
        )
    }

    /// Where input time `seconds` (from the first frame) lands in the output.
    pub fn output_seconds(&self, seconds: f64) -> f64 {
        let (start, end) = self.seconds();
        let slowed_until = end.map_or(seconds, |end| seconds.min(end));
        let slowed = (slowed_until - start).max(0.0);
        let after = end.map_or(0.0, |end| (seconds - end).max(0.0));
        seconds.min(start) + slowed * self.factor + after
    }

    /// How many times slower the slowed part plays.
    pub fn factor(&self) -> f64 {
        self.factor
    }
}

/// Whether a filter graph carries pictures or sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    /// Pictures: the `buffer` source and `buffersink`.
    Video,
    /// Sound: the `abuffer` source and `abuffersink`.
    Audio,
}

/// A libavfilter graph `in -> spec -> out`: a source named `in` made with `source_args`, the
/// filters of `spec`, a sink named `out`. `what` says what the graph is for in errors about
/// `path`.
pub(crate) fn filter_graph(
    path: &Path,
    what: &'static str,
    media: Media,
    source_args: &str,
    spec: &str,
) -> Result<ffmpeg_next::filter::Graph, super::VideoError> {
    use ffmpeg_next::filter;
    let fail = |e: ffmpeg_next::Error| super::VideoError::codec(path, what, e);
    let find = |name: &str| {
        filter::find(name).ok_or_else(|| {
            super::VideoError::codec(path, what, format!("this FFmpeg has no {name} filter"))
        })
    };
    let (source, sink) = match media {
        Media::Video => ("buffer", "buffersink"),
        Media::Audio => ("abuffer", "abuffersink"),
    };
    let mut graph = filter::Graph::new();
    graph.add(&find(source)?, "in", source_args).map_err(fail)?;
    graph.add(&find(sink)?, "out", "").map_err(fail)?;
    graph
        .output("in", 0)
        .and_then(|parser| parser.input("out", 0))
        .and_then(|parser| parser.parse(spec))
        .map_err(fail)?;
    graph.validate().map_err(fail)?;
    Ok(graph)
}

/// `OUT.mp4` -> `OUT.slow2x.mp4` (factor shown without a trailing `.0`).
pub fn slow_motion_path(output: &Path, factor: f64) -> PathBuf {
    let stem = output
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("output");
    let factor = format!("{factor}");
    output.with_file_name(format!("{stem}.slow{factor}x.mp4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(factor: f64, only: Option<(f64, f64)>) -> SlowMotion {
        SlowMotion {
            factor,
            frames: FramesMode::Blend,
            audio: true,
            only,
        }
    }

    #[test]
    fn slow_motion_name() {
        assert_eq!(
            slow_motion_path(Path::new("a/b.mp4"), 2.0),
            PathBuf::from("a/b.slow2x.mp4")
        );
        assert_eq!(
            slow_motion_path(Path::new("b.mp4"), 2.5),
            PathBuf::from("b.slow2.5x.mp4")
        );
    }

    #[test]
    fn whole_video_is_slowed_into_factor_times_the_frames() {
        let timeline = Timeline::new(&slow(2.0, None), 23.976);
        assert!(timeline.is_slowed(0) && timeline.is_slowed(471));
        assert_eq!(timeline.slowed_slots(472), 944);
        assert_eq!(timeline.position_in_part(10), 20.0);
        assert_eq!(timeline.source_of(21), 10.5);
        assert_eq!(timeline.seconds(), (0.0, None));
        assert_eq!(timeline.output_seconds(19.69), 39.38);
    }

    #[test]
    fn a_part_is_slowed_and_the_frames_after_it_move_later() {
        // 25 fps, seconds 1 to 2: frames 25..50 slowed 2.5x into 63 frames (62.5 rounded).
        let timeline = Timeline::new(&slow(2.5, Some((1.0, 2.0))), 25.0);
        assert!(!timeline.is_slowed(24) && timeline.is_slowed(25));
        assert!(timeline.is_slowed(49) && !timeline.is_slowed(50));
        assert_eq!(timeline.slot_of_unslowed(24), 24);
        assert_eq!(timeline.slot_of_unslowed(50), 25 + 63);
        assert_eq!(timeline.position_in_part(27), 5.0);
        assert_eq!(timeline.source_of(5), 27.0);
        assert_eq!(timeline.seconds(), (1.0, Some(2.0)));
        assert_eq!(timeline.output_seconds(0.5), 0.5);
        assert_eq!(timeline.output_seconds(1.5), 2.25);
        assert_eq!(timeline.output_seconds(3.0), 4.5);
    }

    #[test]
    fn part_boundaries_fall_on_the_next_frame() {
        let timeline = Timeline::new(&slow(2.0, Some((0.5, 0.52))), 24.0);
        // 0.5 s * 24 = frame 12 exactly; 0.52 s = frame 12.48 -> 13.
        assert!(timeline.is_slowed(12) && !timeline.is_slowed(13));
        assert_eq!(timeline.seconds(), (0.5, Some(13.0 / 24.0)));
    }
}
