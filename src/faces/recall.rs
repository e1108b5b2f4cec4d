//! How well a detector finds faces in labelled photos (`emolens evaluate-faces`): each photo's
//! whole-frame search against its labelled boxes (a CSV `image,x,y,w,h,source`, as
//! ../shared/data/faces/boxes.csv), a hit matching a labelled face at IoU >= [`MATCH_IOU`].
//! Reports recall (overall and per box source), false faces (on photos with people, and on
//! photos without any labelled face, such as dogs) and milliseconds per photo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use opencv::core::{Mat, Rect};
use opencv::imgcodecs;
use opencv::imgproc;
use opencv::prelude::*;
use serde::{Deserialize, Serialize};

use super::picture::Picture;
use super::{iou, Detector};

/// Least overlap of a hit with a labelled box to count as finding that face: the labelled boxes
/// come from several detectors and hands, whose box shapes differ (see ../shared/data/README.md).
pub const MATCH_IOU: f64 = 0.4;

/// One row of the boxes CSV.
#[derive(Debug, Deserialize)]
struct LabelledBox {
    image: String,
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    source: String,
}

/// The labelled faces of each photo (none for a photo listed with no face).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPhotos {
    /// Folder of the photos.
    pub folder: PathBuf,
    /// Photo file name -> its labelled boxes and their sources.
    pub photos: BTreeMap<String, Vec<(Rect, String)>>,
}

impl LabelledPhotos {
    /// Reads the boxes CSV; the photos are the CSV's folder's images (`.jpg`, `.jpeg`, `.png`),
    /// those without a row having no face.
    ///
    /// # Errors
    /// A missing or malformed CSV (with its line), or a row naming a photo that is not there.
    pub fn read(csv_path: &Path) -> Result<Self> {
        let folder = csv_path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut reader = csv::Reader::from_path(csv_path).with_context(|| {
            format!(
                "{}: cannot read the face boxes; give a CSV image,x,y,w,h,source",
                csv_path.display()
            )
        })?;
        let mut photos: BTreeMap<String, Vec<(Rect, String)>> = BTreeMap::new();
        for row in reader.deserialize::<LabelledBox>() {
            let row = row.with_context(|| {
                format!(
                    "{}: not a face box row (expected image,x,y,w,h,source)",
                    csv_path.display()
                )
            })?;
            if !folder.join(&row.image).is_file() {
                bail!(
                    "{}: names {}, which is not in {}; put the photos beside the CSV",
                    csv_path.display(),
                    row.image,
                    folder.display()
                );
            }
            photos
                .entry(row.image)
                .or_default()
                .push((Rect::new(row.x, row.y, row.w, row.h), row.source));
        }
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("{}: cannot list the photos", folder.display()))?;
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let lower = name.to_ascii_lowercase();
            if [".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e)) {
                photos.entry(name).or_default();
            }
        }
        if photos.is_empty() {
            bail!("{}: lists no photos", csv_path.display());
        }
        Ok(Self { folder, photos })
    }
}

/// What a detector found in one photo.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoResult {
    /// The photo's file name.
    pub image: String,
    /// Labelled faces.
    pub faces: usize,
    /// Labelled faces found.
    pub found: usize,
    /// Hits that match no labelled face.
    pub false_faces: usize,
    /// Milliseconds of the whole-frame search.
    pub ms: f64,
}

/// A detector's results over all photos.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReport {
    /// Per photo, in name order.
    pub photos: Vec<PhotoResult>,
    /// Labelled faces found per box source, as (found, labelled).
    pub by_source: BTreeMap<String, (usize, usize)>,
}

impl RecallReport {
    /// Labelled faces found and labelled, over all photos.
    pub fn found(&self) -> (usize, usize) {
        self.photos
            .iter()
            .fold((0, 0), |(f, n), p| (f + p.found, n + p.faces))
    }

    /// False faces on photos with labelled faces, and on photos with none.
    pub fn false_faces(&self) -> (usize, usize) {
        self.photos.iter().fold((0, 0), |(people, none), p| {
            if p.faces > 0 {
                (people + p.false_faces, none)
            } else {
                (people, none + p.false_faces)
            }
        })
    }

    /// Mean milliseconds per photo.
    pub fn ms_per_photo(&self) -> f64 {
        self.photos.iter().map(|p| p.ms).sum::<f64>() / self.photos.len().max(1) as f64
    }
}

/// Runs `detector`'s whole-frame search on every photo and matches its hits to the labels
/// (greedily, best overlap first).
///
/// # Errors
/// A photo OpenCV cannot read, or the detector's failure.
pub fn measure(detector: &mut dyn Detector, labelled: &LabelledPhotos) -> Result<RecallReport> {
    let mut photos = Vec::new();
    let mut by_source: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut gray = Mat::default();
    for (name, boxes) in &labelled.photos {
        let path = labelled.folder.join(name);
        let bgr = imgcodecs::imread_def(&path)
            .with_context(|| format!("{}: cannot read the photo", path.display()))?;
        if bgr.empty() {
            bail!("{}: not an image OpenCV can read", path.display());
        }
        imgproc::cvt_color_def(&bgr, &mut gray, imgproc::COLOR_BGR2GRAY)?;
        let picture = Picture::Bgr {
            bgr: &bgr,
            gray: &gray,
        };
        let started = Instant::now();
        let hits = detector.search(&picture)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let matched = match_boxes(
            &hits.iter().map(|h| h.bbox).collect::<Vec<_>>(),
            &boxes.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
        );
        for ((_, source), hit) in boxes.iter().zip(&matched) {
            let counts = by_source.entry(source.clone()).or_default();
            counts.0 += usize::from(hit.is_some());
            counts.1 += 1;
        }
        let found = matched.iter().flatten().count();
        photos.push(PhotoResult {
            image: name.clone(),
            faces: boxes.len(),
            found,
            false_faces: hits.len() - found,
            ms,
        });
    }
    Ok(RecallReport { photos, by_source })
}

/// For each labelled box, the hit that matches it (IoU >= [`MATCH_IOU`]), each hit used once,
/// best overlaps first.
fn match_boxes(hits: &[Rect], labels: &[Rect]) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (h, hit) in hits.iter().enumerate() {
        for (l, label) in labels.iter().enumerate() {
            let overlap = iou(*hit, *label);
            if overlap >= MATCH_IOU {
                pairs.push((overlap, h, l));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut matched = vec![None; labels.len()];
    let mut used = vec![false; hits.len()];
    for (_, h, l) in pairs {
        if matched[l].is_none() && !used[h] {
            matched[l] = Some(h);
            used[h] = true;
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hit_matches_one_face_and_the_best_overlap_wins() {
        let labels = [Rect::new(0, 0, 100, 100), Rect::new(90, 0, 100, 100)];
        let hits = [
            Rect::new(80, 0, 100, 100),  // overlaps both, the second more
            Rect::new(5, 5, 100, 100),   // the first
            Rect::new(500, 0, 100, 100), // nothing
        ];
        assert_eq!(match_boxes(&hits, &labels), vec![Some(1), Some(0)]);
        assert_eq!(match_boxes(&hits[2..], &labels), vec![None, None]);
    }
}
