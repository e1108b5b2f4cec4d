//! An emotion model loaded in ONNX Runtime: checks the input shape and the `emolens.*`
//! metadata at load time, turns face pixels into the input tensor, and runs batches.

use std::path::Path;

use ndarray::{Array2, Array4, ArrayView4};
use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use crate::device::{open_session, Device, Placement, SessionError};
use crate::model_meta::{Head, HeadKind, MetaError, ModelMeta};

/// A model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// ONNX Runtime rejected the file or a run.
    #[error("ONNX Runtime: {0}")]
    Ort(ort::Error),
    /// The metadata is missing or wrong.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The graph does not match its metadata.
    #[error("the model does not match its metadata: {0}")]
    Shape(String),
    /// The session could not be opened where it was asked for.
    #[error(transparent)]
    Session(#[from] SessionError),
}

// By hand rather than `#[from]`: the message already holds the cause, which as a source too would
// be told twice in the error chain.
impl From<ort::Error> for ClassifierError {
    fn from(error: ort::Error) -> Self {
        Self::Ort(error)
    }
}

/// One ONNX session with the metadata that says how to use it. Owns its session.
pub struct Classifier {
    session: Session,
    meta: ModelMeta,
    input_name: String,
}

impl Classifier {
    /// Loads the model file for the CPU, with at most `threads` ONNX Runtime threads (0: one
    /// per core).
    ///
    /// # Errors
    /// [`ClassifierError`] when ONNX Runtime cannot read it or it does not fit the contract.
    pub fn load(
        path: &Path,
        env: &ort::environment::Environment,
        threads: usize,
    ) -> Result<Self, ClassifierError> {
        Self::load_on(path, env, threads, Device::Cpu).map(|(classifier, _)| classifier)
    }

    /// Loads the model file for `device` (see [`open_session`]).
    ///
    /// # Errors
    /// [`ClassifierError`] when ONNX Runtime cannot read the file, it does not fit the contract,
    /// or the GPU asked for cannot be used.
    pub fn load_on(
        path: &Path,
        env: &ort::environment::Environment,
        threads: usize,
        device: Device,
    ) -> Result<(Self, Placement), ClassifierError> {
        let (session, placement) = open_session(path, env, threads, device)?;
        Ok((Self::from_session(session)?, placement))
    }

    /// Loads a model held in memory.
    ///
    /// # Errors
    /// As [`Classifier::load`].
    pub fn from_bytes(
        bytes: &[u8],
        env: &ort::environment::Environment,
    ) -> Result<Self, ClassifierError> {
        let session = Session::builder(env)?.commit_from_memory(bytes)?;
        Self::from_session(session)
    }

    fn from_session(session: Session) -> Result<Self, ClassifierError> {
        let meta = {
            let metadata = session.metadata()?;
            ModelMeta::from_lookup(|key| metadata.custom(key))?
        };
        let input = match session.inputs() {
            [only] => only,
            inputs => {
                return Err(ClassifierError::Shape(format!(
                    "{} inputs, expected one image tensor",
                    inputs.len()
                )))
            }
        };
        let p = &meta.preprocess;
        let expected = [-1, p.channels as i64, p.size[1] as i64, p.size[0] as i64];
        match input.dtype() {
            ValueType::Tensor { shape, .. }
                if shape.len() == 4
                    && shape
                        .iter()
                        .zip(expected)
                        .all(|(&d, e)| d == e || d < 0 || e < 0) => {}
            other => {
                return Err(ClassifierError::Shape(format!(
                    "input `{}` is {other:?}, metadata says [batch, {}, {}, {}]",
                    input.name(),
                    p.channels,
                    p.size[1],
                    p.size[0]
                )))
            }
        }
        let input_name = input.name().to_owned();
        for head in &meta.heads {
            let Some(output) = session.outputs().iter().find(|o| o.name() == head.output) else {
                return Err(ClassifierError::Shape(format!(
                    "no output named `{}` (outputs: {:?})",
                    head.output,
                    session
                        .outputs()
                        .iter()
                        .map(|o| o.name())
                        .collect::<Vec<_>>()
                )));
            };
            // Each face's row of the output must hold one value per label (where the graph
            // states the sizes; a dynamic size is checked by the first inference).
            if let ValueType::Tensor { shape, .. } = output.dtype() {
                let row = shape
                    .iter()
                    .skip(1)
                    .try_fold(1i64, |n, &d| (d > 0).then(|| n * d));
                if let Some(row) = row.filter(|&row| row != head.labels.len() as i64) {
                    return Err(ClassifierError::Shape(format!(
                        "output `{}` gives {row} values per face, but the metadata lists {} labels ({})",
                        head.output,
                        head.labels.len(),
                        head.labels.join(", ")
                    )));
                }
            }
        }
        Ok(Self {
            session,
            meta,
            input_name,
        })
    }

    /// The model's metadata.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// Pixels per image of the input: `channels * height * width`.
    pub fn input_len(&self) -> usize {
        let p = &self.meta.preprocess;
        p.channels * p.size[0] * p.size[1]
    }

    /// An input batch of `batch` images, zero-filled: `[batch, channels, height, width]`.
    pub fn input_batch(&self, batch: usize) -> Array4<f32> {
        let p = &self.meta.preprocess;
        Array4::zeros((batch, p.channels, p.size[1], p.size[0]))
    }

    /// Normalises raw pixel values (0..=255) of one or more images, laid out as the input wants
    /// (`[n, channels, height, width]`), into `out`.
    pub fn normalise(&self, pixels: &[f32], out: &mut [f32]) {
        let p = &self.meta.preprocess;
        let plane = p.size[0] * p.size[1];
        for (index, (src, dst)) in pixels.chunks(plane).zip(out.chunks_mut(plane)).enumerate() {
            let channel = index % p.channels;
            let (mean, std) = (p.mean[channel], p.std[channel]);
            for (d, s) in dst.iter_mut().zip(src) {
                *d = (s * p.scale - mean) / std;
            }
        }
    }

    /// Raw outputs (logits) of every head for a normalised batch, each `[batch, labels]`.
    ///
    /// # Errors
    /// [`ClassifierError`] when ONNX Runtime fails or an output has the wrong width.
    pub fn logits(
        &mut self,
        input: ArrayView4<'_, f32>,
    ) -> Result<Vec<Array2<f32>>, ClassifierError> {
        let batch = input.shape()[0];
        let tensor = TensorRef::from_array_view(input)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])?;
        self.meta
            .heads
            .iter()
            .map(|head| {
                let values = head_values(&outputs, head, batch)?;
                Array2::from_shape_vec((batch, head.labels.len()), values.to_vec())
                    .map_err(|e| ClassifierError::Shape(e.to_string()))
            })
            .collect()
    }

    /// The emotion head.
    ///
    /// # Errors
    /// Never for a loaded model: loading checks there is one.
    pub fn emotion_head(&self) -> Result<&Head, MetaError> {
        self.meta.emotion_head()
    }

    /// The action-unit (sigmoid) head, when the model has one.
    pub fn unit_head(&self) -> Option<&Head> {
        self.meta.heads.iter().find(|h| h.kind == HeadKind::Sigmoid)
    }

    /// Emotion probabilities followed, for a model with an action-unit head, by the unit
    /// probabilities: `[batch, emotions + units]` for a normalised batch (one run of the model).
    ///
    /// # Errors
    /// As [`Classifier::logits`].
    pub fn probabilities(
        &mut self,
        input: ArrayView4<'_, f32>,
    ) -> Result<Array2<f32>, ClassifierError> {
        let batch = input.shape()[0];
        let mut values = Vec::new();
        self.probabilities_into(input, &mut values)?;
        let width = values.len() / batch.max(1);
        Array2::from_shape_vec((batch, width), values)
            .map_err(|e| ClassifierError::Shape(e.to_string()))
    }

    /// As [`Classifier::probabilities`], appending the rows to `out` (no allocation when it has
    /// room): the pipeline's per-batch call.
    ///
    /// # Errors
    /// As [`Classifier::logits`].
    pub fn probabilities_into(
        &mut self,
        input: ArrayView4<'_, f32>,
        out: &mut Vec<f32>,
    ) -> Result<(), ClassifierError> {
        let batch = input.shape()[0];
        let emotion_head = &self.meta.heads[self.emotion_index()?];
        let unit_head = self.meta.heads.iter().find(|h| h.kind == HeadKind::Sigmoid);
        let tensor = TensorRef::from_array_view(input)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])?;
        let emotions = head_values(&outputs, emotion_head, batch)?;
        let units = unit_head
            .map(|head| head_values(&outputs, head, batch))
            .transpose()?;
        let classes = emotion_head.labels.len();
        for b in 0..batch {
            let start = out.len();
            out.extend_from_slice(&emotions[b * classes..(b + 1) * classes]);
            softmax_in_place(&mut out[start..]);
            if let (Some(units), Some(head)) = (&units, unit_head) {
                let n = head.labels.len();
                out.extend(
                    units[b * n..(b + 1) * n]
                        .iter()
                        .map(|z| 1.0 / (1.0 + (-z).exp())),
                );
            }
        }
        Ok(())
    }

    /// Index of the emotion (first softmax) head.
    fn emotion_index(&self) -> Result<usize, MetaError> {
        self.meta
            .heads
            .iter()
            .position(|h| h.kind == HeadKind::Softmax)
            .ok_or(MetaError::Invalid("no softmax (emotion) head".into()))
    }
}

/// The values of `head`'s output for a batch of `batch`, row after row, checked for its width.
fn head_values<'a>(
    outputs: &'a ort::session::SessionOutputs<'_>,
    head: &Head,
    batch: usize,
) -> Result<&'a [f32], ClassifierError> {
    let (_, values) = outputs[head.output.as_str()].try_extract_tensor::<f32>()?;
    let width = head.labels.len();
    if values.len() != batch * width {
        return Err(ClassifierError::Shape(format!(
            "output `{}` has {} values, expected [{batch}, {width}]",
            head.output,
            values.len()
        )));
    }
    Ok(values)
}

/// Replaces logits by their softmax probabilities.
pub fn softmax_in_place(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    if sum > 0.0 {
        values.iter_mut().for_each(|v| *v /= sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut v = [1.0, 3.0, 2.0];
        softmax_in_place(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[1] > v[2] && v[2] > v[0]);
    }
}
