//! `emolens inspect`: what a model file says about itself (its `emolens.*` metadata of
//! DESIGN.md section 2, its input and the size of its graph), as text or JSON, and a picture of
//! its first convolution layer's learned filters.

pub mod filters;
pub mod onnx_proto;

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::classifier::{Classifier, ClassifierError};
use crate::model_meta::{Head, HeadKind, Preprocess, Provenance, Quantization, Views};
use crate::protobuf::ProtoError;
use filters::{FilterError, FilterGrid};
use onnx_proto::{Dim, Model};

/// A model cannot be inspected, or its filters cannot be drawn.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file does not exist.
    #[error("{}: model not found; give the path of an .onnx model (the shipped one is models/{})", path.display(), crate::util::DEFAULT_MODEL_FILE)]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file cannot be read.
    #[error("{}: cannot be read ({cause}); check its permissions", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not an ONNX model.
    #[error("{}: not an ONNX model ({cause}); give a model file written by `emolens train`", path.display())]
    NotOnnx {
        /// The path given.
        path: PathBuf,
        /// What the protobuf reader found.
        cause: ProtoError,
    },
    /// ONNX Runtime rejects the model, or its metadata is missing or wrong.
    #[error("{}: {cause}", path.display())]
    Model {
        /// The path given.
        path: PathBuf,
        /// Why it does not load.
        cause: ClassifierError,
    },
    /// The first-layer filters cannot be found.
    #[error("{}: cannot draw the first-layer filters: {cause}", path.display())]
    Filters {
        /// The model.
        path: PathBuf,
        /// Why.
        cause: FilterError,
    },
    /// OpenCV cannot draw or encode the filter image.
    #[error("{}: cannot draw the filter image: {cause}", path.display())]
    Draw {
        /// The PNG.
        path: PathBuf,
        /// OpenCV's error.
        cause: opencv::Error,
    },
    /// The filter image cannot be written.
    #[error("{}: cannot be written ({cause}); choose a writable path", path.display())]
    Write {
        /// The PNG.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
}

/// A graph input: name, element type and shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    /// Tensor name.
    pub name: String,
    /// Element type, e.g. `float32`.
    pub element_type: String,
    /// Dimensions; symbolic ones (the batch) by name.
    pub shape: Vec<Dim>,
}

/// The size of the ONNX graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphSummary {
    /// Number of nodes.
    pub nodes: usize,
    /// Nodes per operator type.
    pub operators: BTreeMap<String, usize>,
    /// Number of stored tensors (initializers).
    pub initializers: usize,
    /// Values in all initializers.
    pub parameters: usize,
    /// Tool that wrote the file, with its version.
    pub producer: String,
    /// Version of the default (`ai.onnx`) operator set.
    pub opset: Option<i64>,
    /// ONNX IR version.
    pub ir_version: i64,
}

/// Everything `emolens inspect` reports about one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// The model file.
    pub file: PathBuf,
    /// Graph inputs (stored weights left out).
    pub inputs: Vec<Input>,
    /// Input preparation.
    pub preprocess: Preprocess,
    /// Outputs and their labels.
    pub heads: Vec<Head>,
    /// Label groupings.
    pub views: Views,
    /// Training record.
    pub provenance: Option<Provenance>,
    /// How the int8 copy was made, for a quantized model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
    /// Graph size.
    pub graph: GraphSummary,
    /// The first-layer filter image, when one was drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<FilterGrid>,
}

/// Reads a model file.
///
/// # Errors
/// [`InspectError::NotFound`] or [`InspectError::Read`] naming the file.
pub fn read_model(path: &Path) -> Result<Vec<u8>, InspectError> {
    std::fs::read(path).map_err(|cause| match cause.kind() {
        std::io::ErrorKind::NotFound => InspectError::NotFound {
            path: path.to_owned(),
        },
        _ => InspectError::Read {
            path: path.to_owned(),
            cause,
        },
    })
}

/// Parses the bytes of the model file at `path`.
///
/// # Errors
/// [`InspectError::NotOnnx`] naming the file when they are not an ONNX model.
pub fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Model<'a>, InspectError> {
    onnx_proto::parse_model(bytes).map_err(|cause| InspectError::NotOnnx {
        path: path.to_owned(),
        cause,
    })
}

/// Loads the model in ONNX Runtime, which checks it against its metadata, and gathers its
/// description. `bytes` are the file's contents and `model` what [`parse`] made of them.
///
/// # Errors
/// [`InspectError::Model`] naming the file when ONNX Runtime rejects it or its metadata is
/// missing or wrong.
pub fn inspect(
    path: &Path,
    bytes: &[u8],
    model: &Model<'_>,
    env: &ort::environment::Environment,
) -> Result<Inspection, InspectError> {
    let classifier = Classifier::from_bytes(bytes, env).map_err(|cause| InspectError::Model {
        path: path.to_owned(),
        cause,
    })?;
    let meta = classifier.meta().clone();
    let graph = &model.graph;
    let stored = |name: &str| graph.initializers.iter().any(|t| t.name == name);
    let inputs = graph
        .inputs
        .iter()
        .filter(|input| !stored(&input.name))
        .map(|input| Input {
            name: input.name.clone(),
            element_type: onnx_proto::element_type_name(input.element_type),
            shape: input.shape.clone(),
        })
        .collect();
    let mut operators = BTreeMap::new();
    for node in &graph.nodes {
        *operators.entry(node.op_type.clone()).or_insert(0) += 1;
    }
    Ok(Inspection {
        file: path.to_owned(),
        inputs,
        preprocess: meta.preprocess,
        heads: meta.heads,
        views: meta.views,
        provenance: meta.provenance,
        quantization: meta.quantization,
        graph: GraphSummary {
            nodes: graph.nodes.len(),
            operators,
            initializers: graph.initializers.len(),
            parameters: graph
                .initializers
                .iter()
                .filter_map(onnx_proto::Tensor::element_count)
                .sum(),
            producer: model.producer.clone(),
            opset: model
                .opsets
                .iter()
                .find(|(domain, _)| domain.is_empty() || domain == "ai.onnx")
                .map(|&(_, version)| version),
            ir_version: model.ir_version,
        },
        filters: None,
    })
}

/// Values joined by `", "`.
fn list<T: Display>(values: &[T]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1763565` as `1,763,565`.
fn thousands(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `1/255` when `scale` is the reciprocal of a whole number, otherwise the number.
fn scale_text(scale: f32) -> String {
    let inverse = 1.0 / f64::from(scale);
    if inverse.is_finite() && inverse >= 1.0 && (inverse - inverse.round()).abs() < 1e-3 {
        format!("1/{}", inverse.round())
    } else {
        scale.to_string()
    }
}

impl Display for Inspection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "model: {}", self.file.display())?;
        for input in &self.inputs {
            writeln!(
                f,
                "input: {} {}[{}]",
                input.name,
                input.element_type,
                list(&input.shape)
            )?;
        }
        let p = &self.preprocess;
        writeln!(
            f,
            "preprocess: resize to {}x{}, {} channel{} ({}), scale {}, mean [{}], std [{}]",
            p.size[0],
            p.size[1],
            p.channels,
            if p.channels == 1 { "" } else { "s" },
            if p.channels == 1 { "gray" } else { "BGR" },
            scale_text(p.scale),
            list(&p.mean),
            list(&p.std)
        )?;
        writeln!(f, "heads:")?;
        for head in &self.heads {
            let kind = match head.kind {
                HeadKind::Softmax => "softmax",
                HeadKind::Sigmoid => "sigmoid",
            };
            let threshold = head
                .threshold
                .map(|t| format!(", threshold {t}"))
                .unwrap_or_default();
            writeln!(
                f,
                "  {} ({kind}{threshold}, {} labels): {}",
                head.output,
                head.labels.len(),
                list(&head.labels)
            )?;
        }
        if self.views.is_empty() {
            writeln!(f, "views: none")?;
        } else {
            writeln!(f, "views:")?;
            for (view, groups) in &self.views {
                writeln!(f, "  {view}:")?;
                for (group, labels) in groups {
                    writeln!(f, "    {group}: {}", list(labels))?;
                }
            }
        }
        match &self.provenance {
            None => writeln!(f, "provenance: none")?,
            Some(p) => {
                writeln!(f, "provenance:")?;
                writeln!(f, "  dataset: {}", p.dataset)?;
                writeln!(
                    f,
                    "  images: {} training, {} validation",
                    p.train_size, p.val_size
                )?;
                match p.averaged_from {
                    Some(first) => writeln!(
                        f,
                        "  epochs: {} trained, weights averaged over {first}-{}",
                        p.epochs, p.best_epoch
                    )?,
                    None => writeln!(f, "  epochs: {} trained, best {}", p.epochs, p.best_epoch)?,
                }
                writeln!(f, "  validation accuracy: {:.4}", p.val_accuracy)?;
                writeln!(f, "  architecture: {}", p.architecture)?;
                if let Some(init) = &p.init {
                    writeln!(f, "  started from: {init}")?;
                }
                writeln!(f, "  date: {}", p.date)?;
                for (name, value) in &p.metrics {
                    writeln!(f, "  {name}: {value:.4}")?;
                }
            }
        }
        if let Some(q) = &self.quantization {
            writeln!(f, "quantization: {}", q.scheme)?;
            writeln!(f, "  made from: {}", q.source)?;
            writeln!(f, "  calibrated on: {}", q.calibration)?;
            writeln!(f, "  onnxruntime: {}", q.onnxruntime)?;
        }
        let g = &self.graph;
        let operators: Vec<String> = g
            .operators
            .iter()
            .map(|(op, count)| format!("{op} {count}"))
            .collect();
        writeln!(
            f,
            "graph: {} nodes ({}), {} parameters in {} initializers",
            g.nodes,
            operators.join(", "),
            thousands(g.parameters),
            g.initializers
        )?;
        write!(f, "format: ONNX IR {}", g.ir_version)?;
        if let Some(opset) = g.opset {
            write!(f, ", opset {opset}")?;
        }
        if !g.producer.is_empty() {
            write!(f, ", written by {}", g.producer)?;
        }
        if let Some(grid) = &self.filters {
            write!(
                f,
                "\nfilters: {} of {}x{} ({} input channel{}{}) drawn to {} ({}x{} pixels)",
                grid.filters,
                grid.kernel[0],
                grid.kernel[1],
                grid.in_channels,
                if grid.in_channels == 1 { "" } else { "s" },
                if grid.in_channels == 1 {
                    ""
                } else {
                    ", averaged"
                },
                grid.file.display(),
                grid.image[0],
                grid.image[1]
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_shown_as_a_fraction_when_it_is_one() {
        assert_eq!(scale_text(1.0 / 255.0), "1/255");
        assert_eq!(scale_text(1.0), "1/1");
        assert_eq!(scale_text(0.3), "0.3");
    }

    #[test]
    fn parameter_counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_763_565), "1,763,565");
    }

    #[test]
    fn missing_file_names_the_path_and_the_fix() {
        let err = read_model(Path::new("/nonexistent/m.onnx")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/m.onnx") && text.contains("give the path"),
            "{text}"
        );
    }
}
