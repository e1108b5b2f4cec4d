//! `emolens evaluate`: runs a model over a labelled dataset in ONNX Runtime, optionally averaging
//! test-time-augmented views, and reports accuracy, per-class scores and the confusion matrix,
//! the same for each of the model's label views ([`views`]), and per group of images
//! ([`groups`]).

pub mod group_table;
pub mod groups;
pub mod views;

use crate::au_metrics::{AuCounts, AuReport};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::augment::{apply_warp, TTA_VIEWS};
use crate::classifier::Classifier;
use crate::dataset::ferplus::{self, LabelMode};
use crate::dataset::{DataSource, Dataset};
use crate::metrics::{ConfusionMatrix, Report};
use crate::util::argmax;
use groups::{ColumnReport, GroupTable, JoinSummary};
use views::ViewReport;

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
    /// CSV assigning images to groups that are scored separately ([`groups`]).
    pub groups: Option<PathBuf>,
    /// CK+ action-unit table whose units the model's unit head is scored against.
    pub aus: Option<PathBuf>,
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
    /// The metrics of each view, by view name.
    pub views: &'a BTreeMap<String, ViewReport>,
    /// How the groups CSV met the dataset (with `--groups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_rows: Option<&'a JoinSummary>,
    /// Scores per group, by column (with `--groups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<&'a BTreeMap<String, ColumnReport>>,
    /// Action-unit scores (with `--aus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_units: Option<&'a AuReport>,
}

/// What an evaluation measured, ready to print ([`Evaluated::to_text`]) and written to the
/// files asked for.
#[derive(Debug)]
pub struct Evaluated {
    /// Lines worth telling the user before the results (images resized, relabelled, unmatched).
    pub notes: Vec<String>,
    /// The heading: model, data, images and views.
    pub heading: String,
    /// The metrics.
    pub report: Report,
    /// The metrics of each view, by view name.
    pub views: BTreeMap<String, ViewReport>,
    /// Groups: how the CSV met the data and the scores per column (with `--groups`).
    pub groups: Option<(JoinSummary, BTreeMap<String, ColumnReport>)>,
    /// The view maps the group table is printed with.
    view_maps: Vec<views::ViewMap>,
    /// Action-unit scores (with `--aus`).
    pub action_units: Option<AuReport>,
    /// Wall-clock inference time per image view, in milliseconds.
    pub ms_per_face: f64,
}

impl Evaluated {
    /// The results as the terminal shows them.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n{}", self.heading, self.report.to_table());
        for (name, view) in &self.views {
            text.push_str(&view.to_text(name));
        }
        if let Some((summary, columns)) = &self.groups {
            text.push_str(&group_table::to_table(summary, columns, &self.view_maps));
        }
        if let Some(units) = &self.action_units {
            text.push_str(&units.to_table());
        }
        text.push_str(&format!(
            "inference: {:.3} ms per face (batches of {EVAL_BATCH}, CPU)",
            self.ms_per_face
        ));
        text
    }
}

/// Evaluates the model on the data and writes the JSON and PNG asked for.
///
/// # Errors
/// A model or dataset that cannot be loaded, or an output that cannot be written.
pub fn run(config: &EvaluateConfig) -> Result<Evaluated> {
    // Read first: a bad groups file fails before the model and the images are loaded.
    let group_table = config.groups.as_deref().map(GroupTable::read).transpose()?;
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
    let view_maps = views::for_model(&classifier.meta().views, &labels)
        .with_context(|| format!("reading the views of {}", config.model.display()))?;
    let mut notes = Vec::new();
    let (data, unit_threshold) = load_data(config, &classifier, &labels, &mut notes)?;
    let join = match &group_table {
        Some(table) => {
            let cwd = std::env::current_dir().context("reading the current folder")?;
            let join = table.join(&data.sources, &cwd)?;
            if join.summary.images_without_row > 0 {
                notes.push(format!(
                    "note: {} of {} images have no row in {} and are in no group",
                    join.summary.images_without_row,
                    data.len(),
                    table.file.display()
                ));
            }
            Some((table, join))
        }
        None => None,
    };
    let inferred = infer(
        &mut classifier,
        &data,
        config.tta,
        unit_threshold,
        labels.len(),
    )?;
    // (true label, predicted label) of each image.
    let pairs: Vec<(usize, usize)> = data
        .labels
        .iter()
        .copied()
        .zip(inferred.predicted)
        .collect();
    let confusion = ConfusionMatrix::from_pairs(labels.len(), pairs.iter().copied());
    let evaluated = Evaluated {
        notes,
        heading: format!(
            "{} on {} ({} images, TTA {} view{}):",
            config.model.display(),
            config.data,
            data.len(),
            config.tta,
            if config.tta == 1 { "" } else { "s" }
        ),
        report: confusion.report(&labels),
        views: view_maps
            .iter()
            .map(|view| (view.name.clone(), view.score(pairs.iter().copied())))
            .collect(),
        groups: join.map(|(table, join)| {
            let scores = table.score(&join, &labels, &view_maps, &pairs);
            (join.summary, scores)
        }),
        view_maps,
        action_units: inferred.action_units,
        ms_per_face: inferred.ms_per_face,
    };
    if let Some(path) = &config.json {
        let json = EvaluationJson {
            model: config.model.display().to_string(),
            data: config.data.to_string(),
            images: data.len(),
            tta: config.tta,
            ms_per_face: evaluated.ms_per_face,
            report: &evaluated.report,
            views: &evaluated.views,
            group_rows: evaluated.groups.as_ref().map(|(summary, _)| summary),
            groups: evaluated.groups.as_ref().map(|(_, scores)| scores),
            action_units: evaluated.action_units.as_ref(),
        };
        crate::output::write_file(path, &serde_json::to_vec_pretty(&json)?)?;
    }
    if let Some(path) = &config.confusion_png {
        crate::chart::confusion_matrix(path, &labels, confusion.counts())
            .with_context(|| format!("writing {}; choose a writable path", path.display()))?;
    }
    Ok(evaluated)
}

/// The evaluation images at the model's input size and under its labels (images of classes it
/// lacks left out, with a note), with their action units joined (with `--aus`, whose threshold
/// it returns) and relabelled from FER+ votes (with `--ferplus`).
fn load_data(
    config: &EvaluateConfig,
    classifier: &Classifier,
    labels: &[String],
    notes: &mut Vec<String>,
) -> Result<(Dataset, Option<f32>)> {
    let p = &classifier.meta().preprocess;
    if p.size[0] != p.size[1] {
        bail!(
            "{}: non-square inputs ({:?}) are not supported by evaluate",
            config.model.display(),
            p.size
        );
    }
    let (mut data, left_out) = config
        .data
        .load(None, p.size[0])
        .with_context(|| format!("loading evaluation data {}", config.data))?
        .relabel_to(labels);
    for class in &left_out {
        notes.push(format!(
            "note: {} images of class `{}` are left out: the model has no such label",
            class.images, class.class
        ));
    }
    if data.is_empty() {
        bail!(
            "{}: none of its classes is a label of {} ({}); give images of those classes",
            config.data,
            config.model.display(),
            labels.join(", ")
        );
    }
    if data.resized > 0 {
        notes.push(format!(
            "note: {} images were not {}x{} and were resized",
            data.resized, p.size[0], p.size[1]
        ));
    }
    let unit_threshold = match &config.aus {
        Some(table) => {
            let Some(head) = classifier.unit_head() else {
                bail!(
                    "{}: has no action-unit head to score; leave --aus out or give a model trained with --aus",
                    config.model.display()
                );
            };
            crate::dataset::ckplus::attach_aus(&mut data, table)
                .context("joining action units onto the evaluation data")?;
            let units = data.aus.as_ref().map(|a| &a.names);
            if units != Some(&head.labels) {
                bail!(
                    "{}: the model's units {:?} are not the table's {:?}; give the table the model was trained with",
                    table.display(),
                    head.labels,
                    units
                );
            }
            Some(head.threshold.unwrap_or(crate::model_meta::UNIT_THRESHOLD))
        }
        None => None,
    };
    if let Some(votes) = &config.ferplus {
        let (relabelled, report) = ferplus::relabel(&data, votes, LabelMode::Majority)?;
        notes.push(format!("FER+ majority labels: {report}"));
        data = relabelled;
    }
    Ok((data, unit_threshold))
}

/// What the model said about the images.
struct Inferred {
    /// The predicted class of each image.
    predicted: Vec<usize>,
    /// Action-unit scores at the threshold, when the data has units.
    action_units: Option<AuReport>,
    /// Wall-clock inference time per image view, in milliseconds.
    ms_per_face: f64,
}

/// Runs the model on every image, averaging the probabilities of `tta` views of each.
fn infer(
    classifier: &mut Classifier,
    data: &Dataset,
    tta: usize,
    unit_threshold: Option<f32>,
    classes: usize,
) -> Result<Inferred> {
    let p = classifier.meta().preprocess.clone();
    let area = p.size[0] * p.size[1];
    let tta_views = &TTA_VIEWS[..tta];
    let mut batch = classifier.input_batch(EVAL_BATCH);
    let mut view = vec![0.0f32; area];
    let mut gray = vec![0.0f32; classifier.input_len()];
    let mut predicted = Vec::with_capacity(data.len());
    let mut inference_seconds = 0.0;
    let indices: Vec<usize> = (0..data.len()).collect();
    // Emotion probabilities, then any action units'.
    let width = classes + classifier.unit_head().map_or(0, |h| h.labels.len());
    let mut unit_counts = match (&data.aus, unit_threshold) {
        (Some(aus), Some(_)) => Some(AuCounts::new(&aus.names)),
        _ => None,
    };
    let mut summed = Vec::with_capacity(EVAL_BATCH * width);
    for chunk in indices.chunks(EVAL_BATCH) {
        summed.clear();
        summed.resize(chunk.len() * width, 0.0f32);
        for warp in tta_views {
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
                classifier.probabilities(batch.slice(ndarray::s![..chunk.len(), .., .., ..]))?;
            inference_seconds += started.elapsed().as_secs_f64();
            for (s, p) in summed.iter_mut().zip(probs.iter()) {
                *s += p;
            }
        }
        for (row, &i) in summed.chunks(width).zip(chunk) {
            let (emotions, units) = row.split_at(classes);
            predicted.push(argmax(emotions));
            if let (Some(counts), Some(aus), Some(threshold)) =
                (unit_counts.as_mut(), &data.aus, unit_threshold)
            {
                let mean: Vec<f32> = units.iter().map(|u| u / tta_views.len() as f32).collect();
                counts.add(aus.of(i), &mean, threshold);
            }
        }
    }
    Ok(Inferred {
        predicted,
        action_units: unit_counts
            .as_ref()
            .zip(unit_threshold)
            .map(|(counts, threshold)| counts.report(threshold)),
        ms_per_face: inference_seconds * 1000.0 / (data.len() * tta_views.len()).max(1) as f64,
    })
}
