//! `emolens train`: trains the emotion CNN of [`net`] with burn on the CPU (DESIGN.md section 5),
//! keeps the best epoch on the validation split, checkpoints every epoch for `--resume`, writes
//! the learning curves, and exports the best weights as an ONNX model with its metadata.

mod batches;
pub mod checkpoint;
mod evaluation;
pub mod export;
pub mod folds;
pub mod net;
mod units;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array4;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::augment::AugmentConfig;
use crate::dataset::ferplus::{self, LabelMode};
use crate::dataset::{DataSource, Dataset};
use crate::model_meta::{Head, HeadKind, ModelMeta, Preprocess, Provenance, Views};
use batches::{argmax_rows, fill_batch, plain_batch};
use checkpoint::{Checkpoint, EpochRecord, RunSignature};
pub use evaluation::{evaluate_net, Evaluation};
use net::{EmotionNet, NetConfig};
use units::{unit_loss, unit_positive_weights};

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
    /// Dropout before each fully connected layer.
    pub dropout: f64,
    /// Label smoothing: this much of each target is spread over all classes.
    pub label_smoothing: f32,
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
}

/// Epochs of linear learning-rate warm-up before the cosine decay.
const WARMUP_EPOCHS: f64 = 1.0;
/// The cosine decay ends at this fraction of the peak learning rate.
const FINAL_LR_FRACTION: f64 = 0.02;
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
    export_best(config, &fitted, &train, &val)
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

/// Trains on `train`, keeping the best epoch on `val`, with checkpoints in the config's folder
/// (resumed when asked).
///
/// # Errors
/// Unwritable checkpoints or a checkpoint from another run.
pub fn fit(config: &TrainConfig, train: &Dataset, val: &Dataset) -> Result<Fitted> {
    let preprocess = preprocess_for(train);
    let class_weights = class_weights(&train.class_counts(), config.class_weights);
    let unit_weights = train.aus.as_ref().map(unit_positive_weights);
    eprintln!(
        "train: {} images, validation: {} images, classes {:?}",
        train.len(),
        val.len(),
        train.classes
    );
    eprintln!(
        "class counts {:?}, loss weights {:?}",
        train.class_counts(),
        rounded(&class_weights)
    );

    std::fs::create_dir_all(&config.checkpoint_dir).with_context(|| {
        format!(
            "cannot create checkpoint folder {}; choose a writable --checkpoint-dir",
            config.checkpoint_dir.display()
        )
    })?;
    let signature = RunSignature {
        classes: train.classes.clone(),
        size: config.size,
        train_images: train.len(),
        val_images: val.len(),
        seed: config.seed,
    };
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let net_config = NetConfig {
        channels: 1,
        size: config.size,
        classes: train.classes.len(),
        action_units: train.aus.as_ref().map_or(0, |aus| aus.names.len()),
        dropout: config.dropout,
    };
    let mut model = EmotionNet::new(&net_config, &device);
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init();
    let mut state = if config.resume {
        let state = Checkpoint::load(&config.checkpoint_dir)?;
        state.check_signature(&signature, &config.checkpoint_dir)?;
        model = model
            .try_load_file(Checkpoint::model_path(&config.checkpoint_dir))
            .with_context(|| {
                format!(
                    "loading the checkpoint in {}",
                    config.checkpoint_dir.display()
                )
            })?;
        optimizer = optimizer
            .load(Checkpoint::optimizer_path(&config.checkpoint_dir))
            .with_context(|| {
                format!(
                    "loading the optimizer state in {}",
                    config.checkpoint_dir.display()
                )
            })?;
        eprintln!(
            "resuming after epoch {} (best {:.4} at epoch {})",
            state.epochs_done, state.best_val_accuracy, state.best_epoch
        );
        state
    } else {
        if let Some(weights) = &config.init {
            model = model.with_trunk_from(weights)?;
            eprintln!("starting from the layers of {}", weights.display());
        }
        Checkpoint::new(signature)
    };

    let steps_per_epoch = steps_per_epoch(train.len(), config);
    let total_steps = steps_per_epoch * config.epochs;
    let mut input = vec![0.0f32; config.batch_size * config.size * config.size];
    let mut targets = vec![0.0f32; config.batch_size * train.classes.len()];
    while state.epochs_done < config.epochs && !state.stopped_early {
        let epoch = state.epochs_done + 1;
        let started = Instant::now();
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            config.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9),
        );
        order.shuffle(&mut rng);
        let progress = epoch_progress(epoch, config.epochs, steps_per_epoch);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (step, batch) in order
            .chunks(config.batch_size)
            .take(steps_per_epoch)
            .enumerate()
        {
            let global_step = (epoch - 1) * steps_per_epoch + step;
            let lr = learning_rate(
                config.learning_rate,
                global_step,
                steps_per_epoch,
                total_steps,
            );
            let n = batch.len();
            fill_batch(
                train,
                batch,
                config,
                &preprocess,
                &mut rng,
                &mut input,
                &mut targets,
            );
            let weights: Vec<f32> = batch
                .iter()
                .map(|&i| class_weights[train.labels[i]])
                .collect();
            let classes = train.classes.len();
            let x = Tensor::<4>::from_data(
                TensorData::new(
                    input[..n * config.size * config.size].to_vec(),
                    [n, 1, config.size, config.size],
                ),
                &device,
            );
            let t = Tensor::<2>::from_data(
                TensorData::new(targets[..n * classes].to_vec(), [n, classes]),
                &device,
            );
            let w = Tensor::<1>::from_data(TensorData::new(weights.clone(), [n]), &device);
            let (logits, unit_logits) = model.forward_heads(x);
            let per_image = (log_softmax(logits.clone(), 1) * t)
                .sum_dim(1)
                .reshape([n])
                .neg();
            let mut loss = (per_image * w)
                .sum()
                .div_scalar(weights.iter().sum::<f32>());
            if let (Some(z), Some(aus), Some(pos)) = (unit_logits, &train.aus, &unit_weights) {
                loss = loss + unit_loss(z, aus, batch, pos, &device);
            }
            let loss_value = f64::from(loss.clone().into_scalar::<f32>());
            let predicted = argmax_rows(logits.argmax(1))?;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(lr, model, grads);

            loss_sum += loss_value * n as f64;
            correct += batch
                .iter()
                .zip(&predicted)
                .filter(|(&i, &p)| train.labels[i] == p)
                .count();
            seen += n;
            progress.set_message(format!(
                "loss {:.4} acc {:.4} lr {lr:.2e}",
                loss_sum / seen as f64,
                correct as f64 / seen as f64
            ));
            progress.inc(1);
        }
        progress.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        let evaluation = evaluate_net(&model.valid(), val, &preprocess, config.size)?;
        let (val_loss, val_accuracy) = (evaluation.loss, evaluation.confusion.accuracy());
        if let Some(units) = &evaluation.units {
            eprintln!(
                "epoch {epoch}: validation action-unit micro F1 {:.4}",
                units.report(crate::model_meta::UNIT_THRESHOLD).micro.f1
            );
        }
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy,
            learning_rate: learning_rate(
                config.learning_rate,
                epoch * steps_per_epoch - 1,
                steps_per_epoch,
                total_steps,
            ),
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: seen as f64 / train_seconds,
        };
        eprintln!(
            "epoch {epoch}/{}: train loss {:.4} acc {:.4} | val loss {:.4} acc {:.4} | {:.0} s, {:.0} img/s",
            config.epochs, record.train_loss, record.train_accuracy, val_loss, val_accuracy, record.seconds, record.images_per_second
        );
        let improved = state.record(record, config.patience);
        if improved {
            model
                .clone()
                .save_file(Checkpoint::best_path(&config.checkpoint_dir))
                .context("saving the best weights")?;
        }
        model
            .clone()
            .save_file(Checkpoint::model_path(&config.checkpoint_dir))
            .context("saving the checkpoint")?;
        optimizer
            .save(Checkpoint::optimizer_path(&config.checkpoint_dir))
            .context("saving the optimizer state")?;
        state.save(&config.checkpoint_dir)?;
        if state.stopped_early {
            eprintln!(
                "early stop: no better validation accuracy (nor equal with lower loss) for {} epochs",
                config.patience
            );
        }
    }
    Ok(Fitted {
        state,
        preprocess,
        net_config,
    })
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
            eprintln!(
                "FER+ {name}: {} relabelled, {} without votes, {} without an emotion majority (left out)",
                report.joined, report.unmatched, report.no_emotion
            );
            *split = relabelled;
        }
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

/// Loss weight of each class under `weighting`.
pub fn class_weights(counts: &[usize], weighting: ClassWeighting) -> Vec<f32> {
    let k = counts.len() as f32;
    let n = counts.iter().sum::<usize>() as f32;
    counts
        .iter()
        .map(|&c| {
            let balanced = if c == 0 { 0.0 } else { n / (k * c as f32) };
            match weighting {
                ClassWeighting::None => 1.0,
                ClassWeighting::Balanced => balanced,
                ClassWeighting::Sqrt => balanced.sqrt(),
            }
        })
        .collect()
}

fn rounded(values: &[f32]) -> Vec<f32> {
    values.iter().map(|v| (v * 100.0).round() / 100.0).collect()
}

fn steps_per_epoch(images: usize, config: &TrainConfig) -> usize {
    let full = images.div_ceil(config.batch_size);
    config
        .max_steps_per_epoch
        .map_or(full, |max| full.min(max))
        .max(1)
}

/// Linear warm-up over [`WARMUP_EPOCHS`], then cosine decay to [`FINAL_LR_FRACTION`] of the peak.
fn learning_rate(peak: f64, step: usize, steps_per_epoch: usize, total_steps: usize) -> f64 {
    let warmup = ((WARMUP_EPOCHS * steps_per_epoch as f64) as usize)
        .min(total_steps / 2)
        .max(1);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total_steps - warmup).max(1) as f64;
    let floor = peak * FINAL_LR_FRACTION;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

fn epoch_progress(epoch: usize, epochs: usize, steps: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    let style = ProgressStyle::with_template(&format!(
        "epoch {epoch}/{epochs} [{{bar:30}}] {{pos}}/{{len}} {{msg}} eta {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Loads the best weights, writes the curves, exports and checks the ONNX model.
fn export_best(
    config: &TrainConfig,
    fitted: &Fitted,
    train: &Dataset,
    val: &Dataset,
) -> Result<PathBuf> {
    let (state, preprocess) = (&fitted.state, fitted.preprocess.clone());
    state.write_curves(&config.checkpoint_dir)?;
    let best = fitted.best_net(&config.checkpoint_dir)?;
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
            best_epoch: state.best_epoch,
            val_accuracy: state.best_val_accuracy,
            architecture: net::ARCHITECTURE.to_owned(),
            init: config.init.as_ref().map(|p| p.display().to_string()),
            date: crate::util::utc_date(),
            metrics: Default::default(),
        }),
    };
    let check_indices: Vec<usize> = (0..val.len().min(EXPORT_CHECK_IMAGES)).collect();
    let check = Array4::from_shape_vec(
        (check_indices.len(), 1, config.size, config.size),
        plain_batch(val, &check_indices, &preprocess, config.size),
    )?;
    let env = crate::ort_runtime::environment(config.ort_lib.as_deref())?;
    let report = export::export_onnx(&best, meta, &check, &config.output, &env)?;
    eprintln!(
        "wrote {} (best epoch {}, validation accuracy {:.4}); ONNX Runtime matches the trained network on {} images within {:.1e}",
        config.output.display(),
        state.best_epoch,
        state.best_val_accuracy,
        report.images,
        report.max_abs_diff
    );
    Ok(config.output.clone())
}

/// Default checkpoint folder of an output model: `MODEL.onnx` -> `MODEL.ckpt/`.
pub fn default_checkpoint_dir(output: &Path) -> PathBuf {
    output.with_extension("ckpt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learning_rate_warms_up_for_an_epoch_then_decays_to_its_floor() {
        let (peak, per_epoch, total) = (1e-3, 100, 1000);
        let lr = |step| learning_rate(peak, step, per_epoch, total);
        assert!((lr(0) - peak / 100.0).abs() < 1e-12, "warm-up starts low");
        assert!((lr(99) - peak).abs() < 1e-12, "the peak after one epoch");
        assert!(lr(300) < lr(200) && lr(200) < lr(100), "then it falls");
        assert!(
            (lr(999) - peak * FINAL_LR_FRACTION).abs() < 1e-6,
            "to its floor"
        );
        assert!(
            (lr(5000) - peak * FINAL_LR_FRACTION).abs() < 1e-12,
            "and stays there"
        );
        // A run shorter than two epochs warms up for half of it at most.
        assert!((learning_rate(peak, 4, 100, 10) - peak).abs() < 1e-12);
    }

    #[test]
    fn class_weights_lift_rare_classes() {
        let counts = [10, 40, 0];
        assert_eq!(
            class_weights(&counts, ClassWeighting::None),
            [1.0, 1.0, 1.0]
        );
        let balanced = class_weights(&counts, ClassWeighting::Balanced);
        // n / (k * c): 50 / (3 * 10) and 50 / (3 * 40); a class without images gets 0.
        assert!(
            (balanced[0] - 50.0 / 30.0).abs() < 1e-6 && (balanced[1] - 50.0 / 120.0).abs() < 1e-6
        );
        assert_eq!(balanced[2], 0.0);
        let sqrt = class_weights(&counts, ClassWeighting::Sqrt);
        assert!((sqrt[0] - balanced[0].sqrt()).abs() < 1e-6);
    }
}
