//! Overlays on video frames: a box in the colour of each face's emotion, a `#id label 87%` tag
//! above it and, when asked, the action units present below it; on BGR images or directly on
//! YUV 4:2:0 frames.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use opencv::core::{Mat, Point, Rect, Scalar, Size, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;

use crate::faces::captions::Captions;
use crate::faces::track::TrackedFace;
use crate::video::PlaneMats;

const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;
/// Text height relative to the frame height: readable at 360p and 1080p alike.
const TEXT_SCALE_PER_PIXEL: f64 = 0.6 / 360.0;
/// The smallest text drawn (about 9 pixels high): still readable.
const MIN_TEXT_SCALE: f64 = 0.4;
/// A tag may be this many times as wide as its face's box: a small face gets a smaller tag, so
/// that a crowd's tags do not hide the faces.
const TAG_WIDTH_PER_BOX: f64 = 1.6;
/// Text stroke width per unit of text scale (OpenCV's Hershey fonts read best at about this).
const STROKE_PER_SCALE: f64 = 2.5;
/// A face box's line is this many pixels wider than the text stroke.
const BOX_LINE_EXTRA: i32 = 1;
/// A tag's padding around its text is this many pixels more than the text stroke.
const TAG_PAD_EXTRA: i32 = 2;
/// A tag whose colour's channels sum above this is light: its text is black, else white.
const LIGHT_TAG: f64 = 450.0;
/// Samples across a blurred face: few enough that no one can be recognised.
const BLUR_CELLS: i32 = 8;
/// A blurred face's box grows by this share of its size on each side.
const BLUR_MARGIN: f64 = 0.12;

/// The colour of `label` (index `index` in its model's labels), as a BGR scalar.
pub fn label_colour(label: &str, index: usize) -> Scalar {
    let [r, g, b] = crate::palette::label_rgb(label, index).map(f64::from);
    Scalar::new(b, g, r, 0.0)
}

/// Size of a tag's text and of the box line, set by the frame height so that they read alike
/// at 360p and 1080p, and made smaller for small faces.
#[derive(Debug, Clone, Copy)]
struct Style {
    scale: f64,
    thickness: i32,
}

impl Style {
    fn with_scale(scale: f64) -> Self {
        Self {
            scale,
            thickness: ((scale * STROKE_PER_SCALE).round() as i32).max(1),
        }
    }

    /// The largest text of a frame `rows` high.
    fn for_height(rows: i32) -> Self {
        Self::with_scale((f64::from(rows) * TEXT_SCALE_PER_PIXEL).max(MIN_TEXT_SCALE))
    }

    /// Line width of a face box.
    fn box_line(self) -> i32 {
        self.thickness + BOX_LINE_EXTRA
    }

    /// Padding around a tag's text.
    fn pad(self) -> i32 {
        self.thickness + TAG_PAD_EXTRA
    }
}

/// A filled tag with a line of text.
#[derive(Debug, Clone)]
struct TextTag {
    rect: Rect,
    text: String,
    /// Baseline start of the text, relative to the tag's top-left corner.
    origin: Point,
}

/// What is drawn for one face, in frame coordinates.
struct Overlay {
    bbox: Rect,
    colour: Scalar,
    /// The label tag, then the units tag under it, placed together.
    tags: Vec<TextTag>,
    ink: Scalar,
    style: Style,
}

impl Overlay {
    /// The overlay of `face` with its tags not yet placed (at the frame's origin), its text
    /// no larger than `largest` and no wider than [`TAG_WIDTH_PER_BOX`] box widths.
    fn new(face: &TrackedFace, captions: &Captions, largest: Style) -> opencv::Result<Self> {
        let caption = captions.of(face);
        let colour = label_colour(&caption.label, caption.index);
        let b = face.track.bbox;
        let label = format!(
            "#{} {} {:.0}%",
            face.track.id,
            caption.label,
            caption.confidence * 100.0
        );
        let texts: Vec<String> = std::iter::once(label).chain(caption.units).collect();
        let widest = |style: Style| -> opencv::Result<i32> {
            let mut widest = 0;
            for text in &texts {
                let mut baseline = 0;
                let size = imgproc::get_text_size(
                    text,
                    FONT,
                    style.scale,
                    style.thickness,
                    &mut baseline,
                )?;
                widest = widest.max(size.width + 2 * style.pad());
            }
            Ok(widest)
        };
        let room = f64::from(b.width) * TAG_WIDTH_PER_BOX;
        let full = f64::from(widest(largest)?);
        let style = if full > room {
            Style::with_scale((largest.scale * room / full).max(MIN_TEXT_SCALE))
        } else {
            largest
        };
        let pad = style.pad();
        let mut tags = Vec::with_capacity(texts.len());
        let mut top = 0;
        for text in texts {
            let mut baseline = 0;
            let size =
                imgproc::get_text_size(&text, FONT, style.scale, style.thickness, &mut baseline)?;
            // Even sizes (and even places, see `layout`): a tag then covers whole chroma
            // samples of a YUV 4:2:0 frame, so its drawing does not depend on the picture.
            let (width, height) = (
                even_up(size.width + 2 * pad),
                even_up(size.height + 2 * pad),
            );
            tags.push(TextTag {
                rect: Rect::new(0, top, width, height),
                origin: Point::new(pad, pad + size.height),
                text,
            });
            top += height;
        }
        let ink = if colour[0] + colour[1] + colour[2] > LIGHT_TAG {
            0.0
        } else {
            255.0
        };
        Ok(Self {
            bbox: b,
            colour,
            tags,
            ink: Scalar::new(ink, ink, ink, 0.0),
            style,
        })
    }

    /// Width and height of the tags together.
    fn block(&self) -> Size {
        Size::new(
            self.tags.iter().map(|t| t.rect.width).max().unwrap_or(0),
            self.tags.iter().map(|t| t.rect.height).sum(),
        )
    }

    /// Moves the tags so that their block's top-left corner is at `at`.
    fn place(&mut self, at: Point) {
        let mut top = at.y;
        for tag in &mut self.tags {
            tag.rect.x = at.x;
            tag.rect.y = top;
            top += tag.rect.height;
        }
    }

    /// Draws onto a BGR `image` of the whole frame.
    fn draw(&self, image: &mut Mat) -> opencv::Result<()> {
        imgproc::rectangle(
            image,
            self.bbox,
            self.colour,
            self.style.box_line(),
            imgproc::LINE_8,
            0,
        )?;
        for tag in &self.tags {
            self.draw_tag(image, tag, Point::new(0, 0))?;
        }
        Ok(())
    }

    /// Draws `tag` onto `image`, whose top-left pixel is `origin` in the frame.
    fn draw_tag(&self, image: &mut Mat, tag: &TextTag, origin: Point) -> opencv::Result<()> {
        let rect = Rect::new(
            tag.rect.x - origin.x,
            tag.rect.y - origin.y,
            tag.rect.width,
            tag.rect.height,
        );
        imgproc::rectangle(
            image,
            rect,
            self.colour,
            imgproc::FILLED,
            imgproc::LINE_8,
            0,
        )?;
        imgproc::put_text(
            image,
            &tag.text,
            Point::new(rect.x, rect.y) + tag.origin,
            FONT,
            self.style.scale,
            self.ink,
            self.style.thickness,
            imgproc::LINE_AA,
            false,
        )
    }

    /// Draws the box straight into the planes of a YUV 4:2:0 frame: the line in luma, and at
    /// half size in chroma, in the box colour's Y, U and V (as OpenCV converts BGR to YUV, like
    /// the tags' patches).
    fn draw_box_yuv420(&self, planes: &mut PlaneMats) -> opencv::Result<()> {
        let [y, u, v] = yuv_of(self.colour)?;
        let line = self.style.box_line();
        let b = self.bbox;
        let half = Rect::new(b.x / 2, b.y / 2, b.width / 2, b.height / 2);
        for (plane, rect, value, width) in [
            (&mut planes.y, b, y, line),
            (&mut planes.u, half, u, (line / 2).max(1)),
            (&mut planes.v, half, v, (line / 2).max(1)),
        ] {
            imgproc::rectangle(plane, rect, Scalar::all(value), width, imgproc::LINE_8, 0)?;
        }
        Ok(())
    }
}

/// Y, U and V of a BGR colour, as OpenCV's BGR to I420 conversion gives them.
fn yuv_of(bgr: Scalar) -> opencv::Result<[f64; 3]> {
    let patch = Mat::new_rows_cols_with_default(2, 2, opencv::core::CV_8UC3, bgr)?;
    let mut i420 = Mat::default();
    imgproc::cvt_color_def(&patch, &mut i420, imgproc::COLOR_BGR2YUV_I420)?;
    let bytes = i420.data_bytes()?; // 4 luma samples, then one U and one V
    Ok([bytes[0], bytes[4], bytes[5]].map(f64::from))
}

/// The overlays of a frame's faces with their tags placed: each tag block inside the frame, on
/// no other tag nor on `keep_clear` (the live figures, say), and where it can, on no other face. Candidates in order: above the box, below
/// it, inside its top, then further above and below; the first that is free wins, else the one
/// that covers least.
fn layout(
    faces: &[TrackedFace],
    captions: &Captions,
    frame: Size,
    keep_clear: &[Rect],
) -> opencv::Result<Vec<Overlay>> {
    let largest = Style::for_height(frame.height);
    let mut overlays = faces
        .iter()
        .map(|face| Overlay::new(face, captions, largest))
        .collect::<opencv::Result<Vec<_>>>()?;
    // Top to bottom, so that a crowd's tags stack the same way from frame to frame.
    let mut order: Vec<usize> = (0..overlays.len()).collect();
    order.sort_by_key(|&i| (overlays[i].bbox.y, overlays[i].bbox.x));
    let boxes: Vec<Rect> = overlays.iter().map(|o| o.bbox).collect();
    let mut placed: Vec<Rect> = keep_clear.to_vec();
    for i in order {
        let overlay = &mut overlays[i];
        let size = overlay.block();
        let b = overlay.bbox;
        let x = b.x.min(frame.width - size.width).max(0) & !1;
        let clamp_y = |y: i32| y.min(frame.height - size.height).max(0) & !1;
        let mut tops = vec![b.y - size.height, b.y + b.height, b.y];
        for step in 1..=4 {
            tops.push(b.y - size.height * (step + 1));
            tops.push(b.y + b.height + size.height * step);
        }
        let cost = |rect: Rect| -> (i64, i64) {
            let area = |others: &mut dyn Iterator<Item = Rect>| -> i64 {
                others
                    .map(|o| {
                        let i = crate::faces::intersect(rect, o);
                        i64::from(i.width) * i64::from(i.height)
                    })
                    .sum()
            };
            let on_tags = area(&mut placed.iter().copied());
            let on_faces = area(&mut boxes.iter().copied().filter(|o| *o != b));
            (on_tags, on_faces)
        };
        let candidates: Vec<Rect> = tops
            .into_iter()
            .map(|top| Rect::new(x, clamp_y(top), size.width, size.height))
            .collect();
        let best = candidates
            .iter()
            .copied()
            .find(|r| cost(*r) == (0, 0))
            .or_else(|| candidates.iter().copied().find(|r| cost(*r).0 == 0))
            .or_else(|| candidates.iter().copied().min_by_key(|r| cost(*r)))
            .unwrap_or(candidates[0]);
        overlay.place(Point::new(best.x, best.y));
        placed.push(best);
    }
    Ok(overlays)
}

/// The tag rectangles [`draw_faces`] and [`draw_faces_yuv420`] draw for `faces` in a frame of
/// `frame` pixels, a list per face (label, then units).
///
/// # Errors
/// OpenCV's error when measuring text fails.
pub fn tag_rects(
    faces: &[TrackedFace],
    captions: &Captions,
    frame: Size,
) -> opencv::Result<Vec<Vec<Rect>>> {
    Ok(layout(faces, captions, frame, &[])?
        .iter()
        .map(|o| o.tags.iter().map(|t| t.rect).collect())
        .collect())
}

/// Draws every face's box and tags onto `image` (BGR), the tags clear of `keep_clear`.
///
/// # Errors
/// OpenCV's error when drawing fails.
pub fn draw_faces(
    image: &mut Mat,
    faces: &[TrackedFace],
    captions: &Captions,
    keep_clear: &[Rect],
) -> opencv::Result<()> {
    let frame = Size::new(image.cols(), image.rows());
    for overlay in layout(faces, captions, frame, keep_clear)? {
        overlay.draw(image)?;
    }
    Ok(())
}

/// Draws every face's box and tag onto a YUV 4:2:0 frame. The box lines are drawn straight into
/// the planes in the box colour's Y, U and V. The tags are drawn as [`draw_faces`] draws them on
/// small BGR patches and converted; a tag wholly inside the frame covers its patch, so it is
/// drawn once and its samples are reused while it reads the same (a face's tag changes only when
/// its label or percentage does). A tag cut by the frame's edge is drawn on the picture's own
/// pixels.
///
/// # Errors
/// OpenCV's error when converting or drawing fails.
pub fn draw_faces_yuv420(
    planes: &mut PlaneMats,
    faces: &[TrackedFace],
    captions: &Captions,
    patch: &mut Patch,
) -> opencv::Result<()> {
    let frame = Size::new(planes.y.cols(), planes.y.rows());
    patch.next_frame();
    for overlay in layout(faces, captions, frame, &[])? {
        overlay.draw_box_yuv420(planes)?;
        for tag in &overlay.tags {
            let Some(area) = whole_chroma_area(tag.rect, &planes.y) else {
                continue;
            };
            if area == tag.rect {
                patch.store_tag(planes, &overlay, tag)?;
            } else {
                patch.load(planes, area)?;
                overlay.draw_tag(&mut patch.bgr, tag, Point::new(area.x, area.y))?;
                patch.store(planes, area)?;
            }
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
        let b = face.track.bbox;
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

/// `value` rounded up to an even number.
fn even_up(value: i32) -> i32 {
    (value + 1) & !1
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

/// What makes a tag look as it does: two tags with the same look have the same samples.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TagLook {
    text: String,
    size: (i32, i32),
    origin: (i32, i32),
    /// Tag and text colours, BGR.
    colours: [[u8; 3]; 2],
    /// The text scale's bits.
    scale: u64,
    thickness: i32,
}

impl TagLook {
    fn of(overlay: &Overlay, tag: &TextTag) -> Self {
        let bgr = |c: Scalar| [c[0], c[1], c[2]].map(|v| v.clamp(0.0, 255.0) as u8);
        Self {
            text: tag.text.clone(),
            size: (tag.rect.width, tag.rect.height),
            origin: (tag.origin.x, tag.origin.y),
            colours: [bgr(overlay.colour), bgr(overlay.ink)],
            scale: overlay.style.scale.to_bits(),
            thickness: overlay.style.thickness,
        }
    }
}

/// The buffers of drawing tags on a YUV 4:2:0 frame, and the tags drawn on this frame and the
/// last one as YUV 4:2:0 samples; kept from frame to frame by the caller, so that a tag is
/// drawn again only when it changes.
#[derive(Default)]
pub struct Patch {
    i420: Vec<u8>,
    plane: Mat,
    bgr: Mat,
    back: Mat,
    /// Samples (Y, then U, then V) of the tags drawn on this frame.
    drawn: HashMap<TagLook, Vec<u8>>,
    /// Those of the last frame, taken over when seen again.
    last: HashMap<TagLook, Vec<u8>>,
}

impl Patch {
    /// Starts a frame: tags not seen on the last frame are forgotten.
    fn next_frame(&mut self) {
        self.last = std::mem::take(&mut self.drawn);
    }

    /// Writes `tag` of `overlay` (even position and size, inside the frame) into the planes,
    /// drawing it only when this frame or the last one has not drawn the same tag.
    fn store_tag(
        &mut self,
        planes: &mut PlaneMats,
        overlay: &Overlay,
        tag: &TextTag,
    ) -> opencv::Result<()> {
        let samples = match self.drawn.entry(TagLook::of(overlay, tag)) {
            Entry::Occupied(drawn) => drawn.into_mut(),
            Entry::Vacant(new) => {
                let samples = match self.last.remove(new.key()) {
                    Some(samples) => samples,
                    None => {
                        let size = Size::new(tag.rect.width, tag.rect.height);
                        self.bgr = Mat::new_size_with_default(size, CV_8UC3, Scalar::all(0.0))?;
                        overlay.draw_tag(&mut self.bgr, tag, Point::new(tag.rect.x, tag.rect.y))?;
                        imgproc::cvt_color_def(
                            &self.bgr,
                            &mut self.back,
                            imgproc::COLOR_BGR2YUV_I420,
                        )?;
                        self.back.data_bytes()?.to_vec()
                    }
                };
                new.insert(samples)
            }
        };
        put_i420(planes, tag.rect, samples)
    }

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
        put_i420(planes, area, self.back.data_bytes()?)
    }
}

/// Copies I420 `samples` (Y, then U, then V) of `area` (even position and size) into the planes.
fn put_i420(planes: &mut PlaneMats, area: Rect, samples: &[u8]) -> opencv::Result<()> {
    let half = Rect::new(area.x / 2, area.y / 2, area.width / 2, area.height / 2);
    let luma_len = (area.width * area.height) as usize;
    let chroma_len = (half.width * half.height) as usize;
    if samples.len() != luma_len + 2 * chroma_len {
        return Err(opencv::Error::new(
            opencv::core::StsBadSize,
            format!("{} I420 samples for a {area:?} patch", samples.len()),
        ));
    }
    let (luma, chroma) = samples.split_at(luma_len);
    let (u, v) = chroma.split_at(chroma_len);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn face(id: u64, bbox: Rect, units: usize) -> TrackedFace {
        crate::faces::track::tests::face_with(id, bbox, vec![0.9, 0.1], vec![0.9; units])
    }

    fn overlaps(a: Rect, b: Rect) -> bool {
        let i = crate::faces::intersect(a, b);
        i.width > 0 && i.height > 0
    }

    #[test]
    fn tags_of_a_face_at_the_right_edge_stay_in_the_frame() -> opencv::Result<()> {
        let labels: Vec<String> = ["happy", "sad"].map(String::from).to_vec();
        let units: Vec<String> = (1..=8).map(|n| format!("AU{n}")).collect();
        let captions = Captions::plain(&labels).with_units(&units, 0.5);
        let frame = Size::new(640, 360);
        let right = tag_rects(
            &[face(12, Rect::new(560, 100, 76, 90), 8)],
            &captions,
            frame,
        )?;
        assert_eq!(right[0].len(), 2, "label and units");
        for tag in &right[0] {
            assert!(tag.x >= 0 && tag.x + tag.width <= 640, "{tag:?}");
        }
        let left = tag_rects(&[face(12, Rect::new(20, 100, 76, 90), 8)], &captions, frame)?;
        assert!(
            left[0].iter().all(|t| t.x == 20),
            "a tag with room starts at the box"
        );
        Ok(())
    }

    #[test]
    fn a_crowd_gets_small_tags_that_do_not_overlap() -> opencv::Result<()> {
        let labels: Vec<String> = ["happy", "sad"].map(String::from).to_vec();
        let captions = Captions::plain(&labels);
        let frame = Size::new(1920, 1080);
        // Three rows of small faces, shoulder to shoulder, the top row at the frame's edge.
        let faces: Vec<TrackedFace> = (0..30)
            .map(|i| {
                let (row, col) = (i / 10, i % 10);
                face(i as u64 + 1, Rect::new(40 + col * 90, row * 110, 70, 80), 0)
            })
            .collect();
        let tags: Vec<Rect> = tag_rects(&faces, &captions, frame)?
            .into_iter()
            .flatten()
            .collect();
        for (i, a) in tags.iter().enumerate() {
            assert!(a.x >= 0 && a.y >= 0 && a.x + a.width <= 1920 && a.y + a.height <= 1080);
            assert!(
                a.width <= (70.0 * TAG_WIDTH_PER_BOX) as i32 + 1 || a.height < 20,
                "{a:?}"
            );
            for b in &tags[i + 1..] {
                assert!(!overlaps(*a, *b), "{a:?} overlaps {b:?}");
            }
        }
        Ok(())
    }

    /// A 1080p-like frame of varied samples (so that a tag drawn over it would show).
    fn textured_planes(width: i32, height: i32) -> opencv::Result<PlaneMats> {
        let plane = |w: i32, h: i32, seed: usize| -> opencv::Result<Mat> {
            let samples: Vec<u8> = (0..(w * h) as usize)
                .map(|i| ((i * 7 + seed) % 251) as u8)
                .collect();
            Mat::new_rows_cols_with_data(h, w, &samples)?.try_clone()
        };
        Ok(PlaneMats {
            y: plane(width, height, 0)?,
            u: plane(width / 2, height / 2, 3)?,
            v: plane(width / 2, height / 2, 5)?,
        })
    }

    fn same_planes(a: &PlaneMats, b: &PlaneMats) -> opencv::Result<bool> {
        Ok(a.y.data_bytes()? == b.y.data_bytes()?
            && a.u.data_bytes()? == b.u.data_bytes()?
            && a.v.data_bytes()? == b.v.data_bytes()?)
    }

    #[test]
    fn tags_drawn_once_and_reused_match_tags_drawn_on_the_picture() -> opencv::Result<()> {
        let labels: Vec<String> = ["happy", "sad"].map(String::from).to_vec();
        let units: Vec<String> = (1..=4).map(|n| format!("AU{n}")).collect();
        let captions = Captions::plain(&labels).with_units(&units, 0.5);
        // Odd boxes, one at the right edge (its tag moves inside), one cut by the bottom edge.
        let faces = [
            face(1, Rect::new(101, 201, 181, 233), 4),
            face(2, Rect::new(1801, 51, 117, 151), 0),
            face(3, Rect::new(601, 1001, 151, 151), 0),
        ];
        let (width, height) = (1920, 1080);
        let mut on_picture = textured_planes(width, height)?;
        let frame = Size::new(width, height);
        let mut patch = Patch::default();
        for overlay in layout(&faces, &captions, frame, &[])? {
            overlay.draw_box_yuv420(&mut on_picture)?;
            for tag in &overlay.tags {
                assert!(tag.rect.x % 2 == 0 && tag.rect.y % 2 == 0, "{:?}", tag.rect);
                assert!(tag.rect.width % 2 == 0 && tag.rect.height % 2 == 0);
                if let Some(area) = whole_chroma_area(tag.rect, &on_picture.y) {
                    patch.load(&on_picture, area)?;
                    overlay.draw_tag(&mut patch.bgr, tag, Point::new(area.x, area.y))?;
                    patch.store(&mut on_picture, area)?;
                }
            }
        }
        let mut first = textured_planes(width, height)?;
        draw_faces_yuv420(&mut first, &faces, &captions, &mut patch)?;
        assert!(same_planes(&first, &on_picture)?, "first frame");
        assert!(!patch.drawn.is_empty(), "tags kept for the next frame");
        let mut again = textured_planes(width, height)?;
        draw_faces_yuv420(&mut again, &faces, &captions, &mut patch)?;
        assert!(same_planes(&again, &on_picture)?, "reused tags");
        // A frame without the faces forgets their tags after one more frame.
        draw_faces_yuv420(&mut again, &[], &captions, &mut patch)?;
        draw_faces_yuv420(&mut again, &[], &captions, &mut patch)?;
        assert!(patch.drawn.is_empty() && patch.last.is_empty());
        Ok(())
    }
}
