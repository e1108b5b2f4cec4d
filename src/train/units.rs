//! The action-unit head's loss: binary cross-entropy per unit, with each unit's positive
//! examples weighted by how rare they are.

use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use crate::dataset::ActionUnits;

/// Largest weight of a unit's positive examples in the loss.
const MAX_UNIT_WEIGHT: f32 = 10.0;

/// Weight of each unit's positive examples in its loss, `negatives / positives` capped at
/// [`MAX_UNIT_WEIGHT`], so that rare units are not learnt as "never".
pub(super) fn unit_positive_weights(aus: &ActionUnits) -> Vec<f32> {
    let units = aus.names.len();
    let images = aus.present.len() / units.max(1);
    (0..units)
        .map(|u| {
            let positives = (0..images).filter(|&i| aus.of(i)[u] == 1).count();
            let negatives = images - positives;
            (negatives as f32 / positives.max(1) as f32).clamp(1.0, MAX_UNIT_WEIGHT)
        })
        .collect()
}

/// Binary cross-entropy of the unit logits `z` (`[n, units]`) against the batch's units, with
/// positives weighted per unit; the mean over images and units.
pub(super) fn unit_loss(
    z: Tensor<2>,
    aus: &ActionUnits,
    batch: &[usize],
    positive_weights: &[f32],
    device: &Device,
) -> Tensor<1> {
    let (n, units) = (batch.len(), aus.names.len());
    let truth: Vec<f32> = batch
        .iter()
        .flat_map(|&i| aus.of(i).iter().map(|&v| f32::from(v)))
        .collect();
    let weights: Vec<f32> = (0..n)
        .flat_map(|_| positive_weights.iter().copied())
        .collect();
    let y = Tensor::<2>::from_data(TensorData::new(truth, [n, units]), device);
    let w = Tensor::<2>::from_data(TensorData::new(weights, [n, units]), device);
    let present = y.clone() * w * log_sigmoid(z.clone());
    let absent = (y.ones_like() - y) * log_sigmoid(z.neg());
    (present + absent).mean().neg()
}
