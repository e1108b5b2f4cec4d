//! `emolens train` and `emolens evaluate` arguments and their validation into a
//! [`TrainConfig`] and an [`EvaluateConfig`]; cross-validation's table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::augment::{AugmentConfig, TTA_VIEWS};
use crate::dataset::ferplus::LabelMode;
use crate::dataset::{DataSource, DEFAULT_IMAGE_SIZE};
use crate::evaluate::EvaluateConfig;
use crate::train::net::DEFAULT_WIDTH;
use crate::train::{ClassWeighting, TrainConfig, Validation};

/// Folds of a cross-validation: at least two, and few enough that each fold keeps a test set.
const FOLDS: std::ops::RangeInclusive<usize> = 2..=20;

/// Channels of the first convolution block: the last block has 8x as many.
const WIDTHS: std::ops::RangeInclusive<usize> = 4..=128;

/// `emolens train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training images: a folder ROOT/<class>/*.png|jpg, or fer2013.csv[#Usage] (e.g. fer2013.csv#Training).
    #[arg(long, value_name = "DIR|CSV", help_heading = "Data")]
    pub data: String,
    /// Validation images (folder or CSV[#Usage]), or a fraction 0..1 of --data split off: whole
    /// subjects when the file names say who is in them (CK+), else a share of every class.
    #[arg(long, value_name = "DIR|CSV|FRACTION", help_heading = "Data")]
    pub val: String,
    /// Output model file (.onnx); written only when training and the export check succeed.
    #[arg(short, long, value_name = "MODEL.onnx")]
    pub output: PathBuf,
    /// Epochs in total (a resumed run counts the epochs already done).
    #[arg(long, help_heading = "Training")]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64, help_heading = "Training")]
    pub batch: usize,
    /// Peak learning rate (1 epoch of warm-up, then cosine decay).
    #[arg(long, default_value_t = 1e-3, help_heading = "Training")]
    pub lr: f64,
    /// AdamW decoupled weight decay (per step, scaled by the learning rate).
    #[arg(long, default_value_t = 0.01, help_heading = "Training")]
    pub weight_decay: f32,
    /// Channels of the first convolution block; the other three have 2x, 4x and 8x as many
    /// (32: the FER2013 and CK+ models' 32/64/128/256; 24: the FER+ model's 24/48/96/192).
    /// Training and inference time grow about with its square.
    #[arg(long, value_name = "CHANNELS", default_value_t = DEFAULT_WIDTH, help_heading = "Training")]
    pub width: usize,
    /// Dropout before each fully connected layer, 0..1.
    #[arg(long, default_value_t = 0.3, help_heading = "Training")]
    pub dropout: f64,
    /// Label smoothing, 0..1.
    #[arg(long, default_value_t = 0.1, help_heading = "Training")]
    pub label_smoothing: f32,
    /// Stop after this many epochs without a better validation accuracy (or the same accuracy
    /// with a lower validation loss).
    #[arg(long, default_value_t = 8, help_heading = "Training")]
    pub patience: usize,
    /// Class weighting of the loss.
    #[arg(long, value_enum, default_value_t = ClassWeighting::Sqrt, help_heading = "Training")]
    pub class_weights: ClassWeighting,
    /// Train on the images as they are (no flip, rotation, shift, zoom, brightness/contrast,
    /// erasing).
    #[arg(long, help_heading = "Training")]
    pub no_augment: bool,
    /// Random erasing: the probability, 0..1, that a training image gets a rectangle of 2 to
    /// 33 % of its area filled with noise (0: off).
    #[arg(
        long,
        value_name = "P",
        default_value_t = 0.0,
        help_heading = "Training"
    )]
    pub erase: f32,
    /// Mixup: every batch is blended with a shuffled copy of itself, images and targets alike,
    /// by a weight drawn from Beta(ALPHA, ALPHA), the original keeping the larger part (0: off;
    /// 0.2 to 0.4 is usual). Not with --aus.
    #[arg(
        long,
        value_name = "ALPHA",
        default_value_t = 0.0,
        help_heading = "Training"
    )]
    pub mixup: f32,
    /// Stochastic weight averaging: keep the weights of the last K epochs, average them,
    /// measure BatchNorm's statistics again on the training images, and export the average
    /// instead of the best epoch when it scores higher on validation (0: off; K >= 2).
    #[arg(
        long,
        value_name = "K",
        default_value_t = 0,
        conflicts_with = "folds",
        help_heading = "Training"
    )]
    pub average_last: usize,
    /// FER+ votes (fer2013new.csv) to relabel both splits with, joined on the image file name.
    #[arg(long, value_name = "CSV", help_heading = "Data")]
    pub ferplus: Option<PathBuf>,
    /// CK+ action-unit table (subject,sequence,AU1,...) joined onto the images by the subject
    /// and sequence in their file names; trains an action-unit head beside the emotion head.
    #[arg(long, value_name = "CSV", help_heading = "Data")]
    pub aus: Option<PathBuf>,
    /// Views written into the model: JSON {"view": {"group": ["label", ...]}}, e.g. a valence
    /// view that `evaluate` scores and `annotate --view` shows.
    #[arg(long, value_name = "FILE.json", help_heading = "Data")]
    pub views: Option<PathBuf>,
    /// How FER+ votes become targets.
    #[arg(long, value_enum, default_value_t = LabelMode::Majority, requires = "ferplus", help_heading = "Data")]
    pub labels: LabelMode,
    /// Seed of initialisation, shuffling, augmentation and --val fraction splits.
    #[arg(long, default_value_t = 1, help_heading = "Training")]
    pub seed: u64,
    /// Checkpoint folder (default: MODEL.ckpt next to the output).
    #[arg(long, value_name = "DIR", help_heading = "Run")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue the run saved in the checkpoint folder.
    #[arg(long, help_heading = "Run")]
    pub resume: bool,
    /// Start the convolution and hidden layers from another training's weights (its
    /// MODEL.ckpt/best.bpk, e.g. the shipped models/emolens-fer2013.bpk); the heads start fresh.
    /// Weights of a wider network are narrowed to --width: each layer keeps its strongest
    /// channels (structured pruning), a quick start for a cheaper network.
    #[arg(
        long,
        value_name = "WEIGHTS.bpk",
        conflicts_with = "resume",
        help_heading = "Training"
    )]
    pub init: Option<PathBuf>,
    /// Stop each epoch after N steps (quick trial runs).
    #[arg(long, value_name = "N", help_heading = "Run")]
    pub max_steps: Option<usize>,
    /// K-fold cross-validation instead of one model: trains K networks, each tested on one fold
    /// (by subject when the file names say who is in them, as CK+'s do), with --val as the
    /// fraction split off each training part; writes OUTPUT.folds.json, no model.
    #[arg(
        long,
        value_name = "K",
        conflicts_with = "resume",
        help_heading = "Run"
    )]
    pub folds: Option<usize>,
}

/// `emolens evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model to evaluate (default: the shipped models/emolens-ferplus.int8.onnx).
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,
    /// Labelled images: a folder ROOT/<class>/*.png|jpg, or fer2013.csv[#Usage].
    #[arg(long, value_name = "DIR|CSV")]
    pub data: String,
    /// Relabel the images with the FER+ majority vote (fer2013new.csv).
    #[arg(long, value_name = "CSV")]
    pub ferplus: Option<PathBuf>,
    /// Test-time augmentation: average this many views per image (1 = off, up to 8).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub tta: usize,
    /// Write the metrics as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the confusion matrix as a PNG.
    #[arg(long, value_name = "FILE.png")]
    pub confusion: Option<PathBuf>,
    /// Score groups of images separately: a CSV with a `path` column and one column per
    /// grouping (e.g. path,age,gender); see README, Evaluate a model.
    #[arg(long, value_name = "CSV")]
    pub groups: Option<PathBuf>,
    /// CK+ action-unit table (subject,sequence,AU1,...) to score the model's action-unit head
    /// against: per-unit precision, recall and F1, micro and macro F1.
    #[arg(long, value_name = "CSV")]
    pub aus: Option<PathBuf>,
}

/// Validates `emolens train` arguments.
///
/// # Errors
/// Says which value is invalid and what is valid.
pub fn train_config(args: TrainArgs, ort_lib: Option<PathBuf>) -> Result<TrainConfig> {
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(args.lr > 0.0 && args.lr < 1.0) {
        bail!("--lr {} is out of range: use a value in (0, 1)", args.lr);
    }
    if !WIDTHS.contains(&args.width) {
        bail!(
            "--width {} is out of range: use {} to {} channels ({DEFAULT_WIDTH} is the shipped models')",
            args.width,
            WIDTHS.start(),
            WIDTHS.end()
        );
    }
    in_unit_range("--dropout", args.dropout, true)?;
    in_unit_range("--label-smoothing", f64::from(args.label_smoothing), true)?;
    in_unit_range("--erase", f64::from(args.erase), true)?;
    if !(0.0..=10.0).contains(&args.mixup) {
        bail!(
            "--mixup {} is out of range: use 0 (off) or a Beta parameter up to 10, such as 0.2",
            args.mixup
        );
    }
    if args.mixup > 0.0 && args.aus.is_some() {
        bail!("--mixup does not blend action-unit targets; leave it out when training with --aus");
    }
    if args.average_last == 1 || args.average_last > args.epochs {
        bail!(
            "--average-last {} is out of range: use 0 (off) or 2 to --epochs ({})",
            args.average_last,
            args.epochs
        );
    }
    if args.weight_decay < 0.0 {
        bail!("--weight-decay must not be negative");
    }
    if args.patience == 0 {
        bail!("--patience must be at least 1");
    }
    let validation = match args.val.parse::<f64>() {
        Ok(fraction) => {
            in_unit_range("--val fraction", fraction, false)?;
            Validation::Fraction(fraction)
        }
        Err(_) => Validation::Source(DataSource::parse(&args.val)),
    };
    super::check_writable_output(&args.output, "onnx")?;
    if let Some(init) = args.init.as_ref().filter(|p| !p.is_file()) {
        bail!(
            "{}: not found; give --init a weights file such as models/emolens-fer2013.bpk",
            init.display()
        );
    }
    let checkpoint_dir = args
        .checkpoint_dir
        .unwrap_or_else(|| crate::train::default_checkpoint_dir(&args.output));
    Ok(TrainConfig {
        data: DataSource::parse(&args.data),
        validation,
        ferplus: args.ferplus.map(|p| (p, args.labels)),
        aus: args.aus,
        views: match &args.views {
            Some(path) => read_views(path)?,
            None => Default::default(),
        },
        output: args.output,
        checkpoint_dir,
        resume: args.resume,
        init: args.init,
        epochs: args.epochs,
        batch_size: args.batch,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        width: args.width,
        dropout: args.dropout,
        label_smoothing: args.label_smoothing,
        mixup: args.mixup,
        average_last: args.average_last,
        patience: args.patience,
        class_weights: args.class_weights,
        augment: if args.no_augment {
            AugmentConfig::NONE
        } else {
            AugmentConfig {
                erase: args.erase,
                ..AugmentConfig::DEFAULT
            }
        },
        seed: args.seed,
        size: DEFAULT_IMAGE_SIZE,
        max_steps_per_epoch: args.max_steps,
        ort_lib,
        stop: Default::default(),
    })
}

/// Validates `emolens evaluate` arguments.
///
/// # Errors
/// Says which value is invalid and what is valid.
pub fn evaluate_config(args: EvaluateArgs, ort_lib: Option<PathBuf>) -> Result<EvaluateConfig> {
    if args.tta == 0 || args.tta > TTA_VIEWS.len() {
        bail!(
            "--tta {} is out of range: use 1 (off) to {}",
            args.tta,
            TTA_VIEWS.len()
        );
    }
    if let Some(json) = &args.json {
        super::check_writable_output(json, "json")?;
    }
    if let Some(png) = &args.confusion {
        super::check_writable_output(png, "png")?;
    }
    Ok(EvaluateConfig {
        model: args.model.unwrap_or_else(crate::util::default_model_path),
        data: DataSource::parse(&args.data),
        ferplus: args.ferplus,
        tta: args.tta,
        json: args.json,
        confusion_png: args.confusion,
        groups: args.groups,
        aus: args.aus,
        ort_lib,
    })
}

fn in_unit_range(name: &str, value: f64, inclusive_zero: bool) -> Result<()> {
    let ok = if inclusive_zero {
        (0.0..1.0).contains(&value)
    } else {
        value > 0.0 && value < 1.0
    };
    if !ok {
        bail!(
            "{name} {value} is out of range: use a value in {}0, 1)",
            if inclusive_zero { "[" } else { "(" }
        );
    }
    Ok(())
}

/// Reads a views file: `{"view": {"group": ["label", ...]}}`.
fn read_views(path: &Path) -> Result<crate::model_meta::Views> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the views file", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a views file; expected JSON {{\"view\": {{\"group\": [\"label\", ...]}}}}",
            path.display()
        )
    })
}

/// Cross-validates and prints the per-fold table and the spread of each metric.
pub(super) fn run_folds(config: &TrainConfig, k: usize) -> Result<ExitCode> {
    if !FOLDS.contains(&k) {
        bail!(
            "--folds {k} is out of range: use {} to {}",
            FOLDS.start(),
            FOLDS.end()
        );
    }
    let report_path = config.output.with_extension("folds.json");
    let report = crate::train::folds::run(config, k, &report_path)?;
    println!(
        "{}
  written: {}",
        report.to_table(),
        report_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
