//! Batch runs of `emolens annotate` on real clips: bad inputs reported while the rest is
//! annotated, and a run killed with SIGKILL resumed by `--skip-done` to the same outputs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::annotate::annotate;
use crate::util::{default_model, os, partial_files, records, video};

/// Short real clips (72, 95 and 95 frames), used over and over as the batch's good videos.
const CLIPS: [&str; 3] = [
    "pyfeat_single_face.mp4",
    "no_face/pyfeat_no_face.mp4",
    "no_face/pyfeat_noface_face.mov",
];

/// Copies `count` good videos into `folder` (named good00.mp4 ...), cycling through [`CLIPS`]
/// (copies, not links: a run takes each file once, whatever the names that lead to it).
fn good_videos(folder: &Path, count: usize) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(folder)?;
    (0..count)
        .map(|i| {
            let clip = video(CLIPS[i % CLIPS.len()]);
            let extension = clip.extension().and_then(|e| e.to_str()).unwrap_or("mp4");
            let copy = folder.join(format!("good{i:02}.{extension}"));
            std::fs::copy(&clip, &copy)?;
            Ok(copy)
        })
        .collect()
}

fn summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: no summary: {e}", path.display()));
    serde_json::from_str(&text).expect("a JSON summary")
}

#[test]
fn bad_videos_are_reported_and_the_rest_annotated() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("lessons");
    good_videos(&folder.join("week1"), 9)?;
    let more = good_videos(&dir.path().join("more"), 8)?;
    std::fs::write(folder.join("notes.mp4"), "not a video")?;
    std::fs::write(folder.join("empty.mov"), "")?;
    std::fs::write(folder.join("readme.txt"), "not a video name: not an input")?;
    // A list: eight more good videos (by path relative to the list) and one that is missing.
    let mut list: Vec<String> = more
        .iter()
        .map(|p| {
            format!(
                "more/{}",
                p.file_name().unwrap_or_default().to_string_lossy()
            )
        })
        .collect();
    list.insert(3, "more/missing.mp4".into());
    let list_file = dir.path().join("videos.txt");
    std::fs::write(&list_file, list.join("\n"))?;
    let out = dir.path().join("out");
    let output = annotate(&[
        folder.as_os_str(),
        os("--list"),
        list_file.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--json"),
        out.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(4), "some failed: exit status 4");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("20 videos: 17 done, 0 partial, 3 failed"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    for bad in ["notes.mp4", "empty.mov", "missing.mp4"] {
        assert!(stderr.contains(bad), "{bad} reported: {stderr}");
        let row = stdout.lines().find(|l| l.contains(bad)).unwrap_or_default();
        assert!(row.starts_with("failed"), "{row}");
    }
    // Names mirror the inputs: the folder's sub-folder is kept.
    for name in ["week1/good00", "week1/good08", "good00", "good07"] {
        let done = summary(&out.join(format!("{name}.summary.json")));
        assert_eq!(done["status"], "done", "{name}: {done}");
        assert!(out.join(format!("{name}.mp4")).is_file(), "{name}");
        assert!(out.join(format!("{name}.jsonl")).is_file(), "{name}");
    }
    let failed = summary(&out.join("notes.summary.json"));
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"]
        .as_str()
        .unwrap_or("")
        .contains("not a video"));
    assert!(
        !out.join("notes.mp4").exists(),
        "nothing presented for a failed video"
    );
    Ok(())
}

#[test]
fn a_killed_run_resumes_to_the_same_outputs() -> anyhow::Result<()> {
    default_model();
    let dir = tempfile::tempdir()?;
    let inputs = good_videos(&dir.path().join("in"), 4)?;
    let run = |out: &Path, skip_done: bool| {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("emolens"));
        command.args(["annotate", "--quiet"]).args(&inputs);
        command.arg("-o").arg(out).arg("--json").arg(out);
        if skip_done {
            command.arg("--skip-done");
        }
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };
    let whole = dir.path().join("whole");
    assert!(run(&whole, false).status()?.success());

    // Killed with SIGKILL once the second video is under way, then resumed.
    let resumed = dir.path().join("resumed");
    let mut child = run(&resumed, false).spawn()?;
    let started = Instant::now();
    while !resumed.join("good00.summary.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill()?;
    child.wait()?;
    for name in ["good01", "good02", "good03"] {
        let path = resumed.join(format!("{name}.summary.json"));
        assert!(
            !path.exists() || summary(&path)["status"] == "done",
            "a killed video is never presented as done"
        );
    }
    assert!(run(&resumed, true).status()?.success());

    for name in ["good00", "good01", "good02", "good03"] {
        assert_eq!(
            summary(&resumed.join(format!("{name}.summary.json")))["status"],
            "done"
        );
        let a = records(&whole.join(format!("{name}.jsonl")));
        let b = records(&resumed.join(format!("{name}.jsonl")));
        assert_eq!(a.len(), b.len(), "{name}: records");
        for (x, y) in a.iter().zip(&b) {
            for key in ["frame", "id", "label", "box"] {
                assert_eq!(x[key], y[key], "{name}: {key}");
            }
            let probs = |r: &serde_json::Value| -> Vec<f64> {
                r["probs"]
                    .as_object()
                    .map(|m| m.values().filter_map(serde_json::Value::as_f64).collect())
                    .unwrap_or_default()
            };
            for (p, q) in probs(x).iter().zip(probs(y)) {
                assert!((p - q).abs() <= 1e-4, "{name}: probabilities {p} vs {q}");
            }
        }
    }
    let leftovers = partial_files(&resumed);
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    Ok(())
}

#[test]
fn two_runs_on_one_output_one_wins_the_other_says_so() -> anyhow::Result<()> {
    default_model();
    let dir = tempfile::tempdir()?;
    let input = video("pyfeat_WolfgangLanger_Pexels.mp4");
    let (out, json) = (dir.path().join("out.mp4"), dir.path().join("faces.jsonl"));
    let start = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("emolens"))
            .args(["annotate", "--quiet"])
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .arg("--json")
            .arg(&json)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
    };
    let (first, second) = (start()?, start()?);
    let runs = [first.wait_with_output()?, second.wait_with_output()?];
    let winners = runs.iter().filter(|run| run.status.success()).count();
    assert_eq!(winners, 1, "one run wins");
    let loser = runs
        .iter()
        .find(|run| !run.status.success())
        .expect("a loser");
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert_eq!(loser.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("another run finished this file") && stderr.contains("out."),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let streams = crate::util::probe(&out);
    assert_eq!(
        streams.iter().find(|s| s.0 == "h264").map(|s| s.1),
        Some(472)
    );
    assert_eq!(records(&json).len(), 472, "the winner's records, intact");
    assert_eq!(
        summary(&dir.path().join("out.summary.json"))["status"],
        "done"
    );
    assert!(partial_files(dir.path()).is_empty(), "no partial file left");
    Ok(())
}

#[test]
fn shards_split_the_inputs_and_an_empty_share_is_no_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let inputs = good_videos(&dir.path().join("in"), 3)?;
    let out = dir.path().join("out");
    let run = |shard: &str| {
        let mut args = vec![os("--shard"), os(shard), os("-o"), out.as_os_str()];
        args.extend(inputs.iter().map(|p| p.as_os_str()));
        annotate(&args)
    };
    // Worker 1 of 2 takes the second of three videos; worker 0 the first and the third.
    assert!(run("1/2").status.success());
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".mp4"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    assert_eq!(names(&out), ["good01.mp4"]);
    assert!(run("0/2").status.success());
    assert_eq!(names(&out), ["good00.mp4", "good01.mp4", "good02.mp4"]);
    // More workers than videos: worker 5 of 6 has none.
    let idle = run("5/6");
    assert!(idle.status.success());
    assert!(String::from_utf8_lossy(&idle.stdout).contains("no videos for this worker"));
    let refused = run("2/2");
    crate::util::assert_clean_failure(&refused, &["2/2", "numbered 0 to 1"]);
    Ok(())
}
