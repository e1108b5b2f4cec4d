//! The five stages of the annotate pipeline, each a function run on its own thread. Items flow
//! as [`Item::Frame`]; [`Item::Tail`] (the audio after the last frame) marks a normal end, so a
//! stage that sees its channel close without a tail knows an earlier stage failed, and the
//! encoder then leaves no output behind instead of presenting a half-written file as complete.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crossbeam_channel::{Receiver, Sender};
use ffmpeg_next as ffmpeg;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::faces::captions::Captions;
use crate::faces::classify::FaceClassifier;
use crate::faces::locate::{FaceLocator, Located};
use crate::faces::picture::Picture;
use crate::faces::track::TrackedFace;
use crate::records::RecordWriter;
use crate::video::decode::{Decoder, Truncation};
use crate::video::encode::Encoder;
use crate::video::{with_planes, Frame};

use super::slowmo::SlowFrame;

/// What flows between stages.
pub enum Item<T> {
    /// One frame with what the stages so far found in it.
    Frame(T),
    /// Normal end of the input, with the audio packets read after the last frame.
    Tail(Vec<ffmpeg::Packet>),
}

/// A frame with its tracked faces and the crops of those due for classification.
pub struct DetectedFrame {
    frame: Frame,
    located: Located,
}

/// A frame with its classified faces.
pub struct ClassifiedFrame {
    frame: Frame,
    faces: Vec<TrackedFace>,
}

/// Most frames gathered into one ONNX Runtime call, so that batching never holds frames long.
const MAX_FRAMES_PER_BATCH: usize = 16;

/// Time spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Demuxing and decoding.
    pub decode: Duration,
    /// Face detection, tracking and crops.
    pub detect: Duration,
    /// ONNX Runtime and smoothing.
    pub infer: Duration,
    /// Writing records, blurring faces (with --blur) and drawing overlays.
    pub overlay: Duration,
    /// x264 and muxing.
    pub encode: Duration,
    /// The slow-motion copy: in-between frames, overlays, sound, x264 and muxing.
    pub slowmo: Option<Duration>,
}

impl StageTimes {
    /// A table of milliseconds per frame for each stage.
    pub fn per_frame_table(&self, frames: usize) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / frames.max(1) as f64;
        let mut stages = vec![
            ("decode", self.decode),
            ("detect", self.detect),
            ("infer", self.infer),
            ("overlay", self.overlay),
            ("encode", self.encode),
        ];
        stages.extend(self.slowmo.map(|time| ("slowmo", time)));
        let mut table = String::from("stage      ms/frame  total s\n");
        for (name, time) in stages {
            table.push_str(&format!(
                "{name:<8} {:>10.2} {:>8.2}\n",
                per(time),
                time.as_secs_f64()
            ));
        }
        table.push_str("(stages run in parallel; the slowest one sets the speed)");
        table
    }
}

/// How decoding ended.
pub struct DecodeReport {
    /// Time spent decoding.
    pub time: Duration,
    /// Set when the input was damaged or cut short.
    pub truncation: Option<Truncation>,
    /// Set when Ctrl-C stopped reading.
    pub interrupted: bool,
}

/// Decodes frames into recycled images until the input ends or `stop` is set.
///
/// # Errors
/// A frame that cannot be converted.
pub fn decode(
    mut decoder: Decoder,
    tx: Sender<Item<Frame>>,
    recycled: Receiver<ffmpeg::frame::Video>,
    stop: &AtomicBool,
) -> Result<DecodeReport> {
    let mut time = Duration::ZERO;
    let mut interrupted = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let started = Instant::now();
        let image = recycled
            .try_recv()
            .unwrap_or_else(|_| ffmpeg::frame::Video::empty());
        let frame = decoder.next_frame(image)?;
        time += started.elapsed();
        match frame {
            Some(frame) => {
                if tx.send(Item::Frame(frame)).is_err() {
                    return Ok(DecodeReport {
                        time,
                        truncation: None,
                        interrupted,
                    });
                }
            }
            None => break,
        }
    }
    let tail = if interrupted {
        Vec::new()
    } else {
        decoder.take_trailing_audio()
    };
    let _ = tx.send(Item::Tail(tail));
    Ok(DecodeReport {
        time,
        truncation: decoder.truncation().cloned(),
        interrupted,
    })
}

/// Finds and tracks the faces of each frame and crops those due for classification.
///
/// # Errors
/// Detection failures.
pub fn detect(
    mut locator: FaceLocator,
    rx: Receiver<Item<Frame>>,
    tx: Sender<Item<DetectedFrame>>,
) -> Result<Duration> {
    let mut time = Duration::ZERO;
    for item in rx {
        let mut frame = match item {
            Item::Frame(frame) => frame,
            Item::Tail(audio) => {
                let _ = tx.send(Item::Tail(audio));
                break;
            }
        };
        let started = Instant::now();
        let index = frame.index;
        let located = with_planes(&mut frame.image, |planes| {
            Ok(locator.locate(index, &Picture::Yuv420(planes)))
        })
        .context("reading a frame's planes")?
        .context("detecting faces")?;
        time += started.elapsed();
        if tx
            .send(Item::Frame(DetectedFrame { frame, located }))
            .is_err()
        {
            break;
        }
    }
    Ok(time)
}

/// Classifies the due faces of several frames per ONNX Runtime call (up to the classifier's
/// batch of faces, or [`MAX_FRAMES_PER_BATCH`] frames), then smooths each frame's faces in order.
///
/// # Errors
/// ONNX Runtime failures.
pub fn infer(
    mut classifier: FaceClassifier,
    rx: Receiver<Item<DetectedFrame>>,
    tx: Sender<Item<ClassifiedFrame>>,
) -> Result<Duration> {
    let mut time = Duration::ZERO;
    let mut pending: Vec<DetectedFrame> = Vec::with_capacity(MAX_FRAMES_PER_BATCH);
    let mut crops: Vec<f32> = Vec::new();
    let mut probs: Vec<f32> = Vec::new();
    let mut classified: Vec<ClassifiedFrame> = Vec::with_capacity(MAX_FRAMES_PER_BATCH);
    let crop_len = classifier.crop_len();
    let batch = classifier.batch();
    let mut tail = None;
    while tail.is_none() {
        // Block for one frame, then take whatever else is ready, up to a batch of faces.
        match rx.recv() {
            Ok(Item::Frame(frame)) => pending.push(frame),
            Ok(Item::Tail(audio)) => tail = Some(audio),
            Err(_) => break,
        }
        while tail.is_none()
            && pending.len() < MAX_FRAMES_PER_BATCH
            && pending
                .iter()
                .map(|f| f.located.crops.len() / crop_len)
                .sum::<usize>()
                < batch
        {
            match rx.try_recv() {
                Ok(Item::Frame(frame)) => pending.push(frame),
                Ok(Item::Tail(audio)) => tail = Some(audio),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        crops.clear();
        for frame in &pending {
            crops.extend_from_slice(&frame.located.crops);
        }
        probs.clear();
        classifier.classify(&crops, &mut probs)?;
        let mut rows = probs.chunks(classifier.row_len());
        for detected in pending.drain(..) {
            let faces = classifier.smooth(&detected.located, &mut rows)?;
            classified.push(ClassifiedFrame {
                frame: detected.frame,
                faces,
            });
        }
        time += started.elapsed();
        for frame in classified.drain(..) {
            if tx.send(Item::Frame(frame)).is_err() {
                return Ok(time);
            }
        }
    }
    if let Some(audio) = tail {
        let _ = tx.send(Item::Tail(audio));
    }
    Ok(time)
}

/// How the overlay stage draws.
pub struct OverlaySettings<'a> {
    /// Blur the faces before drawing.
    pub blur: bool,
    /// What the tags say.
    pub captions: &'a Captions,
    /// The model's emotion labels.
    pub labels: &'a [String],
}

/// What the overlay stage counted.
pub struct OverlayReport {
    /// Face records written.
    pub faces: usize,
    /// Frames with at least one face.
    pub frames_with_faces: usize,
    /// Face records per emotion label index.
    pub label_counts: Vec<usize>,
    /// Time spent.
    pub time: Duration,
}

/// Blurs (when asked) and draws `faces` on a frame.
///
/// # Errors
/// Drawing failures.
pub fn paint(
    image: &mut ffmpeg::frame::Video,
    faces: &[TrackedFace],
    settings: &OverlaySettings<'_>,
    patch: &mut crate::draw::Patch,
) -> Result<()> {
    with_planes(image, |planes| {
        if settings.blur {
            crate::draw::blur_faces_yuv420(planes, faces)?;
        }
        crate::draw::draw_faces_yuv420(planes, faces, settings.captions, patch)
    })
    .context("drawing overlays")
}

/// Writes each frame's face records, counts its labels, hands a clean copy with its faces to
/// the slow-motion stage (when there is one), and blurs (when asked) and draws its faces.
///
/// # Errors
/// Drawing or record-writing failures.
pub fn overlay(
    mut records: RecordWriter,
    settings: &OverlaySettings<'_>,
    rx: Receiver<Item<ClassifiedFrame>>,
    tx: Sender<Item<Frame>>,
    slow: Option<Sender<Item<SlowFrame>>>,
) -> Result<OverlayReport> {
    let mut patch = crate::draw::Patch::default();
    let mut report = OverlayReport {
        faces: 0,
        frames_with_faces: 0,
        label_counts: vec![0; settings.labels.len()],
        time: Duration::ZERO,
    };
    for item in rx {
        let ClassifiedFrame { mut frame, faces } = match item {
            Item::Frame(frame) => frame,
            Item::Tail(audio) => {
                records.finish()?;
                if let Some(slow) = &slow {
                    let _ = slow.send(Item::Tail(audio.clone()));
                }
                let _ = tx.send(Item::Tail(audio));
                return Ok(report);
            }
        };
        let started = Instant::now();
        records.write(frame.index, frame.time, &faces)?;
        report.faces += faces.len();
        report.frames_with_faces += usize::from(!faces.is_empty());
        for face in &faces {
            report.label_counts[crate::faces::captions::top_label(face, settings.labels).0] += 1;
        }
        let clean = slow.is_some().then(|| SlowFrame {
            frame: frame.clone(),
            faces: faces.clone(),
        });
        paint(&mut frame.image, &faces, settings, &mut patch)?;
        report.time += started.elapsed();
        if let (Some(slow), Some(clean)) = (&slow, clean) {
            if slow.send(Item::Frame(clean)).is_err() {
                break;
            }
        }
        if tx.send(Item::Frame(frame)).is_err() {
            break;
        }
    }
    // An earlier stage failed: the records are dropped unfinished, which removes their files.
    Ok(report)
}

/// Encodes frames in order and hands their images back for reuse. Returns frames written.
///
/// # Errors
/// Encoding failures, or an input that ended without its tail (an earlier stage failed).
pub fn encode(
    mut encoder: Encoder,
    rx: Receiver<Item<Frame>>,
    recycle: Sender<ffmpeg::frame::Video>,
    progress: &ProgressBar,
) -> Result<(usize, Duration)> {
    let mut time = Duration::ZERO;
    for item in rx {
        let started = Instant::now();
        match item {
            Item::Frame(mut frame) => {
                encoder.write(&mut frame)?;
                progress.inc(1);
                time += started.elapsed();
                // A full pool or a finished decoder: the buffer is simply freed.
                let _ = recycle.try_send(frame.image);
            }
            Item::Tail(audio) => {
                encoder.write_audio(&audio)?;
                let frames = encoder.frames();
                encoder.finish()?;
                time += started.elapsed();
                return Ok((frames, time));
            }
        }
    }
    bail!("the pipeline stopped before the end of the video; no output was kept")
}

/// A progress bar over the expected frame count (a spinner when unknown); hidden when off.
pub fn progress_bar(enabled: bool, frames: Option<u64>, input: &Path) -> ProgressBar {
    if !enabled {
        return ProgressBar::with_draw_target(frames, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(frames.unwrap_or(0));
    let template = "{prefix} [{bar:30}] {pos}/{len} frames, {per_sec}, eta {eta}";
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(
        input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    bar
}
