//! `emolens train`: trains the emotion CNN of [`net`] with burn on the CPU (DESIGN.md section 5),
//! keeps the best epoch on the validation split (or an average of the last epochs' weights when
//! that scores higher), checkpoints every epoch for `--resume`, writes the learning curves, and
//! exports the kept weights as an ONNX model with its metadata.

mod average;
mod batches;
pub mod checkpoint;
mod evaluation;
pub mod export;
mod fit;
pub mod folds;
pub mod net;
mod units;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use ndarray::Array4;

use crate::augment::AugmentConfig;
use crate::dataset::ferplus::{self, LabelMode};
use crate::dataset::{DataSource, Dataset};
use crate::model_meta::{Head, HeadKind, ModelMeta, Preprocess, Provenance, Views};
use batches::plain_batch;
use checkpoint::Checkpoint;
pub use evaluation::{evaluate_net, Evaluation};
pub use fit::fit;
use net::{EmotionNet, NetConfig};

/// How the validation split is obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    /// A separate dataset (folder or CSV).
    Source(DataSource),
    /// A fraction of the training data split off with the run's seed: whole subjects when they
    /// are known, else stratified by class.
    Fraction(f64),
}

/// How classes are weighted in the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassWeighting {
    /// Every image counts the same.
    None,
    /// Weight `n / (k * n_c)`: every class contributes equally.
    Balanced,
    /// Square root of the balanced weight: a milder correction.
    Sqrt,
}

/// A training stopped by Ctrl-C (see [`TrainConfig::stop`]).
#[derive(Debug, thiserror::Error)]
#[error("interrupted during epoch {epoch}: the checkpoints of the epochs before it are kept in {}; continue with --resume", checkpoint_dir.display())]
pub struct Interrupted {
    /// The epoch that was stopped (not saved).
    pub epoch: usize,
    /// Where the checkpoints are.
    pub checkpoint_dir: PathBuf,
}

/// A validated training run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Training images.
    pub data: DataSource,
    /// Validation images.
    pub validation: Validation,
    /// FER+ votes to relabel both splits with, and how.
    pub ferplus: Option<(PathBuf, LabelMode)>,
    /// CK+ action-unit table to join onto the images (trains the action-unit head too).
    pub aus: Option<PathBuf>,
    /// Named groupings of the labels written into the model (e.g. valence).
    pub views: Views,
    /// Where the ONNX model goes.
    pub output: PathBuf,
    /// Folder of per-epoch checkpoints, curves and state.
    pub checkpoint_dir: PathBuf,
    /// Continue from the checkpoint folder.
    pub resume: bool,
    /// Weights file of another training whose convolution and hidden layers the network
    /// starts from (transfer learning); the heads start fresh.
    pub init: Option<PathBuf>,
    /// Epochs in total (including those done before a resume).
    pub epochs: usize,
    /// Images per optimisation step.
    pub batch_size: usize,
    /// Peak learning rate (reached after warm-up, then cosine decay).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
    /// Channels of the first convolution block; the other three double it.
    pub width: usize,
    /// Dropout before each fully connected layer.
    pub dropout: f64,
    /// Label smoothing: this much of each target is spread over all classes.
    pub label_smoothing: f32,
    /// Mixup's Beta parameter (0: no mixup).
    pub mixup: f32,
    /// Average the weights of this many last epochs (0: off) and export the average when it
    /// scores higher on validation than the best epoch.
    pub average_last: usize,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: usize,
    /// Loss weighting of classes.
    pub class_weights: ClassWeighting,
    /// Random changes to training images.
    pub augment: AugmentConfig,
    /// Seed of initialisation, shuffling, augmentation and splits.
    pub seed: u64,
    /// Image side in pixels.
    pub size: usize,
    /// Stop each epoch after this many steps (quick runs and tests).
    pub max_steps_per_epoch: Option<usize>,
    /// ONNX Runtime library override.
    pub ort_lib: Option<PathBuf>,
    /// Set (by Ctrl-C) to stop at the next training step: the checkpoints of the epochs done
    /// stay, and `--resume` continues from them.
    pub stop: Arc<AtomicBool>,
}

/// Validation images used to check that ONNX Runtime reproduces the network.
const EXPORT_CHECK_IMAGES: usize = 32;

/// Runs a whole training: data, epochs (resumable), export. Returns the output path.
///
/// # Errors
/// Bad data, unwritable outputs, a checkpoint from another run, or a failed export.
pub fn run(config: &TrainConfig) -> Result<PathBuf> {
    check_size(config.size)?;
    let (train, val) = load_splits(config)?;
    let fitted = fit(config, &train, &val)?;
    let averaged = match config.average_last {
        0 => None,
        _ => average::average_last_epochs(config, &fitted, &train, &val)?,
    };
    export(config, &fitted, averaged, &train, &val)
}

/// The image size must suit the network's four poolings.
fn check_size(size: usize) -> Result<()> {
    if !net::supports_size(size) {
        bail!("image size {size} is not supported: use a multiple of 16 (48 is FER2013's)");
    }
    Ok(())
}

/// What a training leaves behind for export or testing: its state (the best weights are in
/// the checkpoint folder), normalisation and network shape.
pub struct Fitted {
    /// The run's record, best epoch included.
    pub state: Checkpoint,
    /// Normalisation from the training pixels.
    pub preprocess: Preprocess,
    /// The network's shape.
    pub net_config: NetConfig,
}

impl Fitted {
    /// The best epoch's network, for inference.
    ///
    /// # Errors
    /// When the best weights cannot be read.
    pub fn best_net(&self, checkpoint_dir: &Path) -> Result<EmotionNet> {
        Ok(EmotionNet::new(&self.net_config, &Device::flex())
            .try_load_file(Checkpoint::best_path(checkpoint_dir))
            .with_context(|| format!("loading the best weights from {}", checkpoint_dir.display()))?
            .valid())
    }
}

fn load_splits(config: &TrainConfig) -> Result<(Dataset, Dataset)> {
    let mut train = config
        .data
        .load(None, config.size)
        .with_context(|| format!("loading training data {}", config.data))?;
    let mut val = match &config.validation {
        Validation::Source(source) => source
            .load(Some(&train.classes), config.size)
            .with_context(|| format!("loading validation data {source}"))?,
        Validation::Fraction(fraction) => {
            let (rest, val) = train.split_validation(*fraction, config.seed);
            train = rest;
            val
        }
    };
    if let Some(table) = &config.aus {
        for (name, split) in [("training", &mut train), ("validation", &mut val)] {
            crate::dataset::ckplus::attach_aus(split, table)
                .with_context(|| format!("joining action units onto the {name} data"))?;
        }
    }
    if let Some((votes, mode)) = &config.ferplus {
        for (name, split) in [("training", &mut train), ("validation", &mut val)] {
            let (relabelled, report) = ferplus::relabel(split, votes, *mode)
                .with_context(|| format!("joining FER+ votes onto the {name} data"))?;
            eprintln!("FER+ {name}: {report}");
            *split = relabelled;
        }
    }
    let present = train
        .labels
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if present < 2 {
        bail!(
            "{}: the training images hold {present} class ({}); a classifier needs at least two: give a folder (or label) per class",
            config.data,
            train.classes.join(", ")
        );
    }
    for (name, split) in [("training", &train), ("validation", &val)] {
        if split.is_empty() {
            bail!("the {name} split is empty; give more data or a larger --val fraction");
        }
        if split.resized > 0 {
            eprintln!(
                "note: {} {name} images were not {}x{} and were resized",
                split.resized, config.size, config.size
            );
        }
    }
    Ok((train, val))
}

/// Normalisation from the training pixels' mean and standard deviation.
fn preprocess_for(train: &Dataset) -> Preprocess {
    let n = train.pixels.len().max(1) as f64;
    let mean = train.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / n / 255.0;
    let var = train
        .pixels
        .iter()
        .map(|&p| (f64::from(p) / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    Preprocess {
        size: [train.size, train.size],
        channels: 1,
        scale: 1.0 / 255.0,
        mean: vec![mean as f32],
        std: vec![(var.sqrt() as f32).max(1e-3)],
    }
}

/// Writes the curves, then exports and checks the ONNX model of the averaged weights when given,
/// else of the best epoch.
fn export(
    config: &TrainConfig,
    fitted: &Fitted,
    averaged: Option<average::Averaged>,
    train: &Dataset,
    val: &Dataset,
) -> Result<PathBuf> {
    let (state, preprocess) = (&fitted.state, fitted.preprocess.clone());
    state.write_curves(&config.checkpoint_dir)?;
    let (net, kept_epoch, averaged_from, val_accuracy) = match averaged {
        Some(a) => (
            a.net,
            state.epochs_done,
            Some(a.first_epoch),
            a.val_accuracy,
        ),
        None => (
            fitted.best_net(&config.checkpoint_dir)?,
            state.best_epoch,
            None,
            state.best_val_accuracy,
        ),
    };
    let meta = ModelMeta {
        preprocess: preprocess.clone(),
        heads: std::iter::once(Head {
            output: String::new(),
            kind: HeadKind::Softmax,
            labels: train.classes.clone(),
            threshold: None,
        })
        .chain(train.aus.as_ref().map(|aus| Head {
            output: String::new(),
            kind: HeadKind::Sigmoid,
            labels: aus.names.clone(),
            threshold: Some(crate::model_meta::UNIT_THRESHOLD),
        }))
        .collect(),
        views: config.views.clone(),
        provenance: Some(Provenance {
            dataset: config.data.to_string(),
            train_size: train.len(),
            val_size: val.len(),
            epochs: state.epochs_done,
            best_epoch: kept_epoch,
            averaged_from,
            val_accuracy,
            architecture: net::architecture(config.width),
            init: config.init.as_ref().map(|p| p.display().to_string()),
            date: crate::util::utc_date(),
            metrics: Default::default(),
        }),
        quantization: None,
    };
    let check_indices: Vec<usize> = (0..val.len().min(EXPORT_CHECK_IMAGES)).collect();
    let check = Array4::from_shape_vec(
        (check_indices.len(), 1, config.size, config.size),
        plain_batch(val, &check_indices, &preprocess, config.size),
    )?;
    let env = crate::ort_runtime::environment(config.ort_lib.as_deref())?;
    let report = export::export_onnx(&net, meta, &check, &config.output, &env)?;
    let weights = match averaged_from {
        Some(first) => format!("weights averaged over epochs {first}-{kept_epoch}"),
        None => format!("best epoch {kept_epoch}"),
    };
    eprintln!(
        "wrote {} ({weights}, validation accuracy {val_accuracy:.4}); ONNX Runtime matches the trained network on {} images within {:.1e}",
        config.output.display(),
        report.images,
        report.max_abs_diff
    );
    Ok(config.output.clone())
}

/// Default checkpoint folder of an output model: `MODEL.onnx` -> `MODEL.ckpt/`.
pub fn default_checkpoint_dir(output: &Path) -> PathBuf {
    output.with_extension("ckpt")
}
