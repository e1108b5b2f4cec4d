//! The jobs of an `emolens annotate` run, from its inputs to the files each one writes, and the
//! table and exit status at the end of a run of several videos.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_PARTIAL};
use crate::annotate::{Job, JobResult};
use crate::batch::inputs::{gather, VideoInput};
use crate::batch::shard::ShardSpec;
use crate::batch::summary::{summary_path, Status};
use crate::video::slowmo::{slow_motion_path, SlowMotion};

/// Where the outputs go: files for one input, folders for several.
pub struct OutputPlan<'a> {
    /// The annotated video, or the folder of annotated videos.
    pub output: &'a Path,
    /// The records file or folder.
    pub json: Option<&'a Path>,
    /// The CSV file or folder.
    pub csv: Option<&'a Path>,
    /// The report folder, or the folder of report folders.
    pub report: Option<&'a Path>,
    /// The slow-motion copy's settings.
    pub slowmo: Option<SlowMotion>,
}

/// The jobs of this worker: every input of `paths` and `list`, named, then `shard`'s share.
///
/// # Errors
/// A list or folder that cannot be read, no inputs, an output that is not `.mp4`, would
/// overwrite an input, or cannot be written.
pub fn plan_jobs(
    paths: &[PathBuf],
    list: Option<&Path>,
    shard: Option<ShardSpec>,
    plan: &OutputPlan<'_>,
) -> Result<Vec<Job>> {
    let inputs = gather(paths, list)?;
    if inputs.is_empty() {
        bail!("no videos found in the inputs given; give video files, folders holding videos, or a --list file");
    }
    let several = inputs.len() > 1 || list.is_some() || paths.iter().any(|p| p.is_dir());
    let shard = shard
        .map(|spec| spec.resolve(|name| std::env::var(name).ok()))
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let canonical_inputs: HashMap<PathBuf, &Path> = inputs
        .iter()
        .filter_map(|input| Some((input.path.canonicalize().ok()?, input.path.as_path())))
        .collect();
    let mut jobs = Vec::new();
    for (position, input) in inputs.iter().enumerate() {
        if shard.is_some_and(|shard| !shard.takes(position)) {
            continue;
        }
        let job = job_for(input, several, plan)?;
        check_outputs(&job, &canonical_inputs)?;
        jobs.push(job);
    }
    Ok(jobs)
}

/// The files `input` writes.
fn job_for(input: &VideoInput, several: bool, plan: &OutputPlan<'_>) -> Result<Job> {
    // In a folder: FOLDER/NAME.EXTENSION, with NAME's sub-folders made.
    let place = |path: &Path, extension: &str| -> Result<PathBuf> {
        if !several {
            return Ok(path.to_owned());
        }
        let mut name = input.name.clone().into_os_string();
        if !extension.is_empty() {
            name.push(format!(".{extension}"));
        }
        let placed = path.join(name);
        let folder = if extension.is_empty() {
            placed.as_path()
        } else {
            placed.parent().unwrap_or(path)
        };
        std::fs::create_dir_all(folder).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot create the output folder ({e}); choose a writable folder",
                folder.display()
            )
        })?;
        Ok(placed)
    };
    let output = place(plan.output, "mp4")?;
    let report = plan.report.map(|dir| place(dir, "")).transpose()?;
    if let (Some(dir), false) = (&report, several) {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot create the report folder ({e}); choose a writable folder",
                dir.display()
            )
        })?;
    }
    let json = match (plan.json, &report) {
        (Some(path), _) => Some(place(path, "jsonl")?),
        (None, Some(dir)) => Some(dir.join("faces.jsonl")),
        (None, None) => None,
    };
    let csv = plan.csv.map(|p| place(p, "csv")).transpose()?;
    let slowmo = plan
        .slowmo
        .map(|slow| (slow_motion_path(&output, slow.factor), slow));
    Ok(Job {
        input: input.path.clone(),
        summary: summary_path(&output),
        output,
        json,
        csv,
        slowmo,
        report,
    })
}

/// Refuses outputs that are not MP4, would overwrite an input, or cannot be written.
fn check_outputs(job: &Job, canonical_inputs: &HashMap<PathBuf, &Path>) -> Result<()> {
    let extension = job
        .output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    if !extension.eq_ignore_ascii_case("mp4") {
        bail!(
            "{}: the annotated video is H.264 in MP4; give an output ending in .mp4",
            job.output.display()
        );
    }
    let mut written: Vec<&Path> = vec![&job.output, &job.summary];
    written.extend(job.json.as_deref());
    written.extend(job.csv.as_deref());
    if let Some((slow, _)) = &job.slowmo {
        written.push(slow);
    }
    for path in written {
        if let Some(input) = canonical_target(path).and_then(|t| canonical_inputs.get(&t)) {
            bail!(
                "{}: the output would overwrite the input {}; choose another output",
                path.display(),
                input.display()
            );
        }
        super::check_writable_output(path, "mp4")?;
    }
    Ok(())
}

/// The canonical path `path` names, whether or not it exists yet (its folder must).
fn canonical_target(path: &Path) -> Option<PathBuf> {
    if let Ok(path) = path.canonicalize() {
        return Some(path);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

/// The table of a run of several videos: one row per video.
pub fn results_table(results: &[JobResult]) -> String {
    let mut table = format!(
        "{:<12} {:>8} {:>8} {:>7}  input\n",
        "status", "frames", "faces", "fps"
    );
    for result in results {
        let numbers = match &result.outcome {
            Some(outcome) => format!(
                "{:>8} {:>8} {:>7.1}",
                outcome.frames,
                outcome.faces,
                outcome.frames as f64 / outcome.elapsed.as_secs_f64().max(1e-9)
            ),
            None => format!("{:>8} {:>8} {:>7}", "-", "-", "-"),
        };
        // Errors name their file: shown instead of the input, not after it.
        let input = result.job.input.display().to_string();
        let last = match &result.error {
            Some(error) if error.starts_with(&input) => error.clone(),
            Some(error) => format!("{input}: {error}"),
            None => input,
        };
        table.push_str(&format!(
            "{:<12} {numbers}  {last}\n",
            result.status.as_str()
        ));
    }
    let count = |status: Status| results.iter().filter(|r| r.status == status).count();
    table.push_str(&format!(
        "{} videos: {} done, {} partial, {} failed, {} skipped (done before), {} interrupted",
        results.len(),
        count(Status::Done),
        count(Status::Partial),
        count(Status::Failed),
        count(Status::Skipped),
        count(Status::Interrupted)
    ));
    table
}

/// The exit status of a run: interrupted, else some failed, else some partial, else success.
pub fn exit_status(results: &[JobResult]) -> ExitCode {
    let any = |status: Status| results.iter().any(|r| r.status == status);
    if any(Status::Interrupted) {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if any(Status::Failed) {
        ExitCode::from(EXIT_FAILED)
    } else if any(Status::Partial) {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    }
}
