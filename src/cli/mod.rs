//! Command-line interface: clap-derived raw arguments, turned into validated configs before
//! anything runs (invalid values are errors that say what is valid, never silent fallbacks).

pub mod annotate;
pub mod batch;
pub mod evaluate_faces;
pub mod faces;
pub mod inspect;
pub mod live;
pub mod report;
pub mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use train::{evaluate_config, run_folds, train_config, EvaluateArgs, TrainArgs};

/// Find faces in video, recognise their expressions, and write annotated video, data and reports.
#[derive(Debug, Parser)]
#[command(name = "emolens", version, about)]
pub struct Cli {
    /// ONNX Runtime library (libonnxruntime.so.1.31.1); default: $ORT_DYLIB_PATH, then the
    /// scripts/setup.sh install folder.
    #[arg(long, global = true, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
    /// Let finished outputs replace files that another run finished while this one was writing
    /// them. Without it, the first run to finish keeps its file and the other fails naming it;
    /// files that were there before the run started are replaced either way.
    #[arg(long, global = true)]
    pub overwrite: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the emotion CNN (optionally with an action-unit head) on labelled face images and
    /// export it as ONNX with its metadata, or cross-validate it with --folds.
    Train(TrainArgs),
    /// Measure a model on labelled face images: accuracy, per-class and per-view scores,
    /// confusion matrix, action units, and scores per group of people.
    Evaluate(EvaluateArgs),
    /// Annotate videos: a box, emotion label and confidence on every face, plus per-face data.
    Annotate(annotate::AnnotateArgs),
    /// Webcam demo: faces boxed and labelled live in a window, with fps, latency and dropped frames.
    Live(live::LiveArgs),
    /// Engagement report (CSV and HTML) from the face records of `annotate --json`; several
    /// records files (one per video) make a cohort report that puts the videos side by side.
    Report(report::ReportArgs),
    /// Print a model's metadata, heads, views and provenance; draw its first-layer filters.
    Inspect(inspect::InspectArgs),
    /// Measure a face detector on labelled photos: recall, false faces, milliseconds per photo.
    EvaluateFaces(evaluate_faces::EvaluateFacesArgs),
}

/// Exit status when the input video was damaged or cut short and only its decodable part was
/// written.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit status when some input videos failed (missing, unreadable, or a step failed) and
/// nothing was written for them; the others were annotated.
pub const EXIT_FAILED: u8 = 4;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs the parsed command line and returns the exit status.
///
/// # Errors
/// Whatever the command reports; the message names the file and the fix.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if cli.overwrite {
        crate::output::allow_overwrite();
    }
    match cli.command {
        Command::Train(args) => {
            let folds = args.folds;
            let mut config = train_config(args, cli.ort_lib)?;
            config.stop = stop_on_ctrl_c("interrupted: stopping at the next training step")?;
            let trained = match folds {
                Some(k) => run_folds(&config, k),
                None => crate::train::run(&config).map(|_| ExitCode::SUCCESS),
            };
            match trained {
                Err(e) if e.is::<crate::train::Interrupted>() => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(EXIT_INTERRUPTED))
                }
                other => other,
            }
        }
        Command::Evaluate(args) => {
            let config = evaluate_config(args, cli.ort_lib)?;
            let evaluated = crate::evaluate::run(&config)?;
            for note in &evaluated.notes {
                eprintln!("{note}");
            }
            println!("{}", evaluated.to_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Annotate(args) => {
            let config = annotate::annotate_config(args, cli.ort_lib)?;
            annotate::run_annotate(&config)
        }
        Command::Live(args) => live::run(args, cli.ort_lib),
        Command::Report(args) => {
            report::run(&args, cli.ort_lib.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Inspect(args) => {
            inspect::run(&args, cli.ort_lib.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::EvaluateFaces(args) => {
            evaluate_faces::run(&args, cli.ort_lib.as_deref()).map(|()| ExitCode::SUCCESS)
        }
    }
}

/// A flag set by the first Ctrl-C, which prints `message`; a second Ctrl-C exits at once.
///
/// # Errors
/// When the handler cannot be installed.
pub(crate) fn stop_on_ctrl_c(message: &'static str) -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!("\n{message} (Ctrl-C again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// Fails early, before hours of work, when `path` cannot be written: its folder is missing or
/// read-only, or it is a folder.
pub(crate) fn check_writable_output(path: &Path, extension: &str) -> Result<()> {
    if path.is_dir() {
        bail!(
            "{}: is a folder; give a file name such as out.{extension}",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!(
            "{}: folder {} does not exist; create it or choose another path",
            path.display(),
            parent.display()
        );
    }
    let probe = parent.join(format!(".emolens-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "{}: folder {} is not writable; choose another path",
            path.display(),
            parent.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
