//! What can go wrong while making a report; every message names the file and the fix.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while making a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The records file could not be opened or read.
    #[error("could not read {}: {error}; check that the file exists and is readable", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// A line is not JSON at all.
    #[error(
        "{} line {line}: not valid JSON ({reason}); give a JSON Lines file written by `emolens annotate --json`",
        path.display()
    )]
    NotJson {
        /// The file.
        path: PathBuf,
        /// Line number, counted from 1.
        line: usize,
        /// What the JSON parser said.
        reason: String,
    },
    /// A line is JSON but not a face record.
    #[error(
        "{} line {line}: not a face record ({reason}); give a JSON Lines file written by `emolens annotate --json`",
        path.display()
    )]
    NotAFaceRecord {
        /// The file.
        path: PathBuf,
        /// Line number, counted from 1.
        line: usize,
        /// What is wrong with the record.
        reason: String,
    },
    /// A record lists other labels, or another order, than the first record.
    #[error(
        "{} line {line}: the `probs` labels ({found}) differ from those on line {first_line} ({expected}); give the records of a single `emolens annotate --json` run",
        path.display()
    )]
    MixedLabels {
        /// The file.
        path: PathBuf,
        /// Line number of the differing record, counted from 1.
        line: usize,
        /// Line number of the first record.
        first_line: usize,
        /// Labels of the differing record, comma separated.
        found: String,
        /// Labels of the first record, comma separated.
        expected: String,
    },
    /// The records' labels are not the model's labels.
    #[error(
        "{}: the face records carry the labels ({found}) but the model lists ({expected}); make the report with the model that annotated the video",
        path.display()
    )]
    LabelMismatch {
        /// The records file.
        path: PathBuf,
        /// Labels in the records, comma separated.
        found: String,
        /// Labels of the model, comma separated.
        expected: String,
    },
    /// A records file of a cohort carries other labels, or another order, than the first file.
    #[error(
        "{}: the face records carry the labels ({found}) but {} carries ({expected}); a cohort compares videos annotated with the same model: annotate the video again with that model or leave the file out",
        path.display(),
        first.display()
    )]
    CohortLabels {
        /// The differing file.
        path: PathBuf,
        /// The cohort's first file, whose labels the others must have.
        first: PathBuf,
        /// Labels of the differing file, comma separated.
        found: String,
        /// Labels of the first file, comma separated.
        expected: String,
    },
    /// A window length could not be understood.
    #[error("window `{text}`: {reason}; give a length such as 10s, 1.5s, 90 or 2m")]
    BadWindow {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The window is too short for the video's length.
    #[error(
        "a {window} s window cuts {duration:.1} s into {count} windows, more than a report takes ({max}); give a --window of at least {shortest:.3} s",
        max = super::MAX_WINDOWS,
        shortest = duration / super::MAX_WINDOWS as f64
    )]
    TooManyWindows {
        /// Windows it would take.
        count: usize,
        /// The window in seconds.
        window: f64,
        /// The covered length in seconds.
        duration: f64,
    },
    /// An output file could not be written.
    #[error(
        "could not write {}: {error}; check that the folder is writable and the disk has room",
        path.display()
    )]
    Write {
        /// The file (or folder) being written.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
}
