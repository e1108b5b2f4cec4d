//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use emolens::dataset::FER2013_LABELS;

/// `../shared/data` beside the repository; panics with the reason when it is missing.
pub fn shared_data() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(
        path.join("fer2013").is_dir(),
        "{} is missing: these tests need the shared datasets (see ../shared/data/README.md)",
        path.display()
    );
    path
}

/// A FER2013 split folder.
pub fn fer_split(split: &str) -> PathBuf {
    shared_data().join("fer2013").join(split)
}

/// A folder with the first `per_class` images of each class of a FER2013 split, as symlinks.
pub fn fer_subset(split: &str, per_class: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for class in FER2013_LABELS {
        let source = fer_split(split).join(class);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", source.display()))
            .map(|e| e.expect("folder entry").path())
            .collect();
        files.sort();
        let target = dir.path().join(class);
        std::fs::create_dir(&target).expect("class folder");
        for file in files.iter().take(per_class) {
            std::os::unix::fs::symlink(file, target.join(file.file_name().expect("name")))
                .expect("symlink");
        }
    }
    dir
}

/// The shipped default model; panics when it is not in the repository.
pub fn default_model() -> PathBuf {
    repo_file(&format!("models/{}", emolens::util::DEFAULT_MODEL_FILE))
}

/// A file committed in the repository; panics when it is missing.
pub fn repo_file(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    assert!(
        path.is_file(),
        "{} is missing: it must be committed",
        path.display()
    );
    path
}

/// Asserts that a failed command said something useful and did not panic.
pub fn assert_clean_failure(output: &std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks `{needle}`: {stderr}");
    }
}

/// A clip in ../shared/data/videos; panics when it is missing.
pub fn video(name: &str) -> PathBuf {
    let path = shared_data().join("videos").join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// A command-line argument.
pub fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// The records of a JSON Lines file.
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: records not written: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Asserts that a face record has every field of the records format.
pub fn assert_face_record(record: &serde_json::Value) {
    for key in [
        "frame",
        "time",
        "id",
        "box",
        "frontal",
        "label",
        "confidence",
        "probs",
    ] {
        assert!(!record[key].is_null(), "record lacks {key}: {record}");
    }
}

/// The standard output of a command that must have succeeded (else its standard error).
pub fn succeeded(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// ffprobe's `entries` of each stream of `path`, as CSV fields, one row per stream (`extra`
/// goes before the entries, e.g. `-count_frames`).
fn ffprobe_rows(path: &Path, extra: &[&str], entries: &str) -> Vec<Vec<String>> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .args(extra)
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (installed by scripts/setup.sh)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

/// `(codec, frames, duration)` of each stream, counted by decoding with ffprobe.
pub fn probe(path: &Path) -> Vec<(String, u64, f64)> {
    ffprobe_rows(
        path,
        &["-count_frames"],
        "stream=codec_name,nb_read_frames,duration",
    )
    .into_iter()
    .filter_map(|fields| match fields.as_slice() {
        [codec, duration, frames, ..] => Some((
            codec.clone(),
            frames.parse().unwrap_or(0),
            duration.parse().unwrap_or(0.0),
        )),
        _ => None,
    })
    .collect()
}

/// The frame rate of the first video stream, as ffprobe states it (`24000/1001`).
pub fn frame_rate(path: &Path) -> String {
    ffprobe_rows(path, &["-select_streams", "v:0"], "stream=r_frame_rate")
        .into_iter()
        .next()
        .and_then(|fields| fields.into_iter().next())
        .unwrap_or_default()
}

/// Frame `index` of a video as 8-bit gray pixels, decoded by ffmpeg.
pub fn gray_frame(path: &Path, index: usize) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("select=eq(n\\,{index})"), "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg runs (installed by scripts/setup.sh)");
    assert!(
        !out.stdout.is_empty(),
        "{}: no frame {index}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Mean absolute difference of two pictures of the same size.
pub fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "pictures of different sizes");
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len().max(1) as f64
}

/// The partial files (written, not yet moved into place) in `folder`.
pub fn partial_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.to_string_lossy().ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// Where each stream of a video ends, in seconds (start time plus duration: an AAC stream's
/// priming packet starts before zero), by codec name.
pub fn stream_ends(path: &Path) -> Vec<(String, f64)> {
    ffprobe_rows(path, &[], "stream=codec_name,start_time,duration")
        .into_iter()
        .filter_map(|fields| match fields.as_slice() {
            [codec, start, duration, ..] => Some((
                codec.clone(),
                start.parse::<f64>().ok()? + duration.parse::<f64>().ok()?,
            )),
            _ => None,
        })
        .collect()
}

/// Asserts that a video's sound ends within `frame` seconds of its picture.
pub fn assert_sound_ends_with_video(path: &Path, frame: f64) {
    let ends = stream_ends(path);
    let end = |codec: &str| ends.iter().find(|e| e.0 == codec).map(|e| e.1);
    let (Some(video), Some(sound)) = (end("h264"), end("aac")) else {
        panic!("{}: no video or no sound: {ends:?}", path.display());
    };
    assert!(
        (video - sound).abs() <= frame,
        "{}: sound ends at {sound} s, video at {video} s",
        path.display()
    );
}

/// Runs ffmpeg quietly with `args`.
pub fn ffmpeg(args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()?;
    anyhow::ensure!(status.success(), "ffmpeg {args:?} failed");
    Ok(())
}

/// The rows of a CSV file, each a map from column name to value.
pub fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("a CSV file");
    let header = reader.headers().expect("a header").clone();
    reader
        .records()
        .map(|row| {
            let row = row.expect("a CSV row");
            header
                .iter()
                .zip(row.iter())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// A number in a CSV row.
pub fn number(row: &BTreeMap<String, String>, column: &str) -> f64 {
    row.get(column)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("column {column} in {row:?}"))
}
