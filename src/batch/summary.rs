//! `NAME.summary.json`: what became of one video, written after all its outputs are in place, so
//! that a summary saying `done` means every output it lists is complete. `--skip-done` trusts
//! exactly that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What became of one video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every output written.
    Done,
    /// The input is damaged or cut short: the outputs hold what could be decoded.
    Partial,
    /// Nothing written: the input is missing or unreadable, or a step failed.
    Failed,
    /// Stopped by Ctrl-C: the outputs hold the frames up to there.
    Interrupted,
    /// Done by an earlier run (`--skip-done`); not written to a summary.
    Skipped,
}

impl Status {
    /// Whether a later run with `--skip-done` may leave the video alone: running it again would
    /// give the same.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Partial)
    }

    /// The word the table and the summary use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Skipped => "skipped",
        }
    }
}

/// The numbers of a video that was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Frames written.
    pub frames: usize,
    /// Seconds of video written.
    pub duration: f64,
    /// Face records (faces summed over frames).
    pub faces: usize,
    /// Frames with at least one face.
    pub frames_with_faces: usize,
    /// Share of the face records per label.
    pub label_shares: BTreeMap<String, f64>,
    /// Frames per second of the run.
    pub fps: f64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The contents of `NAME.summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSummary {
    /// What became of the video.
    pub status: Status,
    /// The input file.
    pub input: PathBuf,
    /// Every file written for it (annotated video, slow copy, records, report folder).
    pub outputs: Vec<PathBuf>,
    /// The numbers, when the video was read.
    pub counts: Option<Counts>,
    /// Why it failed, or where the input was damaged.
    pub error: Option<String>,
    /// The emolens version that wrote it.
    pub emolens_version: String,
    /// The emotion model file.
    pub model: PathBuf,
    /// The face detector.
    pub detector: String,
    /// The command line of the run.
    pub command: Vec<String>,
}

impl VideoSummary {
    /// Writes the summary to `path` (whole or not at all).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        self.write_claimed(&crate::output::Claim::new(path))
    }

    /// Writes the summary as `claim`'s file: claimed when the video's run began, so that a
    /// summary another run finished meanwhile is kept (see [`crate::output::Claim`]).
    ///
    /// # Errors
    /// The file cannot be written, or another run finished it meanwhile.
    pub fn write_claimed(&self, claim: &crate::output::Claim) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        claim
            .write(|out| std::io::Write::write_all(out, format!("{text}\n").as_bytes()))
            .map_err(|error| crate::output::WriteError {
                path: claim.target().to_owned(),
                error,
            })?;
        Ok(())
    }

    /// The summary at `path`, when there is a readable one.
    pub fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Whether the summary at `path` says its video is finished and every output it lists exists.
pub fn is_done(path: &Path) -> bool {
    VideoSummary::read(path).is_some_and(|summary| {
        summary.status.is_final() && summary.outputs.iter().all(|output| output.exists())
    })
}

/// `out/lesson1.mp4` -> `out/lesson1.summary.json`.
pub fn summary_path(output: &Path) -> PathBuf {
    output.with_extension("summary.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: Status, outputs: Vec<PathBuf>) -> VideoSummary {
        VideoSummary {
            status,
            input: "in.mp4".into(),
            outputs,
            counts: None,
            error: None,
            emolens_version: "0.1.0".into(),
            model: "m.onnx".into(),
            detector: "yunet".into(),
            command: vec!["emolens".into()],
        }
    }

    #[test]
    fn done_means_final_status_and_every_output_present() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let video = dir.path().join("a.mp4");
        std::fs::write(&video, b"x")?;
        let path = summary_path(&video);
        assert_eq!(path, dir.path().join("a.summary.json"));
        assert!(!is_done(&path), "no summary yet");
        summary(Status::Done, vec![video.clone()]).write(&path)?;
        assert!(is_done(&path));
        summary(Status::Partial, vec![video.clone()]).write(&path)?;
        assert!(is_done(&path), "a damaged input gives the same again");
        summary(
            Status::Done,
            vec![video.clone(), dir.path().join("gone.jsonl")],
        )
        .write(&path)?;
        assert!(!is_done(&path), "an output is missing");
        for status in [Status::Failed, Status::Interrupted] {
            summary(status, vec![video.clone()]).write(&path)?;
            assert!(!is_done(&path), "{status:?}");
        }
        std::fs::write(&path, b"{ cut sh")?;
        assert!(!is_done(&path), "an unreadable summary");
        Ok(())
    }
}
