//! `emolens report` and the report options `emolens annotate --report` shares: from per-face
//! JSON Lines records to the engagement report (CSV and HTML) and its terminal summary; from
//! several records files to a cohort report (see [`crate::report::cohort`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::model_meta::Views;
use crate::report::{self, ReportConfig};

/// How the report is cut and what counts as engaged.
#[derive(Debug, Clone, Args)]
pub struct ReportOptions {
    /// Length of each time window of the report, e.g. 10s, 1.5s, 90 or 2m.
    #[arg(
        long,
        default_value = "10s",
        value_name = "LENGTH",
        help_heading = "Report"
    )]
    pub window: String,
    /// Labels that count as an engaged expression, comma-separated (default: every label but
    /// the negative ones of the model's valence view).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LABELS",
        help_heading = "Report"
    )]
    pub engaged: Vec<String>,
    /// A face is attentive in a window when it is seen frontal in at least this share of the
    /// window's frames in which it is tracked (0..1).
    #[arg(
        long,
        default_value_t = 0.5,
        value_name = "SHARE",
        help_heading = "Report"
    )]
    pub attentive: f64,
}

impl ReportOptions {
    /// The validated settings, for a video of `duration` seconds when known.
    ///
    /// # Errors
    /// A window or share out of range.
    pub fn config(&self, duration: Option<f64>) -> Result<ReportConfig> {
        if !(0.0..=1.0).contains(&self.attentive) {
            bail!(
                "--attentive {} is out of range: use a share from 0 to 1",
                self.attentive
            );
        }
        Ok(ReportConfig {
            window: report::parse_window(&self.window)?,
            duration,
            engaged_labels: self.engaged.clone(),
            attentive_threshold: self.attentive,
        })
    }
}

/// `emolens report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Face records written by `emolens annotate --json`, one file per video. One file: its
    /// report. Several: a cohort report, with each video's report in DIR/NAME/ (NAME: the file
    /// name without .jsonl, or the folder and file name when several files share a name) and
    /// cohort.csv and cohort.html side by side in DIR. All files must carry the same labels.
    #[arg(value_name = "FACES.jsonl", required = true)]
    pub records: Vec<PathBuf>,
    /// Folder for class.csv, tracks.csv and report.html, or for the cohort (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Length of the video in seconds (default: the time of the last record), so that windows
    /// without faces at the end are counted. One video only.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// The model that annotated the videos, for its labels and their groupings (views); without
    /// it the FER2013 labels are grouped by valence.
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub options: ReportOptions,
}

/// Runs `emolens report`: one video's report, or a cohort report for several records files.
///
/// # Errors
/// Unreadable or mismatched records, `--duration` with several files, a model that does not
/// load, or an unwritable folder.
pub fn run(args: &ReportArgs, ort_lib: Option<&Path>) -> Result<()> {
    if let Some(d) = args.duration {
        if args.records.len() > 1 {
            bail!(
                "--duration gives the length of one video, but {} records files were given: leave it out (each video then ends at its last face record) or make that video's report alone",
                args.records.len()
            );
        }
        if !(d.is_finite() && d > 0.0 && d <= report::MAX_SECONDS) {
            bail!(
                "--duration {d} is out of range: give the video's length in seconds (at most {})",
                report::MAX_SECONDS
            );
        }
    }
    let config = args.options.config(args.duration)?;
    let (labels, views) = match &args.model {
        Some(path) => {
            let env = crate::ort_runtime::environment(ort_lib)?;
            let classifier = crate::classifier::Classifier::load(path, &env, 1)
                .with_context(|| format!("loading model {}", path.display()))?;
            (
                classifier.emotion_head()?.labels.clone(),
                classifier.meta().views.clone(),
            )
        }
        None => (Vec::new(), Views::new()),
    };
    let summary = match args.records.as_slice() {
        [records] => write(records, &args.output, &labels, &views, &config)?,
        several => {
            let cohort = report::cohort::load(several, &labels, &views, &config)?;
            let files = report::cohort::write(&cohort, &args.output)?;
            report::cohort::summary(&cohort, &files, &args.output)
        }
    };
    println!("{summary}");
    Ok(())
}

/// Makes the report of one records file into `dir` and returns its terminal summary.
/// `labels` and `views` come from the model (empty: taken from the records, FER2013 labels
/// grouped by valence).
///
/// # Errors
/// Unreadable or mismatched records, or an unwritable folder.
pub fn write(
    records: &Path,
    dir: &Path,
    labels: &[String],
    views: &Views,
    config: &ReportConfig,
) -> Result<String> {
    let faces = report::read_records(records)?;
    report::check_labels(&faces, labels, records)?;
    let built = report::build(&faces, labels, views, config)?;
    let files = report::write_report(&built, dir)?;
    Ok(format!(
        "report: {}\n{}\n  files: {}, {}, {}",
        dir.display(),
        report::summary(&built),
        files.class_csv.display(),
        files.tracks_csv.display(),
        files.html.display()
    ))
}
