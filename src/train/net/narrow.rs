//! Narrowing a trained network to a smaller `--width` (structured pruning), so that `train --init`
//! can start a cheaper network from a wider one's weights: each convolution keeps the output
//! channels whose filters weigh most, the next layer the matching inputs, and the hidden layer
//! the matching features.

use anyhow::{Context, Result};
use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::BatchNorm;
use burn::tensor::{Int, Tensor, TensorData};

use super::{block_channels, ConvBlock, Trunk};

/// The indices of the `count` largest `scores`, in ascending order.
fn strongest(scores: &[f32], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.truncate(count);
    order.sort_unstable();
    order
}

/// `indices` as an index tensor on the device of `like`.
fn index_tensor<const D: usize>(indices: &[usize], like: &Tensor<D>) -> Tensor<1, Int> {
    let data: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_ints(TensorData::new(data, [indices.len()]), &like.device())
}

/// `tensor` as a fresh trainable parameter, cut loose from the operations that made it.
fn param<const D: usize>(tensor: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(tensor.detach())
}

/// A convolution (without bias) and its BatchNorm cut down to the input channels `inputs` (all
/// when `None`) and the `outputs` strongest output channels: those with the largest L1 norm of
/// the filter times the BatchNorm scale |gamma| / sqrt(var + eps), which is what the channel
/// weighs after the two are folded together. Returns the kept output channels too.
fn narrow_layer(
    conv: Conv2d,
    norm: BatchNorm,
    inputs: Option<&[usize]>,
    outputs: usize,
) -> Result<(Conv2d, BatchNorm, Vec<usize>)> {
    let mut weight = conv.weight.val();
    if let Some(inputs) = inputs {
        weight = weight.clone().select(1, index_tensor(inputs, &weight));
    }
    let [channels, ..] = weight.dims();
    let scale = norm
        .gamma
        .val()
        .abs()
        .div(norm.running_var.value().add_scalar(norm.epsilon).sqrt());
    let scores = weight
        .clone()
        .abs()
        .sum_dim(3)
        .sum_dim(2)
        .sum_dim(1)
        .reshape([channels])
        .mul(scale)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading filter norms: {e:?}"))?;
    let kept = strongest(&scores, outputs);
    let index = index_tensor(&kept, &weight);
    let pick = |t: Tensor<1>| t.select(0, index.clone()).detach();
    let conv = Conv2d {
        weight: param(weight.select(0, index.clone())),
        ..conv
    };
    let norm = BatchNorm {
        gamma: param(pick(norm.gamma.val())),
        beta: param(pick(norm.beta.val())),
        running_mean: RunningState::new(pick(norm.running_mean.value())),
        running_var: RunningState::new(pick(norm.running_var.value())),
        ..norm
    };
    Ok((conv, norm, kept))
}

impl Trunk {
    /// This trunk cut down to the blocks of a network `width` wide (narrower than its own).
    pub(super) fn narrowed(self, width: usize) -> Result<Trunk> {
        let mut inputs: Option<Vec<usize>> = None;
        let mut blocks = Vec::with_capacity(self.blocks.len());
        let mut wide_channels = 0;
        for (block, channels) in self.blocks.into_iter().zip(block_channels(width)) {
            let ConvBlock {
                conv1,
                norm1,
                conv2,
                norm2,
                pool,
            } = block;
            wide_channels = norm2.gamma.dims()[0];
            let (conv1, norm1, kept) = narrow_layer(conv1, norm1, inputs.as_deref(), channels)?;
            let (conv2, norm2, kept) = narrow_layer(conv2, norm2, Some(&kept), channels)?;
            blocks.push(ConvBlock {
                conv1,
                norm1,
                conv2,
                norm2,
                pool,
            });
            inputs = Some(kept);
        }
        let kept = inputs.context("a network without convolution blocks")?;
        // The hidden layer's inputs are the last block's output flattened channel by channel.
        let weight = self.hidden.weight.val();
        let positions = weight.dims()[0] / wide_channels;
        let rows: Vec<usize> = kept
            .iter()
            .flat_map(|&c| c * positions..(c + 1) * positions)
            .collect();
        let hidden = burn::nn::Linear {
            weight: param(weight.clone().select(0, index_tensor(&rows, &weight))),
            ..self.hidden
        };
        Ok(Trunk { blocks, hidden })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EmotionNet, NetConfig, DEFAULT_WIDTH};
    use super::*;
    use burn::module::Module;
    use burn::tensor::Device;

    #[test]
    fn strongest_keeps_the_largest_in_their_order() {
        assert_eq!(strongest(&[0.5, 3.0, -1.0, 2.0, 0.1], 3), [0, 1, 3]);
        assert_eq!(strongest(&[1.0, 2.0], 2), [0, 1]);
    }

    /// A network `width` wide whose channels at odd positions are dead (all-zero filters), so
    /// that it computes what a network of half its width computes.
    fn half_dead(width: usize, device: &Device) -> EmotionNet {
        let net = EmotionNet::new(
            &NetConfig {
                channels: 1,
                size: 48,
                width,
                classes: 7,
                action_units: 0,
                dropout: 0.0,
            },
            device,
        );
        let kill = |conv: Conv2d| {
            let weight = conv.weight.val();
            let [outputs, ..] = weight.dims();
            let alive: Vec<f32> = (0..outputs).map(|c| ((c + 1) % 2) as f32).collect();
            let mask =
                Tensor::<1>::from_floats(alive.as_slice(), device).reshape([outputs, 1, 1, 1]);
            Conv2d {
                weight: param(weight.mul(mask)),
                ..conv
            }
        };
        EmotionNet {
            blocks: net
                .blocks
                .into_iter()
                .map(|b| ConvBlock {
                    conv1: kill(b.conv1),
                    conv2: kill(b.conv2),
                    ..b
                })
                .collect(),
            ..net
        }
    }

    #[test]
    fn narrowing_keeps_the_live_channels_and_what_they_compute() -> Result<()> {
        // The training device: narrowed layers must be trainable parameters there.
        let device = Device::flex().autodiff();
        let dir = tempfile::tempdir()?;
        let weights = dir.path().join("wide.bpk");
        let wide = half_dead(DEFAULT_WIDTH, &device);
        wide.clone().save_file(&weights)?;
        let narrow = EmotionNet::new(
            &NetConfig {
                channels: 1,
                size: 48,
                width: DEFAULT_WIDTH / 2,
                classes: 7,
                action_units: 0,
                dropout: 0.0,
            },
            &device,
        )
        .with_trunk_from(&weights)?;
        let images = Tensor::<4>::random(
            [3, 1, 48, 48],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let expected = wide.valid().hidden_layer(images.clone());
        let got = narrow.valid().hidden_layer(images);
        expected
            .into_data()
            .assert_approx_eq::<f32>(&got.into_data(), burn::tensor::Tolerance::default());
        Ok(())
    }
}
