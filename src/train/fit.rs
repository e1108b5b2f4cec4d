//! One training run: the network, optimizer and checkpoint are started (or resumed), then each
//! epoch trains on shuffled, augmented batches with the class-weighted loss (and the action-unit
//! loss), is validated, and is checkpointed; the best epoch's weights are kept, and so are the
//! last epochs' weights when they are to be averaged.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::average::keeps_epoch;
use super::batches::{argmax_rows, fill_batch};
use super::checkpoint::{Checkpoint, EpochRecord, RunSignature};
use super::evaluation::evaluate_net;
use super::net::{EmotionNet, NetConfig};
use super::units::{unit_loss, unit_positive_weights};
use super::{preprocess_for, ClassWeighting, Fitted, TrainConfig};
use crate::dataset::Dataset;
use crate::model_meta::Preprocess;

/// Epochs of linear learning-rate warm-up before the cosine decay.
const WARMUP_EPOCHS: f64 = 1.0;
/// The cosine decay ends at this fraction of the peak learning rate.
const FINAL_LR_FRACTION: f64 = 0.02;

/// Trains on `train`, keeping the best epoch on `val`, with checkpoints in the config's folder
/// (resumed when asked).
///
/// # Errors
/// Unwritable checkpoints or a checkpoint from another run.
pub fn fit(config: &TrainConfig, train: &Dataset, val: &Dataset) -> Result<Fitted> {
    let preprocess = preprocess_for(train);
    let weights = LossWeights {
        classes: class_weights(&train.class_counts(), config.class_weights),
        units: train.aus.as_ref().map(unit_positive_weights),
    };
    eprintln!(
        "train: {} images, validation: {} images, classes {:?}",
        train.len(),
        val.len(),
        train.classes
    );
    eprintln!(
        "class counts {:?}, loss weights {:?}",
        train.class_counts(),
        rounded(&weights.classes)
    );
    std::fs::create_dir_all(&config.checkpoint_dir).with_context(|| {
        format!(
            "cannot create checkpoint folder {}; choose a writable --checkpoint-dir",
            config.checkpoint_dir.display()
        )
    })?;
    let device = Device::flex().autodiff();
    device.seed(config.seed);
    let net_config = NetConfig {
        channels: 1,
        size: config.size,
        width: config.width,
        classes: train.classes.len(),
        action_units: train.aus.as_ref().map_or(0, |aus| aus.names.len()),
        dropout: config.dropout,
    };
    let signature = RunSignature {
        classes: train.classes.clone(),
        size: config.size,
        width: config.width,
        train_images: train.len(),
        val_images: val.len(),
        seed: config.seed,
    };
    let (mut model, mut optimizer, mut state) = start(config, &net_config, signature, &device)?;
    let schedule = Schedule {
        peak: config.learning_rate,
        steps_per_epoch: steps_per_epoch(train.len(), config),
        epochs: config.epochs,
    };
    let mut buffers = BatchBuffers {
        input: vec![0.0f32; config.batch_size * config.size * config.size],
        targets: vec![0.0f32; config.batch_size * train.classes.len()],
    };
    while state.epochs_done < config.epochs && !state.stopped_early {
        let epoch = state.epochs_done + 1;
        let started = Instant::now();
        let run = EpochRun {
            config,
            train,
            preprocess: &preprocess,
            weights: &weights,
            schedule,
            device: &device,
        };
        let (trained, totals) = run.train(epoch, model, &mut optimizer, &mut buffers)?;
        model = trained;
        let train_seconds = started.elapsed().as_secs_f64();
        let evaluation = evaluate_net(&model.valid(), val, &preprocess, config.size)?;
        if let Some(units) = &evaluation.units {
            eprintln!(
                "epoch {epoch}: validation action-unit micro F1 {:.4}",
                units.report(crate::model_meta::UNIT_THRESHOLD).micro.f1
            );
        }
        let record = EpochRecord {
            epoch,
            train_loss: totals.loss_sum / totals.seen.max(1) as f64,
            train_accuracy: totals.correct as f64 / totals.seen.max(1) as f64,
            val_loss: evaluation.loss,
            val_accuracy: evaluation.confusion.accuracy(),
            learning_rate: schedule.rate(epoch * schedule.steps_per_epoch - 1),
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: totals.seen as f64 / train_seconds,
        };
        eprintln!(
            "epoch {epoch}/{}: train loss {:.4} acc {:.4} | val loss {:.4} acc {:.4} | {:.0} s, {:.0} img/s",
            config.epochs,
            record.train_loss,
            record.train_accuracy,
            record.val_loss,
            record.val_accuracy,
            record.seconds,
            record.images_per_second
        );
        eprintln!("epoch {epoch}: training steps: {}", totals.time.breakdown());
        let improved = state.record(record, config.patience);
        save_epoch(&config.checkpoint_dir, &model, &optimizer, &state, improved)?;
        if keeps_epoch(config, epoch) {
            model
                .clone()
                .save_file(Checkpoint::epoch_path(&config.checkpoint_dir, epoch))
                .with_context(|| format!("saving the weights of epoch {epoch}"))?;
        }
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

/// A fresh network (from `--init` weights when given) and optimizer with a new checkpoint, or
/// those of the checkpoint folder when resuming (which must belong to the same run).
fn start(
    config: &TrainConfig,
    net_config: &NetConfig,
    signature: RunSignature,
    device: &Device,
) -> Result<(EmotionNet, ModuleOptimizer, Checkpoint)> {
    let mut model = EmotionNet::new(net_config, device);
    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init();
    let dir = &config.checkpoint_dir;
    if !config.resume {
        if let Some(weights) = &config.init {
            model = model.with_trunk_from(weights)?;
            eprintln!("starting from the layers of {}", weights.display());
        }
        return Ok((model, optimizer, Checkpoint::new(signature)));
    }
    let state = Checkpoint::load(dir)?;
    state.check_signature(&signature, dir)?;
    model = model
        .try_load_file(Checkpoint::model_path(dir))
        .with_context(|| format!("loading the checkpoint in {}", dir.display()))?;
    optimizer = optimizer
        .load(Checkpoint::optimizer_path(dir))
        .with_context(|| format!("loading the optimizer state in {}", dir.display()))?;
    eprintln!(
        "resuming after epoch {} (best {:.4} at epoch {})",
        state.epochs_done, state.best_val_accuracy, state.best_epoch
    );
    Ok((model, optimizer, state))
}

/// Writes the epoch's checkpoint: the weights (also as the best when `improved`), the
/// optimizer state and the run's state.
fn save_epoch(
    dir: &Path,
    model: &EmotionNet,
    optimizer: &ModuleOptimizer,
    state: &Checkpoint,
    improved: bool,
) -> Result<()> {
    if improved {
        model
            .clone()
            .save_file(Checkpoint::best_path(dir))
            .context("saving the best weights")?;
    }
    model
        .clone()
        .save_file(Checkpoint::model_path(dir))
        .context("saving the checkpoint")?;
    optimizer
        .save(Checkpoint::optimizer_path(dir))
        .context("saving the optimizer state")?;
    state.save(dir)
}

/// Loss weights: per class, and per action unit for its positive examples.
struct LossWeights {
    classes: Vec<f32>,
    units: Option<Vec<f32>>,
}

/// The learning rate over the run: one epoch of warm-up, then cosine decay to a floor.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    peak: f64,
    steps_per_epoch: usize,
    epochs: usize,
}

impl Schedule {
    /// The learning rate at `step` (from 0) of the run.
    fn rate(self, step: usize) -> f64 {
        learning_rate(
            self.peak,
            step,
            self.steps_per_epoch,
            self.steps_per_epoch * self.epochs,
        )
    }
}

/// The batch's input images and targets, reused for every step.
struct BatchBuffers {
    /// `[batch, 1, size, size]`, normalised.
    input: Vec<f32>,
    /// `[batch, classes]`: label distributions.
    targets: Vec<f32>,
}

/// What an epoch's training steps add up to.
#[derive(Debug, Default)]
struct EpochTotals {
    loss_sum: f64,
    correct: usize,
    seen: usize,
    /// Where the epoch's time went.
    time: StepTimes,
}

/// Seconds spent in each part of the training steps.
#[derive(Debug, Default, Clone, Copy)]
struct StepTimes {
    /// Batches: augmentation, normalisation and targets.
    data: f64,
    /// The forward pass and the loss.
    forward: f64,
    /// The backward pass (gradients).
    backward: f64,
    /// The optimiser's step.
    optimiser: f64,
}

impl StepTimes {
    /// `data 12 s (10 %), forward ...` for the log.
    fn breakdown(&self) -> String {
        let total = (self.data + self.forward + self.backward + self.optimiser).max(1e-9);
        [
            ("data", self.data),
            ("forward", self.forward),
            ("backward", self.backward),
            ("optimiser", self.optimiser),
        ]
        .iter()
        .map(|(name, seconds)| format!("{name} {seconds:.0} s ({:.0} %)", 100.0 * seconds / total))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What one epoch of training needs.
struct EpochRun<'a> {
    config: &'a TrainConfig,
    train: &'a Dataset,
    preprocess: &'a Preprocess,
    weights: &'a LossWeights,
    schedule: Schedule,
    device: &'a Device,
}

impl EpochRun<'_> {
    /// Trains epoch `epoch` (from 1): shuffled batches, augmented, one optimizer step each.
    fn train(
        &self,
        epoch: usize,
        mut model: EmotionNet,
        optimizer: &mut ModuleOptimizer,
        buffers: &mut BatchBuffers,
    ) -> Result<(EmotionNet, EpochTotals)> {
        let (config, train) = (self.config, self.train);
        let steps = self.schedule.steps_per_epoch;
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            config.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9),
        );
        order.shuffle(&mut rng);
        let progress = epoch_progress(epoch, config.epochs, steps);
        let mut totals = EpochTotals::default();
        for (step, batch) in order.chunks(config.batch_size).take(steps).enumerate() {
            if config.stop.load(std::sync::atomic::Ordering::Relaxed) {
                progress.finish_and_clear();
                return Err(super::Interrupted {
                    epoch,
                    checkpoint_dir: config.checkpoint_dir.clone(),
                }
                .into());
            }
            let lr = self.schedule.rate((epoch - 1) * steps + step);
            let mut clock = Instant::now();
            let mut lap = |slot: &mut f64| {
                *slot += clock.elapsed().as_secs_f64();
                clock = Instant::now();
            };
            fill_batch(
                train,
                batch,
                config,
                self.preprocess,
                &mut rng,
                &mut buffers.input,
                &mut buffers.targets,
            );
            lap(&mut totals.time.data);
            let (loss, predicted) = self.loss(&model, batch, buffers)?;
            let loss_value = f64::from(loss.clone().into_scalar::<f32>());
            lap(&mut totals.time.forward);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lap(&mut totals.time.backward);
            model = optimizer.step(lr, model, grads);
            lap(&mut totals.time.optimiser);
            totals.loss_sum += loss_value * batch.len() as f64;
            totals.correct += batch
                .iter()
                .zip(&predicted)
                .filter(|(&i, &p)| train.labels[i] == p)
                .count();
            totals.seen += batch.len();
            progress.set_message(format!(
                "loss {:.4} acc {:.4} lr {lr:.2e}",
                totals.loss_sum / totals.seen as f64,
                totals.correct as f64 / totals.seen as f64
            ));
            progress.inc(1);
        }
        progress.finish_and_clear();
        Ok((model, totals))
    }

    /// The batch's loss (class-weighted cross-entropy against the label distributions, plus the
    /// action-unit loss) and the predicted classes.
    fn loss(
        &self,
        model: &EmotionNet,
        batch: &[usize],
        buffers: &BatchBuffers,
    ) -> Result<(Tensor<1>, Vec<usize>)> {
        let (n, size, classes) = (batch.len(), self.config.size, self.train.classes.len());
        let weights: Vec<f32> = batch
            .iter()
            .map(|&i| self.weights.classes[self.train.labels[i]])
            .collect();
        let weight_sum = weights.iter().sum::<f32>();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                buffers.input[..n * size * size].to_vec(),
                [n, 1, size, size],
            ),
            self.device,
        );
        let t = Tensor::<2>::from_data(
            TensorData::new(buffers.targets[..n * classes].to_vec(), [n, classes]),
            self.device,
        );
        let w = Tensor::<1>::from_data(TensorData::new(weights, [n]), self.device);
        let (logits, unit_logits) = model.forward_heads(x);
        let per_image = (log_softmax(logits.clone(), 1) * t)
            .sum_dim(1)
            .reshape([n])
            .neg();
        let mut loss = (per_image * w).sum().div_scalar(weight_sum);
        if let (Some(z), Some(aus), Some(positive)) =
            (unit_logits, &self.train.aus, &self.weights.units)
        {
            loss = loss + unit_loss(z, aus, batch, positive, self.device);
        }
        Ok((loss, argmax_rows(logits.argmax(1))?))
    }
}

/// Loss weight of each class under `weighting`.
fn class_weights(counts: &[usize], weighting: ClassWeighting) -> Vec<f32> {
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
