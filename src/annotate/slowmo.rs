//! The slow-motion stage: the clean frames (before overlays) and their faces come from the overlay
//! stage; the slowed part goes through the in-between frame filter, and every output frame gets
//! its overlays drawn afresh, from boxes moved part way between the two input frames it lies
//! between and the labels of the nearer one, so boxes and text stay sharp. The sound is slowed
//! with it. Written under a partial name like the annotated video; a run that stops early
//! leaves no slow copy behind.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use crossbeam_channel::Receiver;
use ffmpeg_next as ffmpeg;

use super::stages::{paint, Item, OverlaySettings};
use crate::draw::Patch;
use crate::faces::track::{faces_between, TrackedFace};
use crate::video::encode::{EncodeOptions, Encoder};
use crate::video::slowmo::audio::AudioSlower;
use crate::video::slowmo::interpolate::Interpolator;
use crate::video::slowmo::{SlowMotion, Timeline};
use crate::video::{Frame, VideoInfo};

/// A frame before its overlays, with its faces.
pub struct SlowFrame {
    /// The clean frame, with the audio packets that came with it.
    pub frame: Frame,
    /// Its tracked, classified faces.
    pub faces: Vec<TrackedFace>,
}

/// Where the slow copy goes and how it is made.
pub struct SlowTarget<'a> {
    /// The slow-motion file.
    pub path: &'a Path,
    /// Factor, frame mode, sound, part.
    pub slow: SlowMotion,
    /// The input video.
    pub info: VideoInfo,
    /// x264 settings (those of the annotated video).
    pub encode: &'a EncodeOptions,
}

/// Writes the slow-motion copy from the frames of `rx`. Returns the time spent.
///
/// # Errors
/// Filter, encoding or writing failures, or an input that ended without its tail.
pub fn slow_motion(
    target: &SlowTarget<'_>,
    settings: &OverlaySettings<'_>,
    rx: Receiver<Item<SlowFrame>>,
) -> Result<Duration> {
    let mut time = Duration::ZERO;
    let mut writer: Option<SlowWriter<'_>> = None;
    for item in rx {
        let started = Instant::now();
        match item {
            Item::Frame(slow_frame) => {
                let writer = match &mut writer {
                    Some(writer) => writer,
                    None => writer.insert(SlowWriter::start(target, settings, &slow_frame.frame)?),
                };
                writer.add(slow_frame)?;
            }
            Item::Tail(audio) => {
                if let Some(writer) = writer {
                    writer.finish(&audio)?;
                }
                return Ok(time + started.elapsed());
            }
        }
        time += started.elapsed();
    }
    bail!("the pipeline stopped before the end of the video; no slow-motion copy was kept")
}

/// The slow copy being written.
struct SlowWriter<'a> {
    timeline: Timeline,
    settings: &'a OverlaySettings<'a>,
    info: &'a VideoInfo,
    mode: crate::video::slowmo::FramesMode,
    encoder: Encoder,
    audio: Option<AudioSlower>,
    /// The in-between frame filter while the slowed part is being read.
    part: Option<Interpolator>,
    /// Input frames of the slowed part read so far.
    part_frames: usize,
    /// The next output frame of the slowed part (from its start).
    next_part_slot: usize,
    /// The last clean frame of the slowed part: what fills the part's last output frames.
    last_clean: Option<Frame>,
    /// Faces of the input frames that output frames may still be made between.
    recent: VecDeque<(usize, Vec<TrackedFace>)>,
    patch: Patch,
}

impl<'a> SlowWriter<'a> {
    /// Creates the file; `first` (the first frame) sets the sound's zero.
    fn start(
        target: &'a SlowTarget<'a>,
        settings: &'a OverlaySettings<'a>,
        first: &Frame,
    ) -> Result<Self> {
        let info = &target.info;
        let timeline = Timeline::new(&target.slow, f64::from(info.frame_rate));
        let audio = match (&info.audio, target.slow.audio) {
            (Some((parameters, time_base)), true) => {
                let zero = first.pts.map_or(0, |pts| {
                    ffmpeg::Rescale::rescale(&pts, info.time_base, *time_base)
                });
                Some(AudioSlower::new(
                    &info.path,
                    parameters.clone(),
                    *time_base,
                    zero,
                    &timeline,
                )?)
            }
            _ => None,
        };
        let rate = info.frame_rate;
        let slow_info = VideoInfo {
            // One timestamp per output frame.
            time_base: ffmpeg::Rational(rate.denominator(), rate.numerator()),
            frames: None,
            audio: audio.as_ref().map(AudioSlower::stream),
            ..info.clone()
        };
        let encoder = Encoder::create(target.path, &slow_info, target.encode)?;
        Ok(Self {
            timeline,
            settings,
            info,
            mode: target.slow.frames,
            encoder,
            audio,
            part: None,
            part_frames: 0,
            next_part_slot: 0,
            last_clean: None,
            recent: VecDeque::new(),
            patch: Patch::default(),
        })
    }

    fn add(&mut self, slow_frame: SlowFrame) -> Result<()> {
        let SlowFrame { mut frame, faces } = slow_frame;
        self.write_audio(&std::mem::take(&mut frame.audio))?;
        let index = frame.index;
        self.recent.push_back((index, faces));
        if self.timeline.is_slowed(index) {
            if self.part.is_none() {
                self.part = Some(Interpolator::new(self.info, self.mode)?);
            }
            let position = self.timeline.position_in_part(index);
            if let Some(part) = &mut self.part {
                part.push(&mut frame.image, position)?;
            }
            self.part_frames += 1;
            self.last_clean = Some(frame);
            self.write_part(None)?;
        } else {
            if self.part.is_some() {
                // The first frame after the part is where its last in-between frames lead to.
                self.end_part(Some(&mut frame.image))?;
            }
            let slot = self.timeline.slot_of_unslowed(index);
            let faces = self.faces_at(index as f64);
            self.write_video(frame.image, slot, frame.time, &faces)?;
        }
        self.forget_faces(index);
        Ok(())
    }

    fn finish(mut self, trailing_audio: &[ffmpeg::Packet]) -> Result<()> {
        self.write_audio(trailing_audio)?;
        if self.part.is_some() {
            self.end_part(None)?;
        }
        if let Some(audio) = &mut self.audio {
            let packets = audio.finish()?;
            self.encoder.write_audio(&packets)?;
        }
        self.encoder.finish()?;
        Ok(())
    }

    fn write_audio(&mut self, packets: &[ffmpeg::Packet]) -> Result<()> {
        if let Some(audio) = &mut self.audio {
            let slowed = audio.push(packets)?;
            self.encoder.write_audio(&slowed)?;
        }
        Ok(())
    }

    /// Writes the part's output frames the filter has ready; with `end` (the part's output frame
    /// count), stops there.
    fn write_part(&mut self, end: Option<usize>) -> Result<()> {
        loop {
            let Some(part) = &mut self.part else {
                return Ok(());
            };
            let mut image = ffmpeg::frame::Video::empty();
            let Some(slot) = part.pull(&mut image)? else {
                return Ok(());
            };
            if slot < self.next_part_slot || end.is_some_and(|end| slot >= end) {
                continue;
            }
            self.write_part_slot(image, slot)?;
        }
    }

    fn write_part_slot(&mut self, image: ffmpeg::frame::Video, slot: usize) -> Result<()> {
        let source = self.timeline.source_of(slot);
        let faces = self.faces_at(source);
        let time = source / f64::from(self.info.frame_rate).max(1e-9);
        self.write_video(image, self.timeline.start() + slot, time, &faces)?;
        self.next_part_slot = slot + 1;
        Ok(())
    }

    /// Ends the slowed part: `next` (the first frame after it, if any) is where its in-between
    /// frames lead; output frames the filter did not make (after the last input frame) repeat it.
    fn end_part(&mut self, next: Option<&mut ffmpeg::frame::Video>) -> Result<()> {
        let end = self.timeline.slowed_slots(self.part_frames);
        if let Some(part) = &mut self.part {
            if let Some(next) = next {
                part.push(next, end as f64)?;
            }
            part.finish()?;
        }
        self.write_part(Some(end))?;
        self.part = None;
        while self.next_part_slot < end {
            let Some(last) = &self.last_clean else { break };
            let image = last.image.clone();
            self.write_part_slot(image, self.next_part_slot)?;
        }
        self.last_clean = None;
        Ok(())
    }

    /// The faces at input position `source` (a fractional frame index): between the faces of
    /// the input frames around it.
    fn faces_at(&self, source: f64) -> Vec<TrackedFace> {
        let before = source.floor();
        let faces_of = |index: f64| {
            self.recent
                .iter()
                .find(|(i, _)| *i as f64 == index)
                .map(|(_, faces)| faces.as_slice())
        };
        match (faces_of(before), faces_of(before + 1.0)) {
            (Some(a), Some(b)) => faces_between(a, b, source - before),
            (Some(a), None) => a.to_vec(),
            (None, Some(b)) => b.to_vec(),
            (None, None) => Vec::new(),
        }
    }

    /// Drops the faces of input frames before the next output frame's.
    fn forget_faces(&mut self, newest: usize) {
        let needed = if self.part.is_some() {
            self.timeline.source_of(self.next_part_slot).floor() as usize
        } else {
            newest
        };
        while self.recent.front().is_some_and(|(i, _)| *i < needed) {
            self.recent.pop_front();
        }
    }

    fn write_video(
        &mut self,
        mut image: ffmpeg::frame::Video,
        slot: usize,
        time: f64,
        faces: &[TrackedFace],
    ) -> Result<()> {
        paint(&mut image, faces, self.settings, &mut self.patch)?;
        let mut frame = Frame {
            index: slot,
            pts: Some(slot as i64),
            time,
            image,
            audio: Vec::new(),
        };
        self.encoder.write(&mut frame)?;
        Ok(())
    }
}
