//! Labelled face images in memory, loaded from the user formats of DESIGN.md section 6:
//! image folders, the Kaggle `fer2013.csv` file, and FER+ votes joined on the image name.

pub mod ckplus;
pub mod columns;
pub mod fer_csv;
pub mod ferplus;
pub mod folder;
pub mod manifest;
pub mod relabel;
pub mod subjects;

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;

/// The seven FER2013 classes in the dataset's own order (label index 0..=6 of `fer2013.csv`).
pub const FER2013_LABELS: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

/// Side of the square grayscale images every loader produces unless told otherwise.
pub const DEFAULT_IMAGE_SIZE: usize = 48;

/// A dataset could not be read; each message names the file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The path does not exist.
    #[error("{0}: not found; give an existing image folder or CSV file")]
    NotFound(PathBuf),
    /// A folder holds no class folders or no images.
    #[error("{0}: no images found; expected ROOT/<class>/*.png|jpg (see README, Datasets)")]
    Empty(PathBuf),
    /// An image file cannot be decoded.
    #[error("{0}: cannot be read as an image; remove or replace the file")]
    BadImage(PathBuf),
    /// A class folder or label that the label set does not contain.
    #[error("{path}: unknown class `{class}`; known classes are {known:?} (rename or remove it)")]
    UnknownClass {
        /// Where the class name was found.
        path: PathBuf,
        /// The offending name.
        class: String,
        /// The classes that are allowed here.
        known: Vec<String>,
    },
    /// A CSV row that does not have the expected fields.
    #[error("{path}, line {line}: {reason}; fix or delete that row")]
    BadRow {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A CSV file without a column it needs.
    #[error("{path}: no `{column}` column; expected a {expected} file")]
    MissingColumn {
        /// The CSV file.
        path: PathBuf,
        /// The column that is missing.
        column: String,
        /// What kind of file was expected.
        expected: &'static str,
    },
    /// Images that a joined table has no row for.
    #[error("{path}: no row for {missing} images (e.g. {example}); give the table that covers these images")]
    Unjoined {
        /// The table.
        path: PathBuf,
        /// Images without a row.
        missing: usize,
        /// One of them.
        example: String,
    },
    /// An I/O or CSV-level failure.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DatasetError {
    pub(crate) fn io(
        path: &Path,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Io {
            path: path.to_owned(),
            error: error.into(),
        }
    }
}

/// Grayscale images of one size with a class label each and, optionally, a label distribution.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Class names; a label is an index into this list.
    pub classes: Vec<String>,
    /// Image side in pixels (images are square).
    pub size: usize,
    /// Pixels, image after image, row-major: `[len, size, size]`.
    pub pixels: Vec<u8>,
    /// Hard label of each image (the majority label when soft labels exist).
    pub labels: Vec<usize>,
    /// Optional label distribution per image: `[len, classes.len()]`, rows sum to 1.
    pub soft: Option<Vec<f32>>,
    /// Where each image came from (file path or `file#row`), for reports.
    pub sources: Vec<String>,
    /// How many images had another size and were resized on load.
    pub resized: usize,
    /// Which action units each image shows, when the data says.
    pub aus: Option<ActionUnits>,
}

/// Which action units (FACS) are present in each image of a [`Dataset`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionUnits {
    /// Unit names, e.g. `AU1`.
    pub names: Vec<String>,
    /// 1 (present) or 0 per image and unit: `[images, names.len()]`.
    pub present: Vec<u8>,
}

impl ActionUnits {
    /// The units of image `index`.
    pub fn of(&self, index: usize) -> &[u8] {
        let n = self.names.len();
        &self.present[index * n..(index + 1) * n]
    }
}

impl Dataset {
    /// An empty dataset over `classes` with images of `size` x `size`.
    pub fn new(classes: Vec<String>, size: usize) -> Self {
        Self {
            classes,
            size,
            ..Self::default()
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `index`: `[size, size]`.
    pub fn image(&self, index: usize) -> &[u8] {
        let area = self.size * self.size;
        &self.pixels[index * area..(index + 1) * area]
    }

    /// Appends one image of exactly `size * size` pixels.
    pub fn push(&mut self, pixels: &[u8], label: usize, source: String) {
        debug_assert_eq!(pixels.len(), self.size * self.size);
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
        self.sources.push(source);
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &label in &self.labels {
            counts[label] += 1;
        }
        counts
    }

    /// The label distribution of image `index`: its soft labels, or one-hot of its hard label.
    pub fn target(&self, index: usize, out: &mut [f32]) {
        let classes = self.classes.len();
        match &self.soft {
            Some(soft) => out.copy_from_slice(&soft[index * classes..(index + 1) * classes]),
            None => {
                out.fill(0.0);
                out[self.labels[index]] = 1.0;
            }
        }
    }

    /// A new dataset holding the images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let classes = self.classes.len();
        let mut out = Self::new(self.classes.clone(), self.size);
        for &i in indices {
            out.push(self.image(i), self.labels[i], self.sources[i].clone());
        }
        out.soft = self.soft.as_ref().map(|soft| {
            indices
                .iter()
                .flat_map(|&i| soft[i * classes..(i + 1) * classes].iter().copied())
                .collect()
        });
        out.aus = self.aus.as_ref().map(|aus| ActionUnits {
            names: aus.names.clone(),
            present: indices
                .iter()
                .flat_map(|&i| aus.of(i).iter().copied())
                .collect(),
        });
        out
    }

    /// Splits off about `fraction` of the images as a validation set, reproducibly for a given
    /// `seed`: whole subjects when every file name says who is in it (CK+, whose near-identical
    /// frames of one sequence would otherwise sit on both sides), else a share of every class
    /// ([`Self::split_stratified`]). Returns `(train, validation)`.
    pub fn split_validation(&self, fraction: f64, seed: u64) -> (Self, Self) {
        let subjects: Vec<Option<&str>> = self
            .sources
            .iter()
            .map(|s| subjects::ckplus_subject(s))
            .collect();
        if !subjects.iter().all(Option::is_some) {
            return self.split_stratified(fraction, seed);
        }
        let picked = subjects::subject_holdout(&subjects, fraction, seed);
        let (val, train): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|&i| picked[i]);
        (self.subset(&train), self.subset(&val))
    }

    /// Splits off `fraction` of every class (at least one image of a class with two or more)
    /// as a validation set, reproducibly for a given `seed`. Returns `(train, validation)`.
    pub fn split_stratified(&self, fraction: f64, seed: u64) -> (Self, Self) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut train = Vec::new();
        let mut val = Vec::new();
        for class in 0..self.classes.len() {
            let mut members: Vec<usize> = (0..self.len())
                .filter(|&i| self.labels[i] == class)
                .collect();
            members.shuffle(&mut rng);
            let wanted = (members.len() as f64 * fraction).round() as usize;
            let take = if members.len() >= 2 {
                wanted.max(1)
            } else {
                wanted
            };
            val.extend_from_slice(&members[..take]);
            train.extend_from_slice(&members[take..]);
        }
        train.sort_unstable();
        val.sort_unstable();
        (self.subset(&train), self.subset(&val))
    }
}

/// Where a dataset is read from, as given on the command line: an image folder, a
/// `fer2013.csv` file optionally restricted to one `Usage` value with `FILE.csv#Usage`, or a
/// manifest CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// `ROOT/<class>/*.png|jpg`.
    Folder(PathBuf),
    /// A CSV file: the Kaggle `emotion,pixels,Usage` file and the `Usage` to keep (all rows
    /// when `None`), or a manifest (`path,label,...`; see [`manifest`]).
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// Keep only rows with this `Usage`.
        usage: Option<String>,
    },
}

impl DataSource {
    /// Reads `spec`: a path ending in `.csv` (with an optional `#Usage`) is a FER2013 CSV,
    /// anything else an image folder.
    pub fn parse(spec: &str) -> Self {
        let (path, usage) = match spec.rsplit_once('#') {
            Some((path, usage)) if path.to_ascii_lowercase().ends_with(".csv") => {
                (path, Some(usage.to_owned()))
            }
            _ => (spec, None),
        };
        if path.to_ascii_lowercase().ends_with(".csv") {
            Self::Csv {
                path: PathBuf::from(path),
                usage,
            }
        } else {
            Self::Folder(PathBuf::from(spec))
        }
    }

    /// Loads the images as `size` x `size` grayscale. `classes` fixes the label set (for a
    /// validation or test set that must match a model); `None` takes it from the data.
    ///
    /// # Errors
    /// [`DatasetError`] naming the file that could not be used.
    pub fn load(&self, classes: Option<&[String]>, size: usize) -> Result<Dataset, DatasetError> {
        match self {
            Self::Folder(root) => folder::load(root, classes, size),
            Self::Csv { path, usage } => {
                if !is_manifest_file(path)? {
                    return fer_csv::load(path, usage.as_deref(), classes, size);
                }
                if let Some(usage) = usage {
                    return Err(DatasetError::BadRow {
                        path: path.clone(),
                        line: 1,
                        reason: format!("a manifest has no Usage column to pick `#{usage}` from; leave `#{usage}` out"),
                    });
                }
                manifest::load(path, classes, size)
            }
        }
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Folder(root) => write!(f, "{}", root.display()),
            Self::Csv { path, usage: None } => write!(f, "{}", path.display()),
            Self::Csv {
                path,
                usage: Some(usage),
            } => write!(f, "{}#{usage}", path.display()),
        }
    }
}

/// Whether a CSV file's header is a manifest's.
fn is_manifest_file(path: &Path) -> Result<bool, DatasetError> {
    if !path.is_file() {
        return Err(DatasetError::NotFound(path.to_owned()));
    }
    let mut reader = csv::Reader::from_path(path).map_err(|e| DatasetError::io(path, e))?;
    let header = reader.headers().map_err(|e| DatasetError::io(path, e))?;
    Ok(manifest::is_manifest(header))
}

/// Maps `name` to its index in `classes`, or says which classes exist.
pub(crate) fn class_index(
    classes: &[String],
    name: &str,
    path: &Path,
) -> Result<usize, DatasetError> {
    classes
        .iter()
        .position(|c| c == name)
        .ok_or_else(|| DatasetError::UnknownClass {
            path: path.to_owned(),
            class: name.to_owned(),
            known: classes.to_vec(),
        })
}

/// The FER2013 class names as owned strings.
pub fn fer2013_classes() -> Vec<String> {
    FER2013_LABELS.iter().map(|s| (*s).to_owned()).collect()
}

/// Resizes a square grayscale image of side `from` to side `to` (area interpolation).
///
/// # Errors
/// OpenCV's error when the buffer does not hold `from * from` pixels.
pub fn resize_gray(pixels: &[u8], from: usize, to: usize) -> opencv::Result<Vec<u8>> {
    use opencv::core::{Mat, Size};
    use opencv::prelude::*;
    let side = |n: usize| {
        i32::try_from(n)
            .map_err(|_| opencv::Error::new(opencv::core::StsOutOfRange, "image too large"))
    };
    let src = Mat::new_rows_cols_with_data(side(from)?, side(from)?, pixels)?;
    let mut dst = Mat::default();
    opencv::imgproc::resize(
        &src,
        &mut dst,
        Size::new(side(to)?, side(to)?),
        0.0,
        0.0,
        opencv::imgproc::INTER_AREA,
    )?;
    Ok(dst.data_bytes()?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Dataset {
        let mut data = Dataset::new(vec!["a".into(), "b".into()], 2);
        for i in 0..10u8 {
            data.push(&[i; 4], usize::from(i % 2), format!("img{i}"));
        }
        data
    }

    #[test]
    fn stratified_split_keeps_every_class_and_loses_nothing() {
        let data = toy();
        let (train, val) = data.split_stratified(0.2, 7);
        assert_eq!(train.len() + val.len(), data.len());
        assert_eq!(val.class_counts(), vec![1, 1]);
        let mut all: Vec<_> = train.sources.iter().chain(&val.sources).cloned().collect();
        all.sort();
        let mut expected = data.sources.clone();
        expected.sort();
        assert_eq!(all, expected);
        // Same seed, same split.
        assert_eq!(data.split_stratified(0.2, 7).1.sources, val.sources);
    }

    #[test]
    fn validation_split_keeps_a_subject_on_one_side() {
        let mut data = Dataset::new(vec!["a".into(), "b".into()], 2);
        for subject in 0..20u8 {
            for frame in 0..3u8 {
                let name = format!("ck/a/S{subject:03}_001_{frame:08}.png");
                data.push(&[subject; 4], usize::from(subject % 2), name);
            }
        }
        let (train, val) = data.split_validation(0.2, 5);
        assert_eq!(val.len(), 12, "4 of 20 subjects");
        assert_eq!(train.len() + val.len(), data.len());
        let subjects = |d: &Dataset| -> std::collections::BTreeSet<String> {
            d.sources
                .iter()
                .filter_map(|s| subjects::ckplus_subject(s).map(str::to_owned))
                .collect()
        };
        assert!(subjects(&train).is_disjoint(&subjects(&val)));
        // Without subjects in the names it is the stratified split.
        let plain = toy();
        assert_eq!(
            plain.split_validation(0.2, 7).1.sources,
            plain.split_stratified(0.2, 7).1.sources
        );
    }

    #[test]
    fn subset_keeps_pixels_with_labels() {
        let data = toy();
        let sub = data.subset(&[3, 8]);
        assert_eq!(sub.image(0), &[3; 4]);
        assert_eq!(sub.image(1), &[8; 4]);
        assert_eq!(sub.labels, vec![1, 0]);
    }

    #[test]
    fn data_source_parses_csv_usage() {
        assert_eq!(
            DataSource::parse("x/fer2013.csv#PrivateTest"),
            DataSource::Csv {
                path: "x/fer2013.csv".into(),
                usage: Some("PrivateTest".into())
            }
        );
        assert_eq!(
            DataSource::parse("dir/with#hash"),
            DataSource::Folder("dir/with#hash".into())
        );
    }
}
