//! Recording the annotated live stream: BGR frames converted to YUV 4:2:0 and handed to the
//! file pipeline's [`Encoder`] (H.264 in MP4, written under a partial name and moved into place when finished),
//! timestamped in milliseconds by their capture times, so the file plays at the pace the frames
//! were shown, gaps of dropped frames included.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ffmpeg_next as ffmpeg;
use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;

use crate::video::encode::{EncodeOptions, Encoder};
use crate::video::{with_planes, Colour, Frame, VideoInfo};

/// Timestamps count milliseconds.
const TIME_BASE: (i32, i32) = (1, 1000);

/// One recording in progress.
pub struct Recorder {
    encoder: Encoder,
    frame: Frame,
    size: Size,
    i420: Mat,
    start: Option<Instant>,
    path: PathBuf,
}

impl Recorder {
    /// Starts recording frames of `size` (even width and height) to `path`.
    ///
    /// # Errors
    /// An odd frame size (4:2:0 needs even sizes), or a file x264 or MP4 cannot write.
    pub fn start(
        path: &Path,
        size: Size,
        fps: Option<f64>,
        options: &EncodeOptions,
    ) -> Result<Self> {
        if size.width % 2 != 0 || size.height % 2 != 0 {
            bail!(
                "{}: recording needs an even frame width and height, and the source gives {}x{}; record from another source or camera mode",
                path.display(),
                size.width,
                size.height
            );
        }
        let (width, height) = (
            u32::try_from(size.width).context("frame width")?,
            u32::try_from(size.height).context("frame height")?,
        );
        let fps = fps.unwrap_or(f64::from(crate::video::FALLBACK_FPS));
        let info = VideoInfo {
            path: path.to_owned(),
            width,
            height,
            // OpenCV's BGR to I420 conversion is BT.601 with video levels.
            colour: Colour {
                space: ffmpeg::color::Space::SMPTE170M,
                primaries: ffmpeg::color::Primaries::BT709,
                transfer: ffmpeg::color::TransferCharacteristic::BT709,
            },
            time_base: ffmpeg::Rational::new(TIME_BASE.0, TIME_BASE.1),
            frame_rate: ffmpeg::Rational::new((fps * 1000.0).round() as i32, 1000),
            frames: None,
            audio: None,
        };
        let encoder = Encoder::create(path, &info, options)?;
        Ok(Self {
            encoder,
            frame: Frame {
                index: 0,
                pts: None,
                time: 0.0,
                image: ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, width, height),
                audio: Vec::new(),
            },
            size,
            i420: Mat::default(),
            start: None,
            path: path.to_owned(),
        })
    }

    /// Encodes one BGR frame captured at `captured_at`.
    ///
    /// # Errors
    /// A frame of another size than the recording's, or an encoding failure.
    pub fn write(&mut self, bgr: &Mat, captured_at: Instant) -> Result<()> {
        let size = bgr.size()?;
        if size != self.size {
            bail!(
                "{}: the source changed its frame size from {}x{} to {}x{} while recording",
                self.path.display(),
                self.size.width,
                self.size.height,
                size.width,
                size.height
            );
        }
        imgproc::cvt_color_def(bgr, &mut self.i420, imgproc::COLOR_BGR2YUV_I420)
            .context("converting a frame for recording")?;
        let i420 = self.i420.data_bytes()?;
        with_planes(&mut self.frame.image, |planes| {
            let (luma, chroma) = i420.split_at((size.width * size.height) as usize);
            let (u, v) = chroma.split_at(chroma.len() / 2);
            let half = Size::new(size.width / 2, size.height / 2);
            for (plane, samples, part) in [
                (&mut planes.y, luma, size),
                (&mut planes.u, u, half),
                (&mut planes.v, v, half),
            ] {
                let source = Mat::new_rows_cols_with_data(part.height, part.width, samples)?;
                // Same size and type: the copy lands in the frame's own plane.
                source.copy_to(plane)?;
            }
            Ok(())
        })
        .context("copying a frame for recording")?;
        let start = *self.start.get_or_insert(captured_at);
        let elapsed = captured_at.saturating_duration_since(start);
        self.frame.pts = Some(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
        self.frame.time = elapsed.as_secs_f64();
        self.encoder.write(&mut self.frame)?;
        self.frame.index += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> usize {
        self.encoder.frames()
    }

    /// Flushes x264, writes the MP4 index and renames the file into place.
    ///
    /// # Errors
    /// Flushing, writing or renaming failures.
    pub fn finish(self) -> Result<PathBuf> {
        Ok(self.encoder.finish()?)
    }
}
