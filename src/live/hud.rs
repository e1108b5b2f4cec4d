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

/// Draws the overlay onto `image` (BGR).
///
/// # Errors
/// OpenCV's error when drawing fails.
pub fn draw_hud(image: &mut Mat, info: &HudInfo) -> opencv::Result<()> {
    let scale = (f64::from(image.rows()) * TEXT_SCALE_PER_PIXEL).max(MIN_TEXT_SCALE);
    let thickness = ((scale * 2.0).round() as i32).max(1);
    let pad = (PAD * scale).round() as i32;
    let mut baseline = 0;
    let mut lines = vec![(info.text(), Scalar::new(255.0, 255.0, 255.0, 0.0))];
    if info.recording {
        lines.push(("REC".to_owned(), Scalar::new(40.0, 40.0, 255.0, 0.0)));
    }
    let mut y = 0;
    for (text, colour) in lines {
        let size = imgproc::get_text_size(&text, FONT, scale, thickness, &mut baseline)?;
        let height = size.height + baseline + 2 * pad;
        imgproc::rectangle(
            image,
            Rect::new(0, y, size.width + 2 * pad, height),
            Scalar::all(0.0),
            imgproc::FILLED,
            imgproc::LINE_8,
            0,
        )?;
        imgproc::put_text(
            image,
            &text,
            Point::new(pad, y + pad + size.height),
            FONT,
            scale,
            colour,
            thickness,
            imgproc::LINE_AA,
            false,
        )?;
        y += height;
    }
    Ok(())
}
