//! The state of a training run between epochs: what `--resume` needs (epochs done, best
//! validation accuracy, early-stopping counter, curves) and the files it lives in.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::chart::{self, Series};
use crate::output::write_file;
use crate::train::net::DEFAULT_WIDTH;

/// The facts a resumed run must share with the run that wrote the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSignature {
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Image side.
    pub size: usize,
    /// Channels of the first convolution block (`--width`); checkpoints written before the
    /// option existed hold the default.
    #[serde(default = "default_width")]
    pub width: usize,
    /// Training images.
    pub train_images: usize,
    /// Validation images.
    pub val_images: usize,
    /// Seed of the run.
    pub seed: u64,
}

/// Measurements of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number from 1.
    pub epoch: usize,
    /// Mean training loss (weighted, smoothed targets).
    pub train_loss: f64,
    /// Training accuracy on augmented images.
    pub train_accuracy: f64,
    /// Mean validation cross-entropy.
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Learning rate at the end of the epoch.
    pub learning_rate: f64,
    /// Wall time of the epoch including validation.
    pub seconds: f64,
    /// Training throughput.
    pub images_per_second: f64,
}

/// Saved between epochs as `state.json` in the checkpoint folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// What run this is.
    pub signature: RunSignature,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Best validation accuracy so far.
    pub best_val_accuracy: f64,
    /// Validation loss of the best epoch: it breaks ties of accuracy, which a small validation
    /// set reaches early (CK+ folds often score 100 % for many epochs while the loss still falls).
    #[serde(default = "no_loss_yet")]
    pub best_val_loss: f64,
    /// Epoch of the best validation accuracy (0 = none yet).
    pub best_epoch: usize,
    /// Epochs since the best one.
    pub epochs_without_improvement: usize,
    /// Whether patience ran out.
    pub stopped_early: bool,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
}

fn default_width() -> usize {
    DEFAULT_WIDTH
}

const STATE_FILE: &str = "state.json";
const MODEL_FILE: &str = "model.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const BEST_FILE: &str = "best.bpk";
const AVERAGE_FILE: &str = "average.bpk";
const CURVES_CSV: &str = "curves.csv";
const CURVES_PNG: &str = "curves.png";

impl Checkpoint {
    /// A run that has done nothing yet.
    pub fn new(signature: RunSignature) -> Self {
        Self {
            signature,
            epochs_done: 0,
            best_val_accuracy: f64::NEG_INFINITY,
            best_val_loss: no_loss_yet(),
            best_epoch: 0,
            epochs_without_improvement: 0,
            stopped_early: false,
            history: Vec::new(),
        }
    }

    /// Weights after the last finished epoch.
    pub fn model_path(dir: &Path) -> PathBuf {
        dir.join(MODEL_FILE)
    }

    /// Optimizer state after the last finished epoch.
    pub fn optimizer_path(dir: &Path) -> PathBuf {
        dir.join(OPTIMIZER_FILE)
    }

    /// Weights of the best epoch.
    pub fn best_path(dir: &Path) -> PathBuf {
        dir.join(BEST_FILE)
    }

    /// Weights after epoch `epoch`, kept for `--average-last`.
    pub fn epoch_path(dir: &Path, epoch: usize) -> PathBuf {
        dir.join(format!("epoch-{epoch}.bpk"))
    }

    /// Weights averaged over the last epochs (`--average-last`).
    pub fn average_path(dir: &Path) -> PathBuf {
        dir.join(AVERAGE_FILE)
    }

    /// Adds an epoch; returns whether it is the best so far: a higher validation accuracy, or
    /// the same with a lower validation loss. Sets `stopped_early` when `patience` epochs in a
    /// row brought no improvement.
    pub fn record(&mut self, record: EpochRecord, patience: usize) -> bool {
        let improved = record.val_accuracy > self.best_val_accuracy
            || (record.val_accuracy == self.best_val_accuracy
                && record.val_loss < self.best_val_loss);
        if improved {
            self.best_val_accuracy = record.val_accuracy;
            self.best_val_loss = record.val_loss;
            self.best_epoch = record.epoch;
            self.epochs_without_improvement = 0;
        } else {
            self.epochs_without_improvement += 1;
            self.stopped_early = self.epochs_without_improvement >= patience;
        }
        self.epochs_done = record.epoch;
        self.history.push(record);
        improved
    }

    /// Reads `state.json` from `dir`.
    ///
    /// # Errors
    /// When the folder holds no readable checkpoint.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: no checkpoint to resume from; start without --resume",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a checkpoint state; delete the folder and start again",
                path.display()
            )
        })
    }

    /// Fails unless the checkpoint was written by a run over the same data and settings.
    ///
    /// # Errors
    /// Says which fact differs.
    pub fn check_signature(&self, current: &RunSignature, dir: &Path) -> Result<()> {
        if &self.signature != current {
            bail!(
                "{}: the checkpoint is from another run ({:?}), this run is {:?}; use the same data \
                 and --seed, or another --checkpoint-dir",
                dir.display(),
                self.signature,
                current
            );
        }
        Ok(())
    }

    /// Writes `state.json` (atomically) and the curves.
    ///
    /// # Errors
    /// When the folder is not writable.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        write_file(&dir.join(STATE_FILE), &json)?;
        self.write_curves(dir)
    }

    /// Writes `curves.csv` and `curves.png` (loss and accuracy per epoch) into `dir`.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write_curves(&self, dir: &Path) -> Result<()> {
        let mut csv = String::from(
            "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,seconds,images_per_second\n",
        );
        for r in &self.history {
            csv.push_str(&format!(
                "{},{:.6},{:.6},{:.6},{:.6},{:.3e},{:.1},{:.1}\n",
                r.epoch,
                r.train_loss,
                r.train_accuracy,
                r.val_loss,
                r.val_accuracy,
                r.learning_rate,
                r.seconds,
                r.images_per_second
            ));
        }
        write_file(&dir.join(CURVES_CSV), csv.as_bytes())?;
        let series = |name, colour, value: fn(&EpochRecord) -> f64| Series {
            name,
            colour,
            points: self
                .history
                .iter()
                .map(|r| (r.epoch as f64, value(r)))
                .collect(),
        };
        const TRAIN: [f64; 3] = [200.0, 100.0, 0.0];
        const VAL: [f64; 3] = [0.0, 100.0, 220.0];
        chart::line_charts(
            &dir.join(CURVES_PNG),
            &[
                (
                    "loss per epoch",
                    vec![
                        series("train", TRAIN, |r| r.train_loss),
                        series("validation", VAL, |r| r.val_loss),
                    ],
                ),
                (
                    "accuracy per epoch",
                    vec![
                        series("train", TRAIN, |r| r.train_accuracy),
                        series("validation", VAL, |r| r.val_accuracy),
                    ],
                ),
            ],
        )
        .with_context(|| format!("writing {}", dir.join(CURVES_PNG).display()))
    }
}

/// The best loss before any epoch.
fn no_loss_yet() -> f64 {
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, val_accuracy: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 1.0,
            train_accuracy: 0.5,
            val_loss: 1.0,
            val_accuracy,
            learning_rate: 1e-3,
            seconds: 1.0,
            images_per_second: 10.0,
        }
    }

    fn signature() -> RunSignature {
        RunSignature {
            classes: vec!["a".into()],
            size: 48,
            width: DEFAULT_WIDTH,
            train_images: 10,
            val_images: 2,
            seed: 1,
        }
    }

    #[test]
    fn patience_stops_after_that_many_epochs_without_gain() {
        let mut state = Checkpoint::new(signature());
        assert!(state.record(record(1, 0.5), 2));
        assert!(!state.record(record(2, 0.4), 2));
        assert!(!state.stopped_early);
        assert!(state.record(record(3, 0.6), 2));
        assert!(!state.record(record(4, 0.6), 2));
        assert!(!state.record(record(5, 0.1), 2));
        assert!(state.stopped_early);
        assert_eq!((state.best_epoch, state.epochs_done), (3, 5));
    }

    #[test]
    fn equal_accuracy_with_lower_loss_is_better() {
        let mut state = Checkpoint::new(signature());
        assert!(state.record(record(1, 1.0), 2));
        let lower_loss = EpochRecord {
            val_loss: 0.5,
            ..record(2, 1.0)
        };
        assert!(state.record(lower_loss, 2), "same accuracy, lower loss");
        assert!(
            !state.record(record(3, 1.0), 2),
            "same accuracy, higher loss"
        );
        assert_eq!((state.best_epoch, state.best_val_loss), (2, 0.5));
    }

    #[test]
    fn saves_loads_and_rejects_other_runs() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut state = Checkpoint::new(signature());
        state.record(record(1, 0.5), 3);
        state.save(dir.path())?;
        let back = Checkpoint::load(dir.path())?;
        assert_eq!(back, state);
        assert!(dir.path().join(CURVES_PNG).is_file());
        assert!(back.check_signature(&signature(), dir.path()).is_ok());
        let other = RunSignature {
            seed: 2,
            ..signature()
        };
        assert!(back.check_signature(&other, dir.path()).is_err());
        let wider = RunSignature {
            width: 2 * DEFAULT_WIDTH,
            ..signature()
        };
        assert!(back.check_signature(&wider, dir.path()).is_err());
        Ok(())
    }

    #[test]
    fn checkpoints_from_before_the_width_option_have_the_default_width() -> Result<()> {
        let state = r#"{"signature": {"classes": ["a"], "size": 48, "train_images": 10,
            "val_images": 2, "seed": 1}, "epochs_done": 0, "best_val_accuracy": 0.0,
            "best_epoch": 0, "epochs_without_improvement": 0, "stopped_early": false,
            "history": []}"#;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(STATE_FILE), state)?;
        assert_eq!(Checkpoint::load(dir.path())?.signature.width, DEFAULT_WIDTH);
        Ok(())
    }
}
