//! FER+ relabelling (Barsoum et al. 2016): ten crowd votes per FER2013 image, joined on the
//! image file name (`Image name` column), used as majority labels, as soft label distributions,
//! or blended with the images' own FER2013 labels.

use std::collections::HashMap;
use std::path::Path;

use super::{Dataset, DatasetError};

/// FER+ vote columns that map onto the seven FER2013 classes, as `(fer+ column, fer2013 class)`.
/// `contempt`, `unknown` and `NF` (not a face) have no FER2013 class and are left out.
pub(super) const VOTE_COLUMNS: [(&str, &str); 7] = [
    ("anger", "angry"),
    ("disgust", "disgust"),
    ("fear", "fear"),
    ("happiness", "happy"),
    ("sadness", "sad"),
    ("surprise", "surprise"),
    ("neutral", "neutral"),
];

/// How votes become training targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelMode {
    /// The class with most votes, for images with one top vote that is one of the seven
    /// emotions (the FER+ majority protocol, 7 classes); tied images are left out.
    #[default]
    Majority,
    /// The vote distribution itself (the hard label is still the majority).
    Soft,
    /// Half the image's own FER2013 label, half its vote distribution. The hard label stays
    /// the image's own, so validation accuracy is on the original labels; images without
    /// usable votes keep their own label alone.
    Blend,
}

/// The share of a `blend` target that comes from the votes.
const BLEND_VOTE_SHARE: f32 = 0.5;

/// What joining the votes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinReport {
    /// How the votes were used.
    pub mode: LabelMode,
    /// Images relabelled from their votes (blended with them for `blend`).
    pub joined: usize,
    /// Images without a FER+ row (FER+ left them out); `blend` keeps them with their own
    /// label, the other modes leave them out.
    pub unmatched: usize,
    /// Images whose votes went mostly to contempt, unknown or not-a-face: left out of soft
    /// labels, kept with their own label by `blend`.
    pub no_emotion: usize,
    /// Images left out of majority labels: their top vote is shared, or is contempt, unknown
    /// or not-a-face.
    pub no_majority: usize,
}

impl std::fmt::Display for JoinReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (joined, fate) = match self.mode {
            LabelMode::Blend => (
                "blended with their votes",
                "kept with their own label alone",
            ),
            LabelMode::Majority | LabelMode::Soft => ("relabelled", "left out"),
        };
        write!(
            f,
            "{} {joined}; {fate}: {} without votes",
            self.joined, self.unmatched
        )?;
        if self.no_emotion > 0 {
            write!(
                f,
                ", {} voted mostly contempt, unknown or not a face",
                self.no_emotion
            )?;
        }
        if self.no_majority > 0 {
            write!(
                f,
                ", {} without one emotion ahead of all other votes",
                self.no_majority
            )?;
        }
        Ok(())
    }
}

/// Replaces the targets of `data` (FER2013 classes, file names as in FER+) by the FER+ votes
/// in `votes_csv` as `mode` says, dropping the images it leaves out.
///
/// # Errors
/// [`DatasetError`] when the CSV is missing, lacks a vote column, has a bad vote, or `data`
/// is not labelled with FER2013 class names.
pub fn relabel(
    data: &Dataset,
    votes_csv: &Path,
    mode: LabelMode,
) -> Result<(Dataset, JoinReport), DatasetError> {
    let votes = read_votes(votes_csv)?;
    let class_of_column: Vec<usize> = VOTE_COLUMNS
        .iter()
        .map(|(_, class)| super::class_index(&data.classes, class, votes_csv))
        .collect::<Result<_, _>>()?;
    let classes = data.classes.len();
    let mut keep = Vec::new();
    let mut soft = Vec::new();
    let mut labels = Vec::new();
    let mut report = JoinReport {
        mode,
        ..JoinReport::default()
    };
    for (index, source) in data.sources.iter().enumerate() {
        let name = Path::new(source)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let usable = match votes.get(name) {
            None => {
                report.unmatched += 1;
                None
            }
            Some(row) if mode == LabelMode::Majority && !row.has_one_top_emotion() => {
                report.no_majority += 1;
                None
            }
            Some(row)
                if mode != LabelMode::Majority && row.emotion.iter().sum::<f32>() <= row.other =>
            {
                report.no_emotion += 1;
                None
            }
            Some(row) => {
                report.joined += 1;
                Some(row.distribution(&class_of_column, classes))
            }
        };
        let own = data.labels[index];
        let (label, target) = match (mode, usable) {
            (LabelMode::Blend, votes) => (own, blend(own, votes.as_deref(), classes)),
            (_, Some(votes)) => (crate::util::argmax(&votes), votes),
            (_, None) => continue,
        };
        keep.push(index);
        labels.push(label);
        soft.extend_from_slice(&target);
    }
    let mut out = data.subset(&keep);
    out.labels = labels;
    out.soft = (mode != LabelMode::Majority).then_some(soft);
    Ok((out, report))
}

/// A `blend` target: one-hot of the image's own label, mixed with its vote distribution when
/// it has usable votes.
fn blend(own: usize, votes: Option<&[f32]>, classes: usize) -> Vec<f32> {
    let mut target = vec![0.0; classes];
    target[own] = 1.0;
    if let Some(votes) = votes {
        for (t, v) in target.iter_mut().zip(votes) {
            *t = (1.0 - BLEND_VOTE_SHARE) * *t + BLEND_VOTE_SHARE * v;
        }
    }
    target
}

/// Votes of one image: the seven emotion columns in [`VOTE_COLUMNS`] order, and the sum and
/// the largest of contempt, unknown and not-a-face.
struct Votes {
    emotion: [f32; 7],
    other: f32,
    other_top: f32,
}

impl Votes {
    /// The seven emotions' share of their votes, in the data's class order (`class_of_column`
    /// maps [`VOTE_COLUMNS`] onto it). Needs at least one emotion vote.
    fn distribution(&self, class_of_column: &[usize], classes: usize) -> Vec<f32> {
        let total: f32 = self.emotion.iter().sum();
        let mut distribution = vec![0.0; classes];
        for (&votes, &class) in self.emotion.iter().zip(class_of_column) {
            distribution[class] = votes / total;
        }
        distribution
    }

    /// Whether one emotion has more votes than every other column.
    fn has_one_top_emotion(&self) -> bool {
        let top = self.emotion.iter().copied().fold(0.0, f32::max);
        self.emotion.iter().filter(|&&v| v == top).count() == 1 && top > self.other_top
    }
}

/// Most votes one emotion of one image can have (FER+ asked 10 taggers; larger crowds fit).
const MAX_VOTES: f32 = 1000.0;

fn read_votes(path: &Path) -> Result<HashMap<String, Votes>, DatasetError> {
    if !path.is_file() {
        return Err(DatasetError::NotFound(path.to_owned()));
    }
    let mut reader = csv::Reader::from_path(path).map_err(|e| DatasetError::io(path, e))?;
    let headers = reader
        .headers()
        .map_err(|e| DatasetError::io(path, e))?
        .clone();
    let columns = super::columns::Columns::new(path, headers, "FER+ votes (fer2013new.csv)");
    let column = |name: &str| columns.required(name);
    let name_col = column("Image name")?;
    let emotion_cols: Vec<usize> = VOTE_COLUMNS
        .iter()
        .map(|(c, _)| column(c))
        .collect::<Result<_, _>>()?;
    let other_cols: Vec<usize> = ["contempt", "unknown", "NF"]
        .iter()
        .filter_map(|c| column(c).ok())
        .collect();
    let mut votes = HashMap::new();
    for row in super::columns::numbered_rows(&mut reader, path) {
        let (line, record) = row?;
        let bad = |reason: String| super::columns::bad_row(path, line, reason);
        let name = record.get(name_col).unwrap_or("").trim();
        if name.is_empty() {
            continue; // FER+ leaves the images it dropped without a name.
        }
        let vote = |col: usize| -> Result<f32, DatasetError> {
            let text = record.get(col).unwrap_or("").trim();
            text.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite() && (0.0..=MAX_VOTES).contains(v))
                .ok_or_else(|| {
                    bad(format!(
                        "vote `{text}` is not a count of votes (0 to {MAX_VOTES})"
                    ))
                })
        };
        let mut emotion = [0.0; 7];
        for (slot, &col) in emotion.iter_mut().zip(&emotion_cols) {
            *slot = vote(col)?;
        }
        let others = other_cols
            .iter()
            .map(|&c| vote(c))
            .collect::<Result<Vec<f32>, _>>()?;
        votes.insert(
            name.to_owned(),
            Votes {
                emotion,
                other: others.iter().sum(),
                other_top: others.iter().copied().fold(0.0, f32::max),
            },
        );
    }
    Ok(votes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_soft_and_blended_labels_follow_votes() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let csv = dir.path().join("fer2013new.csv");
        std::fs::write(
            &csv,
            "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n\
             Training,fer0000000.png,2,8,0,0,0,0,0,0,0,0\n\
             Training,fer0000001.png,0,0,0,0,0,0,0,0,2,8\n\
             Training,fer0000002.png,4,4,0,0,0,0,0,2,0,0\n\
             Training,fer0000003.png,2,3,0,0,0,0,0,4,0,0\n\
             Training,,10,0,0,0,0,0,0,0,0,0\n",
        )?;
        let mut data = Dataset::new(super::super::fer2013_classes(), 1);
        data.push(&[1], 0, "x/angry/fer0000000.png".into());
        data.push(&[2], 0, "x/angry/fer0000001.png".into());
        data.push(&[3], 0, "x/angry/Training_99.png".into());
        // A tie between neutral and happy; contempt ahead of happy.
        data.push(&[4], 0, "x/angry/fer0000002.png".into());
        data.push(&[5], 0, "x/angry/fer0000003.png".into());

        let (majority, report) = relabel(&data, &csv, LabelMode::Majority)?;
        assert_eq!(
            report,
            JoinReport {
                mode: LabelMode::Majority,
                joined: 1,
                unmatched: 1,
                no_emotion: 0,
                no_majority: 3,
            }
        );
        assert_eq!(majority.labels, vec![3]); // happy
        assert!(majority.soft.is_none());

        // Soft labels keep the images without a clear majority.
        let (soft, report) = relabel(&data, &csv, LabelMode::Soft)?;
        assert_eq!(
            (report.joined, report.no_emotion, report.no_majority),
            (3, 1, 0)
        );
        let dist = soft.soft.ok_or("no soft labels")?;
        assert!((dist[3] - 0.8).abs() < 1e-6 && (dist[6] - 0.2).abs() < 1e-6);

        // Blend keeps every image and its own label: half of it, half the votes where usable.
        let (blended, report) = relabel(&data, &csv, LabelMode::Blend)?;
        assert_eq!(
            (report.joined, report.unmatched, report.no_emotion),
            (3, 1, 1)
        );
        assert!(report.to_string().starts_with(
            "3 blended with their votes; kept with their own label alone: 1 without votes, 1 voted"
        ));
        assert_eq!(blended.labels, vec![0; 5]); // all angry, their own label
        let dist = blended.soft.ok_or("no blended labels")?;
        let expected = [
            [0.5, 0.0, 0.0, 0.4, 0.0, 0.0, 0.1],   // 8 happy, 2 neutral
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],   // mostly not a face: own label
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],   // no votes: own label
            [0.5, 0.0, 0.0, 0.25, 0.0, 0.0, 0.25], // a tie
            [0.5, 0.0, 0.0, 0.3, 0.0, 0.0, 0.2],   // contempt ahead, emotions still most votes
        ];
        for (got, want) in dist.chunks(7).zip(expected) {
            assert!(
                got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
                "{got:?}"
            );
        }

        std::fs::write(&csv, "Usage,Image name,neutral\nTraining,a.png,1\n")?;
        let err = relabel(&data, &csv, LabelMode::Soft)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `anger` column"), "{err}");
        Ok(())
    }

    mod fuzz {
        use super::*;
        use crate::fuzzing::damaged;
        use proptest::prelude::*;

        const VALID: &str = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n\
            Training,fer0000000.png,2,8,0,0,0,0,0,0,0,0\n\
            Training,fer0000001.png,0,0,0,0,0,0,0,0,2,8\n\
            PublicTest,fer0000002.png,0,0,10,0,0,0,0,0,0,0\n";

        proptest! {
            #[test]
            fn damaged_votes_are_read_or_refused(text in damaged(VALID)) {
                let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let path = dir.path().join("fer2013new.csv");
                std::fs::write(&path, text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                if let Ok(votes) = read_votes(&path) {
                    for vote in votes.values() {
                        prop_assert!(vote.emotion.iter().chain([&vote.other]).all(|v| v.is_finite() && *v >= 0.0));
                    }
                }
            }
        }
    }
}
