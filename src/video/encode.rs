//! H.264 (libx264) in MP4 with the input's size, frame count and timestamps, and the input's
//! audio stream copied packet for packet. Written under a partial name ([`crate::output::Claim`])
//! and moved into place by [`Encoder::finish`], so a file at the output path is always complete
//! and playable.

use std::path::{Path, PathBuf};

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{codec, encoder, format, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::{Frame, VideoError, VideoInfo};

/// x264 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeOptions {
    /// x264 preset (ultrafast ... veryslow).
    pub preset: String,
    /// Constant rate factor, 0..=51 (lower is better quality).
    pub crf: u8,
}

/// The x264 presets, fastest first.
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Writes one annotated video.
pub struct Encoder {
    output: format::context::Output,
    encoder: encoder::Video,
    /// For odd-sized video: 4:2:0 frames to 4:4:4 (x264's 4:2:0 needs even sizes).
    to_444: Option<(super::Scaler, ffmpeg::frame::Video)>,
    video_stream: usize,
    audio_stream: Option<(usize, Rational)>,
    input_time_base: Rational,
    video_time_base: Rational,
    frame_duration: i64,
    last_pts: Option<i64>,
    frames: usize,
    claim: crate::output::Claim,
    target: PathBuf,
    finished: bool,
}

impl Encoder {
    /// Creates `target` (under a partial name until [`finish`](Self::finish)) for a video like `info`.
    ///
    /// # Errors
    /// [`VideoError`] when the file cannot be created or x264 refuses the settings.
    pub fn create(
        target: &Path,
        info: &VideoInfo,
        options: &EncodeOptions,
    ) -> Result<Self, VideoError> {
        let claim = crate::output::Claim::new(target);
        let fail = |what, e: ffmpeg::Error| VideoError::codec(target, what, e);
        let mut output = format::output_as(claim.partial(), "mp4")
            .map_err(|e| fail("creating the output file", e))?;
        let global_header = output
            .format()
            .flags()
            .contains(format::Flags::GLOBAL_HEADER);
        let codec = encoder::find_by_name("libx264").ok_or_else(|| {
            VideoError::codec(
                target,
                "finding the H.264 encoder",
                "libx264 is not in this FFmpeg build",
            )
        })?;
        let mut stream = output
            .add_stream(codec)
            .map_err(|e| fail("adding the video stream", e))?;
        let video_stream = stream.index();
        let mut setup = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| fail("setting up the encoder", e))?;
        // 4:2:0 needs even sizes; odd-sized inputs keep their size in 4:4:4.
        let pixel = if info.width.is_multiple_of(2) && info.height.is_multiple_of(2) {
            Pixel::YUV420P
        } else {
            Pixel::YUV444P
        };
        setup.set_width(info.width);
        setup.set_height(info.height);
        setup.set_format(pixel);
        setup.set_time_base(info.time_base);
        setup.set_frame_rate(Some(info.frame_rate));
        setup.set_colorspace(info.colour.space);
        setup.set_color_primaries(info.colour.primaries);
        setup.set_color_transfer_characteristic(info.colour.transfer);
        // Closed GOPs: a player that seeks to a keyframe finds every picture it needs there.
        let mut flags = codec::Flags::CLOSED_GOP;
        if global_header {
            flags |= codec::Flags::GLOBAL_HEADER;
        }
        setup.set_flags(flags);
        let mut settings = Dictionary::new();
        settings.set("preset", &options.preset);
        settings.set("crf", &options.crf.to_string());
        let encoder = setup
            .open_with(settings)
            .map_err(|e| fail("opening x264", e))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(info.time_base);

        let audio_stream = match &info.audio {
            Some((parameters, time_base)) => {
                let mut audio = output
                    .add_stream(encoder::find(codec::Id::None))
                    .map_err(|e| fail("adding the audio stream", e))?;
                audio.set_parameters(parameters.clone());
                // SAFETY: the stream's codec parameters are owned by the output context, alive here;
                // a zero tag lets the MP4 muxer choose its own tag for the copied codec.
                unsafe {
                    (*audio.parameters().as_mut_ptr()).codec_tag = 0;
                }
                Some((audio.index(), *time_base))
            }
            None => None,
        };
        // Fragmented MP4: the index goes out with each fragment instead of piling up in memory
        // for the end (about 20 MiB an hour of video with sound), so memory stays flat over
        // any length; players, browsers and FFmpeg read it as any MP4.
        let mut muxer = Dictionary::new();
        muxer.set("movflags", "frag_keyframe+delay_moov+default_base_moof");
        output
            .write_header_with(muxer)
            .map_err(|e| fail("writing the MP4 header", e))?;
        let video_time_base = output
            .stream(video_stream)
            .map_or(info.time_base, |s| s.time_base());
        let to_444 = if pixel == Pixel::YUV420P {
            None
        } else {
            let scaler = scaling::Context::get(
                Pixel::YUV420P,
                info.width,
                info.height,
                pixel,
                info.width,
                info.height,
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| fail("setting up colour conversion", e))?;
            Some((
                super::Scaler(scaler),
                ffmpeg::frame::Video::new(pixel, info.width, info.height),
            ))
        };
        let per_second = f64::from(info.frame_rate).max(1e-3);
        let frame_duration = ((1.0 / per_second) / f64::from(info.time_base))
            .round()
            .max(1.0) as i64;
        Ok(Self {
            output,
            encoder,
            to_444,
            video_stream,
            audio_stream,
            input_time_base: info.time_base,
            video_time_base,
            frame_duration,
            last_pts: None,
            frames: 0,
            claim,
            target: target.to_owned(),
            finished: false,
        })
    }

    /// Encodes one frame (at its input timestamp) and muxes the audio that came with it.
    ///
    /// # Errors
    /// [`VideoError`] when encoding or writing fails.
    pub fn write(&mut self, frame: &mut Frame) -> Result<(), VideoError> {
        self.write_audio(&frame.audio)?;
        // Timestamps must rise; a missing or repeated one gets the next slot.
        let pts = match (frame.pts, self.last_pts) {
            (Some(p), Some(last)) if p > last => p,
            (Some(p), None) => p,
            (_, Some(last)) => last + self.frame_duration,
            (None, None) => 0,
        };
        self.last_pts = Some(pts);
        let picture = match self.to_444.as_mut() {
            Some((super::Scaler(scaler), converted)) => {
                scaler.run(&frame.image, converted).map_err(|e| {
                    VideoError::codec(&self.target, "converting a frame for x264", e)
                })?;
                converted
            }
            None => &mut frame.image,
        };
        picture.set_pts(Some(pts));
        // A decoded frame keeps its input picture type; x264 would take I as an order.
        picture.set_kind(ffmpeg::picture::Type::None);
        // x264 copies the picture, so the frame may be reused as soon as this returns.
        self.encoder
            .send_frame(picture)
            .map_err(|e| VideoError::codec(&self.target, "encoding a frame", e))?;
        self.frames += 1;
        self.drain()
    }

    /// Muxes audio packets (in the input audio stream's time base).
    ///
    /// # Errors
    /// [`VideoError`] when writing fails.
    pub fn write_audio(&mut self, packets: &[Packet]) -> Result<(), VideoError> {
        let Some((index, input_tb)) = self.audio_stream else {
            return Ok(());
        };
        let output_tb = self
            .output
            .stream(index)
            .map_or(input_tb, |s| s.time_base());
        for packet in packets {
            let mut packet = packet.clone();
            packet.rescale_ts(input_tb, output_tb);
            packet.set_position(-1);
            packet.set_stream(index);
            packet
                .write_interleaved(&mut self.output)
                .map_err(|e| VideoError::codec(&self.target, "writing audio", e))?;
        }
        Ok(())
    }

    /// Frames encoded so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    fn drain(&mut self) -> Result<(), VideoError> {
        let mut packet = Packet::empty();
        loop {
            match self.encoder.receive_packet(&mut packet) {
                Ok(()) => {
                    packet.set_stream(self.video_stream);
                    // The duration must be set before rescaling, or MP4's edit list drops the last frame.
                    packet.set_duration(self.frame_duration);
                    packet.rescale_ts(self.input_time_base, self.video_time_base);
                    packet
                        .write_interleaved(&mut self.output)
                        .map_err(|e| VideoError::codec(&self.target, "writing video", e))?;
                }
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {
                    return Ok(())
                }
                Err(e) => return Err(VideoError::codec(&self.target, "encoding", e)),
            }
        }
    }

    /// Flushes x264, writes the MP4 index and renames the file into place. Returns its path.
    ///
    /// # Errors
    /// [`VideoError`] when flushing, writing or renaming fails.
    pub fn finish(mut self) -> Result<PathBuf, VideoError> {
        self.encoder
            .send_eof()
            .map_err(|e| VideoError::codec(&self.target, "flushing x264", e))?;
        self.drain()?;
        self.output
            .write_trailer()
            .map_err(|e| VideoError::codec(&self.target, "writing the MP4 index", e))?;
        self.claim.commit().map_err(|e| {
            VideoError::codec(&self.target, "moving the finished file into place", e)
        })?;
        self.finished = true;
        Ok(self.target.clone())
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if !self.finished {
            eprintln!(
                "warning: {} was not finished; removing the partial file",
                self.target.display()
            );
            self.claim.abandon();
        }
    }
}
