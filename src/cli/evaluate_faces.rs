//! `emolens evaluate-faces`: how well a detector, with the detection settings `annotate` and
//! `live` take, finds the labelled faces of a folder of photos.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::faces::DetectOptions;
use crate::device::Device;
use crate::faces::recall::{self, LabelledPhotos, RecallReport, MATCH_IOU};
use crate::faces::DetectorSettings;

/// `emolens evaluate-faces`.
#[derive(Debug, Args)]
pub struct EvaluateFacesArgs {
    /// Labelled face boxes, a CSV `image,x,y,w,h,source` beside the photos (e.g.
    /// ../shared/data/faces/boxes.csv); photos in the folder without a row have no face.
    #[arg(long, value_name = "CSV")]
    pub boxes: PathBuf,
    #[command(flatten)]
    pub detection: DetectOptions,
    /// Where YuNet runs.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Also write the results (per photo and in all) as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Runs `emolens evaluate-faces` and prints its table.
///
/// # Errors
/// Bad settings, a missing or malformed CSV or photo, or a detector that does not load.
pub fn run(args: &EvaluateFacesArgs, ort_lib: Option<&Path>) -> Result<()> {
    let detect = args.detection.config()?;
    if let Some(json) = &args.json {
        super::check_writable_output(json, "json")?;
    }
    let labelled = LabelledPhotos::read(&args.boxes)?;
    let env = crate::ort_runtime::environment(ort_lib)?;
    let mut detector = detect.detector.open(&env, args.device)?;
    let report = recall::measure(detector.as_mut(), &labelled)?;
    println!("{}", describe(&detect.detector));
    print!("{}", table(&report));
    if let Some(path) = &args.json {
        let value = serde_json::json!({
            "detector": describe(&detect.detector),
            "match_iou": MATCH_IOU,
            "found": report.found().0,
            "faces": report.found().1,
            "false_faces_people": report.false_faces().0,
            "false_faces_no_people": report.false_faces().1,
            "ms_per_photo": report.ms_per_photo(),
            "by_source": report.by_source,
            "photos": report.photos,
        });
        crate::output::write_atomically(path, |out| {
            serde_json::to_writer_pretty(&mut *out, &value)?;
            std::io::Write::write_all(out, b"\n")
        })
        .with_context(|| format!("{}: cannot write the results", path.display()))?;
    }
    Ok(())
}

/// The detector and its settings in one line.
fn describe(detector: &DetectorSettings) -> String {
    match detector {
        DetectorSettings::Yunet(c) => format!(
            "yunet {} at {} px wide, threshold {}",
            c.model.display(),
            c.width,
            c.threshold
        ),
        DetectorSettings::Haar(c) => format!(
            "haar {}, scale factor {}, min neighbours {}, min face {} px",
            c.cascade.display(),
            c.scale_factor,
            c.min_neighbors,
            c.min_face
        ),
    }
}

/// Per-photo rows, then the totals.
fn table(report: &RecallReport) -> String {
    let mut text = format!(
        "{:<36} {:>6} {:>6} {:>6} {:>8}\n",
        "photo", "faces", "found", "false", "ms"
    );
    for p in &report.photos {
        text.push_str(&format!(
            "{:<36} {:>6} {:>6} {:>6} {:>8.1}\n",
            p.image, p.faces, p.found, p.false_faces, p.ms
        ));
    }
    let (found, faces) = report.found();
    let (people, none) = report.false_faces();
    text.push_str(&format!(
        "recall {found}/{faces} ({:.1} %) at IoU >= {MATCH_IOU}",
        100.0 * found as f64 / faces.max(1) as f64
    ));
    for (source, (f, n)) in &report.by_source {
        text.push_str(&format!("; {source} {f}/{n}"));
    }
    text.push_str(&format!(
        "\nfalse faces: {people} on photos with people, {none} on photos without; {:.1} ms per photo\n",
        report.ms_per_photo()
    ));
    text
}
