//! `emolens live` on the real clips in ../shared/data/videos played as stand-in cameras
//! (`--realtime`), headless and in a window on a virtual X display (Xvfb), with real OpenCV,
//! FFmpeg and ONNX Runtime and the shipped model; and its errors for sources that do not exist.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use opencv::core::Vec3b;
use opencv::prelude::*;

use crate::util::{
    assert_clean_failure, assert_face_record, default_model, os, probe, records, repo_file,
    succeeded, video,
};

/// `emolens live ARGS` run to its end.
fn live(args: &[&std::ffi::OsStr]) -> Output {
    default_model();
    Command::cargo_bin("emolens")
        .expect("binary built")
        .arg("live")
        .args(args)
        .output()
        .expect("emolens runs")
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: not written: {e}", path.display()));
    serde_json::from_str(&text).expect("stats are JSON")
}

fn count(stats: &serde_json::Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("stats lack {key}: {stats}"))
}

/// Checks that every captured frame was processed or dropped and that the latency figures are
/// plausible; returns the processed count.
fn check_accounting(stats: &serde_json::Value) -> u64 {
    let (captured, processed, dropped) = (
        count(stats, "captured"),
        count(stats, "processed"),
        count(stats, "dropped"),
    );
    assert_eq!(captured, processed + dropped, "{stats}");
    let latency = |key: &str| {
        stats["latency_ms"][key]
            .as_f64()
            .unwrap_or_else(|| panic!("no latency {key}: {stats}"))
    };
    let (p50, p95, p99) = (latency("p50"), latency("p95"), latency("p99"));
    assert!(
        0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 < 1000.0,
        "{stats}"
    );
    assert!(stats["fps"].as_f64().unwrap_or(0.0) > 0.0, "{stats}");
    processed
}

/// Frames ffprobe decodes in the (only) video stream of `path`.
fn decoded_frames(path: &Path) -> u64 {
    probe(path)
        .iter()
        .find(|(codec, _, _)| codec == "h264")
        .map_or(0, |(_, frames, _)| *frames)
}

#[test]
fn headless_realtime_run_counts_every_frame_records_and_finds_the_face() -> anyhow::Result<()> {
    let input = video("pyfeat_WolfgangLanger_Pexels.mp4");
    let dir = tempfile::tempdir()?;
    let (stats, faces, video) = (
        dir.path().join("stats.json"),
        dir.path().join("faces.jsonl"),
        dir.path().join("live.mp4"),
    );
    let started = Instant::now();
    let output = live(&[
        os("--source"),
        input.as_os_str(),
        os("--realtime"),
        os("--no-window"),
        os("--stats-json"),
        stats.as_os_str(),
        os("--json"),
        faces.as_os_str(),
        os("--record"),
        video.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(19),
        "played at the native rate: 19.7 s of video took {:?}",
        started.elapsed()
    );
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains(" fps, latency "))
            .count()
            >= 15,
        "a status line about once per second: {stderr}"
    );
    let stats = json(&stats);
    assert_eq!(count(&stats, "captured"), 472, "{stats}");
    let processed = check_accounting(&stats);
    // Other tests share the two cores, so this asks for less than the 95 % of scripts/bench-live.sh.
    assert!(processed >= 472 / 2, "{stats}");

    let faces = records(&faces);
    let frames_with_face: std::collections::BTreeSet<u64> =
        faces.iter().filter_map(|r| r["frame"].as_u64()).collect();
    assert!(
        frames_with_face.len() as f64 >= 0.9 * processed as f64,
        "face in {} of {processed} processed frames",
        frames_with_face.len()
    );
    assert_face_record(&faces[0]);
    assert_eq!(
        decoded_frames(&video),
        processed,
        "every shown frame recorded"
    );
    Ok(())
}

#[test]
fn clip_without_faces_gives_no_face_records() -> anyhow::Result<()> {
    let input = video("no_face/pyfeat_no_face.mp4");
    let dir = tempfile::tempdir()?;
    let (stats, faces) = (dir.path().join("stats.json"), dir.path().join("f.jsonl"));
    let output = live(&[
        os("--source"),
        input.as_os_str(),
        os("--realtime"),
        os("--no-window"),
        os("--stats-json"),
        stats.as_os_str(),
        os("--json"),
        faces.as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stats = json(&stats);
    assert_eq!(count(&stats, "captured"), decoded_frames(&input), "{stats}");
    check_accounting(&stats);
    let faces = records(&faces);
    assert!(
        faces.is_empty(),
        "face records on a clip without faces: {faces:?}"
    );
    Ok(())
}

#[test]
fn the_ckplus_model_gives_action_units_and_their_tags_in_live_mode() -> anyhow::Result<()> {
    let input = video("pyfeat_single_face.mp4");
    let dir = tempfile::tempdir()?;
    let faces = dir.path().join("f.jsonl");
    let model = repo_file("models/emolens-ckplus.onnx");
    let output = live(&[
        os("--source"),
        input.as_os_str(),
        os("--no-window"),
        os("--model"),
        model.as_os_str(),
        os("--show-aus"),
        os("--view"),
        os("valence"),
        os("--json"),
        faces.as_os_str(),
    ]);
    succeeded(&output);
    let faces = records(&faces);
    assert!(!faces.is_empty(), "the man is found");
    for face in &faces {
        let units = face["aus"]
            .as_object()
            .expect("action units in every record");
        assert_eq!(units.len(), 23, "{face}");
        assert!(units.contains_key("AU12"), "{face}");
    }
    // The smile at the end: the lip corner puller (AU12) is present in most of the last frames.
    let last = &faces[faces.len() * 2 / 3..];
    let smiling = last
        .iter()
        .filter(|f| f["aus"]["AU12"].as_f64().unwrap_or(0.0) >= 0.5)
        .count();
    assert!(
        smiling * 2 > last.len(),
        "AU12 in {smiling} of {}",
        last.len()
    );
    Ok(())
}

/// A virtual X display, stopped when dropped.
struct Xvfb {
    server: Child,
    display: String,
}

impl Xvfb {
    /// Starts Xvfb on a free display number (it picks one and reports it).
    fn start() -> Self {
        let mut server = Process::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x720x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (Debian's xvfb, installed by scripts/setup.sh)");
        let mut line = String::new();
        BufReader::new(server.stdout.take().expect("Xvfb stdout"))
            .read_line(&mut line)
            .expect("Xvfb reports its display");
        let number = line.trim();
        assert!(!number.is_empty(), "Xvfb did not start");
        Self {
            server,
            display: format!(":{number}"),
        }
    }

    /// A PNG of the whole screen, grabbed with ffmpeg.
    fn screenshot(&self, path: &Path) {
        let status = Process::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "x11grab",
                "-video_size",
                "1280x720",
                "-i",
            ])
            .arg(&self.display)
            .args(["-frames:v", "1"])
            .arg(path)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "screenshot of {} failed", self.display);
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Pixels of the screenshot within 3 levels of any emotion box colour.
fn box_coloured_pixels(png: &Path) -> usize {
    let image = opencv::imgcodecs::imread(png, opencv::imgcodecs::IMREAD_COLOR)
        .expect("OpenCV reads the screenshot");
    assert!(!image.empty(), "{}: empty screenshot", png.display());
    let colours: Vec<[f64; 3]> = emolens::dataset::FER2013_LABELS
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let c = emolens::draw::label_colour(label, i);
            [c[0], c[1], c[2]]
        })
        .collect();
    let pixels: &[Vec3b] = image.data_typed().expect("8-bit BGR pixels");
    pixels
        .iter()
        .filter(|p| {
            colours
                .iter()
                .any(|c| (0..3).all(|k| (f64::from(p[k]) - c[k]).abs() <= 3.0))
        })
        .count()
}

#[test]
fn window_under_xvfb_shows_a_box_on_the_face_and_ctrl_c_finishes() -> anyhow::Result<()> {
    default_model();
    let input = video("pyfeat_WolfgangLanger_Pexels.mp4");
    let dir = tempfile::tempdir()?;
    let stats = dir.path().join("stats.json");
    let xvfb = Xvfb::start();
    let child = Process::new(assert_cmd::cargo::cargo_bin("emolens"))
        .arg("live")
        .arg("--source")
        .arg(&input)
        .args(["--realtime", "--stats-json"])
        .arg(&stats)
        .env("DISPLAY", &xvfb.display)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // The window shows the clip's first seconds: wait until a box is on screen.
    let shot = dir.path().join("shot.png");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut coloured = 0;
    while coloured < 2000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1500));
        xvfb.screenshot(&shot);
        coloured = box_coloured_pixels(&shot);
    }
    Process::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    let output = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        coloured >= 2000,
        "{coloured} pixels in a box colour on the screen; stderr: {stderr}"
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "Ctrl-C ends like q: {stderr}"
    );
    let stats = json(&stats);
    let processed = check_accounting(&stats);
    assert!(processed > 0 && processed < 472, "{stats}");
    Ok(())
}

#[test]
fn sources_that_do_not_exist_are_refused_clearly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.mp4");
    for (source, needles) in [
        (os("99"), &["camera 99", "--source"][..]),
        (missing.as_os_str(), &["missing.mp4", "not found"][..]),
    ] {
        let output = live(&[os("--source"), source, os("--no-window")]);
        assert_clean_failure(&output, needles);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "one error line: {stderr}");
        assert_eq!(
            stderr.lines().filter(|l| !l.starts_with("note:")).count(),
            1,
            "nothing but the error: {stderr}"
        );
    }
    Ok(())
}
