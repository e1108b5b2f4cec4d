//! What the tag of a face says: its top emotion and confidence, or with a view the group of
//! emotions it falls in (e.g. negative / positive / surprise), and optionally the action units
//! that are present.

use std::collections::BTreeMap;

use std::path::Path;

use anyhow::{bail, Result};

use crate::classifier::Classifier;
use crate::faces::track::TrackedFace;

/// How faces are captioned.
#[derive(Debug, Clone, PartialEq)]
pub struct Captions {
    labels: Vec<String>,
    view: Option<View>,
    units: Option<Units>,
}

/// A view of the emotion labels: each label's group, and the group names.
#[derive(Debug, Clone, PartialEq)]
struct View {
    groups: Vec<String>,
    group_of_label: Vec<Option<usize>>,
}

/// Action units and the probability at which one counts as present.
#[derive(Debug, Clone, PartialEq)]
struct Units {
    names: Vec<String>,
    threshold: f32,
}

/// The caption of one face.
#[derive(Debug, Clone, PartialEq)]
pub struct Caption {
    /// Index of the shown label or group (picks its colour among others).
    pub index: usize,
    /// The shown label or group.
    pub label: String,
    /// Its probability (summed over a group's labels).
    pub confidence: f32,
    /// The action units present, e.g. `AU6 AU12`, when asked for and any are.
    pub units: Option<String>,
}

impl Captions {
    /// Top emotion labels only.
    pub fn plain(labels: &[String]) -> Self {
        Self {
            labels: labels.to_vec(),
            view: None,
            units: None,
        }
    }

    /// The tags of `classifier`'s faces (loaded from `model`): its labels, or the groups of its
    /// view `view`, and the action units present when `show_units`.
    ///
    /// # Errors
    /// A view or unit display the model cannot give, naming the model file.
    pub fn for_tags(
        model: &Path,
        classifier: &Classifier,
        view: Option<&str>,
        show_units: bool,
    ) -> Result<Self> {
        let labels = &classifier.emotion_head()?.labels;
        let mut captions = Self::plain(labels);
        if let Some(name) = view {
            let mut views = classifier.meta().views.clone();
            if views.is_empty() {
                views = crate::model_meta::default_views(labels);
            }
            let Some(view) = views.get(name) else {
                bail!(
                    "{}: has no view `{name}` (views: {}); leave --view out or use one of them",
                    model.display(),
                    views.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            };
            captions = captions.with_view(view)?;
        }
        if show_units {
            let Some(head) = classifier.unit_head() else {
                bail!(
                    "{}: has no action-unit head; leave --show-aus out or use a model trained with --aus",
                    model.display()
                );
            };
            let threshold = head.threshold.unwrap_or(crate::model_meta::UNIT_THRESHOLD);
            captions = captions.with_units(&head.labels, threshold);
        }
        Ok(captions)
    }

    /// Shows the groups of `view` (group -> labels) instead of the labels.
    ///
    /// # Errors
    /// A view that names a label the model does not have.
    pub fn with_view(mut self, view: &BTreeMap<String, Vec<String>>) -> Result<Self> {
        let mut group_of_label = vec![None; self.labels.len()];
        for (g, members) in view.values().enumerate() {
            for member in members {
                match self.labels.iter().position(|l| l == member) {
                    Some(i) => group_of_label[i] = Some(g),
                    None => bail!(
                        "the view names `{member}`, which is not one of the model's labels {:?}",
                        self.labels
                    ),
                }
            }
        }
        self.view = Some(View {
            groups: view.keys().cloned().collect(),
            group_of_label,
        });
        Ok(self)
    }

    /// Also lists the action units at or above `threshold`.
    pub fn with_units(mut self, names: &[String], threshold: f32) -> Self {
        self.units = Some(Units {
            names: names.to_vec(),
            threshold,
        });
        self
    }

    /// The caption of `face`.
    pub fn of(&self, face: &TrackedFace) -> Caption {
        let (index, label, confidence) = match &self.view {
            None => {
                let (i, label, p) = top_label(face, &self.labels);
                (i, label.to_owned(), p)
            }
            Some(view) => {
                let mut sums = vec![0.0f32; view.groups.len()];
                for (p, group) in face.probs.iter().zip(&view.group_of_label) {
                    if let Some(g) = group {
                        sums[*g] += p;
                    }
                }
                let g = crate::util::argmax(&sums);
                (
                    g,
                    view.groups.get(g).cloned().unwrap_or_default(),
                    sums.get(g).copied().unwrap_or(0.0),
                )
            }
        };
        let units = self.units.as_ref().and_then(|units| {
            let present: Vec<&str> = units
                .names
                .iter()
                .zip(&face.units)
                .filter(|(_, p)| **p >= units.threshold)
                .map(|(name, _)| name.as_str())
                .collect();
            (!present.is_empty()).then(|| present.join(" "))
        });
        Caption {
            index,
            label,
            confidence,
            units,
        }
    }
}

/// The most probable label of a face, its index and probability.
pub fn top_label<'a>(face: &TrackedFace, labels: &'a [String]) -> (usize, &'a str, f32) {
    let index = crate::util::argmax(&face.probs);
    (
        index,
        labels.get(index).map_or("?", String::as_str),
        face.probs.get(index).copied().unwrap_or(0.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::Rect;

    fn face(probs: &[f32], units: &[f32]) -> TrackedFace {
        TrackedFace {
            track: crate::faces::track::TrackedBox {
                id: 1,
                bbox: Rect::new(0, 0, 10, 10),
                seen: true,
                landmarks: None,
                pose: None,
                frontal: true,
                is_new: false,
            },
            probs: probs.to_vec(),
            units: units.to_vec(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn views_sum_their_labels_and_units_list_those_present() -> Result<()> {
        let labels = strings(&["angry", "happy", "sad"]);
        let view = BTreeMap::from([
            ("negative".to_owned(), strings(&["angry", "sad"])),
            ("positive".to_owned(), strings(&["happy"])),
        ]);
        let captions = Captions::plain(&labels)
            .with_view(&view)?
            .with_units(&strings(&["AU6", "AU12"]), 0.5);
        let caption = captions.of(&face(&[0.3, 0.4, 0.3], &[0.7, 0.2]));
        assert_eq!(caption.label, "negative");
        assert!((caption.confidence - 0.6).abs() < 1e-6);
        assert_eq!(caption.units.as_deref(), Some("AU6"));
        let plain = Captions::plain(&labels).of(&face(&[0.3, 0.4, 0.3], &[]));
        assert_eq!((plain.label.as_str(), plain.units), ("happy", None));
        let bad = BTreeMap::from([("x".to_owned(), strings(&["calm"]))]);
        assert!(Captions::plain(&labels).with_view(&bad).is_err());
        Ok(())
    }
}
