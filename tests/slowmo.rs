//! `emolens annotate --slowmo` options on a real clip (the default mode is tested on the Pexels
//! clip in `annotate`): a slowed part, repeated and motion-compensated frames, factors that are
//! not whole, the sound kept or dropped, factors out of range refused.

use std::path::{Path, PathBuf};

use crate::annotate::annotate;
use crate::util::{
    assert_clean_failure, assert_sound_ends_with_video, frame_rate, os, probe, succeeded, video,
};

/// The single-face clip: 72 frames at 30 fps, with sound.
const CLIP: &str = "pyfeat_single_face.mp4";
const FRAME: f64 = 1.0 / 30.0;

/// Annotates [`CLIP`] into `dir` with `--slowmo factor` and `extra`; returns the slow copy.
fn slow_copy(dir: &Path, factor: &str, extra: &[&str]) -> PathBuf {
    let input = video(CLIP);
    let out = dir.join("out.mp4");
    let mut args = vec![
        input.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--slowmo"),
        os(factor),
    ];
    args.extend(extra.iter().map(|a| os(a)));
    succeeded(&annotate(&args));
    dir.join(format!("out.slow{factor}x.mp4"))
}

#[test]
fn a_slowed_part_plays_slower_and_the_rest_at_normal_speed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let slow = slow_copy(
        dir.path(),
        "2.5",
        &["--slowmo-only", "0.5-1.5", "--slowmo-frames", "repeat"],
    );
    assert_eq!(frame_rate(&slow), "30/1");
    let streams = probe(&slow);
    let video_stream = streams.iter().find(|s| s.0 == "h264").expect("video");
    assert!(streams.iter().any(|s| s.0 == "aac"), "sound kept");
    // Frames 15..45 (one second) become 75 frames; the other 42 stay.
    assert_eq!(video_stream.1, 42 + 75, "{streams:?}");
    assert_sound_ends_with_video(&slow, FRAME);
    Ok(())
}

#[test]
fn motion_compensated_frames_without_sound() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let slow = slow_copy(
        dir.path(),
        "1.25",
        &["--slowmo-frames", "mci", "--slowmo-audio", "drop"],
    );
    let streams = probe(&slow);
    assert_eq!(streams.len(), 1, "no sound: {streams:?}");
    assert_eq!(streams[0].1, 90, "72 frames 1.25x slower: {streams:?}");
    Ok(())
}

#[test]
fn slow_motion_settings_out_of_range_are_refused() -> anyhow::Result<()> {
    let input = video(CLIP);
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out.mp4");
    let run = |extra: &[&str]| {
        let mut args = vec![input.as_os_str(), os("-o"), out.as_os_str()];
        args.extend(extra.iter().map(|a| os(a)));
        annotate(&args)
    };
    for factor in ["9", "1.1", "0"] {
        assert_clean_failure(
            &run(&["--slowmo", factor]),
            &["out of range: use a factor from 1.25 to 8"],
        );
    }
    assert_clean_failure(&run(&["--slowmo-only", "1-2"]), &["needs --slowmo"]);
    assert_clean_failure(
        &run(&["--slowmo", "2", "--slowmo-only", "2-1"]),
        &["end after it starts"],
    );
    assert_clean_failure(
        &run(&["--slowmo", "2", "--slowmo-only", "5-6"]),
        &[CLIP, "after the end of the video"],
    );
    assert!(!out.exists(), "nothing written for refused settings");
    Ok(())
}
