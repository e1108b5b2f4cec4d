//! Manifest datasets: a CSV with one image per row, `path,label` plus optional action-unit
//! columns (`AU1`, `AU12`, ... as 0/1) and any other columns (groups such as age or gender,
//! ignored here; `evaluate --groups` reads them). Paths are relative to the manifest's folder.

use std::path::Path;

use super::columns::{unit_values, Columns};
use super::folder::{class_order, read_gray};
use super::{class_index, ActionUnits, Dataset, DatasetError};

/// What a manifest is, for error messages.
const EXPECTED: &str = "manifest (path,label[,AU1,...][,group columns])";

/// Whether the CSV header names the columns of a manifest.
pub fn is_manifest(header: &csv::StringRecord) -> bool {
    let has = |name: &str| header.iter().any(|h| h.trim() == name);
    has("path") && has("label")
}

/// Loads the images of a manifest as `size` x `size` grayscale.
///
/// # Errors
/// [`DatasetError`] for a missing file or column, a bad row (line number given), an unknown
/// class, or an unreadable image.
pub fn load(file: &Path, classes: Option<&[String]>, size: usize) -> Result<Dataset, DatasetError> {
    let mut reader = csv::Reader::from_path(file).map_err(|e| DatasetError::io(file, e))?;
    let header = reader
        .headers()
        .map_err(|e| DatasetError::io(file, e))?
        .clone();
    let columns = Columns::new(file, header, EXPECTED);
    let (path_column, label_column) = (columns.required("path")?, columns.required("label")?);
    let units = columns.units();
    let mut rows = Vec::new();
    for row in super::columns::numbered_rows(&mut reader, file) {
        let (line, record) = row?;
        let bad = |reason: String| super::columns::bad_row(file, line, reason);
        let field = |i: usize| record.get(i).map(str::trim).unwrap_or("");
        let (image, label) = (field(path_column), field(label_column));
        if image.is_empty() || label.is_empty() {
            return Err(bad("empty path or label".to_owned()));
        }
        let present = unit_values(&record, &units, file, line)?;
        rows.push((image.to_owned(), label.to_owned(), present));
    }
    if rows.is_empty() {
        return Err(DatasetError::Empty(file.to_owned()));
    }
    let classes = match classes {
        Some(known) => known.to_vec(),
        None => {
            let mut names: Vec<&str> = rows.iter().map(|(_, l, _)| l.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            class_order(names.into_iter())
        }
    };
    let base = file.parent().unwrap_or(Path::new("."));
    let mut data = Dataset::new(classes, size);
    let mut present = Vec::with_capacity(rows.len() * units.len());
    for (image, label, units_of_image) in rows {
        let path = base.join(&image);
        let index = class_index(&data.classes, &label, file)?;
        let (pixels, resized) = read_gray(&path, size)?;
        data.resized += usize::from(resized);
        data.push(&pixels, index, path.display().to_string());
        present.extend(units_of_image);
    }
    if !units.is_empty() {
        data.aus = Some(ActionUnits {
            names: units.into_iter().map(|(_, name)| name).collect(),
            present,
        });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let image = opencv::core::Mat::new_rows_cols_with_default(
            48,
            48,
            opencv::core::CV_8UC1,
            opencv::core::Scalar::all(128.0),
        )?;
        opencv::imgcodecs::imwrite_def(path, &image)?;
        Ok(())
    }

    #[test]
    fn rows_give_images_labels_and_units() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("img"))?;
        for name in ["a.png", "b.png"] {
            write_png(&dir.path().join("img").join(name))?;
        }
        let manifest = dir.path().join("m.csv");
        std::fs::write(
            &manifest,
            "path,label,AU6,AU12,gender\nimg/a.png,happy,1,1,f\nimg/b.png,sad,0,0,m\n",
        )?;
        let header = csv::Reader::from_path(&manifest)?.headers()?.clone();
        assert!(is_manifest(&header));
        let data = load(&manifest, None, 48)?;
        assert_eq!(data.classes, vec!["happy", "sad"]);
        assert_eq!(data.labels, vec![0, 1]);
        let aus = data.aus.ok_or("units read")?;
        assert_eq!(aus.names, vec!["AU6", "AU12"]);
        assert_eq!(aus.present, vec![1, 1, 0, 0]);
        Ok(())
    }

    #[test]
    fn bad_rows_name_the_line() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_png(&dir.path().join("a.png"))?;
        let manifest = dir.path().join("m.csv");
        let error = |text: &str| -> Result<String, Box<dyn std::error::Error>> {
            std::fs::write(&manifest, text)?;
            Ok(load(&manifest, None, 48)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default())
        };
        let e = error("path,label,AU1\na.png,happy,1\na.png,happy,2\n")?;
        assert!(e.contains("line 3") && e.contains("AU1 is `2`"), "{e}");
        let e = error("path,label\na.png,happy\n,sad\n")?;
        assert!(e.contains("line 3") && e.contains("empty path"), "{e}");
        let e = error("path,label\na.png,happy\nmissing.png,sad\n")?;
        assert!(e.contains("missing.png"), "{e}");
        let e = error("path,label\n")?;
        assert!(e.contains("no images"), "{e}");
        let e = error("file,label\na.png,happy\n")?;
        assert!(e.contains("`path`"), "{e}");
        let e = error("path,label,extra\na.png\n")?;
        assert!(e.contains("line 2"), "{e}");
        Ok(())
    }

    mod fuzz {
        use super::*;
        use crate::fuzzing::damaged;
        use proptest::prelude::*;

        const VALID: &str =
            "path,label,AU6,AU12,gender\nimg/a.png,happy,1,1,f\nimg/a.png,sad,0,0,m\n";

        proptest! {
            // Each case decodes a PNG: a quarter of the cases of the others.
            #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases / 4, ..ProptestConfig::default() })]
            #[test]
            fn a_damaged_manifest_is_read_or_refused(text in damaged(VALID)) {
                let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
                std::fs::create_dir(dir.path().join("img")).map_err(|e| TestCaseError::fail(e.to_string()))?;
                write_png(&dir.path().join("img/a.png")).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let manifest = dir.path().join("m.csv");
                std::fs::write(&manifest, text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                if let Ok(data) = load(&manifest, None, 48) {
                    prop_assert!(data.labels.iter().all(|&l| l < data.classes.len()));
                }
            }
        }
    }
}
