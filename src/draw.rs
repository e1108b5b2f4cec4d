//! Overlays on video frames: a box in the colour of each face's emotion, a `#id label 87%` tag
//! above it and, when asked, the action units present below it; on BGR images or directly on
//! YUV 4:2:0 frames.

use opencv::core::{Mat, Point, Rect, Scalar, Size};
use opencv::imgproc;
use opencv::prelude::*;

use crate::captions::Captions;
use crate::track::TrackedFace;
use crate::video::PlaneMats;

/// BGR colours of the FER2013 emotions, the CK+ names of the same emotions and the valence
/// groups; other labels take [`PALETTE`] by label index.
const EMOTION_COLOURS: [(&str, [f64; 3]); 12] = [
    ("angry", [40.0, 40.0, 230.0]),
    ("anger", [40.0, 40.0, 230.0]),
    ("negative", [40.0, 40.0, 230.0]),
    ("disgust", [40.0, 140.0, 40.0]),
    ("contempt", [30.0, 100.0, 130.0]),
    ("fear", [160.0, 60.0, 160.0]),
    ("happy", [40.0, 210.0, 250.0]),
    ("positive", [40.0, 210.0, 250.0]),
    ("sad", [200.0, 120.0, 30.0]),
    ("sadness", [200.0, 120.0, 30.0]),
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
/// Samples across a blurred face: few enough that no one can be recognised.
const BLUR_CELLS: i32 = 8;
/// A blurred face's box grows by this share of its size on each side.
const BLUR_MARGIN: f64 = 0.12;

/// The colour of `label` (index `index` in its model's labels).
pub fn label_colour(label: &str, index: usize) -> Scalar {
    let bgr = EMOTION_COLOURS
        .iter()
        .find(|(name, _)| *name == label)
        .map_or(PALETTE[index % PALETTE.len()], |(_, c)| *c);
    Scalar::new(bgr[0], bgr[1], bgr[2], 0.0)
}

/// Sizes of the overlays, set by the frame height so that they read alike at 360p and 1080p.
#[derive(Debug, Clone, Copy)]
struct Style {
    scale: f64,
    thickness: i32,
}

impl Style {
    fn for_height(rows: i32) -> Self {
        let scale = (f64::from(rows) * TEXT_SCALE_PER_PIXEL).max(MIN_TEXT_SCALE);
        Self {
            scale,
            thickness: ((scale * 2.5).round() as i32).max(1),
        }
    }

    /// Line width of the face box.
    fn box_line(self) -> i32 {
        self.thickness + 1
    }
}

/// A filled tag with a line of text.
struct TextTag {
    rect: Rect,
    text: String,
    origin: Point,
}

/// What is drawn for one face, in frame coordinates.
struct Overlay {
    bbox: Rect,
    colour: Scalar,
    /// The label tag above the box (below it at the top edge), then the units tag below it.
    tags: Vec<TextTag>,
    ink: Scalar,
}

impl Overlay {
    /// The overlay of `face` in a frame `frame_width` pixels wide: tags start at the box's left
    /// edge, moved left as far as needed to end inside the frame.
    fn new(
        face: &TrackedFace,
        captions: &Captions,
        style: Style,
        frame_width: i32,
    ) -> opencv::Result<Self> {
        let caption = captions.of(face);
        let colour = label_colour(&caption.label, caption.index);
        let pad = style.thickness + 2;
        // A tag at `x` whose top is `top(tag height)`.
        let tag = |text: String, x: i32, top: &dyn Fn(i32) -> i32| -> opencv::Result<TextTag> {
            let mut baseline = 0;
            let size =
                imgproc::get_text_size(&text, FONT, style.scale, style.thickness, &mut baseline)?;
            let (width, height) = (size.width + 2 * pad, size.height + 2 * pad);
            let x = x.min(frame_width - width).max(0);
            let y = top(height);
            Ok(TextTag {
                rect: Rect::new(x, y, width, height),
                origin: Point::new(x + pad, y + pad + size.height),
                text,
            })
        };
        let b = face.bbox;
        let label = format!(
            "#{} {} {:.0}%",
            face.id,
            caption.label,
            caption.confidence * 100.0
        );
        // Above the box, or below it when there is no room above.
        let above = |height: i32| {
            if b.y - height >= 0 {
                b.y - height
            } else {
                b.y + b.height
            }
        };
        let label_tag = tag(label, b.x, &above)?;
        // Under the box, and under the label tag when that went there too.
        let units_top = (b.y + b.height).max(if label_tag.rect.y > b.y {
            label_tag.rect.y + label_tag.rect.height
        } else {
            0
        });
        let mut tags = vec![label_tag];
        if let Some(units) = caption.units {
            tags.push(tag(units, b.x, &|_| units_top)?);
        }
        let ink = if colour[0] + colour[1] + colour[2] > 450.0 {
            0.0
        } else {
            255.0
        };
        Ok(Self {
            bbox: b,
            colour,
            tags,
            ink: Scalar::new(ink, ink, ink, 0.0),
        })
    }

    /// Draws onto `image`, whose top-left pixel is `origin` in the frame; the text (the costly
    /// part) only when asked.
    fn draw(&self, image: &mut Mat, origin: Point, style: Style, text: bool) -> opencv::Result<()> {
        let shift = |r: Rect| Rect::new(r.x - origin.x, r.y - origin.y, r.width, r.height);
        imgproc::rectangle(
            image,
            shift(self.bbox),
            self.colour,
            style.box_line(),
            imgproc::LINE_8,
            0,
        )?;
        for tag in &self.tags {
            imgproc::rectangle(
                image,
                shift(tag.rect),
                self.colour,
                imgproc::FILLED,
                imgproc::LINE_8,
                0,
            )?;
        }
        if !text {
            return Ok(());
        }
        for tag in &self.tags {
            imgproc::put_text(
                image,
                &tag.text,
                tag.origin - origin,
                FONT,
                style.scale,
                self.ink,
                style.thickness,
                imgproc::LINE_AA,
                false,
            )?;
        }
        Ok(())
    }

    /// The frame areas the overlay covers, each with whether it holds text: the four sides of
    /// the box, then the tags (last, so that their text is drawn over everything else).
    fn areas(&self, style: Style) -> Vec<(Rect, bool)> {
        let b = self.bbox;
        let reach = style.box_line(); // covers the line's width on both sides, and more
        let sides = [
            Rect::new(b.x - reach, b.y - reach, b.width + 2 * reach, 2 * reach),
            Rect::new(
                b.x - reach,
                b.y + b.height - reach,
                b.width + 2 * reach,
                2 * reach,
            ),
            Rect::new(b.x - reach, b.y - reach, 2 * reach, b.height + 2 * reach),
            Rect::new(
                b.x + b.width - reach,
                b.y - reach,
                2 * reach,
                b.height + 2 * reach,
            ),
        ];
        sides
            .into_iter()
            .map(|r| (r, false))
            .chain(self.tags.iter().map(|t| (t.rect, true)))
            .collect()
    }
}

/// Draws every face's box and tags onto `image` (BGR).
///
/// # Errors
/// OpenCV's error when drawing fails.
pub fn draw_faces(
    image: &mut Mat,
    faces: &[TrackedFace],
    captions: &Captions,
) -> opencv::Result<()> {
    let style = Style::for_height(image.rows());
    for face in faces {
        Overlay::new(face, captions, style, image.cols())?.draw(
            image,
            Point::new(0, 0),
            style,
            true,
        )?;
    }
    Ok(())
}

/// Draws every face's box and tag onto a YUV 4:2:0 frame. Only the areas the overlays cover
/// are converted: each goes to BGR, is drawn on exactly as [`draw_faces`] draws, and comes back.
///
/// # Errors
/// OpenCV's error when converting or drawing fails.
pub fn draw_faces_yuv420(
    planes: &mut PlaneMats,
    faces: &[TrackedFace],
    captions: &Captions,
) -> opencv::Result<()> {
    let style = Style::for_height(planes.y.rows());
    let mut patch = Patch::default();
    for face in faces {
        let overlay = Overlay::new(face, captions, style, planes.y.cols())?;
        for (area, has_text) in overlay.areas(style) {
            let Some(area) = whole_chroma_area(area, &planes.y) else {
                continue;
            };
            patch.load(planes, area)?;
            overlay.draw(&mut patch.bgr, Point::new(area.x, area.y), style, has_text)?;
            patch.store(planes, area)?;
        }
    }
    Ok(())
}

/// Blurs every face on a YUV 4:2:0 frame beyond recognition: its box, grown by
/// [`BLUR_MARGIN`] to take in chin and hairline, is shrunk in each plane to [`BLUR_CELLS`]
/// samples across and smoothly enlarged back.
///
/// # Errors
/// OpenCV's error when resizing fails.
pub fn blur_faces_yuv420(planes: &mut PlaneMats, faces: &[TrackedFace]) -> opencv::Result<()> {
    let mut small = Mat::default();
    for face in faces {
        let b = face.bbox;
        let (dx, dy) = (
            (f64::from(b.width) * BLUR_MARGIN) as i32,
            (f64::from(b.height) * BLUR_MARGIN) as i32,
        );
        let grown = Rect::new(b.x - dx, b.y - dy, b.width + 2 * dx, b.height + 2 * dy);
        let Some(area) = whole_chroma_area(grown, &planes.y) else {
            continue;
        };
        let half = Rect::new(area.x / 2, area.y / 2, area.width / 2, area.height / 2);
        for (plane, part) in [
            (&mut planes.y, area),
            (&mut planes.u, half),
            (&mut planes.v, half),
        ] {
            let cells = Size::new(
                BLUR_CELLS,
                (BLUR_CELLS * part.height / part.width.max(1)).max(1),
            );
            let mut roi = Mat::roi_mut(plane, part)?;
            imgproc::resize(&roi, &mut small, cells, 0.0, 0.0, imgproc::INTER_AREA)?;
            let size = roi.size()?;
            imgproc::resize(&small, &mut roi, size, 0.0, 0.0, imgproc::INTER_LINEAR)?;
        }
    }
    Ok(())
}

/// `area` within the frame of luma plane `y`, grown to start and end on even pixels so that
/// it holds whole chroma samples; `None` when nothing of it is in the frame.
fn whole_chroma_area(area: Rect, y: &Mat) -> Option<Rect> {
    let (width, height) = (y.cols() & !1, y.rows() & !1);
    let x0 = area.x.max(0) & !1;
    let y0 = area.y.max(0) & !1;
    let x1 = ((area.x + area.width).min(width) + 1) & !1;
    let y1 = ((area.y + area.height).min(height) + 1) & !1;
    (x1 - x0 >= 2 && y1 - y0 >= 2).then(|| Rect::new(x0, y0, x1 - x0, y1 - y0))
}

/// One area of a YUV 4:2:0 frame as BGR, and the buffers of its round trip.
#[derive(Default)]
struct Patch {
    i420: Vec<u8>,
    plane: Mat,
    bgr: Mat,
    back: Mat,
}

impl Patch {
    /// Reads `area` (even position and size) of the planes into `bgr`.
    fn load(&mut self, planes: &PlaneMats, area: Rect) -> opencv::Result<()> {
        let half = Rect::new(area.x / 2, area.y / 2, area.width / 2, area.height / 2);
        self.i420.clear();
        for (plane, part) in [(&planes.y, area), (&planes.u, half), (&planes.v, half)] {
            Mat::roi(plane, part)?.copy_to(&mut self.plane)?;
            self.i420.extend_from_slice(self.plane.data_bytes()?);
        }
        let i420 = Mat::new_rows_cols_with_data(area.height * 3 / 2, area.width, &self.i420)?;
        imgproc::cvt_color_def(&i420, &mut self.bgr, imgproc::COLOR_YUV2BGR_I420)
    }

    /// Writes `bgr` back into `area` of the planes.
    fn store(&mut self, planes: &mut PlaneMats, area: Rect) -> opencv::Result<()> {
        imgproc::cvt_color_def(&self.bgr, &mut self.back, imgproc::COLOR_BGR2YUV_I420)?;
        let half = Rect::new(area.x / 2, area.y / 2, area.width / 2, area.height / 2);
        let data = self.back.data_bytes()?;
        let (luma, chroma) = data.split_at((area.width * area.height) as usize);
        let (u, v) = chroma.split_at((half.width * half.height) as usize);
        for (plane, part, samples) in [
            (&mut planes.y, area, luma),
            (&mut planes.u, half, u),
            (&mut planes.v, half, v),
        ] {
            let source = Mat::new_rows_cols_with_data(part.height, part.width, samples)?;
            // The ROI has the source's size and type, so the copy lands in the plane itself.
            let mut target = Mat::roi_mut(plane, part)?;
            source.copy_to(&mut target)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_of_a_face_at_the_right_edge_stay_in_the_frame() -> opencv::Result<()> {
        let labels: Vec<String> = ["happy", "sad"].map(String::from).to_vec();
        let units: Vec<String> = (1..=8).map(|n| format!("AU{n}")).collect();
        let captions = Captions::plain(&labels).with_units(&units, 0.5);
        let face = TrackedFace {
            id: 12,
            bbox: Rect::new(560, 100, 76, 90),
            frontal: true,
            probs: vec![0.9, 0.1],
            units: vec![0.9; 8],
        };
        let style = Style::for_height(360);
        let overlay = Overlay::new(&face, &captions, style, 640)?;
        assert_eq!(overlay.tags.len(), 2, "label and units");
        for tag in &overlay.tags {
            assert!(
                tag.rect.x >= 0 && tag.rect.x + tag.rect.width <= 640,
                "{:?}",
                tag.rect
            );
        }
        let left = Overlay::new(
            &TrackedFace {
                bbox: Rect::new(20, 100, 76, 90),
                ..face
            },
            &captions,
            style,
            640,
        )?;
        assert!(
            left.tags.iter().all(|t| t.rect.x == 20),
            "a tag with room starts at the box"
        );
        Ok(())
    }
}
