//! ONNX export of a trained network: burn-onnx writes the graph, we add the `emolens.*`
//! metadata (DESIGN.md section 2), check that ONNX Runtime reproduces the network's logits, and
//! only then move the file into place.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
use ndarray::Array4;
use ort::session::Session;

use super::net::{EmotionNet, FusedNet};
use crate::classifier::{Classifier, ClassifierError};
use crate::model_meta::ModelMeta;

/// Largest difference between burn's and ONNX Runtime's logits accepted as "the same model".
pub const MAX_LOGIT_DIFFERENCE: f32 = 1e-4;

/// Export failed; nothing was written at the output path.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// burn-onnx could not lower the network.
    #[error("ONNX export: {0}")]
    Lower(String),
    /// The exported file does not load or run in ONNX Runtime.
    #[error("the exported model does not load in ONNX Runtime: {0}")]
    Load(ClassifierError),
    /// ONNX Runtime computes something else than the trained network.
    #[error("ONNX Runtime's logits differ from the trained network's by {0:e} (> {MAX_LOGIT_DIFFERENCE:e}); the export is wrong")]
    Mismatch(f32),
    /// The file cannot be written.
    #[error("cannot write {path}: {error}; choose a writable output path with -o")]
    Write {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

// By hand rather than `#[from]`: the message already holds the cause (told once in the chain).
impl From<ClassifierError> for ExportError {
    fn from(error: ClassifierError) -> Self {
        Self::Load(error)
    }
}

/// What the export check measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportCheck {
    /// Images compared.
    pub images: usize,
    /// Largest absolute logit difference between burn and ONNX Runtime.
    pub max_abs_diff: f32,
}

/// Writes `model` (in validation mode, on a plain device, BatchNorm folded into the convolutions)
/// to `output` as ONNX with `meta`, whose
/// first head's output name is set to the graph's output. `check` holds normalised images
/// `[n, channels, height, width]` that both burn and ONNX Runtime must map to the same logits.
///
/// # Errors
/// [`ExportError`]; the output path is untouched on error.
pub fn export_onnx(
    model: &EmotionNet,
    mut meta: ModelMeta,
    check: &Array4<f32>,
    output: &Path,
    env: &ort::environment::Environment,
) -> Result<ExportCheck, ExportError> {
    let device = Device::flex();
    let shape = check.shape().to_vec();
    let sample = |batch: usize| Tensor::<4>::zeros([batch, shape[1], shape[2], shape[3]], &device);
    let spec = [InputSpec::new([
        AxisSpec::dynamic("batch"),
        AxisSpec::Static,
        AxisSpec::Static,
        AxisSpec::Static,
    ])];
    let fused = model.fuse();
    let exporter = OnnxExporter::new();
    let graph = if fused.has_units() {
        exporter.export_dynamic(
            &fused,
            sample(1),
            sample(2),
            &spec,
            FusedNet::forward_with_units,
        )
    } else {
        exporter.export_dynamic(&fused, sample(1), sample(2), &spec, FusedNet::forward)
    }
    .map_err(|e| ExportError::Lower(e.to_string()))?
    .into_bytes();

    let output_names: Vec<String> = {
        let session = Session::builder(env)
            .and_then(|mut b| b.commit_from_memory(&graph))
            .map_err(ClassifierError::from)?;
        session
            .outputs()
            .iter()
            .map(|o| o.name().to_owned())
            .collect()
    };
    if output_names.len() != meta.heads.len() {
        return Err(ExportError::Lower(format!(
            "{} outputs for {} heads",
            output_names.len(),
            meta.heads.len()
        )));
    }
    // The graph's outputs come in the order of the network's heads: emotion, then units.
    for (head, name) in meta.heads.iter_mut().zip(output_names) {
        head.output = name;
    }
    let pairs = meta
        .to_pairs()
        .map_err(|e| ExportError::Lower(e.to_string()))?;
    let bytes = with_metadata_props(graph, &pairs);

    let mut classifier = Classifier::from_bytes(&bytes, env)?;
    let expected = {
        let data = TensorData::new(check.iter().copied().collect::<Vec<f32>>(), shape.clone());
        let (emotion, units) = model.forward_heads(Tensor::<4>::from_data(data, &device));
        let mut heads = Vec::with_capacity(2);
        for logits in std::iter::once(emotion).chain(units) {
            heads.push(
                logits
                    .into_data()
                    .try_to_vec::<f32>()
                    .map_err(|e| ExportError::Lower(format!("{e:?}")))?,
            );
        }
        heads
    };
    let actual = classifier.logits(check.view())?;
    let max_abs_diff = actual
        .iter()
        .zip(&expected)
        .flat_map(|(a, e)| a.iter().zip(e).map(|(a, e)| (a - e).abs()))
        .fold(0.0f32, f32::max);
    // NaN logits must fail too, hence no plain `>`.
    if max_abs_diff.is_nan() || max_abs_diff > MAX_LOGIT_DIFFERENCE {
        return Err(ExportError::Mismatch(max_abs_diff));
    }
    crate::output::write_atomically(output, |out| out.write_all(&bytes)).map_err(|error| {
        ExportError::Write {
            path: output.to_owned(),
            error,
        }
    })?;
    Ok(ExportCheck {
        images: shape[0],
        max_abs_diff,
    })
}

/// `ModelProto.metadata_props` is field 14, repeated `StringStringEntryProto {key = 1, value = 2}`.
const METADATA_PROPS_FIELD: u64 = 14;

/// Appends `metadata_props` entries to a serialized ONNX `ModelProto`. Protobuf merges repeated
/// fields by concatenation, so appended entries are read as part of the message.
pub fn with_metadata_props(mut model: Vec<u8>, pairs: &[(String, String)]) -> Vec<u8> {
    for (key, value) in pairs {
        let mut entry = Vec::with_capacity(key.len() + value.len() + 8);
        crate::protobuf::put_bytes_field(&mut entry, 1, key.as_bytes());
        crate::protobuf::put_bytes_field(&mut entry, 2, value.as_bytes());
        crate::protobuf::put_bytes_field(&mut model, METADATA_PROPS_FIELD, &entry);
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_entry_is_field_14() {
        let bytes = with_metadata_props(Vec::new(), &[("k".into(), "v".into())]);
        assert_eq!(bytes, [0x72, 6, 0x0a, 1, b'k', 0x12, 1, b'v']);
    }
}
