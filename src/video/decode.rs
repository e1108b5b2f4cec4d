//! Demuxing and decoding: the best video stream becomes BGR24 [`Frame`]s with their input
//! timestamps; packets of the first audio stream ride along with the next frame.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{codec, format, media, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::{Frame, Scaler, VideoError, VideoInfo};

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
            .unwrap_or(Rational(25, 1));
        let duration = (stream.duration() > 0)
            .then(|| stream.duration() as f64 * f64::from(time_base))
            .or_else(|| {
                (input.duration() > 0)
                    .then(|| input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE))
            });
        let context = codec::context::Context::from_parameters(stream.parameters())
            .map_err(|e| VideoError::codec(path, "reading the video stream parameters", e))?;
        let decoder = context
            .decoder()
            .video()
            .map_err(|e| VideoError::codec(path, "opening the video decoder", e))?;
        let audio = input
            .streams()
            .best(media::Type::Audio)
            .map(|s| (s.index(), s.parameters(), s.time_base()));
        let info = VideoInfo {
            path: path.to_owned(),
            width: decoder.width(),
            height: decoder.height(),
            time_base,
            frame_rate,
            frames,
            duration,
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

    /// The next frame, converted into `image` (reused when it has the right size), or `None`
    /// at the end. A damaged or cut input ends early and records a [`Truncation`].
    ///
    /// # Errors
    /// [`VideoError`] when the colour conversion cannot be set up.
    pub fn next_frame(
        &mut self,
        mut image: ffmpeg::frame::Video,
    ) -> Result<Option<Frame>, VideoError> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => return self.convert(&mut image).map(|()| Some(self.emit(image))),
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

    fn convert(&mut self, image: &mut ffmpeg::frame::Video) -> Result<(), VideoError> {
        let (w, h) = (self.decoded.width(), self.decoded.height());
        let fits = self.scaler.as_ref().is_some_and(|Scaler(s)| {
            s.input().width == w
                && s.input().height == h
                && s.input().format == self.decoded.format()
        });
        if !fits {
            self.scaler = Some(
                scaling::Context::get(
                    self.decoded.format(),
                    w,
                    h,
                    Pixel::BGR24,
                    w,
                    h,
                    scaling::Flags::BILINEAR,
                )
                .map_err(|e| VideoError::codec(&self.info.path, "setting up colour conversion", e))
                .map(Scaler)?,
            );
        }
        if image.width() != w || image.height() != h || image.format() != Pixel::BGR24 {
            *image = ffmpeg::frame::Video::new(Pixel::BGR24, w, h);
        }
        if let Some(Scaler(scaler)) = self.scaler.as_mut() {
            scaler
                .run(&self.decoded, image)
                .map_err(|e| VideoError::codec(&self.info.path, "converting a frame to BGR", e))?;
        }
        Ok(())
    }

    fn emit(&mut self, image: ffmpeg::frame::Video) -> Frame {
        let pts = self.decoded.timestamp();
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
