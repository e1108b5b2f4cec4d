//! Slow motion: a copy of an encoded video whose timestamps are stretched by a factor, made by
//! remuxing its video packets (no re-encoding). Audio is dropped: stretched audio would need
//! resampling and pitch correction, and silence is what slow-motion viewers expect.

use std::path::{Path, PathBuf};

use ffmpeg::{codec, encoder, format, media, Packet};
use ffmpeg_next as ffmpeg;

use super::VideoError;

/// Writes `target` (via `target.partial`) as `source` played `factor` times slower.
///
/// # Errors
/// [`VideoError`] when `source` cannot be read or `target` written.
pub fn write_slow_motion(source: &Path, target: &Path, factor: f64) -> Result<PathBuf, VideoError> {
    let fail = |what, e: ffmpeg::Error| VideoError::codec(target, what, e);
    let mut input = format::input(source).map_err(|e| fail("reading the annotated video", e))?;
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| VideoError::NoVideoStream(source.to_owned()))?;
    let (index, input_tb, parameters) = (stream.index(), stream.time_base(), stream.parameters());
    let partial = crate::output::partial_path(target);
    let mut output =
        format::output_as(&partial, "mp4").map_err(|e| fail("creating the slow-motion file", e))?;
    {
        let mut out_stream = output
            .add_stream(encoder::find(codec::Id::None))
            .map_err(|e| fail("adding the video stream", e))?;
        out_stream.set_parameters(parameters);
        // SAFETY: parameters owned by the live output context; tag 0 lets the muxer pick it.
        unsafe {
            (*out_stream.parameters().as_mut_ptr()).codec_tag = 0;
        }
    }
    output
        .write_header()
        .map_err(|e| fail("writing the MP4 header", e))?;
    let output_tb = output.stream(0).map_or(input_tb, |s| s.time_base());
    let scale = |t: Option<i64>| t.map(|v| (v as f64 * factor).round() as i64);
    let mut packet = Packet::empty();
    loop {
        match packet.read(&mut input) {
            Ok(()) => {}
            Err(ffmpeg::Error::Eof) => break,
            Err(e) => return Err(fail("reading the annotated video", e)),
        }
        if packet.stream() != index {
            continue;
        }
        packet.set_pts(scale(packet.pts()));
        packet.set_dts(scale(packet.dts()));
        packet.set_duration((packet.duration() as f64 * factor).round() as i64);
        packet.rescale_ts(input_tb, output_tb);
        packet.set_position(-1);
        packet.set_stream(0);
        packet
            .write_interleaved(&mut output)
            .map_err(|e| fail("writing the slow-motion video", e))?;
    }
    output
        .write_trailer()
        .map_err(|e| fail("writing the MP4 index", e))?;
    std::fs::rename(&partial, target)
        .map_err(|e| VideoError::codec(target, "renaming into place", e))?;
    Ok(target.to_owned())
}

/// `OUT.mp4` -> `OUT.slow2x.mp4` (factor shown without a trailing `.0`).
pub fn slow_motion_path(output: &Path, factor: f64) -> PathBuf {
    let stem = output
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("output");
    let factor = format!("{factor}");
    output.with_file_name(format!("{stem}.slow{factor}x.mp4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_motion_name() {
        assert_eq!(
            slow_motion_path(Path::new("a/b.mp4"), 2.0),
            PathBuf::from("a/b.slow2x.mp4")
        );
        assert_eq!(
            slow_motion_path(Path::new("b.mp4"), 2.5),
            PathBuf::from("b.slow2.5x.mp4")
        );
    }
}
