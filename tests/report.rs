//! The engagement report on real clips: two faces side by side, the numbers against the face
//! records CSV, the HTML page in headless Chromium, and a clip without faces.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use opencv::prelude::*;

use crate::util::{
    assert_clean_failure, csv_rows, default_model, number, os, shared_data, succeeded, video,
};

fn emolens(args: &[&std::ffi::OsStr]) -> Output {
    default_model();
    Command::cargo_bin("emolens")
        .expect("binary built")
        .args(args)
        .output()
        .expect("emolens runs")
}

/// The Pexels woman (sad, then happy) and the webcam man (neutral, then smiling, played three
/// times) side by side: 1280x360, 24 fps, about 7 s.
fn two_face_clip(dir: &Path) -> PathBuf {
    let videos = shared_data().join("videos");
    let out = dir.join("two.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(videos.join("pyfeat_WolfgangLanger_Pexels.mp4"))
        .args(["-stream_loop", "2", "-i"])
        .arg(videos.join("pyfeat_single_face.mp4"))
        .args([
            "-filter_complex",
            "[0:v]fps=24,setpts=PTS-STARTPTS[a];[1:v]fps=24,setpts=PTS-STARTPTS[b];\
             [a][b]hstack=inputs=2:shortest=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs (installed by scripts/setup.sh)");
    assert!(status.success(), "ffmpeg made the side-by-side clip");
    out
}

/// Annotates `input` with a report into `dir/report` and the records as CSV in `dir/faces.csv`.
fn annotate_with_report(input: &Path, dir: &Path) -> (PathBuf, PathBuf, String) {
    let (report, csv) = (dir.join("report"), dir.join("faces.csv"));
    let stdout = succeeded(&emolens(&[
        os("annotate"),
        os("--quiet"),
        input.as_os_str(),
        os("-o"),
        dir.join("out.mp4").as_os_str(),
        os("--csv"),
        csv.as_os_str(),
        os("--report"),
        report.as_os_str(),
        os("--window"),
        os("2s"),
    ]));
    (report, csv, stdout)
}

/// Rows of a CSV file as maps from column name to text.
#[test]
fn two_faces_side_by_side_get_two_tracks_with_their_expressions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clip = two_face_clip(dir.path());
    let (report, csv, stdout) = annotate_with_report(&clip, dir.path());
    assert!(stdout.contains("2 tracks"), "{stdout}");

    let faces = csv_rows(&csv);
    let ids: BTreeSet<String> = faces.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids.len(), 2, "two stable IDs: {ids:?}");
    let share = |right_half: bool, labels: &[&str]| {
        let side: Vec<_> = faces
            .iter()
            .filter(|r| (number(r, "box_x") >= 640.0) == right_half)
            .collect();
        let ids: BTreeSet<&String> = side.iter().map(|r| &r["id"]).collect();
        assert_eq!(ids.len(), 1, "one track per face: {ids:?}");
        let hits = side
            .iter()
            .filter(|r| labels.contains(&r["label"].as_str()))
            .count();
        hits as f64 / side.len().max(1) as f64
    };
    let woman_negative = share(false, &["sad", "fear", "angry", "disgust"]);
    let man_happy = share(true, &["happy"]);
    assert!(woman_negative > 0.8, "the woman cries: {woman_negative}");
    assert!(man_happy > 0.5, "the man smiles: {man_happy}");
    assert_eq!(
        csv_rows(&report.join("tracks.csv"))
            .iter()
            .map(|r| r["track"].clone())
            .collect::<BTreeSet<_>>(),
        ids
    );
    Ok(())
}

#[test]
fn report_numbers_equal_those_recomputed_from_the_records_csv() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clip = two_face_clip(dir.path());
    let (report, csv, _) = annotate_with_report(&clip, dir.path());
    let faces = csv_rows(&csv);
    let window_of = |r: &BTreeMap<String, String>| (number(r, "time") / 2.0).floor() as usize;

    for row in csv_rows(&report.join("tracks.csv")) {
        let window = (number(&row, "window_start") / 2.0).round() as usize;
        let mine: Vec<_> = faces
            .iter()
            .filter(|r| r["id"] == row["track"] && window_of(r) == window)
            .collect();
        assert_eq!(number(&row, "frames") as usize, mine.len(), "{row:?}");
        let frontal = mine.iter().filter(|r| r["frontal"] == "1").count();
        let attention = frontal as f64 / mine.len() as f64;
        assert!(
            (number(&row, "attention") - attention).abs() < 1e-3,
            "{row:?}"
        );
        for label in ["sad", "happy", "neutral"] {
            let n = mine.iter().filter(|r| r["label"] == label).count();
            let expected = n as f64 / mine.len() as f64;
            let got = number(&row, &format!("share_{label}"));
            assert!((got - expected).abs() < 1e-3, "{label}: {row:?}");
        }
        let engaged = mine
            .iter()
            .filter(|r| {
                r["frontal"] == "1"
                    && ["happy", "surprise", "neutral"].contains(&r["label"].as_str())
            })
            .count();
        let engagement = engaged as f64 / mine.len() as f64;
        assert!(
            (number(&row, "engagement") - engagement).abs() < 1e-3,
            "{row:?}"
        );
    }
    for row in csv_rows(&report.join("class.csv")) {
        let window = (number(&row, "window_start") / 2.0).round() as usize;
        let in_window: Vec<_> = faces.iter().filter(|r| window_of(r) == window).collect();
        let present: BTreeSet<&String> = in_window.iter().map(|r| &r["id"]).collect();
        assert_eq!(number(&row, "face_records") as usize, in_window.len());
        assert_eq!(number(&row, "faces_present") as usize, present.len());
        let happy = in_window.iter().filter(|r| r["label"] == "happy").count();
        let expected = happy as f64 / in_window.len().max(1) as f64;
        assert!(
            (number(&row, "share_happy") - expected).abs() < 1e-3,
            "{row:?}"
        );
    }

    // `emolens report` on the saved records gives the same class table.
    let again = dir.path().join("again");
    let records = report.join("faces.jsonl");
    let class = csv_rows(&report.join("class.csv"));
    let duration = class.last().map_or(0.0, |r| number(r, "window_end"));
    assert!(duration > 6.0, "the clip's length: {duration}");
    succeeded(&emolens(&[
        os("report"),
        records.as_os_str(),
        os("-o"),
        again.as_os_str(),
        os("--window"),
        os("2"),
        os("--duration"),
        os(&duration.to_string()),
    ]));
    assert_eq!(csv_rows(&again.join("class.csv")), class);
    assert_eq!(
        csv_rows(&again.join("tracks.csv")),
        csv_rows(&report.join("tracks.csv"))
    );
    Ok(())
}

#[test]
fn report_page_renders_in_headless_chromium_with_its_charts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clip = two_face_clip(dir.path());
    let (report, _, _) = annotate_with_report(&clip, dir.path());
    let page = std::fs::read_to_string(report.join("report.html"))?;
    assert!(page.contains("<svg"), "inline SVG charts");
    assert!(!page.contains("src=\"http"), "no network resources");
    let shot = dir.path().join("shot.png");
    let profile = dir.path().join("chromium-profile");
    let status = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.join("report.html").display()))
        .output()
        .expect("chromium runs (installed by scripts/setup.sh)")
        .status;
    assert!(
        status.success() && shot.is_file(),
        "chromium took the screenshot"
    );
    let image = opencv::imgcodecs::imread(&shot, opencv::imgcodecs::IMREAD_COLOR)?;
    assert_eq!((image.cols(), image.rows()), (1200, 1600));
    // The stacked expression bars: many pixels of the happy (#fad228) and sad (#1e78c8) colours.
    let count = |rgb: [u8; 3]| -> anyhow::Result<usize> {
        let mut n = 0;
        for row in 0..image.rows() {
            for px in image.at_row::<opencv::core::Vec3b>(row)? {
                let close = (0..3).all(|c| px[2 - c].abs_diff(rgb[c]) <= 6);
                n += usize::from(close);
            }
        }
        Ok(n)
    };
    let (happy, sad) = (count([0xfa, 0xd2, 0x28])?, count([0x1e, 0x78, 0xc8])?);
    assert!(
        happy > 5000 && sad > 5000,
        "chart colours: happy {happy}, sad {sad}"
    );
    Ok(())
}

#[test]
fn a_clip_without_faces_gives_a_report_that_says_so() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clip = video("no_face/pyfeat_no_face.mp4");
    let (report, _, stdout) = annotate_with_report(&clip, dir.path());
    assert!(stdout.contains("no faces found"), "{stdout}");
    let page = std::fs::read_to_string(report.join("report.html"))?;
    assert!(page.contains("No faces were found"), "the page says so");
    let class = csv_rows(&report.join("class.csv"));
    assert!(!class.is_empty(), "one row per window of the clip");
    assert!(class.iter().all(|r| number(r, "faces_present") == 0.0));
    Ok(())
}

#[test]
fn report_refuses_records_that_are_not_face_records() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"frame\": 0}\nnot json\n")?;
    let output = emolens(&[
        os("report"),
        bad.as_os_str(),
        os("-o"),
        dir.path().join("r").as_os_str(),
    ]);
    assert_clean_failure(&output, &["bad.jsonl", "line 1"]);
    let output = emolens(&[
        os("report"),
        bad.as_os_str(),
        os("-o"),
        dir.path().join("r").as_os_str(),
        os("--window"),
        os("0s"),
    ]);
    assert_clean_failure(&output, &["window", "0s"]);
    Ok(())
}

/// Sharpness (variance of the Laplacian) of the inner half of `bbox` in frame 30 of `video`.
fn face_sharpness(video: &Path, bbox: [i32; 4], dir: &Path) -> anyhow::Result<f64> {
    let png = dir.join("frame.png");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-vf", "select=eq(n\\,30)", "-frames:v", "1"])
        .arg(&png)
        .status()?;
    anyhow::ensure!(status.success(), "ffmpeg extracted a frame");
    let image = opencv::imgcodecs::imread(&png, opencv::imgcodecs::IMREAD_GRAYSCALE)?;
    let [x, y, w, h] = bbox;
    let inner = opencv::core::Rect::new(x + w / 4, y + h / 4, w / 2, h / 2);
    let mut edges = opencv::core::Mat::default();
    opencv::imgproc::laplacian_def(
        &opencv::core::Mat::roi(&image, inner)?,
        &mut edges,
        opencv::core::CV_64F,
    )?;
    let (mut mean, mut deviation) = (
        opencv::core::Scalar::default(),
        opencv::core::Scalar::default(),
    );
    opencv::core::mean_std_dev_def(&edges, &mut mean, &mut deviation)?;
    Ok(deviation[0] * deviation[0])
}

#[test]
fn blur_hides_faces_and_keeps_their_records() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = video("pyfeat_single_face.mp4");
    let mut sharpness = Vec::new();
    let mut records = Vec::new();
    for blur in [false, true] {
        let (out, json) = (
            dir.path().join(format!("out-{blur}.mp4")),
            dir.path().join(format!("faces-{blur}.jsonl")),
        );
        let mut args = vec![
            os("annotate"),
            os("--quiet"),
            input.as_os_str(),
            os("-o"),
            out.as_os_str(),
            os("--json"),
            json.as_os_str(),
        ];
        if blur {
            args.push(os("--blur"));
        }
        succeeded(&emolens(&args));
        let text = std::fs::read_to_string(&json)?;
        let frame30: serde_json::Value = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<Vec<serde_json::Value>, _>>()?
            .into_iter()
            .find(|r| r["frame"] == 30)
            .ok_or_else(|| anyhow::anyhow!("a face in frame 30"))?;
        let bbox: [i32; 4] = serde_json::from_value(frame30["box"].clone())?;
        sharpness.push(face_sharpness(&out, bbox, dir.path())?);
        records.push(text);
    }
    assert_eq!(records[0], records[1], "blurring changes only the picture");
    assert!(
        sharpness[1] * 10.0 < sharpness[0],
        "blurred face detail {} against {}",
        sharpness[1],
        sharpness[0]
    );
    Ok(())
}
