//! Views in `emolens evaluate`: named groupings of a model's emotion labels (the
//! `emolens.views` metadata of DESIGN.md section 2, e.g. valence: negative / positive / surprise /
//! neutral), scored by mapping the true and the predicted label of each image to its group.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Serialize, Serializer};

use crate::metrics::{ConfusionMatrix, Report, Scores};
use crate::model_meta::Views;

/// One view over a model's labels: which group each label belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewMap {
    /// The view's name, e.g. `valence`.
    pub name: String,
    /// Group names, in the view's order.
    pub groups: Vec<String>,
    /// Group index of each model label (by label index); `None` for labels in no group.
    group_of: Vec<Option<usize>>,
}

/// How one view scored: its metrics over the images whose true and predicted labels both
/// belong to a group, plus how many images were left out.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewReport {
    /// Images scored.
    pub images: usize,
    /// Images left out because their true or predicted label is in no group of the view.
    pub dropped: usize,
    /// Metrics with the groups as classes.
    pub report: Report,
}

/// The views to score for a model: its own `views`, or, when it has none, the built-in ones
/// for its labels ([`crate::model_meta::default_views`]: valence for the seven FER2013 labels).
///
/// # Errors
/// A view that names a label the model lacks or puts a label in two groups.
pub fn for_model(views: &Views, labels: &[String]) -> Result<Vec<ViewMap>> {
    let built_in;
    let views = if views.is_empty() {
        built_in = crate::model_meta::default_views(labels);
        &built_in
    } else {
        views
    };
    views
        .iter()
        .map(|(name, groups)| ViewMap::new(name, groups, labels))
        .collect()
}

impl ViewMap {
    /// The view `name` with `groups` (group name -> member labels) over the model's `labels`.
    ///
    /// # Errors
    /// A member that is not one of `labels`, or a label in two groups.
    pub fn new(
        name: &str,
        groups: &BTreeMap<String, Vec<String>>,
        labels: &[String],
    ) -> Result<Self> {
        let mut group_of = vec![None; labels.len()];
        for (g, members) in groups.values().enumerate() {
            for member in members {
                let Some(label) = labels.iter().position(|l| l == member) else {
                    bail!("view `{name}` names `{member}`, which is not one of the model's labels {labels:?}");
                };
                if group_of[label].replace(g).is_some() {
                    bail!("view `{name}` puts `{member}` in two groups; give each label one group");
                }
            }
        }
        Ok(Self {
            name: name.to_owned(),
            groups: groups.keys().cloned().collect(),
            group_of,
        })
    }

    /// Scores `(true label, predicted label)` pairs with the groups as classes; pairs with
    /// either label in no group are left out and counted.
    pub fn score(&self, pairs: impl IntoIterator<Item = (usize, usize)>) -> ViewReport {
        let mut dropped = 0;
        let mut matrix = ConfusionMatrix::new(self.groups.len());
        for (truth, predicted) in pairs {
            match (self.group_of[truth], self.group_of[predicted]) {
                (Some(t), Some(p)) => matrix.add(t, p),
                _ => dropped += 1,
            }
        }
        let report = matrix.report(&self.groups);
        ViewReport {
            images: report.macro_avg.support,
            dropped,
            report,
        }
    }
}

impl ViewReport {
    /// A heading naming the view, then its table and confusion matrix.
    pub fn to_text(&self, name: &str) -> String {
        let left_out = if self.dropped == 0 {
            String::new()
        } else {
            format!(
                "; {} left out: true or predicted label in no group",
                self.dropped
            )
        };
        format!(
            "\nview {name} ({} images{left_out}):\n{}",
            self.images,
            self.report.to_table()
        )
    }
}

/// `{"accuracy", "images", "dropped", "groups", "per_group", "macro", "confusion"}`.
impl Serialize for ViewReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            accuracy: f64,
            images: usize,
            dropped: usize,
            groups: &'a [String],
            per_group: &'a BTreeMap<String, Scores>,
            #[serde(rename = "macro")]
            macro_avg: &'a Scores,
            confusion: &'a [Vec<usize>],
        }
        Json {
            accuracy: self.report.accuracy,
            images: self.images,
            dropped: self.dropped,
            groups: &self.report.labels,
            per_group: &self.report.per_class,
            macro_avg: &self.report.macro_avg,
            confusion: &self.report.confusion,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Labels a b c d; groups x = {a, b}, y = {c}; d is in no group.
    fn toy() -> Result<ViewMap> {
        let groups = BTreeMap::from([
            ("x".to_owned(), strings(&["a", "b"])),
            ("y".to_owned(), strings(&["c"])),
        ]);
        ViewMap::new("toy", &groups, &strings(&["a", "b", "c", "d"]))
    }

    #[test]
    fn maps_labels_to_groups_with_hand_computed_scores() -> Result<()> {
        // (a,a) x/x right; (a,b) x/x right (same group); (b,c) x/y wrong; (c,c) y/y right;
        // (c,a) y/x wrong; (d,a) and (a,d) left out.
        let r = toy()?.score([(0, 0), (0, 1), (1, 2), (2, 2), (2, 0), (3, 0), (0, 3)]);
        assert_eq!((r.images, r.dropped), (5, 2));
        assert_eq!(r.report.confusion, vec![vec![2, 1], vec![1, 1]]);
        assert!((r.report.accuracy - 0.6).abs() < 1e-12);
        let x = r.report.per_class["x"];
        assert!((x.precision - 2.0 / 3.0).abs() < 1e-12 && (x.recall - 2.0 / 3.0).abs() < 1e-12);
        let y = r.report.per_class["y"];
        assert!((y.f1 - 0.5).abs() < 1e-12);
        let json = serde_json::to_value(&r)?;
        assert_eq!(json["groups"], serde_json::json!(["x", "y"]));
        assert_eq!(json["per_group"]["y"]["support"], 2);
        assert_eq!(json["dropped"], 2);
        assert!(r.to_text("toy").contains("2 left out"));
        Ok(())
    }

    #[test]
    fn fer_labels_get_the_valence_view_and_bad_views_are_refused() -> Result<()> {
        let fer = crate::dataset::fer2013_classes();
        let views = for_model(&Views::new(), &fer)?;
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].name, "valence");
        assert!(for_model(&Views::new(), &strings(&["calm", "busy"]))?.is_empty());

        let twice = Views::from([(
            "odd".to_owned(),
            BTreeMap::from([
                ("p".to_owned(), strings(&["happy"])),
                ("q".to_owned(), strings(&["happy"])),
            ]),
        )]);
        let err = for_model(&twice, &fer).unwrap_err();
        assert!(err.to_string().contains("two groups"), "{err}");
        Ok(())
    }
}
