//! Batches for the network: training images augmented and normalised with their targets
//! (mixed in pairs with mixup), plain normalised images for validation, and predictions read
//! back from a tensor.

use anyhow::Result;
use burn::tensor::{Int, Tensor};

use super::TrainConfig;
use crate::augment::{augment, beta_symmetric};
use crate::dataset::Dataset;
use crate::model_meta::Preprocess;

/// Augments, normalises and labels the images of `batch` into the reused buffers.
pub(super) fn fill_batch(
    data: &Dataset,
    batch: &[usize],
    config: &TrainConfig,
    preprocess: &Preprocess,
    rng: &mut impl rand::Rng,
    input: &mut [f32],
    targets: &mut [f32],
) {
    let area = config.size * config.size;
    let classes = data.classes.len();
    let smooth = config.label_smoothing;
    for (slot, &index) in batch.iter().enumerate() {
        let pixels = &mut input[slot * area..(slot + 1) * area];
        augment(data.image(index), config.size, &config.augment, rng, pixels);
        normalise(pixels, preprocess);
        let target = &mut targets[slot * classes..(slot + 1) * classes];
        data.target(index, target);
        for t in target.iter_mut() {
            *t = *t * (1.0 - smooth) + smooth / classes as f32;
        }
    }
    if config.mixup > 0.0 && batch.len() > 1 {
        // The image at each slot stays the larger part, so its label and weight still fit.
        let weight = beta_symmetric(config.mixup, rng);
        let partner_offset = rng.random_range(1..batch.len());
        mix_batch(
            &mut input[..batch.len() * area],
            &mut targets[..batch.len() * classes],
            [area, classes],
            weight.max(1.0 - weight),
            partner_offset,
        );
    }
}

/// Mixup (Zhang et al. 2018): each image and its target become `weight` of themselves plus
/// `1 - weight` of those `partner_offset` slots further on (wrapping round). `lengths` are the
/// values per image and per target.
fn mix_batch(
    input: &mut [f32],
    targets: &mut [f32],
    lengths: [usize; 2],
    weight: f32,
    partner_offset: usize,
) {
    for (values, length) in [(input, lengths[0]), (targets, lengths[1])] {
        let original = values.to_vec();
        let count = original.len() / length.max(1);
        for (slot, mixed) in values.chunks_mut(length).enumerate() {
            let partner = (slot + partner_offset) % count;
            let other = &original[partner * length..(partner + 1) * length];
            for (m, o) in mixed.iter_mut().zip(other) {
                *m = weight * *m + (1.0 - weight) * o;
            }
        }
    }
}

/// In place: 0..=255 pixel values to the network's normalised input.
pub(super) fn normalise(pixels: &mut [f32], preprocess: &Preprocess) {
    let (scale, mean, std) = (preprocess.scale, preprocess.mean[0], preprocess.std[0]);
    for p in pixels {
        *p = (*p * scale - mean) / std;
    }
}

/// Normalised images `[n, 1, size, size]` for `indices`, un-augmented.
pub(super) fn plain_batch(
    data: &Dataset,
    indices: &[usize],
    preprocess: &Preprocess,
    size: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(indices.len() * size * size);
    for &i in indices {
        let start = out.len();
        out.extend(data.image(i).iter().map(|&p| f32::from(p)));
        normalise(&mut out[start..], preprocess);
    }
    out
}

pub(super) fn argmax_rows(indices: Tensor<2, Int>) -> Result<Vec<usize>> {
    let values = indices
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| anyhow::anyhow!("reading predictions: {e:?}"))?;
    Ok(values
        .into_iter()
        .map(|v| usize::try_from(v).unwrap_or(0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixup_blends_each_image_and_target_with_its_partner() {
        // Three images of two values, three targets of two classes.
        let mut input = vec![0.0, 0.0, 10.0, 10.0, 20.0, 20.0];
        let mut targets = vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        mix_batch(&mut input, &mut targets, [2, 2], 0.75, 1);
        assert_eq!(input, vec![2.5, 2.5, 12.5, 12.5, 15.0, 15.0]);
        assert_eq!(targets, vec![0.75, 0.25, 0.25, 0.75, 1.0, 0.0]);
        for target in targets.chunks(2) {
            assert!((target.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }
}
