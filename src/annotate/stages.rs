//! The four stages of the annotate pipeline, each a function run on its own thread. Items flow
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
use opencv::core::Mat;

use crate::captions::Captions;
use crate::classifier::Classifier;
use crate::detect::{face_crop, FaceDetector, GrayLevels};
use crate::records::RecordWriter;
use crate::track::{Smoother, TrackedBox, TrackedFace, Tracker};
use crate::video::decode::{Decoder, Truncation};
use crate::video::encode::Encoder;
use crate::video::{with_planes, Frame};

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
    faces: Vec<TrackedBox>,
    /// Whether each face is classified in this frame (otherwise it keeps its smoothed
    /// probabilities).
    classify: Vec<bool>,
    /// The crops of the faces to classify, in order: `[faces, height, width]` gray values
    /// 0..=255 at the model's input size.
    crops: Vec<f32>,
    /// Tracks that ended at this frame.
    ended: Vec<u64>,
}

/// How often faces are classified and tracked in the detection stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cadence {
    /// A known face is classified every this many frames (a new one at once), staggered by
    /// track ID so that the work spreads evenly over frames.
    pub classify_every: usize,
}

impl Cadence {
    /// Whether `face` is classified in frame number `frame`.
    pub fn is_due(self, frame: usize, face: &TrackedBox) -> bool {
        face.is_new || (frame as u64 + face.id).is_multiple_of(self.classify_every.max(1) as u64)
    }
}

/// Most frames gathered into one ONNX Runtime call, so that batching never holds frames long.
const MAX_FRAMES_PER_BATCH: usize = 16;

/// Time spent in each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Demuxing, decoding and conversion to BGR.
    pub decode: Duration,
    /// Grayscale conversion, Haar detection, tracking and face crops.
    pub detect: Duration,
    /// ONNX Runtime.
    pub infer: Duration,
    /// Smoothing and writing records (tracking itself is part of detection).
    pub track: Duration,
    /// Blurring faces (with --blur) and drawing overlays.
    pub draw: Duration,
    /// Colour conversion, x264 and muxing.
    pub encode: Duration,
}

impl StageTimes {
    /// A table of milliseconds per frame for each stage.
    pub fn per_frame_table(&self, frames: usize) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / frames.max(1) as f64;
        format!(
            "stage      ms/frame  total s\n\
             decode   {:>10.2} {:>8.2}\n\
             detect   {:>10.2} {:>8.2}\n\
             infer    {:>10.2} {:>8.2}\n\
             track    {:>10.2} {:>8.2}\n\
             draw     {:>10.2} {:>8.2}\n\
             encode   {:>10.2} {:>8.2}\n\
             (stages run in parallel; the slowest one sets the speed)",
            per(self.decode),
            self.decode.as_secs_f64(),
            per(self.detect),
            self.detect.as_secs_f64(),
            per(self.infer),
            self.infer.as_secs_f64(),
            per(self.track),
            self.track.as_secs_f64(),
            per(self.draw),
            self.draw.as_secs_f64(),
            per(self.encode),
            self.encode.as_secs_f64(),
        )
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

/// Finds and tracks the faces of each frame and crops those due for classification to the
/// model's input size (`[width, height]`).
///
/// # Errors
/// OpenCV failures.
pub fn detect(
    mut detector: FaceDetector,
    mut tracker: Tracker,
    cadence: Cadence,
    crop_size: [usize; 2],
    rx: Receiver<Item<Frame>>,
    tx: Sender<Item<DetectedFrame>>,
) -> Result<Duration> {
    let mut time = Duration::ZERO;
    let mut resized = Mat::default();
    let area = crop_size[0] * crop_size[1];
    let side = i32::try_from(crop_size[0]).context("model input too large")?;
    for item in rx {
        let mut frame = match item {
            Item::Frame(frame) => frame,
            Item::Tail(audio) => {
                let _ = tx.send(Item::Tail(audio));
                break;
            }
        };
        let started = Instant::now();
        // The luma plane is the gray picture.
        let (faces, classify, crops) = with_planes(&mut frame.image, |planes| {
            let detections = detector.detect(&planes.y)?;
            let faces = tracker.update(&detections);
            let classify: Vec<bool> = faces
                .iter()
                .map(|face| cadence.is_due(frame.index, face))
                .collect();
            let due = faces.iter().zip(&classify).filter(|(_, due)| **due);
            let mut crops = vec![0.0f32; classify.iter().filter(|due| **due).count() * area];
            for ((face, _), out) in due.zip(crops.chunks_mut(area)) {
                face_crop(
                    &planes.y,
                    GrayLevels::Video,
                    face.bbox,
                    side,
                    &mut resized,
                    out,
                )?;
            }
            Ok((faces, classify, crops))
        })
        .context("detecting faces")?;
        time += started.elapsed();
        let detected = DetectedFrame {
            frame,
            faces,
            classify,
            crops,
            ended: tracker.take_ended(),
        };
        if tx.send(Item::Frame(detected)).is_err() {
            break;
        }
    }
    Ok(time)
}

/// How the inference stage batches and draws.
pub struct InferSettings<'a> {
    /// Faces per ONNX Runtime call.
    pub batch: usize,
    /// Blur the faces before drawing.
    pub blur: bool,
    /// What the tags say.
    pub captions: &'a Captions,
}

/// What the inference stage counted.
pub struct InferReport {
    /// Face records written.
    pub faces: usize,
    /// Frames with at least one face.
    pub frames_with_faces: usize,
    /// Face records per displayed label index.
    pub label_counts: Vec<usize>,
    /// ONNX Runtime time.
    pub infer_time: Duration,
    /// Smoothing and record-writing time.
    pub track_time: Duration,
    /// Drawing time.
    pub draw_time: Duration,
}

/// Classifies the due faces of several frames per ONNX Runtime call, then smooths, draws and
/// records each frame in order.
///
/// # Errors
/// ONNX Runtime, drawing or record-writing failures.
pub fn infer(
    mut classifier: Classifier,
    mut smoother: Smoother,
    mut records: RecordWriter,
    settings: &InferSettings<'_>,
    rx: Receiver<Item<DetectedFrame>>,
    tx: Sender<Item<Frame>>,
) -> Result<InferReport> {
    let labels = classifier.emotion_head()?.labels.clone();
    let classes = labels.len();
    // Each classification: the emotion probabilities, then any action units'.
    let width = classes + classifier.unit_head().map_or(0, |h| h.labels.len());
    let face_len = classifier.input_len();
    let batch = settings.batch;
    let mut input = classifier.input_batch(batch); // [batch, channels, height, width]
    let mut probs: Vec<f32> = Vec::new();
    let mut pending: Vec<DetectedFrame> = Vec::with_capacity(MAX_FRAMES_PER_BATCH);
    let mut report = InferReport {
        faces: 0,
        frames_with_faces: 0,
        label_counts: vec![0; classes],
        infer_time: Duration::ZERO,
        track_time: Duration::ZERO,
        draw_time: Duration::ZERO,
    };
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
                .map(|f| f.crops.len() / face_len)
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
        probs.clear();
        let crops: Vec<&[f32]> = pending
            .iter()
            .flat_map(|f| f.crops.chunks(face_len))
            .collect();
        for chunk in crops.chunks(batch) {
            let slots = input
                .as_slice_mut()
                .context("input batch is not contiguous")?;
            for (slot, crop) in slots.chunks_mut(face_len).zip(chunk) {
                classifier.normalise(crop, slot);
            }
            let out =
                classifier.probabilities(input.slice(ndarray::s![..chunk.len(), .., .., ..]))?;
            probs.extend(out.iter());
        }
        report.infer_time += started.elapsed();

        let mut classified = probs.chunks(width);
        for mut detected in pending.drain(..) {
            let started = Instant::now();
            smoother.forget(&detected.ended);
            let mut tracked = Vec::with_capacity(detected.faces.len());
            for (face, due) in detected.faces.iter().zip(&detected.classify) {
                let probs = if *due {
                    let new = classified
                        .next()
                        .context("fewer classifications than crops")?;
                    smoother.add(face.id, new)
                } else {
                    smoother
                        .get(face.id)
                        .with_context(|| format!("face #{} was never classified", face.id))?
                };
                let (emotions, units) = probs.split_at(classes.min(probs.len()));
                tracked.push(TrackedFace {
                    id: face.id,
                    bbox: face.bbox,
                    frontal: face.frontal,
                    probs: emotions.to_vec(),
                    units: units.to_vec(),
                });
            }
            records
                .write(detected.frame.index, detected.frame.time, &tracked)
                .context("writing face records")?;
            report.faces += tracked.len();
            report.frames_with_faces += usize::from(!tracked.is_empty());
            for face in &tracked {
                report.label_counts[crate::captions::top_label(face, &labels).0] += 1;
            }
            report.track_time += started.elapsed();
            let started = Instant::now();
            with_planes(&mut detected.frame.image, |planes| {
                if settings.blur {
                    crate::draw::blur_faces_yuv420(planes, &tracked)?;
                }
                crate::draw::draw_faces_yuv420(planes, &tracked, settings.captions)
            })
            .context("drawing overlays")?;
            report.draw_time += started.elapsed();
            if tx.send(Item::Frame(detected.frame)).is_err() {
                return Ok(report);
            }
        }
    }
    let Some(audio) = tail else {
        // An earlier stage failed: leave the records unfinished (their partial files are removed).
        return Ok(report);
    };
    records
        .finish()
        .context("finishing the face record files")?;
    let _ = tx.send(Item::Tail(audio));
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
