//! `emolens train --folds K`: K-fold cross-validation. The data is dealt into K folds by
//! subject when the file names say who is in them (CK+), by image otherwise; each fold in turn
//! is the test set of a network trained on the others (with the validation fraction split off
//! those for choosing the epoch), and every metric is reported per fold and as mean and
//! standard deviation.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{check_size, evaluate_net, fit, TrainConfig, Validation};
use crate::au_metrics::AuReport;
use crate::dataset::subjects::{ckplus_subject, subject_folds};
use crate::metrics::Report;
use crate::model_meta::UNIT_THRESHOLD;

/// Results of one fold.
#[derive(Debug, Clone, Serialize)]
pub struct FoldResult {
    /// Fold number, from 1.
    pub fold: usize,
    /// Training images (validation split included).
    pub train_images: usize,
    /// Test images.
    pub test_images: usize,
    /// Subjects in the test fold (0 when subjects are unknown).
    pub test_subjects: usize,
    /// Epoch chosen on the validation split.
    pub best_epoch: usize,
    /// Every metric on the test fold.
    pub test: Report,
    /// Action-unit scores on the test fold, when the data has units.
    pub test_units: Option<AuReport>,
}

/// Mean and standard deviation of one metric over the folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Mean over folds.
    pub mean: f64,
    /// Sample standard deviation over folds (0 for one fold).
    pub std: f64,
}

/// Cross-validation results.
#[derive(Debug, Clone, Serialize)]
pub struct FoldsReport {
    /// The data.
    pub data: String,
    /// Number of folds.
    pub folds: usize,
    /// Whether folds were dealt by subject.
    pub by_subject: bool,
    /// Accuracy over folds.
    pub accuracy: Spread,
    /// Macro F1 over folds, each over the classes its test fold has or predicts.
    pub macro_f1: Spread,
    /// F1 of each class over the folds that have or predict it.
    pub per_class_f1: Vec<(String, Spread)>,
    /// Accuracy of the pooled test predictions of all folds.
    pub pooled_accuracy: f64,
    /// Macro F1 of the pooled test predictions of all folds.
    pub pooled_macro_f1: f64,
    /// Action-unit micro F1 over folds, when the data has units.
    pub unit_micro_f1: Option<Spread>,
    /// Action-unit macro F1 over folds, when the data has units.
    pub unit_macro_f1: Option<Spread>,
    /// One entry per fold.
    pub per_fold: Vec<FoldResult>,
}

/// Runs K-fold cross-validation and writes the report as JSON to `report_path`.
///
/// # Errors
/// Bad data or settings, or a failed training.
pub fn run(config: &TrainConfig, k: usize, report_path: &Path) -> Result<FoldsReport> {
    check_size(config.size)?;
    let Validation::Fraction(val_fraction) = config.validation else {
        bail!("--folds splits the validation images off each fold's training part: give --val as a fraction such as 0.1");
    };
    if config.ferplus.is_some() {
        bail!("--folds does not take --ferplus; cross-validate on folder or CSV labels");
    }
    let mut data = config
        .data
        .load(None, config.size)
        .with_context(|| format!("loading training data {}", config.data))?;
    if let Some(table) = &config.aus {
        crate::dataset::ckplus::attach_aus(&mut data, table)
            .context("joining action units onto the data")?;
    }
    let subjects: Vec<Option<&str>> = data.sources.iter().map(|s| ckplus_subject(s)).collect();
    let by_subject = subjects.iter().all(Option::is_some);
    if data.len() < k * 2 {
        bail!(
            "{} images are too few for {k} folds; use fewer folds",
            data.len()
        );
    }
    let fold_of = subject_folds(&subjects, k, config.seed);
    eprintln!(
        "{k}-fold cross-validation on {} images, {}",
        data.len(),
        if by_subject {
            "by subject (no person in two folds)"
        } else {
            "by image (file names do not say who is in them)"
        }
    );
    let mut per_fold = Vec::with_capacity(k);
    let mut pooled = crate::metrics::ConfusionMatrix::new(data.classes.len());
    for fold in 0..k {
        let test_idx: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] == fold).collect();
        let rest_idx: Vec<usize> = (0..data.len()).filter(|&i| fold_of[i] != fold).collect();
        let (test, rest) = (data.subset(&test_idx), data.subset(&rest_idx));
        let (train, val) = rest.split_validation(val_fraction, config.seed);
        let mut fold_config = config.clone();
        fold_config.checkpoint_dir = config.checkpoint_dir.join(format!("fold-{}", fold + 1));
        fold_config.resume = false;
        eprintln!(
            "fold {}/{k}: train {} validation {} test {}",
            fold + 1,
            train.len(),
            val.len(),
            test.len()
        );
        let fitted = fit(&fold_config, &train, &val)?;
        let best = fitted.best_net(&fold_config.checkpoint_dir)?;
        let evaluation = evaluate_net(&best, &test, &fitted.preprocess, config.size)?;
        pooled.absorb(&evaluation.confusion);
        let report = evaluation.confusion.report(&data.classes);
        let test_units = evaluation.units.map(|u| u.report(UNIT_THRESHOLD));
        if let Some(units) = &test_units {
            eprintln!(
                "fold {}/{k}: action units micro F1 {:.4}, macro F1 {:.4}",
                fold + 1,
                units.micro.f1,
                units.macro_avg.f1
            );
        }
        eprintln!(
            "fold {}/{k}: test accuracy {:.4}, macro F1 {:.4} (best epoch {})",
            fold + 1,
            report.accuracy,
            report.macro_f1_present(),
            fitted.state.best_epoch
        );
        let test_subjects: std::collections::BTreeSet<&str> =
            test_idx.iter().filter_map(|&i| subjects[i]).collect();
        per_fold.push(FoldResult {
            fold: fold + 1,
            train_images: rest.len(),
            test_images: test.len(),
            test_subjects: test_subjects.len(),
            best_epoch: fitted.state.best_epoch,
            test: report,
            test_units,
        });
    }
    let spread_of =
        |f: &dyn Fn(&FoldResult) -> f64| spread(&per_fold.iter().map(f).collect::<Vec<_>>());
    let report = FoldsReport {
        data: config.data.to_string(),
        folds: k,
        by_subject,
        accuracy: spread_of(&|r| r.test.accuracy),
        macro_f1: spread_of(&|r| r.test.macro_f1_present()),
        per_class_f1: data
            .classes
            .iter()
            .map(|c| {
                let f1: Vec<f64> = per_fold
                    .iter()
                    .filter_map(|r| r.test.present_f1(c))
                    .collect();
                (c.clone(), spread(&f1))
            })
            .collect(),
        pooled_accuracy: pooled.accuracy(),
        pooled_macro_f1: pooled.report(&data.classes).macro_avg.f1,
        unit_micro_f1: unit_spread(&per_fold, |u| u.micro.f1),
        unit_macro_f1: unit_spread(&per_fold, |u| u.macro_avg.f1),
        per_fold,
    };
    let json = serde_json::to_string_pretty(&report)?;
    crate::output::write_atomically(report_path, |out| {
        std::io::Write::write_all(out, json.as_bytes())
    })
    .with_context(|| format!("writing {}", report_path.display()))?;
    Ok(report)
}

impl FoldsReport {
    /// The per-fold table and the mean and standard deviation of each metric.
    pub fn to_table(&self) -> String {
        let mut text = format!(
            "{}-fold cross-validation on {} ({}):\nfold  train  test  subjects  best epoch  accuracy  macro F1\n",
            self.folds,
            self.data,
            if self.by_subject { "by subject" } else { "by image" }
        );
        for r in &self.per_fold {
            text.push_str(&format!(
                "{:>4} {:>6} {:>5} {:>9} {:>11} {:>9.4} {:>9.4}\n",
                r.fold,
                r.train_images,
                r.test_images,
                r.test_subjects,
                r.best_epoch,
                r.test.accuracy,
                r.test.macro_f1_present()
            ));
        }
        text.push_str(&format!(
            "accuracy {:.4} ± {:.4}, macro F1 {:.4} ± {:.4} (mean ± std over folds); pooled: accuracy {:.4}, macro F1 {:.4}\nF1 per class (over the folds that have or predict it):",
            self.accuracy.mean, self.accuracy.std, self.macro_f1.mean, self.macro_f1.std, self.pooled_accuracy, self.pooled_macro_f1
        ));
        for (class, f1) in &self.per_class_f1 {
            text.push_str(&format!(" {class} {:.3}±{:.3}", f1.mean, f1.std));
        }
        if let (Some(micro), Some(macro_f1)) = (self.unit_micro_f1, self.unit_macro_f1) {
            text.push_str(&format!(
                "\naction units: micro F1 {:.4} ± {:.4}, macro F1 {:.4} ± {:.4} (threshold {UNIT_THRESHOLD})",
                micro.mean, micro.std, macro_f1.mean, macro_f1.std
            ));
        }
        text
    }
}

/// The spread of an action-unit score over folds, when every fold has units.
fn unit_spread(folds: &[FoldResult], score: fn(&AuReport) -> f64) -> Option<Spread> {
    let values: Option<Vec<f64>> = folds
        .iter()
        .map(|f| f.test_units.as_ref().map(score))
        .collect();
    values.map(|v| spread(&v))
}

/// Mean and sample standard deviation.
fn spread(values: &[f64]) -> Spread {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Spread {
        mean,
        std: var.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_mean_and_sample_deviation() {
        let s = spread(&[0.9, 1.0, 0.8]);
        assert!((s.mean - 0.9).abs() < 1e-12);
        assert!((s.std - 0.1).abs() < 1e-12);
        assert_eq!(spread(&[0.5]).std, 0.0);
    }
}
