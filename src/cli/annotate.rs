//! `emolens annotate` arguments and their validation into an [`AnnotateConfig`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::faces::{check_preset, FaceOptions, TagOptions, VideoOptions};
use super::report::ReportOptions;
use super::{report, stop_on_ctrl_c};
use crate::annotate::AnnotateConfig;
use crate::batch::shard::ShardSpec;
use crate::video::encode::EncodeOptions;
use crate::video::slowmo::{FramesMode, SlowMotion, MAX_FACTOR, MIN_FACTOR};

/// `emolens annotate`.
#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// Videos to annotate (any container and codec FFmpeg reads), or folders searched
    /// recursively for videos.
    #[arg(required_unless_present = "list", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Annotated video (.mp4) for one input file; a folder for several inputs, a folder input or
    /// --list (each written as NAME.mp4, NAME mirroring the input's name and sub-folder, with
    /// -2, -3... for names that would collide), with NAME.summary.json beside it.
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: PathBuf,
    /// A text file of videos to annotate, one path per line (relative to the file's folder;
    /// empty lines and lines starting with # are skipped).
    #[arg(long, value_name = "FILE", help_heading = "Batch")]
    pub list: Option<PathBuf>,
    /// Take only this worker's share of the inputs: K/N (worker K of N, from 0), or auto (from a
    /// Slurm job array: SLURM_ARRAY_TASK_ID and the array's size), or auto/N (N workers, e.g. a
    /// Kubernetes Indexed Job: JOB_COMPLETION_INDEX). Workers given the same inputs share them
    /// without overlap.
    #[arg(long, value_name = "K/N|auto", help_heading = "Batch")]
    pub shard: Option<ShardSpec>,
    /// Skip every video whose NAME.summary.json says it is done and whose outputs all exist;
    /// run the rest (to resume a run that was stopped or that failed on some videos).
    #[arg(long, help_heading = "Batch")]
    pub skip_done: bool,
    #[command(flatten)]
    pub faces: FaceOptions,
    #[command(flatten)]
    pub video: VideoOptions,
    /// Faces per inference call, gathered across frames.
    #[arg(long, default_value_t = 32, help_heading = "Model")]
    pub batch: usize,
    /// One JSON Lines record per face per frame (a folder for several inputs).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub json: Option<PathBuf>,
    /// The same records as CSV (a folder for several inputs).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub csv: Option<PathBuf>,
    /// Also write OUTPUT.slowFx.mp4, played F (1.25 to 8) times slower at the input's frame
    /// rate: in-between frames are made (see --slowmo-frames), overlays drawn on each, the sound
    /// slowed with its pitch kept.
    #[arg(long, value_name = "F", help_heading = "Slow motion")]
    pub slowmo: Option<f64>,
    /// How the in-between frames of the slow copy are made.
    #[arg(long, value_enum, default_value_t = FramesMode::Blend, value_name = "MODE", help_heading = "Slow motion")]
    pub slowmo_frames: FramesMode,
    /// The slow copy's sound.
    #[arg(long, value_enum, default_value_t = SlowAudio::Keep, value_name = "MODE", help_heading = "Slow motion")]
    pub slowmo_audio: SlowAudio,
    /// x264 preset of the slow copy (twice as many frames or more: by default a faster preset
    /// than --preset's, for a larger file).
    #[arg(
        long,
        default_value = "superfast",
        value_name = "PRESET",
        help_heading = "Slow motion"
    )]
    pub slowmo_preset: String,
    /// Slow only this part, in seconds from the start (e.g. 4.5-7); the rest of the slow copy
    /// plays at normal speed, its sound too.
    #[arg(long, value_name = "START-END", value_parser = parse_part, help_heading = "Slow motion")]
    pub slowmo_only: Option<(f64, f64)>,
    #[command(flatten)]
    pub tags: TagOptions,
    /// Blur every face in the annotated video (the box and label are still drawn); for
    /// sharing recordings of people who did not consent to being shown.
    #[arg(long, help_heading = "Outputs")]
    pub blur: bool,
    /// Engagement report into this folder (a folder per input for several): class.csv,
    /// tracks.csv, report.html. The face records go to --json, or to DIR/faces.jsonl.
    #[arg(long, value_name = "DIR", help_heading = "Report")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub report_options: ReportOptions,
    /// Print the time of each stage at the end.
    #[arg(long)]
    pub stats: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The slow copy's sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SlowAudio {
    /// The input's sound, slowed with its pitch kept.
    Keep,
    /// No sound.
    Drop,
}

/// `START-END` in seconds, start before end.
fn parse_part(text: &str) -> Result<(f64, f64), String> {
    let bad = || format!("`{text}` is not a part: give START-END in seconds, e.g. 4.5-7");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start: f64 = start.trim().parse().map_err(|_| bad())?;
    let end: f64 = end.trim().parse().map_err(|_| bad())?;
    if !(start.is_finite() && end.is_finite() && start >= 0.0 && start < end) {
        return Err(format!(
            "`{text}`: the part must start at 0 or later and end after it starts"
        ));
    }
    Ok((start, end))
}
/// Most faces per inference call (a larger batch only costs memory).
const MAX_BATCH: usize = 1024;

/// Validates `emolens annotate` arguments.
///
/// # Errors
/// Says which value is invalid and what is valid.
pub fn annotate_config(args: AnnotateArgs, ort_lib: Option<PathBuf>) -> Result<AnnotateConfig> {
    if args.batch == 0 || args.batch > MAX_BATCH {
        bail!(
            "--batch {} is out of range: use 1 to {MAX_BATCH}",
            args.batch
        );
    }
    let faces = args.faces.settings(args.tags)?;
    let encode = args.video.encode_options()?;
    check_preset("--slowmo-preset", &args.slowmo_preset)?;
    let slow_encode = EncodeOptions {
        preset: args.slowmo_preset.clone(),
        ..encode.clone()
    };
    let slow = match args.slowmo {
        Some(factor) if (MIN_FACTOR..=MAX_FACTOR).contains(&factor) => Some(SlowMotion {
            factor,
            frames: args.slowmo_frames,
            audio: args.slowmo_audio == SlowAudio::Keep,
            only: args.slowmo_only,
        }),
        Some(factor) => {
            bail!(
                "--slowmo {factor} is out of range: use a factor from {MIN_FACTOR} to {MAX_FACTOR}"
            )
        }
        None if args.slowmo_only.is_some() => {
            bail!("--slowmo-only needs --slowmo F: say how many times slower the part plays")
        }
        None => None,
    };
    let report_config = args
        .report
        .is_some()
        .then(|| args.report_options.config(None))
        .transpose()?;
    let plan = super::batch::OutputPlan {
        output: &args.output,
        json: args.json.as_deref(),
        csv: args.csv.as_deref(),
        report: args.report.as_deref(),
        slowmo: slow,
    };
    let jobs = super::batch::plan_jobs(&args.inputs, args.list.as_deref(), args.shard, &plan)?;
    Ok(AnnotateConfig {
        jobs,
        faces,
        batch: args.batch,
        encode,
        slowmo_encode: slow_encode,
        blur: args.blur,
        report: report_config,
        skip_done: args.skip_done,
        command: std::env::args().collect(),
        stats: args.stats,
        progress: !args.quiet,
        ort_lib,
    })
}

/// Runs annotate with Ctrl-C handling: the first press finishes the videos up to the current
/// frame, the second exits at once.
pub(super) fn run_annotate(config: &crate::annotate::AnnotateConfig) -> Result<ExitCode> {
    if config.jobs.is_empty() {
        // More workers than videos: this one has nothing to do, which is not an error.
        println!("no videos for this worker: its --shard share of the inputs is empty");
        return Ok(ExitCode::SUCCESS);
    }
    let stop = stop_on_ctrl_c("interrupted: finishing the output up to this frame")?;
    let results = crate::annotate::run(config, &stop, |job, outcome| {
        println!("{}", crate::annotate::summary(job, outcome));
        if config.stats {
            println!("{}", outcome.times.per_frame_table(outcome.frames));
        }
        if let (Some(dir), Some(report)) = (&job.report, &config.report) {
            let records = job
                .json
                .as_deref()
                .context("the report needs the face records")?;
            let settings = crate::report::ReportConfig {
                duration: Some(outcome.duration),
                ..report.clone()
            };
            let summary =
                report::write(records, dir, &outcome.labels(), &outcome.views, &settings)?;
            println!("{summary}");
        }
        if let Some(t) = &outcome.truncation {
            eprintln!(
                "warning: {} is damaged or cut short: it stopped after frame {} ({:.2} s): {}; the output holds the frames before that",
                job.input.display(),
                t.frames,
                t.time,
                t.reason
            );
        }
        if outcome.interrupted {
            eprintln!(
                "interrupted: {} holds the first {} frames",
                job.output.display(),
                outcome.frames
            );
        }
        Ok(())
    })?;
    if results.len() > 1 {
        println!("{}", super::batch::results_table(&results));
    }
    Ok(super::batch::exit_status(&results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::any_text;
    use proptest::prelude::*;

    #[test]
    fn parts_are_start_before_end() {
        assert_eq!(parse_part("4.5-7"), Ok((4.5, 7.0)));
        for bad in ["7-4.5", "abc", "1", "-1-2", "1-inf", "NaN-2"] {
            assert!(parse_part(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_part_text_is_a_part_or_refused(text in any_text(24)) {
            if let Ok((start, end)) = parse_part(&text) {
                prop_assert!(start.is_finite() && end.is_finite() && 0.0 <= start && start < end);
            }
        }
    }
}
