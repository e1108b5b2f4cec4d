//! `emolens annotate`: the file pipeline of DESIGN.md section 1. Five stages on their own threads,
//! joined by bounded channels: decode -> detect, track and crop -> classify (batched ONNX Runtime)
//! and smooth -> overlay (records, drawing) -> encode (x264, audio copied); with `--slowmo`, a
//! sixth beside the encoder takes the clean frames and faces from the overlay stage. The middle two are the
//! face-analysis core that live mode shares (`crate::faces`). File input never drops a frame: a full
//! channel blocks the stage before it. End of input is the sender being dropped; a failed send
//! means a later stage stopped (its error is reported), so the stage stops quietly.

pub mod slowmo;
pub mod stages;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::bounded;

use crate::batch::summary::{Counts, Status, VideoSummary};
use crate::faces::FaceConfig;
use crate::model_meta::Views;
use crate::report::ReportConfig;
use crate::video::decode::{Decoder, Truncation};
use crate::video::encode::EncodeOptions;
use crate::video::slowmo::SlowMotion;
use stages::StageTimes;

/// Frames that may wait between two stages: enough to keep every stage busy, few enough to keep
/// memory flat.
const CHANNEL_DEPTH: usize = 4;
/// ONNX Runtime threads: one, so that detection and encoding keep the other cores (batches of a
/// few faces gain little from more).
const INFERENCE_THREADS: usize = 1;

/// One input and where its results go.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The video to read.
    pub input: PathBuf,
    /// The annotated video.
    pub output: PathBuf,
    /// JSON Lines file of face records.
    pub json: Option<PathBuf>,
    /// CSV file of face records.
    pub csv: Option<PathBuf>,
    /// Slow-motion copy and how it is made.
    pub slowmo: Option<(PathBuf, SlowMotion)>,
    /// Folder of the engagement report (made from the JSON Lines records).
    pub report: Option<PathBuf>,
    /// What became of the video: `NAME.summary.json`, written last.
    pub summary: PathBuf,
}

impl Job {
    /// Every file and folder the job writes, the summary aside.
    pub fn outputs(&self) -> Vec<PathBuf> {
        let mut outputs = vec![self.output.clone()];
        outputs.extend(self.slowmo.as_ref().map(|(path, _)| path.clone()));
        outputs.extend(self.json.clone());
        outputs.extend(self.csv.clone());
        outputs.extend(self.report.clone());
        outputs
    }
}

/// What became of one job.
pub struct JobResult {
    /// The job.
    pub job: Job,
    /// Done, partial, failed, interrupted or skipped.
    pub status: Status,
    /// How the video went, when it was read.
    pub outcome: Option<Outcome>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A validated `emolens annotate` run.
#[derive(Debug, Clone)]
pub struct AnnotateConfig {
    /// The videos, in order.
    pub jobs: Vec<Job>,
    /// Models, detection, tracking and classification.
    pub faces: FaceConfig,
    /// Faces per ONNX Runtime call, gathered across frames.
    pub batch: usize,
    /// x264 settings.
    pub encode: EncodeOptions,
    /// x264 settings of slow-motion copies.
    pub slowmo_encode: EncodeOptions,
    /// Blur each face in the annotated video (labels are still drawn).
    pub blur: bool,
    /// How reports are made, for the jobs that ask for one.
    pub report: Option<ReportConfig>,
    /// Leave alone the videos whose summary says they are done.
    pub skip_done: bool,
    /// The command line, for the summaries.
    pub command: Vec<String>,
    /// Print per-stage times at the end.
    pub stats: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// ONNX Runtime library override.
    pub ort_lib: Option<PathBuf>,
}

/// How one video went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Frames written.
    pub frames: usize,
    /// Face records (faces summed over frames).
    pub faces: usize,
    /// Frames with at least one face.
    pub frames_with_faces: usize,
    /// Face records per displayed label, in label order.
    pub label_counts: Vec<(String, usize)>,
    /// The model's groupings of its labels.
    pub views: Views,
    /// Seconds of video written.
    pub duration: f64,
    /// Wall time.
    pub elapsed: Duration,
    /// Time spent in each stage.
    pub times: StageTimes,
    /// Set when the input was damaged or cut short.
    pub truncation: Option<Truncation>,
    /// Set when Ctrl-C stopped the run.
    pub interrupted: bool,
}

impl Outcome {
    /// The model's labels, in order.
    pub fn labels(&self) -> Vec<String> {
        self.label_counts.iter().map(|(l, _)| l.clone()).collect()
    }
}

/// Runs every job in turn. A video that fails is reported (on stderr and in its summary) and
/// the run goes on; Ctrl-C stops it after the current video's frames so far. `finish` runs after
/// each annotated video (its report and the lines printed about it), before its summary is
/// written.
///
/// # Errors
/// Failures that concern every video: FFmpeg, ONNX Runtime, or the models not loading.
pub fn run(
    config: &AnnotateConfig,
    stop: &Arc<AtomicBool>,
    mut finish: impl FnMut(&Job, &Outcome) -> Result<()>,
) -> Result<Vec<JobResult>> {
    crate::video::init().context("initialising FFmpeg")?;
    let env = crate::ort_runtime::environment(config.ort_lib.as_deref())?;
    // The models are loaded once here so that a bad model stops the run instead of failing
    // every video.
    if let Some(note) = config
        .faces
        .load(&env, INFERENCE_THREADS, config.batch)?
        .note
    {
        eprintln!("{note}");
    }
    let mut results = Vec::new();
    for job in &config.jobs {
        if config.skip_done && crate::batch::summary::is_done(&job.summary) {
            results.push(JobResult {
                job: job.clone(),
                status: Status::Skipped,
                outcome: None,
                error: None,
            });
            continue;
        }
        let summary_claim = crate::output::Claim::new(&job.summary);
        let ran = run_job(config, job, &env, stop).and_then(|outcome| {
            finish(job, &outcome)?;
            Ok(outcome)
        });
        let mut result = match ran {
            Ok(outcome) => {
                let status = if outcome.interrupted {
                    Status::Interrupted
                } else if outcome.truncation.is_some() {
                    Status::Partial
                } else {
                    Status::Done
                };
                let error = outcome.truncation.as_ref().map(|t| {
                    format!(
                        "damaged or cut short after frame {} ({:.2} s): {}",
                        t.frames, t.time, t.reason
                    )
                });
                JobResult {
                    job: job.clone(),
                    status,
                    outcome: Some(outcome),
                    error,
                }
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                JobResult {
                    job: job.clone(),
                    status: Status::Failed,
                    outcome: None,
                    error: Some(format!("{e:#}")),
                }
            }
        };
        // A failed video's error is already told; its summary not being written (another run
        // finished the video meanwhile, say) adds nothing.
        if let Err(e) = write_summary(config, &result, &summary_claim) {
            if result.status != Status::Failed {
                eprintln!("error: {e:#}");
                result.status = Status::Failed;
                result.error = Some(format!("{e:#}"));
            }
        }
        let interrupted = result.status == Status::Interrupted;
        results.push(result);
        if interrupted {
            break;
        }
    }
    Ok(results)
}

/// Writes `NAME.summary.json` for a video that ran, as claimed when it began.
fn write_summary(
    config: &AnnotateConfig,
    result: &JobResult,
    claim: &crate::output::Claim,
) -> Result<()> {
    let counts = result.outcome.as_ref().map(|outcome| {
        let seconds = outcome.elapsed.as_secs_f64();
        Counts {
            frames: outcome.frames,
            duration: outcome.duration,
            faces: outcome.faces,
            frames_with_faces: outcome.frames_with_faces,
            label_shares: outcome
                .label_counts
                .iter()
                .map(|(label, n)| (label.clone(), *n as f64 / outcome.faces.max(1) as f64))
                .collect(),
            fps: outcome.frames as f64 / seconds.max(1e-9),
            seconds,
        }
    });
    let summary = VideoSummary {
        status: result.status,
        input: result.job.input.clone(),
        outputs: if result.status == Status::Failed {
            Vec::new()
        } else {
            result.job.outputs()
        },
        counts,
        error: result.error.clone(),
        emolens_version: env!("CARGO_PKG_VERSION").to_owned(),
        model: config.faces.model.clone(),
        detector: config.faces.detect.detector.name().to_owned(),
        command: config.command.clone(),
    };
    match summary.write_claimed(claim) {
        // Another run wrote the summary while this one ran. A finished video's summary is kept;
        // one that says the video failed or was interrupted is not an outcome to keep, and this
        // run's replaces it.
        Err(e) if !VideoSummary::read(claim.target()).is_some_and(|s| s.status.is_final()) => {
            summary.write(claim.target()).map_err(|_| e)
        }
        written => written,
    }
}

fn run_job(
    config: &AnnotateConfig,
    job: &Job,
    env: &ort::environment::Environment,
    stop: &Arc<AtomicBool>,
) -> Result<Outcome> {
    let started = Instant::now();
    let decoder = Decoder::open(&job.input)?;
    let info = decoder.info().clone();
    let core = config.faces.load(env, INFERENCE_THREADS, config.batch)?;
    let labels = core.classifier.labels().to_vec();
    let units = core.classifier.units().to_vec();
    let views = core.classifier.classifier().meta().views.clone();
    let records = crate::records::RecordWriter::create(
        job.json.as_deref(),
        job.csv.as_deref(),
        &labels,
        &units,
    )
    .with_context(|| {
        "creating the face record files; choose a writable --json/--csv path".to_string()
    })?;
    if let Some((_, slow)) = &job.slowmo {
        check_slowed_part(slow, &info)?;
    }
    let encoder = crate::video::encode::Encoder::create(&job.output, &info, &config.encode)?;
    let progress = stages::progress_bar(config.progress, info.frames, &job.input);

    let (decoded_tx, decoded_rx) = bounded(CHANNEL_DEPTH);
    let (detected_tx, detected_rx) = bounded(CHANNEL_DEPTH);
    let (classified_tx, classified_rx) = bounded(CHANNEL_DEPTH);
    let (drawn_tx, drawn_rx) = bounded(CHANNEL_DEPTH);
    let (recycle_tx, recycle_rx) = bounded(CHANNEL_DEPTH * 5);
    let (slow_tx, slow_rx) = bounded(CHANNEL_DEPTH);
    let slow_target = job.slowmo.as_ref().map(|(path, slow)| slowmo::SlowTarget {
        path,
        slow: *slow,
        info: info.clone(),
        encode: &config.slowmo_encode,
    });
    let overlay_settings = stages::OverlaySettings {
        blur: config.blur,
        captions: &core.captions,
        labels: &labels,
    };
    let (decode, detect, infer, overlay, slow, encode) = std::thread::scope(|scope| {
        let decode = scope.spawn(|| stages::decode(decoder, decoded_tx, recycle_rx, stop));
        let detect = scope.spawn(|| stages::detect(core.locator, decoded_rx, detected_tx));
        let infer = scope.spawn(|| stages::infer(core.classifier, detected_rx, classified_tx));
        let slow_tx = slow_target.is_some().then_some(slow_tx);
        let overlay = scope.spawn(|| {
            stages::overlay(records, &overlay_settings, classified_rx, drawn_tx, slow_tx)
        });
        let settings = &overlay_settings;
        let slow = slow_target
            .map(|target| scope.spawn(move || slowmo::slow_motion(&target, settings, slow_rx)));
        let encode = scope.spawn(|| stages::encode(encoder, drawn_rx, recycle_tx, &progress));
        (
            decode.join(),
            detect.join(),
            infer.join(),
            overlay.join(),
            slow.map(|handle| handle.join()),
            encode.join(),
        )
    });
    progress.finish_and_clear();
    let joined = |name: &str| anyhow::anyhow!("the {name} stage panicked");
    // Upstream first: a stage stops quietly when a later one fails, so the first error in
    // pipeline order is the cause and the later ones are consequences.
    let decode_report = decode.map_err(|_| joined("decode"))??;
    let detect_time = detect.map_err(|_| joined("detection"))??;
    let infer_time = infer.map_err(|_| joined("inference"))??;
    let overlay_report = overlay.map_err(|_| joined("overlay"))??;
    let slow_time = slow
        .map(|joined_slow| joined_slow.map_err(|_| joined("slow-motion")))
        .transpose()?
        .transpose()?;
    let (frames_written, encode_time) = encode.map_err(|_| joined("encode"))??;
    Ok(Outcome {
        frames: frames_written,
        faces: overlay_report.faces,
        frames_with_faces: overlay_report.frames_with_faces,
        label_counts: labels
            .iter()
            .cloned()
            .zip(overlay_report.label_counts)
            .collect(),
        views,
        duration: frames_written as f64 / f64::from(info.frame_rate).max(1e-9),
        elapsed: started.elapsed(),
        times: StageTimes {
            decode: decode_report.time,
            detect: detect_time,
            infer: infer_time,
            overlay: overlay_report.time,
            encode: encode_time,
            slowmo: slow_time,
        },
        truncation: decode_report.truncation,
        interrupted: decode_report.interrupted || stop.load(Ordering::Relaxed),
    })
}

/// Refuses a `--slowmo-only` part that starts after the end of the video.
fn check_slowed_part(slow: &SlowMotion, info: &crate::video::VideoInfo) -> Result<()> {
    let (Some((start, _)), Some(frames)) = (slow.only, info.frames) else {
        return Ok(());
    };
    let duration = frames as f64 / f64::from(info.frame_rate).max(1e-9);
    if start >= duration {
        anyhow::bail!(
            "{}: --slowmo-only starts at {start} s, after the end of the video ({duration:.2} s); give a part within it",
            info.path.display()
        );
    }
    Ok(())
}

/// The end-of-run summary of one video: frames, faces, speed and the share of each label.
pub fn summary(job: &Job, outcome: &Outcome) -> String {
    let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
    let mut text = format!(
        "{} -> {}: {} frames in {:.1} s ({:.1} fps); faces in {} frames ({:.1} %), {} face records",
        job.input.display(),
        job.output.display(),
        outcome.frames,
        seconds,
        outcome.frames as f64 / seconds,
        outcome.frames_with_faces,
        100.0 * outcome.frames_with_faces as f64 / outcome.frames.max(1) as f64,
        outcome.faces
    );
    if outcome.faces > 0 {
        let shares: Vec<String> = outcome
            .label_counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(label, n)| format!("{label} {:.0} %", 100.0 * *n as f64 / outcome.faces as f64))
            .collect();
        text.push_str(&format!("\n  labels: {}", shares.join(", ")));
    }
    for (what, path) in [("records", &job.json), ("records", &job.csv)] {
        if let Some(path) = path {
            text.push_str(&format!("\n  {what}: {}", path.display()));
        }
    }
    if let Some((path, slow)) = &job.slowmo {
        text.push_str(&format!(
            "\n  slow motion x{}: {}",
            slow.factor,
            path.display()
        ));
    }
    text
}
