//! Action-unit detection scores: each unit is a yes/no decision at a probability threshold;
//! precision, recall and F1 per unit, micro-averaged over all decisions and macro-averaged over
//! units.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::{scores, Scores};

/// True positives, predicted positives and actual positives of each unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuCounts {
    names: Vec<String>,
    true_positives: Vec<usize>,
    predicted: Vec<usize>,
    actual: Vec<usize>,
}

/// Every action-unit score of one model on one dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuReport {
    /// Probability at or above which a unit counts as present.
    pub threshold: f32,
    /// Scores per unit name (support: images showing the unit).
    pub per_unit: BTreeMap<String, Scores>,
    /// From the counts pooled over all units.
    pub micro: Scores,
    /// Unweighted mean over units.
    #[serde(rename = "macro")]
    pub macro_avg: Scores,
}

impl AuCounts {
    /// No decisions counted yet over units `names`.
    pub fn new(names: &[String]) -> Self {
        let zeros = vec![0; names.len()];
        Self {
            names: names.to_vec(),
            true_positives: zeros.clone(),
            predicted: zeros.clone(),
            actual: zeros,
        }
    }

    /// Counts one image: `truth` 0/1 and `probabilities` per unit.
    pub fn add(&mut self, truth: &[u8], probabilities: &[f32], threshold: f32) {
        for (u, (&t, &p)) in truth.iter().zip(probabilities).enumerate() {
            let (is, said) = (t == 1, p >= threshold);
            self.true_positives[u] += usize::from(is && said);
            self.predicted[u] += usize::from(said);
            self.actual[u] += usize::from(is);
        }
    }

    /// Adds the counts of `other` (over the same units).
    pub fn absorb(&mut self, other: &AuCounts) {
        for (mine, theirs) in [
            (&mut self.true_positives, &other.true_positives),
            (&mut self.predicted, &other.predicted),
            (&mut self.actual, &other.actual),
        ] {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
    }

    /// The scores at `threshold` (the one the counts were made at).
    pub fn report(&self, threshold: f32) -> AuReport {
        let per: Vec<Scores> = (0..self.names.len())
            .map(|u| scores(self.true_positives[u], self.predicted[u], self.actual[u]))
            .collect();
        let units = per.len().max(1) as f64;
        let mean = |f: fn(&Scores) -> f64| per.iter().map(f).sum::<f64>() / units;
        AuReport {
            threshold,
            micro: scores(
                self.true_positives.iter().sum(),
                self.predicted.iter().sum(),
                self.actual.iter().sum(),
            ),
            macro_avg: Scores {
                precision: mean(|s| s.precision),
                recall: mean(|s| s.recall),
                f1: mean(|s| s.f1),
                support: self.actual.iter().sum(),
            },
            per_unit: self.names.iter().cloned().zip(per).collect(),
        }
    }
}

impl AuReport {
    /// Per-unit precision, recall, F1 and support, then the averages, as text.
    pub fn to_table(&self) -> String {
        let mut text = format!(
            "action units (present at probability >= {}):\nunit   precision  recall  f1      support\n",
            self.threshold
        );
        let mut line = |name: &str, s: &Scores| {
            text.push_str(&format!(
                "{name:<6} {:>9.3} {:>7.3} {:>7.3} {:>8}\n",
                s.precision, s.recall, s.f1, s.support
            ));
        };
        for (name, scores) in &self.per_unit {
            line(name, scores);
        }
        line("micro", &self.micro);
        line("macro", &self.macro_avg);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        let names = vec!["AU1".to_owned(), "AU12".to_owned()];
        let mut counts = AuCounts::new(&names);
        // AU1: truth 1,1,0,0 / said 1,0,1,0 -> tp 1, predicted 2, actual 2.
        // AU12: truth 1,1,1,0 / said 1,1,1,1 -> tp 3, predicted 4, actual 3.
        for (truth, probs) in [
            ([1, 1], [0.9, 0.6]),
            ([1, 1], [0.2, 0.5]),
            ([0, 1], [0.7, 0.8]),
            ([0, 0], [0.1, 0.5]),
        ] {
            counts.add(&truth, &probs, 0.5);
        }
        let report = counts.report(0.5);
        let au1 = report.per_unit["AU1"];
        assert!((au1.precision - 0.5).abs() < 1e-12 && (au1.recall - 0.5).abs() < 1e-12);
        assert!((au1.f1 - 0.5).abs() < 1e-12);
        let au12 = report.per_unit["AU12"];
        assert!((au12.precision - 0.75).abs() < 1e-12 && (au12.recall - 1.0).abs() < 1e-12);
        assert!((au12.f1 - 6.0 / 7.0).abs() < 1e-12);
        // Micro: tp 4, predicted 6, actual 5 -> P 2/3, R 4/5, F1 8/11.
        assert!((report.micro.f1 - 8.0 / 11.0).abs() < 1e-12);
        assert!((report.macro_avg.f1 - (0.5 + 6.0 / 7.0) / 2.0).abs() < 1e-12);
        let mut twice = counts.clone();
        twice.absorb(&counts);
        assert!((twice.report(0.5).micro.f1 - report.micro.f1).abs() < 1e-12);
    }
}
