//! Demuxing and decoding: the best video stream becomes upright YUV 4:2:0 [`Frame`]s with their
//! input timestamps (rotation metadata applied, as players do); packets of the first audio stream
//! ride along with the next frame.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{codec, format, media, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::{Colour, Frame, Scaler, VideoError, VideoInfo};

/// The picture format frames travel in.
const PIPELINE_FORMAT: Pixel = Pixel::YUV420P;

/// How far a stream's pictures must turn clockwise to be shown upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Upright as stored.
    None,
    /// A quarter turn clockwise.
    Clockwise,
    /// A half turn.
    Half,
    /// A quarter turn counter-clockwise.
    CounterClockwise,
}

impl Rotation {
    /// The rotation a display matrix asks for, as FFmpeg's own players apply it.
    fn of_stream(stream: &ffmpeg::Stream) -> Self {
        let matrix = stream
            .side_data()
            .find(|d| d.kind() == ffmpeg::packet::side_data::Type::DisplayMatrix)
            .filter(|d| d.data().len() >= 9 * std::mem::size_of::<i32>());
        let Some(matrix) = matrix else {
            return Self::None;
        };
        // SAFETY: a display matrix is nine native-endian i32 values; the length was checked.
        // FFmpeg reads them unaligned-safe through its own accessors.
        let counter_clockwise =
            unsafe { ffmpeg::ffi::av_display_rotation_get(matrix.data().as_ptr().cast()) };
        Self::from_degrees_clockwise(-counter_clockwise)
    }

    /// The nearest quarter turn to `degrees` clockwise (NaN, from a degenerate matrix: none).
    fn from_degrees_clockwise(degrees: f64) -> Self {
        if !degrees.is_finite() {
            return Self::None;
        }
        match ((degrees / 90.0).round() as i64).rem_euclid(4) {
            1 => Self::Clockwise,
            2 => Self::Half,
            3 => Self::CounterClockwise,
            _ => Self::None,
        }
    }

    /// Whether width and height swap.
    fn swaps_sides(self) -> bool {
        matches!(self, Self::Clockwise | Self::CounterClockwise)
    }
}

/// Where decoding stopped early: the input is damaged or cut short after `frames` good frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Truncation {
    /// Frames decoded before the damage.
    pub frames: usize,
    /// Time of the last good frame in seconds.
    pub time: f64,
    /// FFmpeg's reason.
    pub reason: String,
}

/// Reads one video file frame by frame.
pub struct Decoder {
    input: format::context::Input,
    video_index: usize,
    audio_index: Option<usize>,
    decoder: ffmpeg::decoder::Video,
    scaler: Option<Scaler>,
    decoded: ffmpeg::frame::Video,
    converted: ffmpeg::frame::Video,
    rotation: Rotation,
    info: VideoInfo,
    next_index: usize,
    video_packets: u64,
    first_pts: Option<i64>,
    pending_audio: Vec<Packet>,
    draining: bool,
    finished: bool,
    truncation: Option<Truncation>,
}

impl Decoder {
    /// Opens `path` and its best video stream.
    ///
    /// # Errors
    /// [`VideoError`] for a missing file, a file FFmpeg cannot read, or one without video.
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        if !path.is_file() {
            return Err(VideoError::NotFound(path.to_owned()));
        }
        let input = format::input(path).map_err(|e| VideoError::NotVideo {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        // FFmpeg reads a photo as a one-frame video; annotate takes videos.
        let demuxer = input.format().name().to_owned();
        if demuxer == "image2" || demuxer.ends_with("_pipe") {
            return Err(VideoError::StillImage(path.to_owned()));
        }
        let stream = input
            .streams()
            .best(media::Type::Video)
            .ok_or_else(|| VideoError::NoVideoStream(path.to_owned()))?;
        let video_index = stream.index();
        let time_base = stream.time_base();
        let frames = u64::try_from(stream.frames()).ok().filter(|&n| n > 0);
        let frame_rate = [stream.avg_frame_rate(), stream.rate()]
            .into_iter()
            .find(|r| r.numerator() > 0 && r.denominator() > 0)
            .unwrap_or(Rational(super::FALLBACK_FPS, 1));
        let context = codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| VideoError::codec(path, "reading the video stream parameters", e))?;
        let decoder = context
            .decoder()
            .video()
            .map_err(|e| VideoError::codec(path, "opening the video decoder", e))?;
        let rotation = Rotation::of_stream(&stream);
        let audio = input
            .streams()
            .best(media::Type::Audio)
            .map(|s| (s.index(), s.parameters(), s.time_base()));
        let (width, height) = if rotation.swaps_sides() {
            (decoder.height(), decoder.width())
        } else {
            (decoder.width(), decoder.height())
        };
        let info = VideoInfo {
            path: path.to_owned(),
            width,
            height,
            colour: Colour {
                space: decoder.color_space(),
                primaries: decoder.color_primaries(),
                transfer: decoder.color_transfer_characteristic(),
            },
            time_base,
            frame_rate,
            frames,
            audio: audio.as_ref().map(|(_, p, tb)| (p.clone(), *tb)),
        };
        if info.width == 0 || info.height == 0 {
            return Err(VideoError::codec(
                path,
                "reading the picture size",
                "the video stream has no size",
            ));
        }
        Ok(Self {
            input,
            video_index,
            audio_index: audio.map(|(i, _, _)| i),
            decoder,
            scaler: None,
            decoded: ffmpeg::frame::Video::empty(),
            converted: ffmpeg::frame::Video::empty(),
            rotation,
            info,
            next_index: 0,
            video_packets: 0,
            first_pts: None,
            pending_audio: Vec::new(),
            draining: false,
            finished: false,
            truncation: None,
        })
    }

    /// What the input is.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Set when the input ended in damage rather than at its end.
    pub fn truncation(&self) -> Option<&Truncation> {
        self.truncation.as_ref()
    }

    /// The next frame, in `image` (its buffer is reused when a conversion or rotation needs
    /// one), or `None` at the end. A damaged or cut input ends early and records a
    /// [`Truncation`].
    ///
    /// # Errors
    /// [`VideoError`] when the colour conversion cannot be set up.
    pub fn next_frame(
        &mut self,
        mut image: ffmpeg::frame::Video,
    ) -> Result<Option<Frame>, VideoError> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    let pts = self.decoded.timestamp();
                    self.upright_picture(&mut image)?;
                    return Ok(Some(self.emit(pts, image)));
                }
                Err(ffmpeg::Error::Eof) => {
                    self.finish();
                    return Ok(None);
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {}
                Err(e) => {
                    self.stop_with(e.to_string());
                    return Ok(None);
                }
            }
            if self.finished {
                return Ok(None);
            }
            if self.draining {
                // EOF was sent and the decoder wants input again: it is empty.
                self.finish();
                return Ok(None);
            }
            self.feed();
        }
    }

    /// Audio packets read after the last frame; call once at the end.
    pub fn take_trailing_audio(&mut self) -> Vec<Packet> {
        std::mem::take(&mut self.pending_audio)
    }

    /// Reads packets until one is sent to the video decoder, or the input ends.
    fn feed(&mut self) {
        loop {
            let mut packet = Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    let stream = packet.stream();
                    if stream == self.video_index {
                        self.video_packets += 1;
                        if let Err(e) = self.decoder.send_packet(&packet) {
                            // A damaged packet: keep what decodes, say where it stopped.
                            if !matches!(e, ffmpeg::Error::InvalidData) {
                                self.stop_with(e.to_string());
                            }
                        }
                        return;
                    }
                    if Some(stream) == self.audio_index {
                        self.pending_audio.push(packet);
                    }
                }
                Err(ffmpeg::Error::Eof) => break,
                Err(e) => {
                    self.truncation.get_or_insert(Truncation {
                        frames: self.next_index,
                        time: self.last_time(),
                        reason: e.to_string(),
                    });
                    break;
                }
            }
        }
        self.draining = true;
        let _ = self.decoder.send_eof();
    }

    /// Marks the end. Fewer video packets than the container announced means the file was cut
    /// (fewer decoded frames alone does not: valid files may hold packets that decode to nothing).
    fn finish(&mut self) {
        self.finished = true;
        if let Some(expected) = self.info.frames {
            if self.video_packets < expected {
                self.truncation.get_or_insert(Truncation {
                    frames: self.next_index,
                    time: self.last_time(),
                    reason: format!(
                        "the container announces {expected} frames, the file holds {}",
                        self.video_packets
                    ),
                });
            }
        }
    }

    fn stop_with(&mut self, reason: String) {
        self.truncation.get_or_insert(Truncation {
            frames: self.next_index,
            time: self.last_time(),
            reason,
        });
        self.finished = true;
    }

    fn last_time(&self) -> f64 {
        self.next_index.saturating_sub(1) as f64 / f64::from(self.info.frame_rate).max(1e-9)
    }

    /// Puts the decoded picture, in the pipeline's format and upright, into `image` (a
    /// recycled buffer: copying into it costs less than a fresh buffer per frame). The decoder
    /// keeps its own picture, which it may still need as a reference for later frames.
    fn upright_picture(&mut self, image: &mut ffmpeg::frame::Video) -> Result<(), VideoError> {
        let path = &self.info.path;
        let (w, h) = (self.decoded.width(), self.decoded.height());
        let (w, h) = if self.rotation.swaps_sides() {
            (h, w)
        } else {
            (w, h)
        };
        if image.width() != w || image.height() != h || image.format() != PIPELINE_FORMAT {
            *image = ffmpeg::frame::Video::new(PIPELINE_FORMAT, w, h);
        }
        let in_format = self.decoded.format() == PIPELINE_FORMAT;
        if self.rotation == Rotation::None {
            if in_format {
                // SAFETY: both frames are valid, of the same format and size.
                let status = unsafe {
                    ffmpeg::ffi::av_frame_copy(image.as_mut_ptr(), self.decoded.as_ptr())
                };
                if status < 0 {
                    let e = ffmpeg::Error::from(status);
                    return Err(VideoError::codec(path, "copying a decoded frame", e));
                }
                return Ok(());
            }
            return convert(&mut self.scaler, &self.decoded, image)
                .map_err(|e| VideoError::codec(path, "converting a frame to YUV 4:2:0", e));
        }
        let source = if in_format {
            &mut self.decoded
        } else {
            let (dw, dh) = (self.decoded.width(), self.decoded.height());
            if self.converted.width() != dw
                || self.converted.height() != dh
                || self.converted.format() != PIPELINE_FORMAT
            {
                self.converted = ffmpeg::frame::Video::new(PIPELINE_FORMAT, dw, dh);
            }
            convert(&mut self.scaler, &self.decoded, &mut self.converted)
                .map_err(|e| VideoError::codec(path, "converting a frame to YUV 4:2:0", e))?;
            &mut self.converted
        };
        rotate_planes(source, image, self.rotation)
            .map_err(|e| VideoError::codec(path, "rotating a frame upright", e.message))
    }

    fn emit(&mut self, pts: Option<i64>, image: ffmpeg::frame::Video) -> Frame {
        let first = *self.first_pts.get_or_insert(pts.unwrap_or(0));
        let time = match pts {
            Some(p) => (p - first) as f64 * f64::from(self.info.time_base),
            None => self.next_index as f64 / f64::from(self.info.frame_rate).max(1e-9),
        };
        let frame = Frame {
            index: self.next_index,
            pts,
            time,
            image,
            audio: std::mem::take(&mut self.pending_audio),
        };
        self.next_index += 1;
        frame
    }
}

/// Converts `source` into `target` (of the same size, in the pipeline's format), setting up
/// the converter when the input changes.
fn convert(
    scaler: &mut Option<Scaler>,
    source: &ffmpeg::frame::Video,
    target: &mut ffmpeg::frame::Video,
) -> Result<(), ffmpeg::Error> {
    let (w, h, format) = (source.width(), source.height(), source.format());
    let fits = scaler.as_ref().is_some_and(|Scaler(s)| {
        s.input().width == w && s.input().height == h && s.input().format == format
    });
    if !fits {
        *scaler = Some(Scaler(scaling::Context::get(
            format,
            w,
            h,
            PIPELINE_FORMAT,
            w,
            h,
            scaling::Flags::BILINEAR,
        )?));
    }
    match scaler.as_mut() {
        Some(Scaler(scaler)) => scaler.run(source, target),
        None => Ok(()),
    }
}

/// Writes `source` turned by `rotation` into `target` (of the turned size), plane by plane.
fn rotate_planes(
    source: &mut ffmpeg::frame::Video,
    target: &mut ffmpeg::frame::Video,
    rotation: Rotation,
) -> opencv::Result<()> {
    let code = match rotation {
        Rotation::None => return Ok(()),
        Rotation::Clockwise => opencv::core::ROTATE_90_CLOCKWISE,
        Rotation::Half => opencv::core::ROTATE_180,
        Rotation::CounterClockwise => opencv::core::ROTATE_90_COUNTERCLOCKWISE,
    };
    super::with_planes(source, |from| {
        super::with_planes(target, |to| {
            opencv::core::rotate(&from.y, &mut to.y, code)?;
            opencv::core::rotate(&from.u, &mut to.u, code)?;
            opencv::core::rotate(&from.v, &mut to.v, code)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matrix_angles_become_quarter_turns() {
        assert_eq!(Rotation::from_degrees_clockwise(0.0), Rotation::None);
        assert_eq!(Rotation::from_degrees_clockwise(90.0), Rotation::Clockwise);
        assert_eq!(
            Rotation::from_degrees_clockwise(-90.0),
            Rotation::CounterClockwise
        );
        assert_eq!(Rotation::from_degrees_clockwise(180.0), Rotation::Half);
        assert_eq!(Rotation::from_degrees_clockwise(-180.0), Rotation::Half);
        assert_eq!(
            Rotation::from_degrees_clockwise(269.6),
            Rotation::CounterClockwise
        );
        assert_eq!(Rotation::from_degrees_clockwise(f64::NAN), Rotation::None);
    }
}
