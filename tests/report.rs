//! The engagement report on real clips: two faces side by side, the numbers against the face
//! records CSV, the HTML page in headless Chromium, a clip without faces, and a cohort report
//! over several records files.

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

#[test]
fn report_numbers_from_elsewhere_cannot_crash_it_or_make_it_run_away() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let good = r#"{"frame":0,"time":0.5,"id":1,"box":[1,2,30,30],"label":"happy","confidence":0.9,"probs":{"happy":0.9,"sad":0.1}}"#;
    let run = |time: &str, extra: &[&str]| {
        let records = dir.path().join("faces.jsonl");
        std::fs::write(&records, format!("{good}\n{}\n", good.replace("0.5", time)))
            .expect("records written");
        let out = dir.path().join("r");
        let mut args = vec![os("report"), records.as_os_str(), os("-o"), out.as_os_str()];
        args.extend(extra.iter().map(|a| os(a)));
        let started = std::time::Instant::now();
        let output = emolens(&args);
        assert!(
            started.elapsed().as_secs() < 30,
            "ran away: {time} {extra:?}"
        );
        output
    };
    for time in ["1e300", "1e12", "-50"] {
        assert_clean_failure(&run(time, &[]), &["faces.jsonl", "line 2", "`time`"]);
    }
    assert_clean_failure(
        &run("1.5", &["--duration", "1e12"]),
        &["--duration", "out of range"],
    );
    assert_clean_failure(
        &run("3600", &["--window", "0.000001s"]),
        &["windows", "give a --window of at least"],
    );
    assert!(
        run("3600", &["--window", "1s"]).status.success(),
        "an hour in 1 s windows"
    );
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

/// Face records of two real clips as `annotate --report` lays them out for several inputs
/// (`DIR/<video>/faces.jsonl`, the same file name twice), plus a copy under its own name:
/// `[crying woman, smiling man, copy of the smiling man]`.
fn cohort_records(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let reports = dir.join("reports");
    succeeded(&emolens(&[
        os("annotate"),
        os("--quiet"),
        video("pyfeat_WolfgangLanger_Pexels.mp4").as_os_str(),
        video("pyfeat_single_face.mp4").as_os_str(),
        os("-o"),
        dir.join("annotated").as_os_str(),
        os("--report"),
        reports.as_os_str(),
    ]));
    let woman = reports.join("pyfeat_WolfgangLanger_Pexels/faces.jsonl");
    let man = reports.join("pyfeat_single_face/faces.jsonl");
    let copy = dir.join("lesson3.jsonl");
    std::fs::copy(&man, &copy)?;
    Ok(vec![woman, man, copy])
}

#[test]
fn report_over_several_records_files_writes_a_cohort() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let files = cohort_records(dir.path())?;
    let out = dir.path().join("cohort");
    let mut args = vec![os("report")];
    args.extend(files.iter().map(|f| f.as_os_str()));
    args.extend([os("-o"), out.as_os_str()]);
    let stdout = succeeded(&emolens(&args));

    let names = [
        "pyfeat_WolfgangLanger_Pexels-faces",
        "pyfeat_single_face-faces",
        "lesson3",
    ];
    let rows = csv_rows(&out.join("cohort.csv"));
    assert_eq!(rows.len(), 3, "one row per video: {rows:?}");
    for ((row, name), file) in rows.iter().zip(names).zip(&files) {
        assert_eq!(row["video"], name);
        assert_eq!(row["records_file"], file.display().to_string());
        assert!(stdout.contains(name), "{stdout}");
        let records = crate::util::records(file);
        assert_eq!(
            number(row, "face_records") as usize,
            records.len(),
            "{row:?}"
        );
        let last = records
            .iter()
            .filter_map(|r| r["time"].as_f64())
            .fold(0.0, f64::max);
        assert!((number(row, "duration") - last).abs() < 1e-3, "{row:?}");
        // The per-video report is in its folder and agrees with the cohort row.
        let class = csv_rows(&out.join(name).join("class.csv"));
        let class_records: f64 = class.iter().map(|r| number(r, "face_records")).sum();
        assert_eq!(class_records, number(row, "face_records"), "{name}");
        for file in ["tracks.csv", "report.html"] {
            assert!(out.join(name).join(file).is_file(), "{name}/{file}");
        }
        for column in [
            "attention",
            "attentive_share",
            "engagement",
            "mean_faces_present",
        ] {
            let value = number(row, column);
            assert!(value > 0.0 && value <= 1.0, "{column} {value}: {row:?}");
        }
        let total = |prefix: &str| -> f64 {
            row.iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, _)| number(row, k))
                .sum()
        };
        assert!(
            (total("share_") - 1.0).abs() < 1e-3,
            "label shares: {row:?}"
        );
        assert!(
            (total("valence_") - 1.0).abs() < 1e-3,
            "view shares: {row:?}"
        );
    }
    // The clips' known expressions: the woman cries, the man smiles.
    assert!(number(&rows[0], "valence_negative") > 0.3, "{:?}", rows[0]);
    assert!(number(&rows[1], "share_happy") > 0.5, "{:?}", rows[1]);
    assert_eq!(
        rows[1]
            .iter()
            .filter(|(k, _)| *k != "video" && *k != "records_file")
            .collect::<Vec<_>>(),
        rows[2]
            .iter()
            .filter(|(k, _)| *k != "video" && *k != "records_file")
            .collect::<Vec<_>>(),
        "the same records give the same figures"
    );

    let page = std::fs::read_to_string(out.join("cohort.html"))?;
    for name in names {
        assert!(
            page.contains(&format!("href=\"{name}/report.html\"")),
            "link to {name}"
        );
    }
    assert!(
        page.contains("<svg") && !page.contains("<script"),
        "inline chart, no scripts"
    );
    assert!(!page.contains("src=\"http"), "no network resources");
    assert!(
        stdout.contains("cohort.csv") && stdout.contains("cohort.html"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn cohort_refuses_duration_missing_files_and_other_labels() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let record = |labels: &str| {
        format!(
            "{{\"frame\":0,\"time\":0.0,\"id\":1,\"box\":[0,0,10,10],\"label\":\"calm\",\
             \"confidence\":0.9,\"probs\":{{{labels}}}}}\n"
        )
    };
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&a, record("\"calm\":0.9,\"busy\":0.1"))?;
    std::fs::write(&b, record("\"calm\":0.8,\"busy\":0.1,\"sad\":0.1"))?;
    let out = dir.path().join("cohort");
    let run = |files: &[&Path], extra: &[&str]| {
        let mut args = vec![os("report")];
        args.extend(files.iter().map(|f| f.as_os_str()));
        args.extend([os("-o"), out.as_os_str()]);
        args.extend(extra.iter().map(|e| os(e)));
        emolens(&args)
    };

    let output = run(&[&a, &a], &["--duration", "60"]);
    assert_clean_failure(&output, &["--duration", "one video", "2 records files"]);
    let missing = dir.path().join("missing.jsonl");
    assert_clean_failure(
        &run(&[&a, &missing], &[]),
        &["missing.jsonl", "check that the file exists"],
    );
    let output = run(&[&a, &b], &[]);
    assert_clean_failure(&output, &["b.jsonl", "a.jsonl", "same model"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(!out.exists(), "nothing written for a refused cohort");

    // The same file twice is a valid cohort: the second gets `-2`.
    succeeded(&run(&[&a, &a], &[]));
    let rows = csv_rows(&out.join("cohort.csv"));
    assert_eq!(rows.len(), 2);
    assert!(rows[0]["video"].ends_with("-a"), "{rows:?}");
    assert_eq!(rows[1]["video"], format!("{}-2", rows[0]["video"]));
    for row in &rows {
        assert!(
            out.join(&row["video"]).join("report.html").is_file(),
            "{row:?}"
        );
    }
    Ok(())
}
