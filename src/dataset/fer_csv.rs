//! The original Kaggle FER2013 file: `emotion,pixels,Usage`, one 48x48 image per row as
//! space-separated gray values, labels 0..=6 in [`FER2013_LABELS`](super::FER2013_LABELS) order.

use std::path::Path;

use super::{fer2013_classes, Dataset, DatasetError};

/// Side of the images stored in the Kaggle file.
const CSV_IMAGE_SIZE: usize = 48;

/// Loads the rows whose `Usage` equals `usage` (all rows when `None`).
///
/// # Errors
/// [`DatasetError`] for a missing file, a row with a bad label or pixel list, a `classes` list
/// other than FER2013's, or no matching rows.
pub fn load(
    path: &Path,
    usage: Option<&str>,
    classes: Option<&[String]>,
    size: usize,
) -> Result<Dataset, DatasetError> {
    if !path.is_file() {
        return Err(DatasetError::NotFound(path.to_owned()));
    }
    let fer = fer2013_classes();
    if let Some(known) = classes {
        if known != fer.as_slice() {
            return Err(DatasetError::UnknownClass {
                path: path.to_owned(),
                class: "FER2013 labels".into(),
                known: known.to_vec(),
            });
        }
    }
    let mut reader = csv::Reader::from_path(path).map_err(|e| DatasetError::io(path, e))?;
    let headers = reader
        .headers()
        .map_err(|e| DatasetError::io(path, e))?
        .clone();
    let columns = super::columns::Columns::new(path, headers, "FER2013 (emotion,pixels,Usage)");
    let column = |name: &str| columns.required(name);
    let (emotion_col, pixels_col) = (column("emotion")?, column("pixels")?);
    let usage_col = column("Usage").ok();
    let mut data = Dataset::new(fer, size);
    let mut pixels = Vec::with_capacity(CSV_IMAGE_SIZE * CSV_IMAGE_SIZE);
    for row in super::columns::numbered_rows(&mut reader, path) {
        let (line, record) = row?;
        let bad = |reason: String| super::columns::bad_row(path, line, reason);
        if let (Some(wanted), Some(col)) = (usage, usage_col) {
            if record.get(col).map(str::trim) != Some(wanted) {
                continue;
            }
        }
        let label_text = record.get(emotion_col).unwrap_or("").trim();
        let label = label_text
            .parse::<usize>()
            .ok()
            .filter(|&l| l < data.classes.len())
            .ok_or_else(|| bad(format!("emotion `{label_text}` is not a label 0..=6")))?;
        pixels.clear();
        for value in record
            .get(pixels_col)
            .unwrap_or("")
            .split_ascii_whitespace()
        {
            pixels.push(
                value
                    .parse::<u8>()
                    .map_err(|_| bad(format!("pixel `{value}` is not 0..=255")))?,
            );
        }
        if pixels.len() != CSV_IMAGE_SIZE * CSV_IMAGE_SIZE {
            return Err(bad(format!(
                "{} pixels, expected {}",
                pixels.len(),
                CSV_IMAGE_SIZE * CSV_IMAGE_SIZE
            )));
        }
        let source = format!("{}#{line}", path.display());
        if size == CSV_IMAGE_SIZE {
            data.push(&pixels, label, source);
        } else {
            let resized = super::resize_gray(&pixels, CSV_IMAGE_SIZE, size)
                .map_err(|e| bad(format!("cannot resize: {e}")))?;
            data.resized += 1;
            data.push(&resized, label, source);
        }
    }
    if data.is_empty() {
        return Err(DatasetError::Empty(path.to_owned()));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn row(label: &str, value: u8, usage: &str) -> String {
        let pixels = vec![value.to_string(); 48 * 48].join(" ");
        format!("{label},{pixels},{usage}\n")
    }

    #[test]
    fn reads_usage_rows_and_names_bad_rows() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("fer2013.csv");
        let mut file = std::fs::File::create(&path)?;
        write!(
            file,
            "emotion,pixels,Usage\n{}{}",
            row("3", 10, "Training"),
            row("6", 20, "PublicTest")
        )?;
        drop(file);
        let data = load(&path, Some("PublicTest"), None, 48)?;
        assert_eq!(data.labels, vec![6]);
        assert_eq!(data.image(0)[0], 20);
        assert_eq!(load(&path, None, None, 48)?.len(), 2);

        std::fs::write(
            &path,
            format!(
                "emotion,pixels,Usage\n{}9,1 2 3,Training\n",
                row("0", 1, "Training")
            ),
        )?;
        let err = load(&path, None, None, 48).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        Ok(())
    }

    mod fuzz {
        use super::*;
        use crate::fuzzing::damaged;
        use proptest::prelude::*;

        const VALID: &str =
            "emotion,pixels,Usage\n3,1 2 3 4,Training\n6,250 6 7 8,PublicTest\n0,9 9 9 9,Training\n";

        proptest! {
            #[test]
            fn damaged_csv_is_read_or_refused(text in damaged(VALID)) {
                let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let path = dir.path().join("fer2013.csv");
                std::fs::write(&path, text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                if let Ok(data) = load(&path, None, None, 2) {
                    prop_assert!(data.labels.iter().all(|&l| l < data.classes.len()));
                }
            }
        }
    }
}
