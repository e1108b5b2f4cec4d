//! The slowed sound: the input's audio packets are decoded, the slowed part is stretched with
//! FFmpeg's `atempo` (pitch kept; chained, as one `atempo` slows at most 2x) and joined with the
//! parts at normal speed, and the result is encoded as AAC for the MP4.

use std::path::{Path, PathBuf};

use ffmpeg::{codec, decoder, encoder, filter, format::Sample, ChannelLayout, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::Timeline;
use crate::video::VideoError;

/// AAC bit rate of the slowed sound.
const BIT_RATE: usize = 128_000;
/// Slowest tempo of one `atempo` filter.
const ATEMPO_MIN: f64 = 0.5;

/// Decodes, slows and re-encodes one audio stream. Not `Send`: made and used on the thread of the
/// slow-motion stage.
pub struct AudioSlower {
    decoder: decoder::Audio,
    graph: filter::Graph,
    encoder: encoder::audio::Encoder,
    /// Input timestamp (in `input_time_base`) of the video's first frame: the sound's zero.
    zero: i64,
    /// Samples given to the encoder so far: the next frame's timestamp.
    samples_out: i64,
    /// Where the decoded sound ends, in seconds from the zero.
    input_end: f64,
    timeline: Timeline,
    decoded: ffmpeg::frame::Audio,
    filtered: ffmpeg::frame::Audio,
    path: PathBuf,
}

impl AudioSlower {
    /// A slower for the audio stream of `path` described by `parameters` and `time_base`, whose
    /// zero is at input timestamp `zero`, slowed where `timeline` says.
    ///
    /// # Errors
    /// [`VideoError`] naming `path` when the audio cannot be decoded or FFmpeg lacks a filter or
    /// the AAC encoder.
    pub fn new(
        path: &Path,
        parameters: codec::Parameters,
        time_base: Rational,
        zero: i64,
        timeline: &Timeline,
    ) -> Result<Self, VideoError> {
        let fail = |what, e: ffmpeg::Error| VideoError::codec(path, what, e);
        let mut decoder = codec::context::Context::from_parameters(parameters)
            .and_then(|context| context.decoder().audio())
            .map_err(|e| fail("opening the audio decoder for slow motion", e))?;
        decoder.set_packet_time_base(time_base);
        let rate = decoder.rate();
        let layout = match decoder.channel_layout() {
            layout if layout.is_empty() => ChannelLayout::default(i32::from(decoder.channels())),
            layout => layout,
        };
        let encoder = open_aac(path, rate, layout)?;
        let graph = tempo_graph(path, &decoder, layout, &encoder, timeline)?;
        Ok(Self {
            decoder,
            graph,
            encoder,
            zero,
            samples_out: 0,
            input_end: 0.0,
            timeline: *timeline,
            decoded: ffmpeg::frame::Audio::empty(),
            filtered: ffmpeg::frame::Audio::empty(),
            path: path.to_owned(),
        })
    }

    /// The encoded stream's parameters and time base, for the muxer.
    pub fn stream(&self) -> (codec::Parameters, Rational) {
        (
            codec::Parameters::from(&self.encoder),
            self.encoder.time_base(),
        )
    }

    /// Slows `packets` (in the input's time base); returns the AAC packets ready so far, in the
    /// time base of [`stream`](Self::stream).
    ///
    /// # Errors
    /// [`VideoError`] when decoding, filtering or encoding fails.
    pub fn push(&mut self, packets: &[Packet]) -> Result<Vec<Packet>, VideoError> {
        let mut out = Vec::new();
        for packet in packets {
            // A damaged packet loses its sound, not the video.
            if self.decoder.send_packet(packet).is_ok() {
                self.decode(&mut out)?;
            }
        }
        Ok(out)
    }

    /// Flushes the decoder, filter and encoder; returns the last AAC packets.
    ///
    /// # Errors
    /// [`VideoError`] when flushing fails.
    pub fn finish(&mut self) -> Result<Vec<Packet>, VideoError> {
        let mut out = Vec::new();
        // The decoder may already have ended on a damaged stream; what it has is drained below.
        let _ = self.decoder.send_eof();
        self.decode(&mut out)?;
        self.source()?
            .source()
            .flush()
            .map_err(|e| self.fail("slowing the sound", e))?;
        self.filter(&mut out)?;
        self.pad_to_length(&mut out)?;
        self.encoder
            .send_eof()
            .map_err(|e| self.fail("encoding the slowed sound", e))?;
        self.encode(&mut out)?;
        Ok(out)
    }

    fn decode(&mut self, out: &mut Vec<Packet>) -> Result<(), VideoError> {
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            let pts = self
                .decoded
                .timestamp()
                .or(self.decoded.pts())
                .map(|pts| pts - self.zero);
            self.decoded.set_pts(pts);
            if let Some(pts) = pts {
                let end = pts + self.decoded.samples() as i64;
                let seconds = end as f64 * f64::from(self.decoder.packet_time_base());
                self.input_end = self.input_end.max(seconds);
            }
            let mut source = self.source()?;
            source
                .source()
                .add(&self.decoded)
                .map_err(|e| self.fail("slowing the sound", e))?;
            self.filter(out)?;
        }
        Ok(())
    }

    fn filter(&mut self, out: &mut Vec<Packet>) -> Result<(), VideoError> {
        let mut sink = self.graph.get("out").ok_or_else(|| self.lost_pad())?;
        while sink.sink().frame(&mut self.filtered).is_ok() {
            self.filtered.set_pts(Some(self.samples_out));
            self.samples_out += self.filtered.samples() as i64;
            self.encoder
                .send_frame(&self.filtered)
                .map_err(|e| self.fail("encoding the slowed sound", e))?;
            self.encode(out)?;
        }
        Ok(())
    }

    /// `atempo` drops the last few milliseconds of what it slows (about 25 ms at 2x): silence
    /// makes up the length, so that the sound ends with the video.
    fn pad_to_length(&mut self, out: &mut Vec<Packet>) -> Result<(), VideoError> {
        let rate = f64::from(self.encoder.rate());
        let length = (self.timeline.output_seconds(self.input_end) * rate).round() as i64;
        let frame_size = i64::from(self.encoder.frame_size().max(1));
        while self.samples_out < length {
            let samples = (length - self.samples_out).min(frame_size) as usize;
            let mut silence = ffmpeg::frame::Audio::new(
                self.encoder.format(),
                samples,
                self.encoder.channel_layout(),
            );
            silence.set_rate(self.encoder.rate());
            for plane in 0..silence.planes() {
                silence.data_mut(plane).fill(0);
            }
            silence.set_pts(Some(self.samples_out));
            self.samples_out += samples as i64;
            self.encoder
                .send_frame(&silence)
                .map_err(|e| self.fail("encoding the slowed sound", e))?;
            self.encode(out)?;
        }
        Ok(())
    }

    fn encode(&mut self, out: &mut Vec<Packet>) -> Result<(), VideoError> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            out.push(std::mem::replace(&mut packet, Packet::empty()));
        }
        Ok(())
    }

    fn source(&mut self) -> Result<filter::Context, VideoError> {
        self.graph.get("in").ok_or_else(|| self.lost_pad())
    }

    fn lost_pad(&self) -> VideoError {
        self.fail("slowing the sound", "the filter graph lost a pad")
    }

    fn fail(&self, what: &'static str, e: impl std::fmt::Display) -> VideoError {
        VideoError::codec(&self.path, what, e)
    }
}

/// FFmpeg's AAC encoder at `rate` and `layout`, with its header global as MP4 needs.
fn open_aac(
    path: &Path,
    rate: u32,
    layout: ChannelLayout,
) -> Result<encoder::audio::Encoder, VideoError> {
    let fail = |e: ffmpeg::Error| VideoError::codec(path, "opening the AAC encoder", e);
    let codec = encoder::find(codec::Id::AAC).ok_or_else(|| {
        VideoError::codec(
            path,
            "opening the AAC encoder",
            "this FFmpeg has no AAC encoder",
        )
    })?;
    let mut setup = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(fail)?;
    setup.set_rate(rate as i32);
    setup.set_channel_layout(layout);
    setup.set_format(Sample::F32(ffmpeg::format::sample::Type::Planar));
    setup.set_bit_rate(BIT_RATE);
    setup.set_time_base(Rational(1, rate as i32));
    setup.set_flags(codec::Flags::GLOBAL_HEADER);
    setup.open_as(codec).map_err(fail)
}

/// The filter graph `in -> [parts, the slowed one through atempo] -> out`, giving frames the
/// encoder takes (its sample format, and its frame size).
fn tempo_graph(
    path: &Path,
    decoder: &decoder::Audio,
    layout: ChannelLayout,
    encoder: &encoder::audio::Encoder,
    timeline: &Timeline,
) -> Result<filter::Graph, VideoError> {
    let decoded_time_base = decoder.packet_time_base();
    let source_args = format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        decoded_time_base.numerator(),
        decoded_time_base.denominator(),
        decoder.rate(),
        decoder.format().name(),
        layout.bits()
    );
    let spec = format!(
        "{},aformat=sample_fmts={}:sample_rates={}:channel_layouts=0x{:x}",
        tempo_spec(timeline),
        encoder.format().name(),
        encoder.rate(),
        layout.bits()
    );
    let mut graph = super::filter_graph(
        path,
        "setting up the sound filter",
        super::Media::Audio,
        &source_args,
        &spec,
    )?;
    if let Some(mut sink) = graph.get("out") {
        sink.sink().set_frame_size(encoder.frame_size());
    }
    Ok(graph)
}

/// The filter chain that slows the timeline's part of the sound: before it and after it the sound
/// is kept as it is, the part between goes through `atempo`. The sound is first laid on the
/// video's clock: silence where it starts after the first frame or has gaps, cut where it starts
/// before.
fn tempo_spec(timeline: &Timeline) -> String {
    let tempo = atempo_chain(timeline.factor());
    let (start, end) = timeline.seconds();
    let mut parts = Vec::new();
    if start > 0.0 {
        parts.push(format!("atrim=start=0:end={start}"));
    }
    match end {
        Some(end) => {
            parts.push(format!(
                "atrim=start={start}:end={end},asetpts=PTS-STARTPTS,{tempo}"
            ));
            parts.push(format!("atrim=start={end}"));
        }
        None => parts.push(format!("atrim=start={start},asetpts=PTS-STARTPTS,{tempo}")),
    }
    let on_clock = "[in]aresample=async=1:first_pts=0";
    if parts.len() == 1 {
        return format!("{on_clock},{}", parts[0]);
    }
    let labels: String = (0..parts.len()).map(|i| format!("[s{i}]")).collect();
    let mut spec = format!("{on_clock},asplit={}{labels}", parts.len());
    for (i, part) in parts.iter().enumerate() {
        spec.push_str(&format!(";[s{i}]{part},asetpts=PTS-STARTPTS[p{i}]"));
    }
    let joined: String = (0..parts.len()).map(|i| format!("[p{i}]")).collect();
    spec.push_str(&format!(";{joined}concat=n={}:v=0:a=1", parts.len()));
    spec
}

/// `atempo` filters that together slow by `factor` (each one slows at most 2x).
fn atempo_chain(factor: f64) -> String {
    let mut tempo = 1.0 / factor;
    let mut chain = Vec::new();
    while tempo < ATEMPO_MIN - 1e-9 {
        chain.push(format!("atempo={ATEMPO_MIN}"));
        tempo /= ATEMPO_MIN;
    }
    chain.push(format!("atempo={tempo:.6}"));
    chain.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::slowmo::{FramesMode, SlowMotion};

    fn timeline(factor: f64, only: Option<(f64, f64)>) -> Timeline {
        let slow = SlowMotion {
            factor,
            frames: FramesMode::Blend,
            audio: true,
            only,
        };
        Timeline::new(&slow, 25.0)
    }

    #[test]
    fn atempo_is_chained_beyond_half_speed() {
        assert_eq!(atempo_chain(2.0), "atempo=0.500000");
        assert_eq!(atempo_chain(1.25), "atempo=0.800000");
        assert_eq!(atempo_chain(8.0), "atempo=0.5,atempo=0.5,atempo=0.500000");
        assert_eq!(atempo_chain(3.0), "atempo=0.5,atempo=0.666667");
    }

    #[test]
    fn the_whole_sound_is_one_chain() {
        assert_eq!(
            tempo_spec(&timeline(2.0, None)),
            "[in]aresample=async=1:first_pts=0,atrim=start=0,asetpts=PTS-STARTPTS,atempo=0.500000"
        );
    }

    #[test]
    fn a_slowed_part_is_joined_with_the_parts_around_it() {
        let spec = tempo_spec(&timeline(2.0, Some((1.0, 2.0))));
        assert_eq!(
            spec,
            "[in]aresample=async=1:first_pts=0,asplit=3[s0][s1][s2]\
             ;[s0]atrim=start=0:end=1,asetpts=PTS-STARTPTS[p0]\
             ;[s1]atrim=start=1:end=2,asetpts=PTS-STARTPTS,atempo=0.500000,asetpts=PTS-STARTPTS[p1]\
             ;[s2]atrim=start=2,asetpts=PTS-STARTPTS[p2]\
             ;[p0][p1][p2]concat=n=3:v=0:a=1"
        );
    }
}
