//! `emolens live`: the webcam demo of DESIGN.md section 1. A capture thread reads the camera,
//! stream or file into a single slot; the main thread takes the newest frame, finds, tracks and
//! classifies its faces, draws them with the live figures, and shows it in a window (or, with
//! `--no-window`, hands it to the outputs and prints a status line about once per second).
//! Frame policy: live input keeps only the newest frame; frames that processing could not keep
//! up with are dropped, counted and shown, never queued. Latency is measured from the moment the
//! capture thread got a frame to the moment it is shown (imshow and waitKey) or, headless, handed
//! to the outputs.

pub mod analyze;
pub mod capture;
pub mod hud;
pub mod record;
pub mod stats;
pub mod window;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use opencv::core::{Mat, Size};
use opencv::prelude::*;

use crate::faces::captions::Captions;
use crate::faces::FaceConfig;
use crate::records::RecordWriter;
use crate::video::encode::EncodeOptions;
use analyze::Analyzer;
use capture::{Capture, Captured, Slot, Source, Take};
use hud::HudInfo;
use record::Recorder;
use stats::{IntervalMeter, LatencyHistogram, LiveStats, Recent};
use window::{Key, Window};

/// ONNX Runtime threads: one, so that capture (decoding) keeps the other core; a frame has few
/// faces, which gain little from more.
const INFERENCE_THREADS: usize = 1;
/// Faces per ONNX Runtime call: one frame's due faces (a larger frame is classified in several
/// calls).
const LIVE_BATCH: usize = 32;
/// How long processing waits for a frame before it checks for Ctrl-C and window events again.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// A validated `emolens live` run.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Where frames come from.
    pub source: Source,
    /// Play a file source at its native rate (a stand-in camera).
    pub realtime: bool,
    /// Show a window (otherwise headless, with a status line on stderr).
    pub window: bool,
    /// Record the annotated stream from the start.
    pub record: Option<PathBuf>,
    /// JSON Lines file of face records.
    pub json: Option<PathBuf>,
    /// Frame counts, fps and latency percentiles as JSON at exit.
    pub stats_json: Option<PathBuf>,
    /// Folder of snapshots and of recordings started with r.
    pub save_dir: PathBuf,
    /// Models, detection, tracking and classification.
    pub faces: FaceConfig,
    /// x264 settings of recordings.
    pub encode: EncodeOptions,
    /// ONNX Runtime library override.
    pub ort_lib: Option<PathBuf>,
}

/// Runs the live loop until the source ends, the user quits (q, Esc, closing the window) or
/// `stop` is set (Ctrl-C); then finishes the recording, the records and the stats file.
///
/// # Errors
/// A source that cannot be opened or read, a model or cascade that does not load, an output
/// that cannot be written; each names the source or file and the fix.
pub fn run(config: &LiveConfig, stop: &AtomicBool) -> Result<LiveStats> {
    quiet_opencv();
    crate::video::init().context("initialising FFmpeg")?;
    let env = crate::ort_runtime::environment(config.ort_lib.as_deref())?;
    let core = config.faces.load(&env, INFERENCE_THREADS, LIVE_BATCH)?;
    if let Some(note) = &core.note {
        eprintln!("{note}");
    }
    let captions = core.captions.clone();
    let analyzer = Analyzer::new(core);
    let labels = analyzer.classifier().labels().to_vec();
    let units = analyzer.classifier().units().to_vec();
    // Opened after the model has loaded, so that its first frames are not kept waiting.
    let capture = Capture::open(&config.source)?;
    let (size, fps) = (capture.frame_size(), capture.fps);
    let window = config.window.then(Window::open).transpose()?;
    let recorder = match &config.record {
        Some(path) => Some(start_recorder(path, size, fps, &config.encode)?),
        None => None,
    };
    // Created last: a record file left unfinished would stay behind as `.partial`.
    let records = RecordWriter::create(config.json.as_deref(), None, &labels, &units)
        .with_context(|| {
            "creating the face record file; choose a writable --json path".to_string()
        })?;
    let mut session = Session {
        config,
        analyzer,
        captions,
        records,
        window,
        recordings: usize::from(recorder.is_some()),
        recorder,
        size,
        fps,
        snapshots: 0,
        processed: 0,
        first_at: None,
        latency: LatencyHistogram::default(),
        meter: IntervalMeter::new(Instant::now()),
        recent: None,
    };
    let slot = Slot::default();
    let (processed, captured) = std::thread::scope(|scope| {
        let capture = scope.spawn(|| capture::run(capture, config.realtime, &slot));
        let processed = session.process(&slot, stop);
        let counts = slot.close();
        (processed.map(|()| counts), capture.join())
    });
    captured.map_err(|_| anyhow::anyhow!("the capture thread panicked"))??;
    let counts = processed?;
    session.finish(counts)
}

/// OpenCV's own warnings (a camera that does not open, a backend it tried first) would repeat
/// what our one-line errors say.
fn quiet_opencv() {
    let _ = opencv::core::set_log_level(opencv::core::LogLevel::LOG_LEVEL_ERROR);
}

/// What the processing loop owns.
struct Session<'a> {
    config: &'a LiveConfig,
    analyzer: Analyzer,
    captions: Captions,
    records: RecordWriter,
    window: Option<Window>,
    recorder: Option<Recorder>,
    size: Size,
    fps: Option<f64>,
    /// Recordings started so far (names the next one).
    recordings: usize,
    /// Snapshots saved so far (names the next one).
    snapshots: usize,
    processed: u64,
    /// Capture time of the first frame processed: the start of the run's frame rate.
    first_at: Option<Instant>,
    latency: LatencyHistogram,
    meter: IntervalMeter,
    recent: Option<Recent>,
}

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

impl Session<'_> {
    /// Takes and handles the newest frame until the source ends or the run is stopped.
    fn process(&mut self, slot: &Slot, stop: &AtomicBool) -> Result<()> {
        while !stop.load(Ordering::Relaxed) {
            let flow = match slot.take(IDLE_WAIT) {
                Take::Frame(mut frame) => {
                    let flow = self.handle(&mut frame, slot)?;
                    slot.recycle(frame.image);
                    flow
                }
                Take::Empty => self.idle()?,
                Take::Ended => Flow::Quit,
            };
            if flow == Flow::Quit {
                break;
            }
        }
        Ok(())
    }

    /// Analyses, draws and shows (or hands to the outputs) one frame.
    fn handle(&mut self, frame: &mut Captured, slot: &Slot) -> Result<Flow> {
        let faces = self.analyzer.analyze(&frame.image)?;
        let index = usize::try_from(frame.index).unwrap_or(usize::MAX);
        self.records.write(index, frame.time, &faces)?;
        let info = HudInfo {
            recent: self.recent,
            dropped: slot.counts().dropped,
            recording: self.recorder.is_some(),
        };
        let hud_area =
            hud::area(frame.image.rows(), &info).context("measuring the live figures")?;
        crate::draw::draw_faces(&mut frame.image, &faces, &self.captions, &[hud_area])
            .context("drawing faces")?;
        hud::draw_hud(&mut frame.image, &info).context("drawing the live figures")?;
        let key = match &self.window {
            Some(window) => {
                let key = window.show(&frame.image).context("showing the frame")?;
                self.shown(frame.at);
                self.write_recording(frame)?;
                key
            }
            None => {
                self.write_recording(frame)?;
                if let Some(recent) = self.shown(frame.at) {
                    let counts = slot.counts();
                    eprintln!(
                        "live: {:.1} fps, latency {:.1} ms, captured {}, processed {}, dropped {}",
                        recent.fps,
                        recent.latency_ms,
                        counts.captured,
                        self.processed,
                        counts.dropped
                    );
                }
                None
            }
        };
        if self.window.as_ref().is_some_and(Window::closed) {
            return Ok(Flow::Quit);
        }
        Ok(self.on_key(key, &frame.image))
    }

    /// Waits for window events while no frame is ready.
    fn idle(&mut self) -> Result<Flow> {
        let Some(window) = &self.window else {
            return Ok(Flow::Continue);
        };
        let key = window.poll().context("reading the keyboard")?;
        if window.closed() {
            return Ok(Flow::Quit);
        }
        // No new frame to save: a snapshot waits for the next one.
        Ok(self.on_key(key.filter(|k| *k != Key::Snapshot), &Mat::default()))
    }

    /// Counts a frame as shown: its latency, the run's and the last second's figures. Returns
    /// the last second's figures when a second is complete.
    fn shown(&mut self, captured_at: Instant) -> Option<Recent> {
        let now = Instant::now();
        let latency = now.saturating_duration_since(captured_at);
        self.latency.record(latency);
        self.processed += 1;
        self.first_at.get_or_insert(captured_at);
        let recent = self.meter.frame(latency, now);
        if recent.is_some() {
            self.recent = recent;
        }
        recent
    }

    fn write_recording(&mut self, frame: &Captured) -> Result<()> {
        match self.recorder.as_mut() {
            Some(recorder) => recorder.write(&frame.image, frame.at),
            None => Ok(()),
        }
    }

    /// Acts on a key; errors of snapshots and recordings started by a key are reported and the
    /// run goes on.
    fn on_key(&mut self, key: Option<Key>, shown: &Mat) -> Flow {
        match key {
            Some(Key::Quit) => return Flow::Quit,
            Some(Key::Snapshot) => match self.snapshot(shown) {
                Ok(path) => println!("snapshot: {}", path.display()),
                Err(e) => eprintln!("error: {e:#}"),
            },
            Some(Key::Record) => {
                if let Err(e) = self.toggle_recording() {
                    eprintln!("error: {e:#}");
                }
            }
            None => {}
        }
        Flow::Continue
    }

    /// Saves `image` as a PNG in the save folder.
    fn snapshot(&mut self, image: &Mat) -> Result<PathBuf> {
        self.snapshots += 1;
        let path = self.config.save_dir.join(format!(
            "emolens-{}-{}.png",
            crate::util::utc_file_stamp(),
            self.snapshots
        ));
        let written = opencv::imgcodecs::imwrite_def(&path, image)
            .with_context(|| format!("{}: cannot save the snapshot", path.display()))?;
        anyhow::ensure!(
            written,
            "{}: cannot save the snapshot; choose a writable --save-dir",
            path.display()
        );
        Ok(path)
    }

    fn toggle_recording(&mut self) -> Result<()> {
        match self.recorder.take() {
            Some(recorder) => finish_recording(recorder),
            None => {
                let path = self.next_recording_path();
                self.recorder = Some(start_recorder(
                    &path,
                    self.size,
                    self.fps,
                    &self.config.encode,
                )?);
                self.recordings += 1;
                Ok(())
            }
        }
    }

    /// `--record FILE` for the first recording, `FILE-2.mp4`, `FILE-3.mp4`... for later ones;
    /// without `--record`, a time-stamped name in the save folder.
    fn next_recording_path(&self) -> PathBuf {
        let number = self.recordings + 1;
        match &self.config.record {
            Some(path) if number == 1 => path.clone(),
            Some(path) => {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                path.with_file_name(format!("{stem}-{number}.mp4"))
            }
            None => self.config.save_dir.join(format!(
                "emolens-{}-{number}.mp4",
                crate::util::utc_file_stamp()
            )),
        }
    }

    /// Finishes the outputs and returns the run's figures.
    fn finish(mut self, counts: capture::Counts) -> Result<LiveStats> {
        if let Some(recorder) = self.recorder.take() {
            finish_recording(recorder)?;
        }
        self.records.finish()?;
        let elapsed = self
            .first_at
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
            .max(1e-9);
        let stats = LiveStats {
            source: self.config.source.to_string(),
            captured: counts.captured,
            processed: self.processed,
            dropped: counts.dropped,
            processed_share: ((self.processed as f64 / counts.captured.max(1) as f64) * 1e4)
                .round()
                / 1e4,
            elapsed_s: (elapsed * 1000.0).round() / 1000.0,
            fps: ((self.processed as f64 / elapsed) * 100.0).round() / 100.0,
            latency_ms: self.latency.summary(),
        };
        if let Some(path) = &self.config.stats_json {
            crate::output::write_atomically(path, |out| {
                serde_json::to_writer_pretty(&mut *out, &stats)?;
                std::io::Write::write_all(out, b"\n")
            })
            .with_context(|| format!("{}: cannot write the stats", path.display()))?;
        }
        Ok(stats)
    }
}

fn start_recorder(
    path: &Path,
    size: Size,
    fps: Option<f64>,
    options: &EncodeOptions,
) -> Result<Recorder> {
    let recorder = Recorder::start(path, size, fps, options)?;
    println!("recording: {}", path.display());
    Ok(recorder)
}

fn finish_recording(recorder: Recorder) -> Result<()> {
    let frames = recorder.frames();
    let path = recorder.finish()?;
    println!("recorded: {} ({frames} frames)", path.display());
    Ok(())
}
