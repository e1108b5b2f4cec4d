//! Overlays on video frames: a box in the colour of each face's emotion and a `#id label 87%`
//! tag above it.

use opencv::core::{Mat, Point, Rect, Scalar};
use opencv::imgproc;
use opencv::prelude::*;

use crate::track::TrackedFace;

/// BGR colours of the FER2013 emotions; other labels take [`PALETTE`] by label index.
const EMOTION_COLOURS: [(&str, [f64; 3]); 7] = [
    ("angry", [40.0, 40.0, 230.0]),
    ("disgust", [40.0, 140.0, 40.0]),
    ("fear", [160.0, 60.0, 160.0]),
    ("happy", [40.0, 210.0, 250.0]),
    ("sad", [200.0, 120.0, 30.0]),
    ("surprise", [0.0, 140.0, 255.0]),
    ("neutral", [190.0, 190.0, 190.0]),
];
/// Colours for labels of other models.
const PALETTE: [[f64; 3]; 6] = [
    [230.0, 120.0, 40.0],
    [40.0, 200.0, 120.0],
    [120.0, 40.0, 230.0],
    [40.0, 230.0, 230.0],
    [230.0, 40.0, 200.0],
    [150.0, 150.0, 40.0],
];
const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;
/// Text height relative to the frame height: readable at 360p and 1080p alike.
const TEXT_SCALE_PER_PIXEL: f64 = 0.6 / 360.0;
const MIN_TEXT_SCALE: f64 = 0.45;

/// The colour of `label` (index `index` in its model's labels).
pub fn label_colour(label: &str, index: usize) -> Scalar {
    let bgr = EMOTION_COLOURS
        .iter()
        .find(|(name, _)| *name == label)
        .map_or(PALETTE[index % PALETTE.len()], |(_, c)| *c);
    Scalar::new(bgr[0], bgr[1], bgr[2], 0.0)
}

/// The displayed label of a face: the most probable class and its probability.
pub fn top_label<'a>(face: &TrackedFace, labels: &'a [String]) -> (usize, &'a str, f32) {
    let index = crate::dataset::ferplus::argmax(&face.probs);
    (
        index,
        labels.get(index).map_or("?", String::as_str),
        face.probs.get(index).copied().unwrap_or(0.0),
    )
}

/// Draws every face's box and tag onto `image` (BGR).
///
/// # Errors
/// OpenCV's error when drawing fails.
pub fn draw_faces(image: &mut Mat, faces: &[TrackedFace], labels: &[String]) -> opencv::Result<()> {
    let scale = (f64::from(image.rows()) * TEXT_SCALE_PER_PIXEL).max(MIN_TEXT_SCALE);
    let thickness = ((scale * 2.5).round() as i32).max(1);
    for face in faces {
        let (index, label, confidence) = top_label(face, labels);
        let colour = label_colour(label, index);
        imgproc::rectangle(image, face.bbox, colour, thickness + 1, imgproc::LINE_8, 0)?;
        let text = format!("#{} {label} {:.0}%", face.id, confidence * 100.0);
        let mut baseline = 0;
        let size = imgproc::get_text_size(&text, FONT, scale, thickness, &mut baseline)?;
        let pad = thickness + 2;
        let top = if face.bbox.y - size.height - 2 * pad >= 0 {
            face.bbox.y - size.height - 2 * pad
        } else {
            face.bbox.y + face.bbox.height
        };
        let tag = Rect::new(
            face.bbox.x,
            top,
            size.width + 2 * pad,
            size.height + 2 * pad,
        );
        imgproc::rectangle(image, tag, colour, imgproc::FILLED, imgproc::LINE_8, 0)?;
        let ink = if colour[0] + colour[1] + colour[2] > 450.0 {
            0.0
        } else {
            255.0
        };
        imgproc::put_text(
            image,
            &text,
            Point::new(tag.x + pad, tag.y + pad + size.height),
            FONT,
            scale,
            Scalar::new(ink, ink, ink, 0.0),
            thickness,
            imgproc::LINE_AA,
            false,
        )?;
    }
    Ok(())
}
