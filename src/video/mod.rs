//! Video files through FFmpeg (ffmpeg-next): decoding to upright YUV 4:2:0 frames that carry
//! their own timestamps and the audio packets that go with them, H.264/MP4 encoding with the
//! audio copied, and slow motion (in-between frames, slowed sound). Frames stay in YUV from decoder to encoder: the
//! detector reads the luma plane as its gray picture, and overlays are drawn in small BGR patches
//! (see `draw`), which saves two full-frame colour conversions per frame.

pub mod decode;
pub mod encode;
pub mod slowmo;

use ffmpeg_next as ffmpeg;
use std::path::PathBuf;

/// Frame rate assumed when a file, camera or stream states none (for rate control, pacing and
/// timestamps): what most cameras and screen recordings deliver.
pub const FALLBACK_FPS: i32 = 30;

/// One decoded picture on its way through the pipeline.
#[derive(Clone)]
pub struct Frame {
    /// Position in decode order, from 0.
    pub index: usize,
    /// Presentation timestamp in the input video stream's time base.
    pub pts: Option<i64>,
    /// Seconds since the first frame.
    pub time: f64,
    /// The picture upright, as planar YUV 4:2:0 with video levels (luma 16 to 235); the
    /// encoder takes it as it is.
    pub image: ffmpeg::frame::Video,
    /// Audio packets read before this frame, muxed together with it so they stay interleaved.
    pub audio: Vec<ffmpeg::Packet>,
}

/// What the encoder needs to know about the input.
#[derive(Clone)]
pub struct VideoInfo {
    /// The input file.
    pub path: PathBuf,
    /// Picture width in pixels, as displayed (after rotation).
    pub width: u32,
    /// Picture height in pixels, as displayed (after rotation).
    pub height: u32,
    /// The colour description of the input, passed on to the output.
    pub colour: Colour,
    /// Time base of the video stream's timestamps.
    pub time_base: ffmpeg::Rational,
    /// Average frame rate (for the encoder's rate control; timestamps stay the input's).
    pub frame_rate: ffmpeg::Rational,
    /// Frame count from the container, when it says.
    pub frames: Option<u64>,
    /// The audio stream to copy: its parameters and time base.
    pub audio: Option<(ffmpeg::codec::Parameters, ffmpeg::Rational)>,
}

/// How a video's YUV values map to colours (they pass through unchanged, so the tags do too).
#[derive(Clone, Copy, Debug)]
pub struct Colour {
    /// YUV matrix.
    pub space: ffmpeg::color::Space,
    /// Colour primaries.
    pub primaries: ffmpeg::color::Primaries,
    /// Transfer characteristic.
    pub transfer: ffmpeg::color::TransferCharacteristic,
}

/// A video could not be read or written; messages name the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The input does not exist.
    #[error("{0}: not found; give an existing video file")]
    NotFound(PathBuf),
    /// FFmpeg cannot open the file as a media container.
    #[error("{path}: not a video FFmpeg can read ({reason}); give a video file (mp4, mov, mkv, avi, ...)")]
    NotVideo {
        /// The file.
        path: PathBuf,
        /// FFmpeg's reason.
        reason: String,
    },
    /// The file is a still image (FFmpeg would read it as a one-frame video).
    #[error("{0}: a still image, not a video; give a video file (to measure a detector on photos, see `emolens evaluate-faces`)")]
    StillImage(PathBuf),
    /// The container has no video stream.
    #[error("{0}: has no video stream; give a video file")]
    NoVideoStream(PathBuf),
    /// A decoding or encoding step failed.
    #[error("{path}: {what}: {reason}")]
    Codec {
        /// The file.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// FFmpeg's reason.
        reason: String,
    },
}

impl VideoError {
    pub(crate) fn codec(
        path: &std::path::Path,
        what: &'static str,
        error: impl std::fmt::Display,
    ) -> Self {
        let reason = error.to_string();
        // FFmpeg says only "No space left on device"; the fix goes with it.
        let reason = if reason.contains("No space left on device") {
            "the disk is full; free space or choose another place".to_owned()
        } else {
            reason
        };
        Self::Codec {
            path: path.to_owned(),
            what,
            reason,
        }
    }
}

/// Initialises FFmpeg once and keeps its own logging to errors only.
pub fn init() -> Result<(), ffmpeg::Error> {
    ffmpeg::init()?;
    ffmpeg::log::set_level(ffmpeg::log::Level::Error);
    Ok(())
}

/// OpenCV views of the three planes of a YUV 4:2:0 frame (no copy: drawing changes the frame).
pub struct PlaneMats {
    /// Luma, full size: the gray picture.
    pub y: opencv::core::Mat,
    /// Blue-difference chroma, half size each way (rounded up).
    pub u: opencv::core::Mat,
    /// Red-difference chroma, half size each way (rounded up).
    pub v: opencv::core::Mat,
}

/// Runs `f` on OpenCV views of a YUV 4:2:0 frame's planes.
///
/// # Errors
/// OpenCV's error for a frame in another format or too large, or `f`'s.
pub fn with_planes<T>(
    image: &mut ffmpeg::frame::Video,
    f: impl FnOnce(&mut PlaneMats) -> opencv::Result<T>,
) -> opencv::Result<T> {
    if image.format() != ffmpeg::format::Pixel::YUV420P {
        return Err(opencv::Error::new(
            opencv::core::StsUnsupportedFormat,
            format!("expected a YUV 4:2:0 frame, got {:?}", image.format()),
        ));
    }
    let too_big = || opencv::Error::new(opencv::core::StsOutOfRange, "frame too large");
    let rows = i32::try_from(image.height()).map_err(|_| too_big())?;
    let cols = i32::try_from(image.width()).map_err(|_| too_big())?;
    let (chroma_rows, chroma_cols) = ((rows + 1) / 2, (cols + 1) / 2);
    let mut plane = |index: usize, rows: i32, cols: i32| {
        let step = image.stride(index);
        let data = image
            .data_mut(index)
            .as_mut_ptr()
            .cast::<std::ffi::c_void>();
        // SAFETY: plane `index` of a YUV 4:2:0 frame holds `rows` rows of `step` bytes with
        // `cols` 8-bit samples each, owned by `image`, which is mutably borrowed for as long as
        // the views live (they end with `f`); the three planes do not overlap.
        unsafe {
            opencv::core::Mat::new_rows_cols_with_data_unsafe(
                rows,
                cols,
                opencv::core::CV_8UC1,
                data,
                step,
            )
        }
    };
    let mut planes = PlaneMats {
        y: plane(0, rows, cols)?,
        u: plane(1, chroma_rows, chroma_cols)?,
        v: plane(2, chroma_rows, chroma_cols)?,
    };
    f(&mut planes)
}

/// An FFmpeg colour converter that can move to the thread of the stage that uses it.
pub(crate) struct Scaler(pub(crate) ffmpeg::software::scaling::Context);

// SAFETY: an SwsContext is plain heap state with no thread affinity; ffmpeg-next leaves it
// `!Send` only because it holds a raw pointer. Each `Scaler` is owned and used by one stage at a
// time, never shared.
unsafe impl Send for Scaler {}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::prelude::*;

    #[test]
    fn plane_views_cover_the_frame_and_write_through() -> Result<(), Box<dyn std::error::Error>> {
        // An odd size: chroma planes are rounded up, rows are padded to the frame's stride.
        let mut frame = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, 33, 21);
        let sizes = with_planes(&mut frame, |planes| {
            planes.y.set_to_def(&opencv::core::Scalar::all(7.0))?;
            *planes.u.at_2d_mut::<u8>(10, 16)? = 99;
            Ok([&planes.y, &planes.u, &planes.v].map(|p| (p.cols(), p.rows())))
        })?;
        assert_eq!(sizes, [(33, 21), (17, 11), (17, 11)]);
        let stride = frame.stride(1);
        assert_eq!(
            frame.data(1)[10 * stride + 16],
            99,
            "the view is the frame's memory"
        );
        assert!(frame.data(0)[..33].iter().all(|&v| v == 7));
        let mut rgb = ffmpeg::frame::Video::new(ffmpeg::format::Pixel::RGB24, 4, 4);
        assert!(with_planes(&mut rgb, |_| Ok(())).is_err(), "only YUV 4:2:0");
        Ok(())
    }
}
