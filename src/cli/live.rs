//! `emolens live` arguments, their validation into a [`LiveConfig`], and the run with Ctrl-C
//! handling.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::annotate::{default_cascade, DeviceChoice, MAX_MISSED_FRAMES};
use super::EXIT_INTERRUPTED;
use crate::annotate::stages::Cadence;
use crate::detect::DetectConfig;
use crate::live::capture::Source;
use crate::live::LiveConfig;
use crate::track::TrackConfig;
use crate::video::encode::{EncodeOptions, X264_PRESETS};

/// `emolens live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Camera index (0 = /dev/video0), stream URL (rtsp://..., http://...) or video file.
    #[arg(long, default_value = "0", value_name = "SRC")]
    pub source: Source,
    /// Play a video file at its native frame rate, as a stand-in camera (without it a file is
    /// read as fast as it decodes, and frames processing cannot keep up with are dropped).
    #[arg(long)]
    pub realtime: bool,
    /// No window: print a status line on stderr about once per second and a summary at the end.
    #[arg(long)]
    pub no_window: bool,
    /// Record the annotated stream (H.264 MP4) from the start; r stops and restarts it.
    #[arg(long, value_name = "FILE.mp4", help_heading = "Outputs")]
    pub record: Option<PathBuf>,
    /// One JSON Lines record per face per processed frame (as `annotate --json`).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub json: Option<PathBuf>,
    /// At exit: frames captured, processed and dropped, fps and latency percentiles, as JSON.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub stats_json: Option<PathBuf>,
    /// Folder for snapshots (s) and for recordings started with r without --record.
    #[arg(
        long,
        default_value = ".",
        value_name = "DIR",
        help_heading = "Outputs"
    )]
    pub save_dir: PathBuf,
    /// x264 preset of recordings.
    #[arg(long, default_value = "veryfast", help_heading = "Outputs")]
    pub preset: String,
    /// x264 constant rate factor of recordings, 0..=51 (lower: better quality, larger file).
    #[arg(long, default_value_t = 20, help_heading = "Outputs")]
    pub crf: u8,
    /// Emotion model (default: the shipped models/emolens-fer2013.onnx).
    #[arg(long, value_name = "MODEL.onnx", help_heading = "Model")]
    pub model: Option<PathBuf>,
    /// Where inference runs.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto, help_heading = "Model")]
    pub device: DeviceChoice,
    /// Classify each known face every N frames (a new face at once); in between it keeps its
    /// smoothed probabilities. 1 classifies every face in every frame.
    #[arg(long, default_value_t = 2, value_name = "N", help_heading = "Model")]
    pub classify_every: usize,
    /// Haar cascade XML (default: cascades/haarcascade_frontalface_default.xml).
    #[arg(long, value_name = "FILE", help_heading = "Detection")]
    pub cascade: Option<PathBuf>,
    /// Scale step of the full-frame search, > 1 (larger: faster, may miss faces).
    #[arg(long, default_value_t = 1.2, help_heading = "Detection")]
    pub scale_factor: f64,
    /// Overlapping hits needed to report a face (larger: fewer false faces).
    #[arg(long, default_value_t = 5, help_heading = "Detection")]
    pub min_neighbors: i32,
    /// Smallest face side in input pixels.
    #[arg(long, default_value_t = 48, help_heading = "Detection")]
    pub min_face: u32,
    /// Full-frame detection every N frames, faces followed near their last box in between;
    /// 1 detects on every frame.
    #[arg(
        long,
        default_value_t = 15,
        value_name = "N",
        help_heading = "Detection"
    )]
    pub detect_every: usize,
    /// Weight of the past when smoothing each face's probabilities, 0 (off) to 0.95.
    #[arg(long, default_value_t = 0.6, help_heading = "Tracking")]
    pub smooth: f32,
    /// Least box overlap (IoU) for a face to keep its ID from one frame to the next.
    #[arg(long, default_value_t = 0.3, help_heading = "Tracking")]
    pub min_iou: f64,
}

/// Validates `emolens live` arguments.
///
/// # Errors
/// Says which value is invalid and what is valid.
pub fn live_config(args: LiveArgs, ort_lib: Option<PathBuf>) -> Result<LiveConfig> {
    check_device(args.device)?;
    check_source(&args.source, args.realtime)?;
    check_detection(&args)?;
    if !X264_PRESETS.contains(&args.preset.as_str()) {
        bail!(
            "--preset {} is not an x264 preset: use one of {}",
            args.preset,
            X264_PRESETS.join(", ")
        );
    }
    if args.crf > 51 {
        bail!("--crf {} is out of range: use 0 to 51", args.crf);
    }
    check_outputs(&args)?;
    Ok(LiveConfig {
        source: args.source,
        realtime: args.realtime,
        window: !args.no_window,
        record: args.record,
        json: args.json,
        stats_json: args.stats_json,
        save_dir: args.save_dir,
        model: args.model.unwrap_or_else(crate::util::default_model_path),
        detect: DetectConfig {
            cascade: args.cascade.unwrap_or_else(default_cascade),
            scale_factor: args.scale_factor,
            min_neighbors: args.min_neighbors,
            min_face: args.min_face,
            detect_every: args.detect_every,
        },
        track: TrackConfig {
            min_iou: args.min_iou,
            max_missed: MAX_MISSED_FRAMES,
            smoothing: args.smooth,
        },
        cadence: Cadence {
            classify_every: args.classify_every,
        },
        encode: EncodeOptions {
            preset: args.preset,
            crf: args.crf,
        },
        ort_lib,
    })
}

fn check_device(device: DeviceChoice) -> Result<()> {
    match device {
        DeviceChoice::Auto => eprintln!("note: this build has no GPU support; running on the CPU"),
        DeviceChoice::Cpu => {}
        DeviceChoice::Cuda | DeviceChoice::Tensorrt => bail!(
            "--device {device:?} is not available: this build has no GPU support (rebuild with --features gpu), use --device cpu"
        ),
    }
    Ok(())
}

/// A missing file is reported before the model loads; `--realtime` only paces files.
fn check_source(source: &Source, realtime: bool) -> Result<()> {
    match source {
        Source::File(path) if !path.is_file() => bail!(
            "{}: not found; give an existing video file, a camera index (0) or a stream URL (rtsp://...)",
            path.display()
        ),
        Source::Camera(_) | Source::Stream(_) if realtime => bail!(
            "--realtime paces video files, and {source} already delivers frames in real time; leave --realtime out"
        ),
        _ => Ok(()),
    }
}

fn check_detection(args: &LiveArgs) -> Result<()> {
    if !(args.scale_factor > 1.0 && args.scale_factor <= 2.0) {
        bail!(
            "--scale-factor {} is out of range: use a value in (1, 2]",
            args.scale_factor
        );
    }
    if args.min_neighbors < 0 {
        bail!("--min-neighbors must not be negative");
    }
    if args.min_face < 24 {
        bail!(
            "--min-face {} is too small: the cascade finds faces of 24 pixels and more",
            args.min_face
        );
    }
    if args.detect_every == 0 {
        bail!("--detect-every must be at least 1 (1 = detect on every frame)");
    }
    if args.classify_every == 0 {
        bail!("--classify-every must be at least 1 (1 = classify every face in every frame)");
    }
    if !(0.0..=0.95).contains(&args.smooth) {
        bail!(
            "--smooth {} is out of range: use 0 (off) to 0.95",
            args.smooth
        );
    }
    if !(args.min_iou > 0.0 && args.min_iou < 1.0) {
        bail!(
            "--min-iou {} is out of range: use a value in (0, 1)",
            args.min_iou
        );
    }
    Ok(())
}

/// Every output must be writable before the camera starts.
fn check_outputs(args: &LiveArgs) -> Result<()> {
    if let Some(record) = &args.record {
        let extension = record.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !extension.eq_ignore_ascii_case("mp4") {
            bail!(
                "{}: recordings are H.264 in MP4; give a file name ending in .mp4",
                record.display()
            );
        }
        super::check_writable_output(record, "mp4")?;
    }
    if let Some(json) = &args.json {
        super::check_writable_output(json, "jsonl")?;
    }
    if let Some(stats) = &args.stats_json {
        super::check_writable_output(stats, "json")?;
    }
    if !args.save_dir.is_dir() {
        bail!(
            "--save-dir {}: not a folder; create it or choose another",
            args.save_dir.display()
        );
    }
    Ok(())
}

/// Runs live mode until the source ends or the user quits (q, Esc, or Ctrl-C, which finishes the
/// recording, records and stats like q; a second Ctrl-C exits at once), then prints the summary.
///
/// # Errors
/// Invalid arguments, or what the run reports.
pub fn run(args: LiveArgs, ort_lib: Option<PathBuf>) -> Result<ExitCode> {
    let config = live_config(args, ort_lib)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!("\nstopping: finishing the outputs (Ctrl-C again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;
    let stats = crate::live::run(&config, &stop)?;
    println!("{}", stats.summary_line());
    for (what, path) in [("records", &config.json), ("stats", &config.stats_json)] {
        if let Some(path) = path {
            println!("  {what}: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
