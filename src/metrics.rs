//! Classification metrics from a confusion matrix: accuracy, per-class precision, recall, F1 and
//! support, and their macro, micro and support-weighted averages.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<usize>>,
}

/// Precision, recall and F1 of one class, or an average of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Scores {
    /// Of the images predicted as the class, the share that is it.
    pub precision: f64,
    /// Of the images of the class, the share predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Images of the class (the total for averages).
    pub support: usize,
}

/// Everything `emolens evaluate` reports about one classifier on one dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Share of images whose predicted class is the true one.
    pub accuracy: f64,
    /// Class names, in the order of the confusion matrix.
    pub labels: Vec<String>,
    /// Scores per class name.
    pub per_class: BTreeMap<String, Scores>,
    /// Unweighted mean over classes.
    #[serde(rename = "macro")]
    pub macro_avg: Scores,
    /// Computed from the pooled counts (equals accuracy for single-label data).
    #[serde(rename = "micro")]
    pub micro_avg: Scores,
    /// Mean over classes weighted by support.
    #[serde(rename = "weighted")]
    pub weighted_avg: Scores,
    /// Rows: true class; columns: predicted class.
    pub confusion: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// An empty matrix over `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            counts: vec![vec![0; classes]; classes],
        }
    }

    /// Counts one prediction.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    /// The counts, rows by true class.
    pub fn counts(&self) -> &[Vec<usize>] {
        &self.counts
    }

    /// A matrix over `classes` classes holding the `(truth, predicted)` pairs.
    pub fn from_pairs(classes: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut matrix = Self::new(classes);
        for (truth, predicted) in pairs {
            matrix.add(truth, predicted);
        }
        matrix
    }

    /// Adds the counts of `other` (over the same classes).
    pub fn absorb(&mut self, other: &ConfusionMatrix) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
    }

    /// Share of the counted predictions that are right (0 when there are none).
    pub fn accuracy(&self) -> f64 {
        let total: usize = self.counts.iter().flatten().sum();
        let correct: usize = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        correct as f64 / total.max(1) as f64
    }

    /// Computes every metric; `labels` names the classes in order.
    pub fn report(&self, labels: &[String]) -> Report {
        let k = self.counts.len();
        let total: usize = self.counts.iter().flatten().sum();
        let correct: usize = (0..k).map(|i| self.counts[i][i]).sum();
        let per_class: Vec<Scores> = (0..k)
            .map(|c| {
                let tp = self.counts[c][c];
                let support: usize = self.counts[c].iter().sum();
                let predicted: usize = self.counts.iter().map(|row| row[c]).sum();
                scores(tp, predicted, support)
            })
            .collect();
        let mean = |weight: &dyn Fn(&Scores) -> f64| {
            let sum_w: f64 = per_class.iter().map(weight).sum();
            let avg = |f: fn(&Scores) -> f64| {
                if sum_w > 0.0 {
                    per_class.iter().map(|s| f(s) * weight(s)).sum::<f64>() / sum_w
                } else {
                    0.0
                }
            };
            Scores {
                precision: avg(|s| s.precision),
                recall: avg(|s| s.recall),
                f1: avg(|s| s.f1),
                support: total,
            }
        };
        let accuracy = ratio(correct, total);
        Report {
            accuracy,
            labels: labels.to_vec(),
            per_class: labels
                .iter()
                .cloned()
                .zip(per_class.iter().copied())
                .collect(),
            macro_avg: mean(&|_| 1.0),
            micro_avg: scores(correct, total, total),
            weighted_avg: mean(&|s| s.support as f64),
            confusion: self.counts.clone(),
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

pub(crate) fn scores(true_positives: usize, predicted: usize, support: usize) -> Scores {
    let precision = ratio(true_positives, predicted);
    let recall = ratio(true_positives, support);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Scores {
        precision,
        recall,
        f1,
        support,
    }
}

impl Report {
    /// Mean F1 over the classes that occur as truth or as prediction. Unlike
    /// [`Report::macro_avg`], a class absent from both does not count as an F1 of 0, so a small
    /// subset is not marked down for a class it happens to lack (scikit-learn's macro F1 when no
    /// label list is given).
    pub fn macro_f1_present(&self) -> f64 {
        let present: Vec<f64> = self
            .labels
            .iter()
            .filter_map(|label| self.present_f1(label))
            .collect();
        if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        }
    }

    /// The F1 of `label` when it occurs as truth or as prediction; `None` when it does neither
    /// (or is not one of the labels).
    pub fn present_f1(&self, label: &str) -> Option<f64> {
        let c = self.labels.iter().position(|l| l == label)?;
        let occurs = self.confusion[c].iter().sum::<usize>()
            + self.confusion.iter().map(|row| row[c]).sum::<usize>()
            > 0;
        occurs
            .then(|| self.per_class.get(label).map(|s| s.f1))
            .flatten()
    }

    /// The per-class table and the confusion matrix as aligned text.
    pub fn to_table(&self) -> String {
        let width = self
            .labels
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(5)
            .max(12);
        let mut out = String::new();
        let _ = writeln!(out, "accuracy {:.4}\n", self.accuracy);
        let _ = writeln!(
            out,
            "{:>width$} {:>9} {:>9} {:>9} {:>8}",
            "", "precision", "recall", "f1", "support"
        );
        let mut row = |name: &str, s: &Scores| {
            let _ = writeln!(
                out,
                "{name:>width$} {:>9.4} {:>9.4} {:>9.4} {:>8}",
                s.precision, s.recall, s.f1, s.support
            );
        };
        for label in &self.labels {
            if let Some(s) = self.per_class.get(label) {
                row(label, s);
            }
        }
        row("macro avg", &self.macro_avg);
        row("micro avg", &self.micro_avg);
        row("weighted avg", &self.weighted_avg);
        let _ = writeln!(out, "\nconfusion matrix (rows: true, columns: predicted)");
        let cell = self
            .labels
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(5)
            .max(6);
        let _ = write!(out, "{:>width$}", "");
        for label in &self.labels {
            let _ = write!(out, " {label:>cell$}");
        }
        let _ = writeln!(out);
        for (label, counts) in self.labels.iter().zip(&self.confusion) {
            let _ = write!(out, "{label:>width$}");
            for count in counts {
                let _ = write!(out, " {count:>cell$}");
            }
            let _ = writeln!(out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed example: 3 classes, 10 images.
    /// true a: a a a b   (4)   true b: b b c (3)   true c: c c a (3)
    #[test]
    fn matches_hand_computed_values() {
        let mut m = ConfusionMatrix::new(3);
        for (t, p) in [
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 1),
            (1, 1),
            (1, 1),
            (1, 2),
            (2, 2),
            (2, 2),
            (2, 0),
        ] {
            m.add(t, p);
        }
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let r = m.report(&labels);
        assert_eq!(
            r.confusion,
            vec![vec![3, 1, 0], vec![0, 2, 1], vec![1, 0, 2]]
        );
        assert!((r.accuracy - 0.7).abs() < 1e-12);
        let a = r.per_class["a"];
        assert!((a.precision - 0.75).abs() < 1e-12 && (a.recall - 0.75).abs() < 1e-12);
        let b = r.per_class["b"];
        assert!((b.precision - 2.0 / 3.0).abs() < 1e-12 && (b.recall - 2.0 / 3.0).abs() < 1e-12);
        let c = r.per_class["c"];
        assert!((c.f1 - 2.0 / 3.0).abs() < 1e-12);
        let macro_f1 = (0.75 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0;
        assert!((r.macro_avg.f1 - macro_f1).abs() < 1e-12);
        let weighted_f1 = (0.75 * 4.0 + 2.0 / 3.0 * 3.0 + 2.0 / 3.0 * 3.0) / 10.0;
        assert!((r.weighted_avg.f1 - weighted_f1).abs() < 1e-12);
        assert!((r.micro_avg.f1 - 0.7).abs() < 1e-12);
        assert_eq!(r.macro_avg.support, 10);
    }

    #[test]
    fn present_macro_f1_leaves_out_absent_classes() {
        // Class c never occurs: a and b are each right once and wrong once.
        let m = ConfusionMatrix::from_pairs(3, [(0, 0), (0, 1), (1, 1), (1, 0)]);
        let r = m.report(&["a".into(), "b".into(), "c".into()]);
        assert!((r.macro_f1_present() - 0.5).abs() < 1e-12);
        assert!((r.macro_avg.f1 - 1.0 / 3.0).abs() < 1e-12);
        // A class that is only predicted counts, with F1 0.
        let m = ConfusionMatrix::from_pairs(3, [(0, 0), (0, 2)]);
        let r = m.report(&["a".into(), "b".into(), "c".into()]);
        assert!((r.macro_f1_present() - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(r.present_f1("b"), None, "b neither occurs nor is predicted");
        assert_eq!(r.present_f1("c"), Some(0.0), "c is predicted");
        assert_eq!(r.present_f1("z"), None, "not a label");
    }

    #[test]
    fn empty_classes_give_zeros_not_nan() {
        let mut m = ConfusionMatrix::new(2);
        m.add(0, 0);
        let r = m.report(&["x".into(), "y".into()]);
        assert_eq!(r.per_class["y"].f1, 0.0);
        assert!(r.to_table().contains("confusion matrix"));
    }
}
