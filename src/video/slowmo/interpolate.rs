//! In-between frames: FFmpeg's `minterpolate` filter (through libavfilter) turns frames placed at
//! fractional output positions into frames at every whole output position, by cross-fading,
//! motion-compensated interpolation or repetition ([`FramesMode`]).

use ffmpeg::{filter, format::Pixel, Rational};
use ffmpeg_next as ffmpeg;

use super::FramesMode;
use crate::video::{VideoError, VideoInfo};

/// Input timestamps per output frame: input frames of a factor like 2.5 fall between output
/// frames, at a precision of a thousandth of a frame.
const SUBDIVISION: i32 = 1000;

/// One run of in-between frames (one slowed part of a video). Not `Send`: made and used on the
/// thread of the slow-motion stage.
pub struct Interpolator {
    graph: filter::Graph,
    /// Output frame rate: the output frame of a timestamp is `pts * time_base * rate`.
    rate: Rational,
    path: std::path::PathBuf,
}

impl Interpolator {
    /// An interpolator for frames of `info`'s size and rate (the output keeps the rate).
    ///
    /// # Errors
    /// [`VideoError`] naming `info.path` when FFmpeg cannot set up the filter.
    pub fn new(info: &VideoInfo, mode: FramesMode) -> Result<Self, VideoError> {
        let rate = info.frame_rate;
        let source_args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect=1/1",
            info.width,
            info.height,
            // The pixel format's number in libavutil's enum, as the buffer filter takes it.
            ffmpeg::ffi::AVPixelFormat::from(Pixel::YUV420P) as i32,
            rate.denominator(),
            i64::from(rate.numerator()) * i64::from(SUBDIVISION),
        );
        let spec = format!(
            "minterpolate=fps={}/{}:mi_mode={}",
            rate.numerator(),
            rate.denominator(),
            mode.minterpolate_mode()
        );
        let graph = super::filter_graph(
            &info.path,
            "setting up the slow-motion frame filter",
            super::Media::Video,
            &source_args,
            &spec,
        )?;
        Ok(Self {
            graph,
            rate,
            path: info.path.clone(),
        })
    }

    /// Adds a frame at output position `position` (output frames from the start of the part,
    /// rising). The image is shared with the filter, not copied: it must not change afterwards.
    ///
    /// # Errors
    /// [`VideoError`] when the filter refuses the frame.
    pub fn push(
        &mut self,
        image: &mut ffmpeg::frame::Video,
        position: f64,
    ) -> Result<(), VideoError> {
        image.set_pts(Some((position * f64::from(SUBDIVISION)).round() as i64));
        let mut source = self.context("in")?;
        // SAFETY: `source` is the graph's buffer source and `image` a valid frame; KEEP_REF
        // adds a new reference to the image's buffers and leaves `image` itself untouched.
        let status = unsafe {
            ffmpeg::ffi::av_buffersrc_add_frame_flags(
                source.as_mut_ptr(),
                image.as_mut_ptr(),
                ffmpeg::ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32,
            )
        };
        if status < 0 {
            return Err(VideoError::codec(
                &self.path,
                "interpolating slow-motion frames",
                ffmpeg::Error::from(status),
            ));
        }
        Ok(())
    }

    /// Tells the filter no more frames come, so that it gives out the last ones.
    ///
    /// # Errors
    /// [`VideoError`] when the filter fails.
    pub fn finish(&mut self) -> Result<(), VideoError> {
        self.context("in")?
            .source()
            .flush()
            .map_err(|e| VideoError::codec(&self.path, "interpolating slow-motion frames", e))
    }

    /// The next frame the filter has ready (the caller's to draw on), with its output position; `None` when it needs more
    /// input (or has finished).
    ///
    /// # Errors
    /// [`VideoError`] when the filter fails.
    pub fn pull(&mut self, image: &mut ffmpeg::frame::Video) -> Result<Option<usize>, VideoError> {
        let mut sink = self.context("out")?;
        let time_base = sink.sink().time_base();
        match sink.sink().frame(image) {
            Ok(()) => {
                // The filter may hand out a picture it still holds (a repeated frame): the caller
                // draws on its own copy.
                // SAFETY: `image` is a valid frame just filled by the sink.
                let status = unsafe { ffmpeg::ffi::av_frame_make_writable(image.as_mut_ptr()) };
                if status < 0 {
                    return Err(VideoError::codec(
                        &self.path,
                        "interpolating slow-motion frames",
                        ffmpeg::Error::from(status),
                    ));
                }
                let pts = image.pts().unwrap_or(0) as f64;
                let slot = pts * f64::from(time_base) * f64::from(self.rate);
                Ok(Some(slot.round().max(0.0) as usize))
            }
            Err(ffmpeg::Error::Eof) => Ok(None),
            Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => Ok(None),
            Err(e) => Err(VideoError::codec(
                &self.path,
                "interpolating slow-motion frames",
                e,
            )),
        }
    }

    fn context(&mut self, name: &str) -> Result<filter::Context, VideoError> {
        self.graph.get(name).ok_or_else(|| {
            VideoError::codec(
                &self.path,
                "interpolating slow-motion frames",
                format!("the filter graph lost its {name} pad"),
            )
        })
    }
}
