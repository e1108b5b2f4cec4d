//! Image-folder datasets: `ROOT/<class>/*.png|jpg` (the Kaggle FER2013 and CK+48 layouts).

use std::path::{Path, PathBuf};

use opencv::core::{Mat, Size};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

use super::{class_index, Dataset, DatasetError, FER2013_LABELS};

/// File extensions read as images (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Loads every image under `root/<class>/` as `size` x `size` grayscale, resizing images of
/// another size (counted in [`Dataset::resized`]). Files are read in name order.
///
/// # Errors
/// [`DatasetError`] for a missing or empty folder, an unreadable image, or a class folder that
/// is not in `classes`.
pub fn load(root: &Path, classes: Option<&[String]>, size: usize) -> Result<Dataset, DatasetError> {
    if !root.is_dir() {
        return Err(DatasetError::NotFound(root.to_owned()));
    }
    let folders = class_folders(root)?;
    if folders.is_empty() {
        return Err(DatasetError::Empty(root.to_owned()));
    }
    let classes = match classes {
        Some(known) => known.to_vec(),
        None => class_order(folders.iter().map(|(name, _)| name.as_str())),
    };
    let mut data = Dataset::new(classes, size);
    for (name, dir) in &folders {
        let label = class_index(&data.classes, name, dir)?;
        for file in image_files(dir)? {
            let (pixels, resized) = read_gray(&file, size)?;
            data.resized += usize::from(resized);
            data.push(&pixels, label, file.display().to_string());
        }
    }
    if data.is_empty() {
        return Err(DatasetError::Empty(root.to_owned()));
    }
    Ok(data)
}

/// Reads one image as `size` x `size` grayscale; the flag says whether it had to be resized.
///
/// # Errors
/// [`DatasetError::BadImage`] when the file cannot be decoded.
pub fn read_gray(path: &Path, size: usize) -> Result<(Vec<u8>, bool), DatasetError> {
    let bad = || DatasetError::BadImage(path.to_owned());
    let name = path.to_str().ok_or_else(bad)?;
    let image = imgcodecs::imread(name, imgcodecs::IMREAD_GRAYSCALE).map_err(|_| bad())?;
    if image.empty() {
        return Err(bad());
    }
    let side = i32::try_from(size).map_err(|_| bad())?;
    if image.rows() == side && image.cols() == side {
        return Ok((mat_bytes(&image).ok_or_else(bad)?, false));
    }
    let mut resized = Mat::default();
    imgproc::resize(
        &image,
        &mut resized,
        Size::new(side, side),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )
    .map_err(|_| bad())?;
    Ok((mat_bytes(&resized).ok_or_else(bad)?, true))
}

/// Copies the pixels of a single-channel 8-bit Mat, row by row.
fn mat_bytes(mat: &Mat) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(mat.total());
    for row in 0..mat.rows() {
        let start = mat.ptr(row).ok()?;
        let cols = usize::try_from(mat.cols()).ok()?;
        // SAFETY: `ptr(row)` points at the start of a row of `cols` u8 pixels of a live CV_8UC1 Mat.
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(start, cols) });
    }
    Some(out)
}

/// The class sub-folders of `root`, sorted by name.
fn class_folders(root: &Path) -> Result<Vec<(String, PathBuf)>, DatasetError> {
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| DatasetError::io(root, e))? {
        let path = entry.map_err(|e| DatasetError::io(root, e))?.path();
        if path.is_dir() {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                folders.push((name.to_owned(), path.clone()));
            }
        }
    }
    folders.sort();
    Ok(folders)
}

/// The images directly inside `dir`, sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))? {
        let path = entry.map_err(|e| DatasetError::io(dir, e))?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The label order for folder names: FER2013's own order when every name is a FER2013 class
/// (so label indices match the Kaggle CSV), alphabetical otherwise.
pub(crate) fn class_order<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = names.map(str::to_owned).collect();
    if names.iter().all(|n| FER2013_LABELS.contains(&n.as_str())) {
        names.sort_by_key(|n| FER2013_LABELS.iter().position(|l| l == n));
    } else {
        names.sort();
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fer_names_keep_fer_order() {
        let order = class_order(["sad", "angry", "happy"].into_iter());
        assert_eq!(order, vec!["angry", "happy", "sad"]);
        let other = class_order(["surprise", "contempt", "anger"].into_iter());
        assert_eq!(other, vec!["anger", "contempt", "surprise"]);
    }

    #[test]
    fn reads_resizes_and_rejects() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let happy = dir.path().join("happy");
        std::fs::create_dir(&happy)?;
        let big = Mat::new_rows_cols_with_default(
            64,
            64,
            opencv::core::CV_8UC1,
            opencv::core::Scalar::all(200.0),
        )?;
        imgcodecs::imwrite(
            happy.join("a.png").to_str().ok_or("path")?,
            &big,
            &opencv::core::Vector::new(),
        )?;
        let data = load(dir.path(), None, 48)?;
        assert_eq!((data.len(), data.resized), (1, 1));
        assert!(data.image(0).iter().all(|&p| p == 200));

        std::fs::write(happy.join("broken.png"), b"not a png")?;
        let err = load(dir.path(), None, 48).unwrap_err();
        assert!(matches!(err, DatasetError::BadImage(ref p) if p.ends_with("broken.png")));
        std::fs::remove_file(happy.join("broken.png"))?;

        let classes = vec!["sad".to_owned()];
        let err = load(dir.path(), Some(&classes), 48).unwrap_err();
        assert!(err.to_string().contains("unknown class `happy`"), "{err}");

        let empty = tempfile::tempdir()?;
        assert!(matches!(
            load(empty.path(), None, 48),
            Err(DatasetError::Empty(_))
        ));
        assert!(matches!(
            load(&empty.path().join("nope"), None, 48),
            Err(DatasetError::NotFound(_))
        ));
        Ok(())
    }
}
