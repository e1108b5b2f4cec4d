//! `emolens annotate` on the real clips in ../shared/data/videos, with real FFmpeg, OpenCV and
//! ONNX Runtime and the shipped model.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

use crate::util::{
    assert_clean_failure, assert_face_record, assert_sound_ends_with_video, default_model, ffmpeg,
    frame_rate, gray_frame, mean_difference, os, partial_files, probe, records, video,
};

pub fn annotate(args: &[&std::ffi::OsStr]) -> Output {
    default_model();
    Command::cargo_bin("emolens")
        .expect("binary built")
        .arg("annotate")
        .arg("--quiet")
        .args(args)
        .output()
        .expect("emolens runs")
}

#[test]
fn pexels_clip_keeps_frames_timing_audio_and_finds_the_face() -> anyhow::Result<()> {
    let input = video("pyfeat_WolfgangLanger_Pexels.mp4");
    let dir = tempfile::tempdir()?;
    let (out, json, csv) = (
        dir.path().join("out.mp4"),
        dir.path().join("faces.jsonl"),
        dir.path().join("faces.csv"),
    );
    let output = annotate(&[
        input.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--json"),
        json.as_os_str(),
        os("--csv"),
        csv.as_os_str(),
        os("--slowmo"),
        os("2"),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("472 frames") && summary.contains("labels:"),
        "{summary}"
    );

    let streams = probe(&out);
    let source = probe(&input);
    let video_stream = streams
        .iter()
        .find(|s| s.0 == "h264")
        .expect("an H.264 stream");
    assert_eq!(video_stream.1, 472);
    let frame = 1001.0 / 24000.0;
    assert!(
        (video_stream.2 - source[0].2).abs() <= frame,
        "{streams:?} vs {source:?}"
    );
    assert!(
        streams.iter().any(|s| s.0 == "aac"),
        "audio copied: {streams:?}"
    );

    // The slow copy: twice the frames at the input's rate, sound slowed with it.
    let slow = dir.path().join("out.slow2x.mp4");
    assert_eq!(frame_rate(&slow), "24000/1001");
    let slow_streams = probe(&slow);
    let slow_video = slow_streams.iter().find(|s| s.0 == "h264").expect("video");
    assert!(slow_streams.iter().any(|s| s.0 == "aac"), "sound kept");
    assert!(slow_video.1.abs_diff(944) <= 1, "{slow_streams:?}");
    assert!(
        (slow_video.2 - 2.0 * source[0].2).abs() <= 2.0 * frame,
        "{slow_streams:?} vs {source:?}"
    );
    assert_sound_ends_with_video(&slow, frame);
    // Around 5 s the face moves: the in-between frame lies between its neighbours, not on one
    // (a repeated frame differs from its twin by encoding noise only, a quarter of this).
    let [before, between, after] = [240, 241, 242].map(|n| gray_frame(&slow, n));
    let apart = mean_difference(&before, &after);
    for neighbour in [&before, &after] {
        let difference = mean_difference(&between, neighbour);
        assert!(
            difference > 0.35 * apart,
            "in-between frame too close to a neighbour: {difference} (neighbours {apart} apart)"
        );
    }

    let faces = records(&json);
    let frames_with_face: std::collections::BTreeSet<u64> =
        faces.iter().filter_map(|r| r["frame"].as_u64()).collect();
    assert!(
        frames_with_face.len() as f64 >= 0.95 * 472.0,
        "face in {} frames",
        frames_with_face.len()
    );
    let share = |from: f64, to: f64, labels: &[&str]| {
        let window: Vec<_> = faces
            .iter()
            .filter(|r| (from..to).contains(&r["time"].as_f64().unwrap_or(-1.0)))
            .collect();
        let hits = window
            .iter()
            .filter(|r| labels.contains(&r["label"].as_str().unwrap_or("")))
            .count();
        hits as f64 / window.len().max(1) as f64
    };
    let negative = share(0.0, 6.0, &["sad", "fear", "angry"]);
    let happy = share(11.0, 100.0, &["happy"]);
    assert!(
        negative > 0.5,
        "negative share in the first 6 s: {negative}"
    );
    assert!(happy > 0.5, "happy share after 11 s: {happy}");
    assert_face_record(&faces[0]);
    let csv_rows = std::fs::read_to_string(&csv)?.lines().count() - 1;
    assert_eq!(csv_rows, faces.len());
    Ok(())
}

#[test]
fn clips_without_faces_and_hevc_vfr_movs_work() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let inputs = [
        video("no_face/pyfeat_no_face.mp4"),
        video("no_face/pyfeat_face_noface.mov"),
        video("no_face/pyfeat_noface_face.mov"),
    ];
    let out = dir.path().join("out");
    let json = dir.path().join("json");
    let mut args: Vec<&std::ffi::OsStr> = inputs.iter().map(|p| p.as_os_str()).collect();
    args.extend([os("-o"), out.as_os_str(), os("--json"), json.as_os_str()]);
    let output = annotate(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The title card alone: faces in at most 1 % of its frames.
    let no_face = records(&json.join("pyfeat_no_face.jsonl"));
    let decoded = probe(&inputs[0])
        .into_iter()
        .find(|s| s.0 == "h264")
        .map_or(0, |s| s.1);
    assert_eq!(probe(&out.join("pyfeat_no_face.mp4"))[0].1, decoded);
    assert!(
        no_face.len() as f64 <= 0.01 * decoded as f64,
        "{} face records on a clip without faces",
        no_face.len()
    );

    for name in ["pyfeat_face_noface", "pyfeat_noface_face"] {
        let source = probe(&inputs[1]);
        let written = probe(&out.join(format!("{name}.mp4")));
        let (src_video, out_video) = (
            source.iter().find(|s| s.0 == "hevc").expect("hevc input"),
            written.iter().find(|s| s.0 == "h264").expect("h264 output"),
        );
        assert_eq!(out_video.1, src_video.1, "{name}: frame count");
        assert!(
            (out_video.2 - src_video.2).abs() < 0.05,
            "{name}: duration {written:?} vs {source:?}"
        );
        let faces = records(&json.join(format!("{name}.jsonl")));
        assert!(!faces.is_empty(), "{name}: the man's face is found");
    }
    Ok(())
}

#[test]
fn bad_inputs_and_outputs_are_refused_clearly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out.mp4");
    let missing = dir.path().join("missing.mp4");
    assert_clean_failure(
        &annotate(&[missing.as_os_str(), os("-o"), out.as_os_str()]),
        &["missing.mp4", "not found"],
    );

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "this is not a video")?;
    assert_clean_failure(
        &annotate(&[text.as_os_str(), os("-o"), out.as_os_str()]),
        &["notes.mp4", "not a video"],
    );

    let photo = dir.path().join("face.png");
    ffmpeg(&[
        os("-i"),
        video("pyfeat_single_face.mp4").as_os_str(),
        os("-frames:v"),
        os("1"),
        photo.as_os_str(),
    ])?;
    assert_clean_failure(
        &annotate(&[photo.as_os_str(), os("-o"), out.as_os_str()]),
        &["face.png", "a still image, not a video"],
    );
    assert!(!out.exists(), "no one-frame video made of a photo");

    let input = video("pyfeat_single_face.mp4");
    let copy = dir.path().join("clip.mp4");
    std::fs::copy(&input, &copy)?;
    assert_clean_failure(
        &annotate(&[copy.as_os_str(), os("-o"), copy.as_os_str()]),
        &["overwrite the input"],
    );
    assert_eq!(
        std::fs::metadata(&copy)?.len(),
        std::fs::metadata(&input)?.len(),
        "input untouched"
    );

    let unwritable = Path::new("/nonexistent-folder/out.mp4");
    assert_clean_failure(
        &annotate(&[copy.as_os_str(), os("-o"), unwritable.as_os_str()]),
        &["/nonexistent-folder", "does not exist"],
    );
    assert_clean_failure(
        &annotate(&[
            copy.as_os_str(),
            os("-o"),
            out.as_os_str(),
            os("--slowmo"),
            os("0.5"),
        ]),
        &["--slowmo 0.5 is out of range"],
    );
    assert_clean_failure(
        &annotate(&[
            copy.as_os_str(),
            os("-o"),
            out.as_os_str(),
            os("--device"),
            os("cuda"),
        ]),
        &["--device cuda: the GPU cannot be used", "--device cpu"],
    );
    assert!(!out.exists());
    Ok(())
}

#[test]
fn truncated_input_writes_the_decodable_frames_and_says_partial() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let full = std::fs::read(video("pyfeat_WolfgangLanger_Pexels.mp4"))?;
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &full[..full.len() / 2])?;
    let out = dir.path().join("out.mp4");
    let output = annotate(&[cut.as_os_str(), os("-o"), out.as_os_str()]);
    assert_eq!(output.status.code(), Some(3), "exit code says partial");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cut short") && stderr.contains("stopped after frame"),
        "{stderr}"
    );
    let frames = probe(&out)
        .into_iter()
        .find(|s| s.0 == "h264")
        .map_or(0, |s| s.1);
    assert!(frames > 100 && frames < 472, "{frames} frames written");
    Ok(())
}

#[test]
fn odd_frame_sizes_are_kept() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let odd = dir.path().join("odd.mp4");
    ffmpeg(&[
        os("-i"),
        video("pyfeat_single_face.mp4").as_os_str(),
        os("-vf"),
        os("scale=321:181"),
        os("-c:v"),
        os("libx264rgb"),
        os("-c:a"),
        os("copy"),
        odd.as_os_str(),
    ])?;
    let out = dir.path().join("out.mp4");
    let output = annotate(&[odd.as_os_str(), os("-o"), out.as_os_str()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(dimensions(&out)?, "321,181");
    Ok(())
}

/// `width,height` of the first video stream, as stored (ffprobe appends side data, dropped).
fn dimensions(path: &Path) -> anyhow::Result<String> {
    let dims = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()?;
    let text = String::from_utf8_lossy(&dims.stdout);
    Ok(text.trim().split(',').take(2).collect::<Vec<_>>().join(","))
}

#[test]
fn rotation_metadata_is_honoured() -> anyhow::Result<()> {
    // A phone-style clip: pictures stored turned a quarter clockwise (360x640), with a display
    // matrix that turns them upright again.
    let dir = tempfile::tempdir()?;
    let (stored, rotated) = (dir.path().join("stored.mp4"), dir.path().join("rot.mp4"));
    ffmpeg(&[
        os("-i"),
        video("pyfeat_WolfgangLanger_Pexels.mp4").as_os_str(),
        os("-t"),
        os("3"),
        os("-vf"),
        os("transpose=clock"),
        os("-c:v"),
        os("libx264"),
        os("-preset"),
        os("ultrafast"),
        stored.as_os_str(),
    ])?;
    ffmpeg(&[
        os("-i"),
        stored.as_os_str(),
        os("-c"),
        os("copy"),
        os("-metadata:s:v:0"),
        os("rotate=90"),
        rotated.as_os_str(),
    ])?;
    assert_eq!(dimensions(&rotated)?, "360,640");
    let (out, json) = (dir.path().join("out.mp4"), dir.path().join("f.jsonl"));
    let output = annotate(&[
        rotated.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--json"),
        json.as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(dimensions(&out)?, "640,360", "written upright");
    let frames = probe(&out)[0].1;
    let with_face: std::collections::BTreeSet<u64> = records(&json)
        .iter()
        .filter_map(|r| r["frame"].as_u64())
        .collect();
    assert!(
        with_face.len() as f64 >= 0.9 * frames as f64,
        "the upright face is found in {} of {frames} frames",
        with_face.len()
    );
    Ok(())
}

#[test]
fn ctrl_c_leaves_a_playable_video_and_complete_records() -> anyhow::Result<()> {
    default_model();
    let dir = tempfile::tempdir()?;
    // The Pexels clip three times (59 s, a face in every frame): long enough to be stopped
    // midway however fast the machine is.
    let input = dir.path().join("long.mp4");
    ffmpeg(&[
        os("-stream_loop"),
        os("2"),
        os("-i"),
        video("pyfeat_WolfgangLanger_Pexels.mp4").as_os_str(),
        os("-c"),
        os("copy"),
        input.as_os_str(),
    ])?;
    let (out, json) = (dir.path().join("out.mp4"), dir.path().join("faces.jsonl"));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("emolens"))
        .args(["annotate", "--quiet", "--detect-every", "1"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .arg(&json)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    // Stop it once the encoder has written a good part of a second of video.
    let partial_size = || {
        partial_files(dir.path())
            .iter()
            .filter(|p| p.to_string_lossy().contains("out.mp4."))
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while partial_size() < 200_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "no video written within 60 s"
        );
        assert!(child.try_wait()?.is_none(), "annotate ended before Ctrl-C");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    let output = child.wait_with_output()?;
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        partial_files(dir.path()).is_empty(),
        "the partial files were moved into place"
    );
    let frames = probe(&out)
        .into_iter()
        .find(|s| s.0 == "h264")
        .map_or(0, |s| s.1);
    assert!(
        frames > 0 && frames < 3 * 472,
        "{frames} frames in the interrupted output"
    );
    // A face in every frame of the clip: the records hold every written frame, and no other.
    let recorded: std::collections::BTreeSet<u64> = records(&json)
        .iter()
        .filter_map(|r| r["frame"].as_u64())
        .collect();
    assert_eq!(
        recorded,
        (0..frames).collect(),
        "records of the {frames} frames written"
    );
    Ok(())
}
