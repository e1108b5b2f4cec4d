//! Batches for the network: training images augmented and normalised with their targets,
//! plain normalised images for validation, and predictions read back from a tensor.

use anyhow::Result;
use burn::tensor::{Int, Tensor};

use super::TrainConfig;
use crate::augment::augment;
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
