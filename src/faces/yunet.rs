//! YuNet (libfacedetection.train, Apache-2.0), a 0.2 MB CNN face detector, on ONNX Runtime.
//! It finds faces of about 10 to 300 pixels, profiles and tilted heads included, each with five
//! landmarks. The whole-frame search runs on a BGR working copy at most `--detect-width` pixels
//! wide; a known face is followed in a [`PATCH`]-pixel square around its last box, scaled so that
//! the face is [`PATCH_FACE`] pixels, and the patches of all known faces of a frame go through
//! one ONNX Runtime call.
//!
//! The model (the 2023 output format, see `models/README.md`): input `input`, float32
//! `[batch, 3, H, W]`, BGR 0..=255, H and W multiples of 32; for each stride s in 8, 16, 32 the
//! outputs `cls_s`, `obj_s` `[batch, N, 1]`, `bbox_s` `[batch, N, 4]` and `kps_s`
//! `[batch, N, 10]` over the N = (H/s)(W/s) cells in row-major order.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ndarray::Array4;
use opencv::core::{Mat, Point2f, Rect, Size};
use opencv::prelude::*;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use super::picture::{Picture, RegionBuffers};
use super::{intersect, iou, Detection, Detector, Landmarks};
use crate::device::{open_session, Device};

/// Strides of the three output levels.
const STRIDES: [usize; 3] = [8, 16, 32];
/// The input's sides must be multiples of this.
const ALIGN: usize = 32;
/// Side of the square patch a known face is followed in.
pub const PATCH: usize = 96;
/// A followed face is scaled to about this many pixels in its patch: large enough for steady
/// landmarks, with room for it to move and grow by half its size.
const PATCH_FACE: f64 = 48.0;
/// Overlap above which the weaker of two boxes is the same face (non-maximum suppression).
const NMS_IOU: f64 = 0.3;
/// A known face is kept when its patch holds a hit this sure: lower than a new face needs, since
/// the last box already says a face is there (a turned or blurred face scores less).
const FOLLOW_SCORE: f32 = 0.5;

/// YuNet settings.
#[derive(Debug, Clone, PartialEq)]
pub struct YunetConfig {
    /// The ONNX file.
    pub model: PathBuf,
    /// Width of the working copy of the frame that the whole-frame search runs on (frames are
    /// scaled down to it, never up).
    pub width: u32,
    /// Least score of a new face, 0..1.
    pub threshold: f32,
    /// ONNX Runtime threads (0: one per core).
    pub threads: usize,
}

/// The file is not a YuNet detector.
#[derive(Debug, thiserror::Error)]
#[error("{path}: not a YuNet face detector ({reason}); give a YuNet ONNX file (2023 format, e.g. models/yunet_s.onnx) with --detector-model")]
pub struct YunetError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// A loaded YuNet and its buffers.
pub struct Yunet {
    session: Session,
    config: YunetConfig,
    /// Output names per stride: `[cls, obj, bbox, kps]`.
    outputs: Vec<[String; 4]>,
    bgr: Mat,
    buffers: RegionBuffers,
    /// The search input: `[1, 3, H, W]`, reused while the frame size stays.
    frame_input: Array4<f32>,
    /// The follow input: `[faces, 3, PATCH, PATCH]`, grown when a frame has more faces.
    patch_input: Array4<f32>,
}

impl Yunet {
    /// Loads the model on `device` and checks its inputs and outputs.
    ///
    /// # Errors
    /// [`YunetError`] for a missing file or one that is not YuNet; the device's error when a GPU
    /// asked for cannot be used.
    pub fn load(
        config: &YunetConfig,
        env: &ort::environment::Environment,
        device: Device,
    ) -> Result<Self> {
        let error = |reason: String| YunetError {
            path: config.model.clone(),
            reason,
        };
        if !config.model.is_file() {
            return Err(error("file not found".into()).into());
        }
        let (session, _) =
            open_session(&config.model, env, config.threads, device).map_err(|e| match e {
                crate::device::SessionError::Ort(e) => anyhow::Error::from(error(e.to_string())),
                other => other.into(),
            })?;
        let outputs = check_contract(&session).map_err(error)?;
        Ok(Self {
            session,
            config: config.clone(),
            outputs,
            bgr: Mat::default(),
            buffers: RegionBuffers::default(),
            frame_input: Array4::zeros((1, 3, ALIGN, ALIGN)),
            patch_input: Array4::zeros((1, 3, PATCH, PATCH)),
        })
    }

    /// Runs the model on `input` (`[batch, 3, H, W]`) and returns each batch item's hits at or
    /// above `threshold`, in input pixels, after non-maximum suppression.
    fn run(&mut self, batch: usize, threshold: f32, frame: bool) -> Result<Vec<Vec<Detection>>> {
        let input = if frame {
            self.frame_input.view()
        } else {
            self.patch_input.slice(ndarray::s![..batch, .., .., ..])
        };
        let (height, width) = (input.shape()[2], input.shape()[3]);
        let tensor = TensorRef::from_array_view(input)?;
        let outputs = self.session.run(ort::inputs!["input" => tensor])?;
        let mut hits = vec![Vec::new(); batch];
        for (stride, names) in STRIDES.iter().zip(&self.outputs) {
            let columns = width / stride;
            let cells = columns * (height / stride);
            let [cls, obj, bbox, kps] = [0, 1, 2, 3].map(|k| {
                outputs[names[k].as_str()]
                    .try_extract_array::<f32>()
                    .with_context(|| format!("reading YuNet output {}", names[k]))
            });
            let (cls, obj, bbox, kps) = (cls?, obj?, bbox?, kps?);
            anyhow::ensure!(
                cls.len() == batch * cells && bbox.len() == batch * cells * 4,
                "YuNet output {} has {} values, expected {}",
                names[0],
                cls.len(),
                batch * cells
            );
            let (cls, obj) = (cls.as_slice(), obj.as_slice());
            let (bbox, kps) = (bbox.as_slice(), kps.as_slice());
            let (Some(cls), Some(obj), Some(bbox), Some(kps)) = (cls, obj, bbox, kps) else {
                anyhow::bail!("YuNet outputs are not contiguous");
            };
            let s = *stride as f32;
            for (b, found) in hits.iter_mut().enumerate() {
                for cell in 0..cells {
                    let i = b * cells + cell;
                    let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
                    if score < threshold {
                        continue;
                    }
                    let (row, col) = ((cell / columns) as f32, (cell % columns) as f32);
                    let d = &bbox[i * 4..i * 4 + 4];
                    let (cx, cy) = ((col + d[0]) * s, (row + d[1]) * s);
                    let (w, h) = (d[2].exp() * s, d[3].exp() * s);
                    let k = &kps[i * 10..i * 10 + 10];
                    let landmarks: Landmarks = std::array::from_fn(|n| {
                        Point2f::new((col + k[2 * n]) * s, (row + k[2 * n + 1]) * s)
                    });
                    found.push(Detection {
                        bbox: Rect::new(
                            (cx - w / 2.0).round() as i32,
                            (cy - h / 2.0).round() as i32,
                            w.round() as i32,
                            h.round() as i32,
                        ),
                        score,
                        landmarks: Some(landmarks),
                    });
                }
            }
        }
        Ok(hits.into_iter().map(suppress_overlaps).collect())
    }
}

impl Detector for Yunet {
    fn search(&mut self, picture: &Picture<'_>) -> Result<Vec<Detection>> {
        let frame = picture.size();
        let scale = (f64::from(self.config.width) / f64::from(frame.width.max(1))).min(1.0);
        let work = Size::new(
            even((f64::from(frame.width) * scale).round() as i32),
            even((f64::from(frame.height) * scale).round() as i32),
        );
        picture
            .bgr_region(picture.bounds(), work, &mut self.buffers, &mut self.bgr)
            .context("scaling the frame for the face detector")?;
        let shape = (
            1,
            3,
            align(work.height as usize),
            align(work.width as usize),
        );
        if self.frame_input.dim() != shape {
            self.frame_input = Array4::zeros(shape);
        }
        fill_input(&self.bgr, &mut self.frame_input, 0)?;
        // The working copy's size over the frame's, per axis (the copy's sides were rounded).
        let (sx, sy) = (
            f64::from(work.width) / f64::from(frame.width),
            f64::from(work.height) / f64::from(frame.height),
        );
        let threshold = self.config.threshold;
        let hits = self.run(1, threshold, true)?;
        Ok(hits
            .into_iter()
            .flatten()
            .map(|d| to_frame(d, (0.0, 0.0), (sx, sy)))
            .collect())
    }

    fn follow(&mut self, picture: &Picture<'_>, known: &[Rect]) -> Result<Vec<Option<Detection>>> {
        if known.is_empty() {
            return Ok(Vec::new());
        }
        if self.patch_input.dim().0 < known.len() {
            self.patch_input = Array4::zeros((known.len(), 3, PATCH, PATCH));
        }
        self.patch_input.fill(0.0);
        let bounds = picture.bounds();
        let mut placed = Vec::with_capacity(known.len());
        for (b, previous) in known.iter().enumerate() {
            let side = f64::from(previous.width.max(previous.height).max(1));
            let scale = (PATCH_FACE / side).min(1.0);
            let centre = (
                previous.x + previous.width / 2,
                previous.y + previous.height / 2,
            );
            let half = (side as i32).max(1);
            let square = Rect::new(centre.0 - half, centre.1 - half, 2 * half, 2 * half);
            let region = intersect(square, bounds);
            let size = Size::new(
                even((f64::from(region.width) * scale).round() as i32).clamp(2, PATCH as i32),
                even((f64::from(region.height) * scale).round() as i32).clamp(2, PATCH as i32),
            );
            if region.width < 2 || region.height < 2 {
                placed.push(None);
                continue;
            }
            picture
                .bgr_region(region, size, &mut self.buffers, &mut self.bgr)
                .context("cutting a face patch for the detector")?;
            fill_input(&self.bgr, &mut self.patch_input, b)?;
            let (sx, sy) = (
                f64::from(size.width) / f64::from(region.width),
                f64::from(size.height) / f64::from(region.height),
            );
            placed.push(Some((f64::from(region.x), f64::from(region.y), sx, sy)));
        }
        let hits = self.run(known.len(), FOLLOW_SCORE, false)?;
        Ok(known
            .iter()
            .zip(placed)
            .zip(hits)
            .map(|((previous, placed), hits)| {
                let (x, y, sx, sy) = placed?;
                hits.into_iter()
                    .map(|d| to_frame(d, (x, y), (sx, sy)))
                    .filter(|d| iou(d.bbox, *previous) > 0.0)
                    .max_by(|a, b| iou(a.bbox, *previous).total_cmp(&iou(b.bbox, *previous)))
            })
            .collect())
    }
}

/// The names of the outputs per stride, after checking the input and every output.
fn check_contract(session: &Session) -> Result<Vec<[String; 4]>, String> {
    let input = match session.inputs() {
        [only] => only,
        inputs => {
            return Err(format!(
                "{} inputs, expected one image tensor",
                inputs.len()
            ))
        }
    };
    let four_channels = matches!(
        input.dtype(),
        ValueType::Tensor { shape, .. } if shape.len() == 4 && (shape[1] == 3 || shape[1] < 0)
    );
    if input.name() != "input" || !four_channels {
        return Err(format!(
            "input `{}` is {:?}, expected `input` [batch, 3, height, width]",
            input.name(),
            input.dtype()
        ));
    }
    let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    STRIDES
        .iter()
        .map(|s| {
            let wanted = ["cls", "obj", "bbox", "kps"].map(|k| format!("{k}_{s}"));
            match wanted.iter().find(|w| !names.contains(&w.as_str())) {
                Some(missing) => Err(format!("no output `{missing}` (outputs: {names:?})")),
                None => Ok(wanted),
            }
        })
        .collect()
}

/// Writes an 8-bit BGR image into batch item `b` of `input` (`[batch, 3, H, W]`) at the top left;
/// the rest keeps its zeros.
fn fill_input(bgr: &Mat, input: &mut Array4<f32>, b: usize) -> Result<()> {
    let (rows, cols) = (bgr.rows() as usize, bgr.cols() as usize);
    anyhow::ensure!(
        rows <= input.shape()[2] && cols <= input.shape()[3] && bgr.channels() == 3,
        "a {cols}x{rows} picture does not fit the detector input {:?}",
        input.shape()
    );
    let pixels = bgr.data_bytes()?;
    let mut item = input.index_axis_mut(ndarray::Axis(0), b);
    for c in 0..3 {
        let mut plane = item.index_axis_mut(ndarray::Axis(0), c);
        for (y, row) in pixels.chunks_exact(cols * 3).enumerate() {
            for (x, bgr) in row.chunks_exact(3).enumerate() {
                plane[[y, x]] = f32::from(bgr[c]);
            }
        }
    }
    Ok(())
}

/// A hit in a picture whose top-left is `origin` in the frame and whose scale to the frame is
/// `scale` per axis, in frame pixels.
fn to_frame(d: Detection, origin: (f64, f64), scale: (f64, f64)) -> Detection {
    let x = |v: f64| origin.0 + v / scale.0;
    let y = |v: f64| origin.1 + v / scale.1;
    let b = d.bbox;
    Detection {
        bbox: Rect::new(
            x(f64::from(b.x)).round() as i32,
            y(f64::from(b.y)).round() as i32,
            (f64::from(b.width) / scale.0).round() as i32,
            (f64::from(b.height) / scale.1).round() as i32,
        ),
        score: d.score,
        landmarks: d.landmarks.map(|points| {
            points.map(|p| Point2f::new(x(f64::from(p.x)) as f32, y(f64::from(p.y)) as f32))
        }),
    }
}

/// Greedy non-maximum suppression: the surest hit of each group that overlaps more than
/// [`NMS_IOU`].
fn suppress_overlaps(mut hits: Vec<Detection>) -> Vec<Detection> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for hit in hits {
        if kept.iter().all(|k| iou(k.bbox, hit.bbox) <= NMS_IOU) {
            kept.push(hit);
        }
    }
    kept
}

/// `v` rounded up to a multiple of [`ALIGN`].
fn align(v: usize) -> usize {
    v.div_ceil(ALIGN) * ALIGN
}

/// `v` rounded down to an even number, at least 2.
fn even(v: i32) -> i32 {
    (v & !1).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(x: i32, score: f32) -> Detection {
        Detection {
            bbox: Rect::new(x, 0, 100, 100),
            score,
            landmarks: None,
        }
    }

    #[test]
    fn overlapping_hits_keep_the_surest() {
        let kept = suppress_overlaps(vec![hit(0, 0.7), hit(10, 0.9), hit(300, 0.6)]);
        assert_eq!(kept, vec![hit(10, 0.9), hit(300, 0.6)]);
    }

    #[test]
    fn hits_map_back_to_the_frame() {
        let d = Detection {
            bbox: Rect::new(10, 20, 30, 40),
            score: 0.9,
            landmarks: Some([Point2f::new(10.0, 20.0); 5]),
        };
        let back = to_frame(d, (100.0, 50.0), (0.5, 0.5));
        assert_eq!(back.bbox, Rect::new(120, 90, 60, 80));
        assert_eq!(
            back.landmarks.map(|l| l[0]),
            Some(Point2f::new(120.0, 90.0))
        );
        assert_eq!((align(360), align(384), even(361)), (384, 384, 360));
    }
}
