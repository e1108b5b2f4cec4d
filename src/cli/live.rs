//! `emolens live` arguments, their validation into a [`LiveConfig`], and the run with Ctrl-C
//! handling.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use super::faces::{FaceOptions, TagOptions, VideoOptions};
use crate::live::capture::Source;
use crate::live::LiveConfig;

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
    #[command(flatten)]
    pub faces: FaceOptions,
    #[command(flatten)]
    pub tags: TagOptions,
    #[command(flatten)]
    pub video: VideoOptions,
}

/// Validates `emolens live` arguments.
///
/// # Errors
/// Says which value is invalid and what is valid.
pub fn live_config(args: LiveArgs, ort_lib: Option<PathBuf>) -> Result<LiveConfig> {
    check_source(&args.source, args.realtime)?;
    check_outputs(&args)?;
    let faces = args.faces.settings(args.tags)?;
    let encode = args.video.encode_options()?;
    Ok(LiveConfig {
        source: args.source,
        realtime: args.realtime,
        window: !args.no_window,
        record: args.record,
        json: args.json,
        stats_json: args.stats_json,
        save_dir: args.save_dir,
        faces,
        encode,
        ort_lib,
    })
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
    let stop = super::stop_on_ctrl_c("stopping: finishing the outputs")?;
    let stats = crate::live::run(&config, &stop)?;
    println!("{}", stats.summary_line());
    for (what, path) in [("records", &config.json), ("stats", &config.stats_json)] {
        if let Some(path) = path {
            println!("  {what}: {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
