//! Stochastic weight averaging (`train --average-last K`): the weights saved after each of the
//! last K epochs of the schedule are averaged (parameters and BatchNorm statistics alike), the
//! BatchNorm statistics are then measured again on the training images, since the averaged
//! network's activations belong to none of the epochs, and the average is exported instead of
//! the best single epoch when it scores higher on validation.

use anyhow::{bail, Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::batches::plain_batch;
use super::checkpoint::Checkpoint;
use super::evaluation::evaluate_net;
use super::net::EmotionNet;
use super::{Fitted, TrainConfig};
use crate::dataset::Dataset;

/// Images per forward pass while the BatchNorm statistics are measured.
const STATISTICS_BATCH: usize = 256;

/// An averaged network that scored higher on validation than the best epoch.
pub struct Averaged {
    /// The network, in validation mode.
    pub net: EmotionNet,
    /// First epoch of the average (the last is the run's last).
    pub first_epoch: usize,
    /// Its validation accuracy.
    pub val_accuracy: f64,
}

/// Averages the last `config.average_last` epochs of a finished run and keeps the average when
/// it beats the best epoch on `val`. None when it does not, or when the run stopped early,
/// before those epochs. The average is saved as `average.bpk` in the checkpoint folder either
/// way.
///
/// # Errors
/// When an epoch's weights are missing (the run was started without `--average-last`) or
/// cannot be read.
pub fn average_last_epochs(
    config: &TrainConfig,
    fitted: &Fitted,
    train: &Dataset,
    val: &Dataset,
) -> Result<Option<Averaged>> {
    let state = &fitted.state;
    let dir = &config.checkpoint_dir;
    let first_epoch = (config.epochs + 1)
        .saturating_sub(config.average_last)
        .max(1);
    if state.epochs_done < config.epochs {
        eprintln!(
            "note: the run stopped early at epoch {}, before its last {} epochs; no weights to average",
            state.epochs_done, config.average_last
        );
        return Ok(None);
    }
    let device = Device::flex().autodiff();
    let nets = (first_epoch..=config.epochs)
        .map(|epoch| {
            let path = Checkpoint::epoch_path(dir, epoch);
            if !path.is_file() {
                bail!(
                    "{}: missing; a run keeps its last epochs' weights only when started with --average-last; train again with it, or leave it out",
                    path.display()
                );
            }
            EmotionNet::new(&fitted.net_config, &device)
                .try_load_file(&path)
                .with_context(|| format!("loading {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let averaged = mean_weights(nets)?;
    let averaged = measure_batch_norm(averaged, train, fitted, config).valid();
    averaged
        .clone()
        .save_file(Checkpoint::average_path(dir))
        .context("saving the averaged weights")?;
    let val_accuracy = evaluate_net(&averaged, val, &fitted.preprocess, config.size)?
        .confusion
        .accuracy();
    let better = val_accuracy > state.best_val_accuracy;
    eprintln!(
        "weights averaged over epochs {first_epoch}-{}: validation accuracy {val_accuracy:.4}, best epoch {} {:.4}: exporting {}",
        config.epochs,
        state.best_epoch,
        state.best_val_accuracy,
        if better { "the average" } else { "the best epoch" }
    );
    Ok(better.then_some(Averaged {
        net: averaged,
        first_epoch,
        val_accuracy,
    }))
}

/// The network whose every float tensor (parameters and BatchNorm statistics) is the mean of
/// the same tensor in `nets`, which share one shape.
///
/// # Errors
/// When `nets` is empty or a tensor cannot be read as f32.
fn mean_weights(nets: Vec<EmotionNet>) -> Result<EmotionNet> {
    let count = nets.len() as f32;
    let mut sums: Option<Vec<Vec<f32>>> = None;
    let mut template = None;
    for net in nets {
        let mut floats = FloatValues::default();
        net.visit(&mut floats);
        let values = floats.values.into_iter().collect::<Result<Vec<_>>>()?;
        match &mut sums {
            None => sums = Some(values),
            Some(sums) => {
                for (sum, value) in sums.iter_mut().zip(values) {
                    sum.iter_mut().zip(value).for_each(|(s, v)| *s += v);
                }
            }
        }
        template.get_or_insert(net);
    }
    let (Some(sums), Some(template)) = (sums, template) else {
        bail!("no weights to average");
    };
    let means = sums
        .into_iter()
        .map(|sum| sum.into_iter().map(|s| s / count).collect())
        .collect::<Vec<_>>();
    Ok(template.map(&mut ReplaceFloats {
        values: means.into_iter(),
    }))
}

/// Runs the training images (unaugmented, shuffled with the run's seed) through `net` in
/// training mode, so that each BatchNorm's running statistics describe this network's
/// activations.
fn measure_batch_norm(
    net: EmotionNet,
    train: &Dataset,
    fitted: &Fitted,
    config: &TrainConfig,
) -> EmotionNet {
    let size = config.size;
    let device = Device::flex().autodiff();
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(config.seed));
    for chunk in order.chunks(STATISTICS_BATCH) {
        let x = Tensor::<4>::from_data(
            TensorData::new(
                plain_batch(train, chunk, &fitted.preprocess, size),
                [chunk.len(), 1, size, size],
            ),
            &device,
        );
        drop(net.forward(x));
    }
    net
}

/// Every float tensor of a module, in visiting order, as f32 values.
#[derive(Default)]
struct FloatValues {
    values: Vec<Result<Vec<f32>>>,
}

impl ModuleVisitor for FloatValues {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.values.push(
            param
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading weights: {e:?}")),
        );
    }
}

/// Replaces every float tensor of a module, in visiting order, by the next of `values`.
struct ReplaceFloats<I> {
    values: I,
}

impl<I: Iterator<Item = Vec<f32>>> ModuleMapper for ReplaceFloats<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.values.next() {
            Some(values) => param.map(|tensor| {
                Tensor::from_data(TensorData::new(values, tensor.shape()), &tensor.device())
            }),
            None => param,
        }
    }
}

/// Whether a run keeps the weights of `epoch` for its average.
pub fn keeps_epoch(config: &TrainConfig, epoch: usize) -> bool {
    epoch + config.average_last > config.epochs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::net::NetConfig;

    fn floats(net: &EmotionNet) -> Result<Vec<Vec<f32>>> {
        let mut visitor = FloatValues::default();
        net.visit(&mut visitor);
        visitor.values.into_iter().collect()
    }

    #[test]
    fn the_mean_of_networks_averages_every_tensor() -> Result<()> {
        let config = NetConfig {
            channels: 1,
            size: 48,
            width: crate::train::net::DEFAULT_WIDTH,
            classes: 7,
            action_units: 0,
            dropout: 0.0,
        };
        let device = Device::flex();
        let nets: Vec<EmotionNet> = (0..3)
            .map(|seed| {
                device.seed(seed);
                EmotionNet::new(&config, &device)
            })
            .collect();
        let each = nets.iter().map(floats).collect::<Result<Vec<_>>>()?;
        let mean = floats(&mean_weights(nets)?)?;
        assert_eq!(mean.len(), each[0].len());
        for (t, tensor) in mean.iter().enumerate() {
            for (i, &value) in tensor.iter().enumerate() {
                let expected = (each[0][t][i] + each[1][t][i] + each[2][t][i]) / 3.0;
                assert!((value - expected).abs() < 1e-6, "tensor {t} value {i}");
            }
        }
        assert_ne!(each[0][0], each[1][0], "the networks differ");
        Ok(())
    }
}
