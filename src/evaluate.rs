//! `emolens evaluate`: runs a model over a labelled dataset in ONNX Runtime, optionally averaging
//! test-time-augmented views, and reports accuracy, per-class scores and the confusion matrix.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::augment::{apply_warp, TTA_VIEWS};
use crate::classifier::Classifier;
use crate::dataset::ferplus::{self, LabelMode};
use crate::dataset::{ferplus::argmax, DataSource};
use crate::metrics::{ConfusionMatrix, Report};

/// Faces per ONNX Runtime call.
const EVAL_BATCH: usize = 256;

/// A validated evaluation.
#[derive(Debug, Clone)]
pub struct EvaluateConfig {
    /// The ONNX model.
    pub model: PathBuf,
    /// Labelled images.
    pub data: DataSource,
    /// FER+ votes to relabel the images with (majority).
    pub ferplus: Option<PathBuf>,
    /// Views averaged per image (1 = none), at most [`TTA_VIEWS`]`.len()`.
    pub tta: usize,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Where to draw the confusion matrix.
    pub confusion_png: Option<PathBuf>,
    /// ONNX Runtime library override.
    pub ort_lib: Option<PathBuf>,
}

/// The JSON written by `--json`: the metrics plus what was measured.
#[derive(Debug, Serialize)]
pub struct EvaluationJson<'a> {
    /// The model file.
    pub model: String,
    /// The dataset.
    pub data: String,
    /// Images evaluated.
    pub images: usize,
    /// Views averaged per image.
    pub tta: usize,
    /// Wall-clock inference time per image view, in milliseconds.
    pub ms_per_face: f64,
    /// The metrics.
    #[serde(flatten)]
    pub report: &'a Report,
}

/// Evaluates and prints; returns the report.
///
/// # Errors
/// A model or dataset that cannot be loaded, or an output that cannot be written.
pub fn run(config: &EvaluateConfig) -> Result<Report> {
    let env = crate::ort_runtime::environment(config.ort_lib.as_deref())?;
    if !config.model.is_file() {
        bail!(
            "{}: model not found; give --model MODEL.onnx or train one (see README, Models)",
            config.model.display()
        );
    }
    let mut classifier = Classifier::load(&config.model, &env, 0)
        .with_context(|| format!("loading model {}", config.model.display()))?;
    let labels = classifier.emotion_head()?.labels.clone();
    let p = classifier.meta().preprocess.clone();
    if p.size[0] != p.size[1] {
        bail!(
            "{}: non-square inputs ({:?}) are not supported by evaluate",
            config.model.display(),
            p.size
        );
    }
    let mut data = config
        .data
        .load(Some(&labels), p.size[0])
        .with_context(|| format!("loading evaluation data {}", config.data))?;
    if data.resized > 0 {
        eprintln!(
            "note: {} images were not {}x{} and were resized",
            data.resized, p.size[0], p.size[1]
        );
    }
    if let Some(votes) = &config.ferplus {
        let (relabelled, report) = ferplus::relabel(&data, votes, LabelMode::Majority)?;
        eprintln!(
            "FER+: {} relabelled, {} left out",
            report.joined,
            report.unmatched + report.no_emotion
        );
        data = relabelled;
    }

    let area = p.size[0] * p.size[1];
    let views = &TTA_VIEWS[..config.tta];
    let mut batch = classifier.input_batch(EVAL_BATCH);
    let mut view = vec![0.0f32; area];
    let mut gray = vec![0.0f32; classifier.input_len()];
    let mut confusion = ConfusionMatrix::new(labels.len());
    let mut inference_seconds = 0.0;
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(EVAL_BATCH) {
        let mut summed = vec![0.0f32; chunk.len() * labels.len()];
        for warp in views {
            for (slot, &i) in chunk.iter().enumerate() {
                apply_warp(data.image(i), p.size[0], warp, &mut view);
                // Gray faces feed every channel of a colour model alike.
                for plane in gray.chunks_mut(area) {
                    plane.copy_from_slice(&view);
                }
                let out = batch
                    .as_slice_mut()
                    .map(|s| &mut s[slot * gray.len()..(slot + 1) * gray.len()])
                    .context("input batch is not contiguous")?;
                classifier.normalise(&gray, out);
            }
            let started = Instant::now();
            let probs =
                classifier.emotion_probs(batch.slice(ndarray::s![..chunk.len(), .., .., ..]))?;
            inference_seconds += started.elapsed().as_secs_f64();
            for (s, p) in summed.iter_mut().zip(probs.iter()) {
                *s += p;
            }
        }
        for (row, &i) in summed.chunks(labels.len()).zip(chunk) {
            confusion.add(data.labels[i], argmax(row));
        }
    }
    let report = confusion.report(&labels);
    let ms_per_face = inference_seconds * 1000.0 / (data.len() * views.len()).max(1) as f64;
    println!(
        "{} on {} ({} images, TTA {} view{}):",
        config.model.display(),
        config.data,
        data.len(),
        views.len(),
        if views.len() == 1 { "" } else { "s" }
    );
    print!("{}", report.to_table());
    println!("inference: {ms_per_face:.3} ms per face (batches of {EVAL_BATCH}, CPU)");
    if let Some(path) = &config.json {
        let json = EvaluationJson {
            model: config.model.display().to_string(),
            data: config.data.to_string(),
            images: data.len(),
            tta: views.len(),
            ms_per_face,
            report: &report,
        };
        crate::export::write_atomically(path, &serde_json::to_vec_pretty(&json)?)?;
    }
    if let Some(path) = &config.confusion_png {
        crate::chart::confusion_matrix(path, &labels, confusion.counts())
            .with_context(|| format!("writing {}; choose a writable path", path.display()))?;
    }
    Ok(report)
}
