//! The model contract of DESIGN.md section 2: the `emolens.*` metadata an ONNX model carries, so
//! that the tool knows how to feed it and read its outputs without code changes.

use std::collections::{BTreeMap, BTreeSet};

use crate::dataset::FER2013_LABELS;

use serde::{Deserialize, Serialize};

/// Probability at or above which an action unit counts as present, for a sigmoid head whose
/// metadata names no threshold (and the threshold training writes into the heads it exports).
pub const UNIT_THRESHOLD: f32 = 0.5;

/// Metadata key holding [`Preprocess`] as JSON.
pub const KEY_PREPROCESS: &str = "emolens.preprocess";
/// Metadata key holding the list of [`Head`]s as JSON.
pub const KEY_HEADS: &str = "emolens.heads";
/// Metadata key holding the optional [`Views`] as JSON.
pub const KEY_VIEWS: &str = "emolens.views";
/// Metadata key holding [`Provenance`] as JSON.
pub const KEY_PROVENANCE: &str = "emolens.provenance";
/// Metadata key holding the optional [`Quantization`] as JSON.
pub const KEY_QUANTIZATION: &str = "emolens.quantization";

/// How a face crop becomes the model's input tensor: resize to `size`, convert to `channels`,
/// then `(pixel * scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// `[width, height]` of the input in pixels.
    pub size: [usize; 2],
    /// 1 for grayscale, 3 for BGR.
    pub channels: usize,
    /// Factor applied to the 0..=255 pixel value before normalisation.
    pub scale: f32,
    /// Per-channel mean subtracted after scaling.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after subtracting the mean.
    pub std: Vec<f32>,
}

/// How one output tensor is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// Mutually exclusive classes: the output holds logits, softmax gives probabilities.
    Softmax,
    /// Independent labels (action units): the output holds logits, sigmoid gives probabilities.
    Sigmoid,
}

/// One output of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Name of the ONNX graph output.
    pub output: String,
    /// How to turn the output into probabilities.
    pub kind: HeadKind,
    /// One label per output column.
    pub labels: Vec<String>,
    /// Decision threshold of a sigmoid head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

/// Named groupings of a softmax head's labels, e.g. valence: view name -> group -> labels.
pub type Views = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Where a model came from and how well it measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Training data as given on the command line.
    pub dataset: String,
    /// Number of training images.
    pub train_size: usize,
    /// Number of validation images.
    pub val_size: usize,
    /// Epochs actually trained.
    pub epochs: usize,
    /// Epoch (from 1) whose weights were kept; the last of the average with `averaged_from`.
    pub best_epoch: usize,
    /// First epoch of the weights' average (`train --average-last`); none: one epoch's weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged_from: Option<usize>,
    /// Validation accuracy of the kept weights.
    pub val_accuracy: f64,
    /// Architecture name.
    pub architecture: String,
    /// Weights file the convolution layers started from (`train --init`); none: from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// UTC date of the export, `YYYY-MM-DD`.
    pub date: String,
    /// Any further measured figures (test metrics added after evaluation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// How an int8 copy of a trained model was made (`scripts/quantize-model.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantization {
    /// What was quantized and how.
    pub scheme: String,
    /// The float model it was made from.
    pub source: String,
    /// The images its activation ranges were calibrated on.
    pub calibration: String,
    /// Version of the ONNX Runtime quantization tool.
    pub onnxruntime: String,
}

/// Everything the `emolens.*` metadata says about a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMeta {
    /// Input preparation.
    pub preprocess: Preprocess,
    /// Outputs, in the order the metadata lists them.
    pub heads: Vec<Head>,
    /// Optional label groupings.
    pub views: Views,
    /// Training record.
    pub provenance: Option<Provenance>,
    /// Present when the model is an int8 copy of a trained one.
    pub quantization: Option<Quantization>,
}

/// A model's metadata is missing or does not describe a usable model.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A required key is absent.
    #[error("the model has no `{0}` metadata: it was not exported by `emolens train` (see README, Models)")]
    Missing(&'static str),
    /// A key holds JSON that does not parse into the expected shape.
    #[error("metadata `{key}` is not valid: {error}")]
    Json {
        /// The metadata key.
        key: &'static str,
        /// The parse error.
        error: serde_json::Error,
    },
    /// The metadata parses but contradicts itself.
    #[error("metadata is inconsistent: {0}")]
    Invalid(String),
}

impl ModelMeta {
    /// Reads the metadata from a key/value lookup (the ONNX `metadata_props`).
    ///
    /// # Errors
    /// [`MetaError`] when a required key is missing, does not parse, or is inconsistent.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MetaError> {
        fn parse<T: serde::de::DeserializeOwned>(
            key: &'static str,
            text: &str,
        ) -> Result<T, MetaError> {
            serde_json::from_str(text).map_err(|error| MetaError::Json { key, error })
        }
        let preprocess: Preprocess = parse(
            KEY_PREPROCESS,
            &lookup(KEY_PREPROCESS).ok_or(MetaError::Missing(KEY_PREPROCESS))?,
        )?;
        let heads: Vec<Head> = parse(
            KEY_HEADS,
            &lookup(KEY_HEADS).ok_or(MetaError::Missing(KEY_HEADS))?,
        )?;
        let views: Views = match lookup(KEY_VIEWS) {
            Some(text) => parse(KEY_VIEWS, &text)?,
            None => Views::new(),
        };
        let provenance = match lookup(KEY_PROVENANCE) {
            Some(text) => Some(parse(KEY_PROVENANCE, &text)?),
            None => None,
        };
        let quantization = match lookup(KEY_QUANTIZATION) {
            Some(text) => Some(parse(KEY_QUANTIZATION, &text)?),
            None => None,
        };
        let meta = Self {
            preprocess,
            heads,
            views,
            provenance,
            quantization,
        };
        meta.validate()?;
        Ok(meta)
    }

    /// The metadata as `(key, JSON value)` pairs, ready to be written into an ONNX file.
    ///
    /// # Errors
    /// Only if serialisation fails, which plain data cannot make happen.
    pub fn to_pairs(&self) -> serde_json::Result<Vec<(String, String)>> {
        let mut pairs = vec![
            (
                KEY_PREPROCESS.to_owned(),
                serde_json::to_string(&self.preprocess)?,
            ),
            (KEY_HEADS.to_owned(), serde_json::to_string(&self.heads)?),
        ];
        if !self.views.is_empty() {
            pairs.push((KEY_VIEWS.to_owned(), serde_json::to_string(&self.views)?));
        }
        if let Some(provenance) = &self.provenance {
            pairs.push((
                KEY_PROVENANCE.to_owned(),
                serde_json::to_string(provenance)?,
            ));
        }
        if let Some(quantization) = &self.quantization {
            pairs.push((
                KEY_QUANTIZATION.to_owned(),
                serde_json::to_string(quantization)?,
            ));
        }
        Ok(pairs)
    }

    /// The first softmax head: the emotion classifier every model must have.
    ///
    /// # Errors
    /// [`MetaError::Invalid`] when the model has no softmax head.
    pub fn emotion_head(&self) -> Result<&Head, MetaError> {
        self.heads
            .iter()
            .find(|head| head.kind == HeadKind::Softmax)
            .ok_or_else(|| MetaError::Invalid("no softmax (emotion) head".into()))
    }

    fn validate(&self) -> Result<(), MetaError> {
        let p = &self.preprocess;
        if p.size[0] == 0 || p.size[1] == 0 {
            return Err(MetaError::Invalid(format!(
                "input size {:?} is empty",
                p.size
            )));
        }
        if p.channels != 1 && p.channels != 3 {
            return Err(MetaError::Invalid(format!(
                "{} input channels; 1 (gray) or 3 (BGR) are supported",
                p.channels
            )));
        }
        if p.mean.len() != p.channels || p.std.len() != p.channels {
            return Err(MetaError::Invalid(format!(
                "mean and std need one value per channel ({}), found {} and {}",
                p.channels,
                p.mean.len(),
                p.std.len()
            )));
        }
        if p.std.iter().any(|s| *s <= 0.0) {
            return Err(MetaError::Invalid("std values must be positive".into()));
        }
        if self.heads.is_empty() {
            return Err(MetaError::Invalid("no heads".into()));
        }
        for head in &self.heads {
            if head.labels.is_empty() {
                return Err(MetaError::Invalid(format!(
                    "head `{}` has no labels",
                    head.output
                )));
            }
        }
        let emotion = self.emotion_head()?;
        for (view, groups) in &self.views {
            for label in groups.values().flatten() {
                if !emotion.labels.contains(label) {
                    return Err(MetaError::Invalid(format!(
                        "view `{view}` names `{label}`, which is not one of the labels {:?}",
                        emotion.labels
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Name of the built-in view used with FER2013 labels.
pub const VALENCE_VIEW: &str = "valence";
/// Group of the valence view whose labels do not count as engaged by default.
pub const NEGATIVE_GROUP: &str = "negative";

/// The built-in views for a label set: a "valence" view for the seven FER2013
/// labels (in any order), none otherwise.
pub fn default_views(labels: &[String]) -> Views {
    let mut views = Views::new();
    if !is_fer_label_set(labels) {
        return views;
    }
    let groups = [
        (NEGATIVE_GROUP, &["angry", "disgust", "fear", "sad"][..]),
        ("positive", &["happy"][..]),
        ("surprise", &["surprise"][..]),
        ("neutral", &["neutral"][..]),
    ];
    let valence = groups
        .iter()
        .map(|(group, members)| {
            let members = members.iter().map(|label| label.to_string()).collect();
            (group.to_string(), members)
        })
        .collect();
    views.insert(VALENCE_VIEW.to_string(), valence);
    views
}

/// True when the labels are exactly the seven FER2013 labels, in any order.
fn is_fer_label_set(labels: &[String]) -> bool {
    let given: BTreeSet<&str> = labels.iter().map(String::as_str).collect();
    labels.len() == FER2013_LABELS.len() && given == FER2013_LABELS.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sample() -> ModelMeta {
        ModelMeta {
            preprocess: Preprocess {
                size: [48, 48],
                channels: 1,
                scale: 1.0 / 255.0,
                mean: vec![0.5],
                std: vec![0.25],
            },
            heads: vec![Head {
                output: "emotion".into(),
                kind: HeadKind::Softmax,
                labels: vec!["happy".into(), "sad".into()],
                threshold: None,
            }],
            views: Views::from([(
                "valence".to_owned(),
                BTreeMap::from([
                    ("positive".to_owned(), vec!["happy".to_owned()]),
                    ("negative".to_owned(), vec!["sad".to_owned()]),
                ]),
            )]),
            provenance: Some(Provenance {
                dataset: "fer2013".into(),
                train_size: 10,
                ..Provenance::default()
            }),
            quantization: Some(Quantization {
                scheme: "int8".into(),
                source: "model.onnx".into(),
                calibration: "512 images".into(),
                onnxruntime: "1.31.1".into(),
            }),
        }
    }

    #[test]
    fn round_trips_through_pairs() -> Result<(), Box<dyn std::error::Error>> {
        let meta = sample();
        let map: HashMap<String, String> = meta.to_pairs()?.into_iter().collect();
        let back = ModelMeta::from_lookup(|key| map.get(key).cloned())?;
        assert_eq!(back, meta);
        Ok(())
    }

    #[test]
    fn missing_heads_is_named() {
        let err = ModelMeta::from_lookup(|key| {
            (key == KEY_PREPROCESS).then(|| {
                r#"{"size":[48,48],"channels":1,"scale":0.1,"mean":[0],"std":[1]}"#.to_owned()
            })
        })
        .unwrap_err();
        assert!(err.to_string().contains(KEY_HEADS), "{err}");
    }

    #[test]
    fn view_with_unknown_label_is_rejected() -> Result<(), Box<dyn std::error::Error>> {
        let mut meta = sample();
        meta.views
            .get_mut("valence")
            .ok_or("no view")?
            .insert("odd".into(), vec!["bored".into()]);
        let map: HashMap<String, String> = meta.to_pairs()?.into_iter().collect();
        let err = ModelMeta::from_lookup(|key| map.get(key).cloned()).unwrap_err();
        assert!(err.to_string().contains("bored"), "{err}");
        Ok(())
    }

    mod fuzz {
        use super::*;
        use crate::fuzzing::any_text;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_metadata_value_is_read_or_refused(key in 0..8usize, value in any_text(200), cut in 0..400usize) {
                let mut pairs: HashMap<String, String> = sample().to_pairs().map_err(|e| TestCaseError::fail(e.to_string()))?.into_iter().collect();
                let keys: Vec<String> = pairs.keys().cloned().collect();
                let key = &keys[key % keys.len()];
                // Either any text, or the valid value cut short.
                let replaced = if cut % 2 == 0 {
                    value
                } else {
                    let valid = &pairs[key];
                    valid.chars().take(cut % (valid.chars().count() + 1)).collect()
                };
                pairs.insert(key.clone(), replaced);
                if let Ok(meta) = ModelMeta::from_lookup(|k| pairs.get(k).cloned()) {
                    prop_assert!(!meta.heads.is_empty());
                }
            }
        }
    }
}
