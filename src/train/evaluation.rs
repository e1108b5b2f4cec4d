//! A network in validation mode over a labelled dataset: loss, confusion matrix and, with an
//! action-unit head, the units' decisions.

use anyhow::Result;
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};

use super::batches::{argmax_rows, plain_batch};
use super::net::EmotionNet;
use crate::au_metrics::AuCounts;
use crate::dataset::Dataset;
use crate::metrics::ConfusionMatrix;
use crate::model_meta::Preprocess;
use crate::model_meta::UNIT_THRESHOLD;

/// Images per forward pass when validating (no gradients, so larger than training batches).
const EVAL_BATCH: usize = 256;

/// What a network does on a labelled dataset.
pub struct Evaluation {
    /// Mean cross-entropy of the hard labels.
    pub loss: f64,
    /// Emotion predictions against labels.
    pub confusion: ConfusionMatrix,
    /// Action-unit decisions at [`UNIT_THRESHOLD`], when the network and the data have units.
    pub units: Option<AuCounts>,
}

/// Runs a network in validation mode over `data`.
///
/// # Errors
/// When the network's outputs cannot be read.
pub fn evaluate_net(
    model: &EmotionNet,
    data: &Dataset,
    preprocess: &Preprocess,
    size: usize,
) -> Result<Evaluation> {
    let device = Device::flex();
    let mut loss_sum = 0.0f64;
    let mut confusion = ConfusionMatrix::new(data.classes.len());
    let mut units = data.aus.as_ref().map(|aus| AuCounts::new(&aus.names));
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(EVAL_BATCH) {
        let n = chunk.len();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                plain_batch(data, chunk, preprocess, size),
                [n, 1, size, size],
            ),
            &device,
        );
        let (logits, unit_logits) = model.forward_heads(x);
        let log_probs = log_softmax(logits.clone(), 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
        let classes = data.classes.len();
        for (row, &i) in chunk.iter().enumerate() {
            loss_sum -= f64::from(log_probs[row * classes + data.labels[i]]);
        }
        for (&i, predicted) in chunk.iter().zip(argmax_rows(logits.argmax(1))?) {
            confusion.add(data.labels[i], predicted);
        }
        if let (Some(counts), Some(aus), Some(z)) = (units.as_mut(), &data.aus, unit_logits) {
            let probs = sigmoid(z)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("reading unit logits: {e:?}"))?;
            let width = aus.names.len();
            for (&i, row) in chunk.iter().zip(probs.chunks(width)) {
                counts.add(aus.of(i), row, UNIT_THRESHOLD);
            }
        }
    }
    Ok(Evaluation {
        loss: loss_sum / data.len().max(1) as f64,
        confusion,
        units: units.filter(|_| model.has_units()),
    })
}
