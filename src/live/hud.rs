//! The live overlay in the top-left corner: frames per second, capture-to-display latency and
//! dropped frames, and a red REC while recording.

use opencv::core::{Mat, Point, Rect, Scalar};
use opencv::imgproc;
use opencv::prelude::*;

use super::stats::Recent;

const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;
/// Text height relative to the frame height, as the face labels (readable at 360p and 1080p).
const TEXT_SCALE_PER_PIXEL: f64 = 0.5 / 360.0;
const MIN_TEXT_SCALE: f64 = 0.4;
/// Margin around the text, in pixels at scale 1.
const PAD: f64 = 8.0;

/// What the overlay says.
pub struct HudInfo {
    /// The last second's figures; `None` during the first second.
    pub recent: Option<Recent>,
    /// Frames dropped so far.
    pub dropped: u64,
    /// A recording is running.
    pub recording: bool,
}

impl HudInfo {
    fn text(&self) -> String {
        let speed = self.recent.map_or_else(
            || "-- fps  latency -- ms".to_owned(),
            |r| format!("{:.1} fps  latency {:.0} ms", r.fps, r.latency_ms),
        );
        format!("{speed}  dropped {}", self.dropped)
    }
}

/// One line of the overlay: its box, text, colour and text origin.
struct Line {
    rect: Rect,
    text: String,
    colour: Scalar,
    origin: Point,
}

/// Sizes of the overlay's text in a frame `rows` high.
struct Style {
    scale: f64,
    thickness: i32,
    pad: i32,
}

impl Style {
    fn for_height(rows: i32) -> Self {
        let scale = (f64::from(rows) * TEXT_SCALE_PER_PIXEL).max(MIN_TEXT_SCALE);
        Self {
            scale,
            thickness: ((scale * 2.0).round() as i32).max(1),
            pad: (PAD * scale).round() as i32,
        }
    }
}

/// The overlay's lines in a frame `rows` high, top to bottom from the top-left corner.
fn lines(rows: i32, info: &HudInfo) -> opencv::Result<Vec<Line>> {
    let style = Style::for_height(rows);
    let mut texts = vec![(info.text(), Scalar::new(255.0, 255.0, 255.0, 0.0))];
    if info.recording {
        texts.push(("REC".to_owned(), Scalar::new(40.0, 40.0, 255.0, 0.0)));
    }
    let mut y = 0;
    let mut lines = Vec::with_capacity(texts.len());
    for (text, colour) in texts {
        let mut baseline = 0;
        let size =
            imgproc::get_text_size(&text, FONT, style.scale, style.thickness, &mut baseline)?;
        let height = size.height + baseline + 2 * style.pad;
        lines.push(Line {
            rect: Rect::new(0, y, size.width + 2 * style.pad, height),
            origin: Point::new(style.pad, y + style.pad + size.height),
            text,
            colour,
        });
        y += height;
    }
    Ok(lines)
}

/// The area the overlay covers in a frame `rows` high (face tags keep clear of it).
///
/// # Errors
/// OpenCV's error when measuring text fails.
pub fn area(rows: i32, info: &HudInfo) -> opencv::Result<Rect> {
    Ok(lines(rows, info)?
        .iter()
        .fold(Rect::default(), |all, line| all | line.rect))
}

/// Draws the overlay onto `image` (BGR).
///
/// # Errors
/// OpenCV's error when drawing fails.
pub fn draw_hud(image: &mut Mat, info: &HudInfo) -> opencv::Result<()> {
    let style = Style::for_height(image.rows());
    for line in lines(image.rows(), info)? {
        imgproc::rectangle(
            image,
            line.rect,
            Scalar::all(0.0),
            imgproc::FILLED,
            imgproc::LINE_8,
            0,
        )?;
        imgproc::put_text(
            image,
            &line.text,
            line.origin,
            FONT,
            style.scale,
            line.colour,
            style.thickness,
            imgproc::LINE_AA,
            false,
        )?;
    }
    Ok(())
}
