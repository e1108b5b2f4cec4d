//! The face-analysis core on real photos and clips: YuNet finds the labelled faces of a group
//! photo in every frame, a turned face (and says it is turned, so the report's attention
//! drops), keeps one ID per face on the 1080p pan and lays its tags out without overlaps; Haar
//! stays usable; `evaluate-faces` measures recall; wrong detector files and flags are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use opencv::core::{Rect, Size};

use emolens::faces::captions::Captions;
use emolens::faces::track::{TrackedBox, TrackedFace};

use crate::util::{
    assert_clean_failure, csv_rows, default_model, ffmpeg, number, os, records, repo_file,
    shared_data, succeeded, video,
};

fn emolens(args: &[&std::ffi::OsStr]) -> Output {
    default_model();
    Command::cargo_bin("emolens")
        .expect("binary built")
        .args(args)
        .output()
        .expect("emolens runs")
}

/// A photo of ../shared/data/faces.
fn photo(name: &str) -> PathBuf {
    let path = shared_data().join("faces").join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// A still clip of `frames` frames at 25 fps from a photo, through the ffmpeg filter `filter`.
fn still_clip(photo: &Path, filter: &str, frames: u32, out: &Path) -> anyhow::Result<()> {
    ffmpeg(&[
        os("-loop"),
        os("1"),
        os("-i"),
        photo.as_os_str(),
        os("-vf"),
        os(&format!(
            "{filter},scale=trunc(iw/2)*2:trunc(ih/2)*2,fps=25"
        )),
        os("-frames:v"),
        os(&frames.to_string()),
        os("-c:v"),
        os("libx264"),
        os("-preset"),
        os("ultrafast"),
        os("-pix_fmt"),
        os("yuv420p"),
        out.as_os_str(),
    ])
}

/// Runs `annotate` quietly on `input` with `extra` flags, writing `dir/out.mp4` and the
/// records `dir/faces.jsonl`.
fn run_annotate(input: &Path, dir: &Path, extra: &[&std::ffi::OsStr]) -> Output {
    let (json, out) = (dir.join("faces.jsonl"), dir.join("out.mp4"));
    let mut args = vec![
        os("annotate"),
        os("--quiet"),
        input.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--json"),
        json.as_os_str(),
    ];
    args.extend_from_slice(extra);
    emolens(&args)
}

/// Annotates `input` with `extra` flags, which must succeed; returns the face records.
fn annotate(input: &Path, dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let extra: Vec<&std::ffi::OsStr> = extra.iter().map(|a| os(a)).collect();
    succeeded(&run_annotate(input, dir, &extra));
    records(&dir.join("faces.jsonl"))
}

/// Face records per frame.
fn per_frame(faces: &[serde_json::Value]) -> BTreeMap<u64, Vec<&serde_json::Value>> {
    let mut frames: BTreeMap<u64, Vec<&serde_json::Value>> = BTreeMap::new();
    for face in faces {
        frames
            .entry(face["frame"].as_u64().expect("a frame number"))
            .or_default()
            .push(face);
    }
    frames
}

#[test]
fn yunet_finds_every_labelled_face_of_a_group_photo_in_every_frame() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clip = dir.path().join("group.mp4");
    // Six faces labelled in boxes.csv, 30 to 60 pixels tall.
    still_clip(&photo("dlib_2008_002470.jpg"), "null", 12, &clip)?;
    let faces = annotate(&clip, dir.path(), &[]);
    let frames = per_frame(&faces);
    assert_eq!(frames.len(), 12, "a face record in every frame");
    for (frame, found) in &frames {
        assert_eq!(found.len(), 6, "frame {frame}: {found:?}");
        for face in found {
            assert_eq!(
                face["landmarks"].as_array().map(Vec::len),
                Some(5),
                "{face}"
            );
        }
    }
    let ids: BTreeSet<u64> = faces.iter().filter_map(|f| f["id"].as_u64()).collect();
    assert_eq!(ids.len(), 6, "one ID per face on a still picture: {ids:?}");
    Ok(())
}

#[test]
fn a_turned_face_is_found_and_not_frontal_so_attention_drops() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A young man of a dlib photo turns about 45 degrees; mirrored, he turns the other way.
    let (frontal, turned, both) = (
        dir.path().join("frontal.mp4"),
        dir.path().join("turned.mp4"),
        dir.path().join("both.mp4"),
    );
    still_clip(
        &photo("dlib_2008_002079.jpg"),
        "crop=100:110:5:160,scale=320:352,hflip",
        25,
        &turned,
    )?;
    // The webcam man looking at the camera, the same size, then the turned face.
    ffmpeg(&[
        os("-i"),
        video("pyfeat_single_face.mp4").as_os_str(),
        os("-vf"),
        os("crop=240:264:200:40,scale=320:352,fps=25"),
        os("-frames:v"),
        os("25"),
        os("-an"),
        os("-c:v"),
        os("libx264"),
        os("-preset"),
        os("ultrafast"),
        frontal.as_os_str(),
    ])?;
    ffmpeg(&[
        os("-i"),
        frontal.as_os_str(),
        os("-i"),
        turned.as_os_str(),
        os("-filter_complex"),
        os("[0:v][1:v]concat=n=2:v=1[v]"),
        os("-map"),
        os("[v]"),
        os("-c:v"),
        os("libx264"),
        os("-preset"),
        os("ultrafast"),
        both.as_os_str(),
    ])?;
    let report = dir.path().join("report");
    let faces = annotate(
        &both,
        dir.path(),
        &[
            "--report",
            report.to_str().expect("a UTF-8 path"),
            "--window",
            "1s",
        ],
    );
    let frames = per_frame(&faces);
    let turned: Vec<&serde_json::Value> = (25..50)
        .flat_map(|f| frames.get(&f).cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        turned.len(),
        25,
        "the turned face in every frame: {frames:?}"
    );
    let facing_aside = turned
        .iter()
        .filter(|f| f["yaw"].as_f64().is_some_and(|yaw| yaw.abs() > 30.0) && f["frontal"] == false)
        .count();
    assert!(
        facing_aside >= 20,
        "turned and not frontal in {facing_aside} of 25: {turned:?}"
    );
    let looking = (0..25)
        .flat_map(|f| frames.get(&f).cloned().unwrap_or_default())
        .filter(|f| f["frontal"] == true)
        .count();
    assert!(
        looking >= 20,
        "the webcam man faces the camera: {looking} of 25"
    );
    let class = csv_rows(&report.join("class.csv"));
    assert!(class.len() >= 2, "{class:?}");
    // The share of the faces present that look at the camera at least half the time.
    let share = |row: usize| number(&class[row], "attentive_share");
    let (first, second) = (share(0), share(1));
    assert!(
        first == 1.0 && second == 0.0,
        "attentive share {first} then {second}"
    );
    Ok(())
}

#[test]
fn the_1080p_pan_keeps_one_id_per_face_and_tags_do_not_overlap() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let faces = annotate(&video("multiface_pan_1080p.mp4"), dir.path(), &[]);
    let frames = per_frame(&faces);
    assert_eq!(frames.len(), 200, "faces in every frame");
    assert!(
        frames.values().all(|f| f.len() >= 12),
        "15 to 20 faces a frame"
    );
    // The camera pans down over a still photo: a face gets its ID when it comes in at an edge
    // (or in the first frame) and keeps it until it leaves at an edge (or the clip ends).
    let frame = Rect::new(0, 0, 1920, 1080);
    let at_edge = |b: Rect| {
        b.x <= 30
            || b.y <= 30
            || b.x + b.width >= frame.width - 30
            || b.y + b.height >= frame.height - 30
    };
    let mut tracks: BTreeMap<u64, Vec<(u64, Rect)>> = BTreeMap::new();
    for face in &faces {
        tracks
            .entry(face["id"].as_u64().expect("an id"))
            .or_default()
            .push((face["frame"].as_u64().expect("a frame"), bbox(face)));
    }
    for (id, seen) in &tracks {
        let (first, last) = (seen[0], seen[seen.len() - 1]);
        assert_eq!(last.0 - first.0 + 1, seen.len() as u64, "#{id} has gaps");
        assert!(
            first.0 == 0 || at_edge(first.1),
            "#{id} starts inside: {first:?}"
        );
        assert!(
            last.0 == 199 || at_edge(last.1),
            "#{id} ends inside: {last:?}"
        );
    }
    // The tags as drawn: inside the frame and on no other tag.
    let labels: Vec<String> = faces[0]["probs"]
        .as_object()
        .expect("probabilities")
        .keys()
        .cloned()
        .collect();
    let captions = Captions::plain(&labels);
    for found in frames.values().step_by(10) {
        let tracked: Vec<TrackedFace> = found.iter().map(|f| tracked(f, &labels)).collect();
        let tags: Vec<Rect> = emolens::draw::tag_rects(&tracked, &captions, Size::new(1920, 1080))?
            .into_iter()
            .flatten()
            .collect();
        for (i, a) in tags.iter().enumerate() {
            assert_eq!(
                emolens::faces::intersect(*a, frame),
                *a,
                "{a:?} leaves the frame"
            );
            for b in &tags[i + 1..] {
                let overlap = emolens::faces::intersect(*a, *b);
                assert!(
                    overlap.width == 0 || overlap.height == 0,
                    "{a:?} overlaps {b:?}"
                );
            }
        }
    }
    Ok(())
}

fn bbox(face: &serde_json::Value) -> Rect {
    let b: Vec<i32> = face["box"]
        .as_array()
        .expect("a box")
        .iter()
        .map(|v| v.as_i64().expect("a number") as i32)
        .collect();
    Rect::new(b[0], b[1], b[2], b[3])
}

/// A face record as the drawing code sees it.
fn tracked(face: &serde_json::Value, labels: &[String]) -> TrackedFace {
    TrackedFace {
        track: TrackedBox {
            id: face["id"].as_u64().expect("an id"),
            bbox: bbox(face),
            seen: true,
            landmarks: None,
            pose: None,
            frontal: true,
            is_new: false,
        },
        probs: labels
            .iter()
            .map(|l| face["probs"][l].as_f64().expect("a probability") as f32)
            .collect(),
        units: Vec::new(),
    }
}

#[test]
fn haar_still_finds_the_frontal_face() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let faces = annotate(
        &video("pyfeat_single_face.mp4"),
        dir.path(),
        &["--detector", "haar"],
    );
    let frames = per_frame(&faces);
    assert!(frames.len() >= 68, "face in {} of 72 frames", frames.len());
    assert!(faces
        .iter()
        .all(|f| f["landmarks"].is_null() && f["yaw"].is_null()));
    Ok(())
}

#[test]
fn evaluate_faces_measures_recall_on_the_labelled_photos() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("recall.json");
    let boxes = shared_data().join("faces").join("boxes.csv");
    let stdout = succeeded(&emolens(&[
        os("evaluate-faces"),
        os("--boxes"),
        boxes.as_os_str(),
        os("--json"),
        json.as_os_str(),
    ]));
    assert!(
        stdout.contains("recall") && stdout.contains("dlib_dogs.jpg"),
        "{stdout}"
    );
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let (found, faces) = (result["found"].as_u64(), result["faces"].as_u64());
    assert_eq!(faces, Some(82));
    assert!(found >= Some(78), "recall >= 95 %: {result}");
    assert!(result["false_faces_people"].as_u64() <= Some(2), "{result}");
    Ok(())
}

#[test]
fn wrong_detector_files_and_flags_are_refused_in_one_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = video("pyfeat_single_face.mp4");
    let model = repo_file("models/emolens-fer2013.onnx");
    let run = |extra: &[&std::ffi::OsStr]| run_annotate(&input, dir.path(), extra);
    let wrong = run(&[os("--detector-model"), model.as_os_str()]);
    assert_clean_failure(
        &wrong,
        &[
            "emolens-fer2013.onnx",
            "not a YuNet face detector",
            "--detector-model",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&wrong.stderr)
            .trim()
            .lines()
            .count(),
        1
    );
    let missing = run(&[os("--detector-model"), os("/nonexistent/yunet.onnx")]);
    assert_clean_failure(&missing, &["/nonexistent/yunet.onnx", "not found"]);
    let other = run(&[os("--cascade"), os("x.xml")]);
    assert_clean_failure(&other, &["--cascade", "--detector haar"]);
    let not_a_cascade = run(&[
        os("--detector"),
        os("haar"),
        os("--cascade"),
        model.as_os_str(),
    ]);
    assert_clean_failure(&not_a_cascade, &["not a usable Haar cascade", "--cascade"]);
    assert_eq!(
        String::from_utf8_lossy(&not_a_cascade.stderr)
            .trim()
            .lines()
            .count(),
        1
    );
    assert!(!dir.path().join("out.mp4").exists(), "no video written");
    Ok(())
}
