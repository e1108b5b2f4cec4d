//! Cohort report: several videos' engagement reports side by side.
//!
//! Each records file (one per lesson or video) gets its own report in a folder named after the
//! file, and the cohort folder gets `cohort.csv` (one row per video with its whole-video figures)
//! and `cohort.html` (the same figures side by side, each video's expression mix as a bar, links
//! to the per-video pages). Every file is read and checked before anything is written, and the
//! cohort files are written last, so a failed run never leaves a cohort that looks complete.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{
    build, check_labels, csv_out, format_seconds, html, read_records, top_labels_text,
    write_atomically, write_report, Report, ReportConfig, ReportError, ReportFiles, ViewGroup,
};
use crate::model_meta::Views;

/// File name of the cohort table in the cohort folder.
pub const COHORT_CSV: &str = "cohort.csv";
/// File name of the cohort page in the cohort folder.
pub const COHORT_HTML: &str = "cohort.html";
/// Longest video name, in characters: long enough for any real file name, short enough to stay
/// within file-name limits once suffixed.
const MAX_NAME_CHARS: usize = 80;
/// Name of a video whose file name leaves nothing usable.
const FALLBACK_NAME: &str = "video";
/// How many of a video's most frequent expressions the terminal summary lists.
const SUMMARY_TOP_LABELS: usize = 3;

/// One video of a cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortVideo {
    /// Name of the video's report folder in the cohort folder: filesystem-safe and unique.
    pub name: String,
    /// The records file the report was made from, as given.
    pub records: PathBuf,
    /// The video's report.
    pub report: Report,
}

/// Several videos' reports, made with the same labels, views and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohort {
    /// The videos, in input order.
    pub videos: Vec<CohortVideo>,
}

impl Cohort {
    /// The labels every video shares, in order.
    pub fn labels(&self) -> &[String] {
        self.videos
            .first()
            .map_or(&[], |video| video.report.labels.as_slice())
    }

    /// The view groups every video shares.
    pub fn view_groups(&self) -> &[ViewGroup] {
        self.videos
            .first()
            .map_or(&[], |video| video.report.view_groups.as_slice())
    }
}

/// Paths of the files written by [`write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortFiles {
    /// Each video's report files, in input order.
    pub videos: Vec<ReportFiles>,
    /// The cohort table.
    pub csv: PathBuf,
    /// The cohort page.
    pub html: PathBuf,
}

/// Reads, checks and measures every records file. The files that hold face records must all
/// carry the labels of the first of them (and of the model when `labels` is not empty); an empty
/// file is a video in which no face was found, measured as such with those labels. The records
/// of one file are dropped once its report is built, so only one file is in memory at a time.
///
/// # Errors
/// A missing, unreadable or malformed file, or labels that differ; the error names the file.
pub fn load(
    paths: &[PathBuf],
    labels: &[String],
    views: &Views,
    config: &ReportConfig,
) -> Result<Cohort, ReportError> {
    // Find a missing file before spending time on the others.
    for path in paths {
        check_is_file(path)?;
    }
    let mut reference: Option<(&Path, Vec<String>)> = None;
    let mut reports = Vec::with_capacity(paths.len());
    for path in paths {
        let records = read_records(path)?;
        let Some(first) = records.first() else {
            reports.push(None);
            continue;
        };
        let found: Vec<String> = first.prob_labels().map(str::to_string).collect();
        match &reference {
            None => {
                check_labels(&records, labels, path)?;
                reference = Some((path, found));
            }
            Some((first_path, expected)) if *expected != found => {
                return Err(ReportError::CohortLabels {
                    path: path.clone(),
                    first: first_path.to_path_buf(),
                    found: found.join(", "),
                    expected: expected.join(", "),
                });
            }
            Some(_) => {}
        }
        reports.push(Some(build(&records, labels, views, config)?));
    }
    // Videos without faces get the labels the others carry.
    let no_face_labels = match (labels.is_empty(), reference) {
        (false, _) | (true, None) => labels.to_vec(),
        (true, Some((_, found))) => found,
    };
    let videos = paths
        .iter()
        .zip(video_names(paths))
        .zip(reports)
        .map(|((path, name), report)| {
            Ok(CohortVideo {
                name,
                records: path.clone(),
                report: match report {
                    Some(report) => report,
                    None => build(&[], &no_face_labels, views, config)?,
                },
            })
        })
        .collect::<Result<_, ReportError>>()?;
    Ok(Cohort { videos })
}

/// An error naming `path` unless it is an existing file.
fn check_is_file(path: &Path) -> Result<(), ReportError> {
    let read_error = |error| ReportError::Read {
        path: path.to_path_buf(),
        error,
    };
    let metadata = fs::metadata(path).map_err(read_error)?;
    if metadata.is_dir() {
        return Err(read_error(io::Error::other(
            "it is a folder, not a records file",
        )));
    }
    Ok(())
}

/// The report folder name of each records file, in input order: the file's stem; for stems that
/// several files share, the parent folder's name and the stem (`a/faces.jsonl` → `a-faces`);
/// names still taken get `-2`, `-3`, … in input order. Names keep letters, digits, `-`, `_` and
/// `.` (anything else becomes `_`), never start with `.` or `-`, and are compared ignoring case,
/// so they are safe and distinct on every filesystem. The cohort's own file names are never used.
pub fn video_names(paths: &[PathBuf]) -> Vec<String> {
    let stems: Vec<String> = paths
        .iter()
        .map(|path| safe_name(&path.file_stem().unwrap_or_default().to_string_lossy()))
        .collect();
    let shared = |stem: &String| {
        stems
            .iter()
            .filter(|other| other.to_lowercase() == stem.to_lowercase())
            .count()
            > 1
    };
    let mut taken: HashSet<String> = [COHORT_CSV, COHORT_HTML]
        .iter()
        .map(|name| name.to_lowercase())
        .collect();
    paths
        .iter()
        .zip(&stems)
        .map(|(path, stem)| {
            let base = match parent_name(path) {
                Some(parent) if shared(stem) => safe_name(&format!("{parent}-{stem}")),
                _ => stem.clone(),
            };
            let name = (1..)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    }
                })
                .find(|candidate| !taken.contains(&candidate.to_lowercase()))
                .unwrap_or(base);
            taken.insert(name.to_lowercase());
            name
        })
        .collect()
}

/// The name of the folder holding `path` (the current folder's for a bare file name).
fn parent_name(path: &Path) -> Option<String> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let named = parent.file_name().map(Path::new);
    let name = match named {
        Some(name) => name.to_path_buf(),
        // "." or "..": the folder's own name.
        None => parent.canonicalize().ok()?.file_name()?.into(),
    };
    Some(name.to_string_lossy().into_owned())
}

/// `text` as a file name: letters, digits, `-`, `_` and `.` kept, anything else `_`, no leading
/// `.` or `-`, at most [`MAX_NAME_CHARS`] characters, [`FALLBACK_NAME`] when nothing is left.
fn safe_name(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed: String = cleaned
        .trim_start_matches(['.', '-'])
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    if trimmed.is_empty() {
        FALLBACK_NAME.to_string()
    } else {
        trimmed
    }
}

/// Writes each video's report into `dir/NAME/`, then `cohort.csv` and `cohort.html` into `dir`.
/// An earlier cohort table and page in `dir` are removed first, so that a run that fails
/// half-way leaves no cohort files over a mix of new and old reports.
///
/// # Errors
/// A folder or file that cannot be written, named in the error.
pub fn write(cohort: &Cohort, dir: &Path) -> Result<CohortFiles, ReportError> {
    let write_error = |path: &Path, error| ReportError::Write {
        path: path.to_path_buf(),
        error,
    };
    fs::create_dir_all(dir).map_err(|error| write_error(dir, error))?;
    let (csv, page) = (dir.join(COHORT_CSV), dir.join(COHORT_HTML));
    for stale in [&csv, &page] {
        match fs::remove_file(stale) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(write_error(stale, error))
            }
            _ => {}
        }
    }
    let videos = cohort
        .videos
        .iter()
        .map(|video| write_report(&video.report, &dir.join(&video.name)))
        .collect::<Result<Vec<_>, _>>()?;
    write_atomically(&csv, |out| csv_out::write_cohort_csv(cohort, out))?;
    let html = html::render_cohort_page(cohort);
    write_atomically(&page, |out| out.write_all(html.as_bytes()))?;
    Ok(CohortFiles {
        videos,
        csv,
        html: page,
    })
}

/// For the terminal: one line per video (name, covered time, engagement, attention, most
/// frequent expressions), then the files written.
pub fn summary(cohort: &Cohort, files: &CohortFiles, dir: &Path) -> String {
    let width = cohort
        .videos
        .iter()
        .map(|video| video.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = format!(
        "cohort report: {} ({} videos)",
        dir.display(),
        cohort.videos.len()
    );
    for video in &cohort.videos {
        let (report, overall) = (&video.report, &video.report.overall);
        text.push_str(&format!(
            "\n  {:<width$}  {:>9}  engagement {:.2}  attention {:.2}  {}",
            video.name,
            format_seconds(report.duration),
            overall.engagement,
            overall.attention,
            top_labels_text(&report.labels, &overall.expression, SUMMARY_TOP_LABELS)
        ));
    }
    text.push_str(&format!(
        "\n  files: {}, {}",
        files.csv.display(),
        files.html.display()
    ));
    for video in &files.videos {
        text.push_str(&format!(
            "\n         {}, {}, {}",
            video.class_csv.display(),
            video.tracks_csv.display(),
            video.html.display()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fer, record_with as record};
    use super::*;
    use crate::records::FaceRecord;

    fn paths(items: &[&str]) -> Vec<PathBuf> {
        items.iter().map(PathBuf::from).collect()
    }

    fn labels(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    fn jsonl(records: &[FaceRecord]) -> Result<String, serde_json::Error> {
        records
            .iter()
            .map(|record| serde_json::to_string(record).map(|line| line + "\n"))
            .collect()
    }

    /// Two small videos: "lesson1" (one face, happy then sad, frontal) and "lesson2" (two faces,
    /// one of them turned away).
    fn two_lessons(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
        let fer = fer();
        let lesson1 = vec![
            record(&fer, 1, 0.0, "happy", true),
            record(&fer, 1, 1.0, "happy", true),
            record(&fer, 1, 2.0, "happy", true),
            record(&fer, 1, 4.0, "sad", true),
        ];
        let lesson2 = vec![
            record(&fer, 1, 0.0, "neutral", true),
            record(&fer, 2, 0.0, "angry", false),
            record(&fer, 1, 6.0, "neutral", true),
            record(&fer, 2, 6.0, "angry", false),
        ];
        let files = vec![dir.join("lesson1.jsonl"), dir.join("lesson2.jsonl")];
        fs::write(&files[0], jsonl(&lesson1)?)?;
        fs::write(&files[1], jsonl(&lesson2)?)?;
        Ok(files)
    }

    fn config() -> ReportConfig {
        ReportConfig {
            window: 5.0,
            ..ReportConfig::default()
        }
    }

    #[test]
    fn names_are_stems_unless_they_collide() {
        assert_eq!(
            video_names(&paths(&["x/lesson1.jsonl", "y/lesson2.jsonl"])),
            ["lesson1", "lesson2"]
        );
        assert_eq!(
            video_names(&paths(&[
                "a/faces.jsonl",
                "b/faces.jsonl",
                "c/lesson.jsonl"
            ])),
            ["a-faces", "b-faces", "lesson"]
        );
    }

    #[test]
    fn names_that_still_collide_get_numbers_in_input_order() {
        assert_eq!(
            video_names(&paths(&[
                "x/a/faces.jsonl",
                "y/a/faces.jsonl",
                "z/a/Faces.jsonl",
                "a-faces.jsonl",
            ])),
            ["a-faces", "a-faces-2", "a-Faces-3", "a-faces-4"]
        );
        assert_eq!(
            video_names(&paths(&["a/x.jsonl", "a/x.jsonl"])),
            ["a-x", "a-x-2"]
        );
    }

    #[test]
    fn names_are_safe_file_names() {
        assert_eq!(
            video_names(&paths(&[
                "../Stunde 3 (Müller).jsonl",
                ".hidden.jsonl",
                "-rf.jsonl",
                "/.jsonl",
                "cohort.csv.jsonl",
            ])),
            ["Stunde_3__Müller_", "hidden", "rf", "jsonl", "cohort.csv-2"]
        );
        assert_eq!(video_names(&paths(&["..."])), ["video"]);
        let long = "x".repeat(300) + ".jsonl";
        assert_eq!(video_names(&[PathBuf::from(long)])[0].len(), MAX_NAME_CHARS);
    }

    #[test]
    fn rows_are_the_videos_whole_video_figures() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let files = two_lessons(dir.path())?;
        let cohort = load(&files, &[], &Views::new(), &config())?;
        let names: Vec<&str> = cohort.videos.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["lesson1", "lesson2"]);
        assert_eq!(cohort.labels(), fer());

        let out = dir.path().join("cohort");
        let written = write(&cohort, &out)?;
        let table = fs::read_to_string(&written.csv)?;
        let mut lines = table.lines();
        assert_eq!(
            lines.next().unwrap_or_default(),
            "video,records_file,duration,face_records,mean_faces_present,attention,\
             attentive_share,engagement,\
             share_angry,share_disgust,share_fear,share_happy,share_sad,share_surprise,share_neutral,\
             valence_negative,valence_neutral,valence_positive,valence_surprise"
        );
        // lesson1: 4 s, one face always frontal; 3 happy and 1 sad, the sad one not engaged.
        assert_eq!(
            lines.next().unwrap_or_default(),
            format!(
                "lesson1,{},4.000,4,1.0000,1.0000,1.0000,0.7500,\
                 0.0000,0.0000,0.0000,0.7500,0.2500,0.0000,0.0000,\
                 0.2500,0.0000,0.7500,0.0000",
                files[0].display()
            )
        );
        // lesson2: 6 s, two faces in both windows, one turned away and angry.
        assert_eq!(
            lines.next().unwrap_or_default(),
            format!(
                "lesson2,{},6.000,4,2.0000,0.5000,0.5000,0.5000,\
                 0.5000,0.0000,0.0000,0.0000,0.0000,0.0000,0.5000,\
                 0.5000,0.5000,0.0000,0.0000",
                files[1].display()
            )
        );
        assert_eq!(lines.next(), None);

        for name in ["lesson1", "lesson2"] {
            for file in ["class.csv", "tracks.csv", "report.html"] {
                assert!(out.join(name).join(file).is_file(), "{name}/{file}");
            }
        }
        let page = fs::read_to_string(&written.html)?;
        assert!(page.contains("href=\"lesson1/report.html\""));
        assert!(page.contains("href=\"lesson2/report.html\""));
        assert_eq!(page.matches("<svg").count(), 1);
        assert!(!page.contains("<script"));
        for (index, label) in ["happy", "sad", "angry", "neutral"].iter().enumerate() {
            let position = fer().iter().position(|l| l == label).unwrap_or(index);
            let colour = crate::palette::hex(crate::palette::label_rgb(label, position));
            assert!(page.contains(&colour), "{label}: {colour} missing");
        }

        let text = summary(&cohort, &written, &out);
        assert!(text.contains("(2 videos)"), "{text}");
        assert!(
            text.contains(
                "  lesson1        4 s  engagement 0.75  attention 1.00  happy 75 %, sad 25 %"
            ),
            "{text}"
        );
        assert!(text.contains("cohort.csv") && text.contains("cohort.html"));
        assert!(text.contains("lesson2/report.html"), "{text}");
        Ok(())
    }

    #[test]
    fn a_failed_run_leaves_no_cohort_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let files = two_lessons(dir.path())?;
        let cohort = load(&files, &[], &Views::new(), &config())?;
        let out = dir.path().join("out");
        write(&cohort, &out)?;
        // The second video's folder is now a file: its report cannot be written.
        fs::remove_dir_all(out.join("lesson2"))?;
        fs::write(out.join("lesson2"), "in the way")?;
        let message = write(&cohort, &out).unwrap_err().to_string();
        assert!(message.contains("lesson2"), "{message}");
        assert!(!out.join(COHORT_CSV).exists() && !out.join(COHORT_HTML).exists());
        Ok(())
    }

    #[test]
    fn refuses_a_missing_file_and_measures_an_empty_one() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let mut files = two_lessons(dir.path())?;
        files.push(dir.path().join("missing.jsonl"));
        let message = load(&files, &[], &Views::new(), &config())
            .unwrap_err()
            .to_string();
        assert!(message.contains("missing.jsonl"), "{message}");
        assert!(message.contains("check that the file exists"), "{message}");

        // An empty file: a video without faces, measured with the others' labels.
        files[2] = dir.path().join("empty.jsonl");
        fs::write(&files[2], "\n")?;
        let cohort = load(&files, &[], &Views::new(), &config())?;
        let no_faces = &cohort.videos[2].report;
        assert_eq!(no_faces.overall.face_records, 0);
        assert_eq!(no_faces.labels, cohort.videos[0].report.labels);

        files[2] = dir.path().to_path_buf();
        let message = load(&files, &[], &Views::new(), &config())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("a folder, not a records file"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn refuses_other_labels_naming_both_files() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut files = two_lessons(dir.path())?;
        let calm = labels(&["calm", "busy"]);
        files.push(dir.path().join("other.jsonl"));
        fs::write(&files[2], jsonl(&[record(&calm, 1, 0.0, "calm", true)])?)?;
        let message = load(&files, &[], &Views::new(), &config())
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&files[2].display().to_string()),
            "{message}"
        );
        assert!(message.contains("(calm, busy)"), "{message}");
        assert!(
            message.contains(&files[0].display().to_string()),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");

        // With a model, the model's labels are checked too.
        let message = load(&files[..2], &calm, &Views::new(), &config())
            .unwrap_err()
            .to_string();
        assert!(message.contains("lesson1.jsonl"), "{message}");
        assert!(
            message.contains("the model lists (calm, busy)"),
            "{message}"
        );
        Ok(())
    }
}
