//! Per-face data: one record per face per frame, as JSON Lines and/or CSV, each written under a
//! temporary name and renamed by [`RecordWriter::finish`]; a writer dropped unfinished (a failed
//! run) removes its temporary files, so no half-written records are left or taken as complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::faces::track::TrackedFace;
use crate::faces::Landmarks;

/// CSV columns of the five landmarks, in YuNet's order.
const LANDMARK_COLUMNS: &str = "right_eye_x,right_eye_y,left_eye_x,left_eye_y,nose_x,nose_y,\
mouth_right_x,mouth_right_y,mouth_left_x,mouth_left_y";

/// One face in one frame: the JSON line `annotate --json` and `live --json` write and
/// `report` reads, one type both ways so that a field written is a field read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceRecord {
    /// Frame index, counted from 0.
    pub frame: u64,
    /// Time of the frame in seconds from the start of the video.
    pub time: f64,
    /// Track ID: the same face keeps its ID across frames.
    pub id: u64,
    /// Face box as `[x, y, width, height]` in input pixels.
    #[serde(rename = "box")]
    pub bbox: [i32; 4],
    /// Facing the camera in this frame (see `crate::faces::pose`); absent in old records means
    /// true.
    #[serde(default = "frontal_when_absent")]
    pub frontal: bool,
    /// Head turn in degrees, from the landmarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yaw: Option<f32>,
    /// Head nod in degrees, from the landmarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch: Option<f32>,
    /// The five landmarks `[x, y]` in input pixels, when the detector found them in this frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<[[f32; 2]; 5]>,
    /// The top label.
    pub label: String,
    /// Probability of the top label.
    pub confidence: f32,
    /// Probability per label, in the model's label order.
    pub probs: LabelValues,
    /// Action-unit probabilities, for models with a unit head.
    #[serde(default, skip_serializing_if = "LabelValues::is_empty")]
    pub aus: LabelValues,
}

impl FaceRecord {
    /// The labels of `probs`, in the model's order.
    pub fn prob_labels(&self) -> impl Iterator<Item = &str> {
        self.probs.0.iter().map(|(label, _)| label.as_str())
    }
}

fn frontal_when_absent() -> bool {
    true
}

/// Values by label, kept in the model's label order (a JSON object whose key order is the
/// model's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelValues(pub Vec<(String, f32)>);

impl LabelValues {
    /// Each label with value 0.
    fn zeros(labels: &[String]) -> Self {
        Self(labels.iter().map(|l| (l.clone(), 0.0)).collect())
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets the values in label order, rounded to four decimals.
    fn set(&mut self, values: &[f32]) {
        for ((_, slot), value) in self.0.iter_mut().zip(values) {
            *slot = round4(*value);
        }
    }
}

impl Serialize for LabelValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (label, value) in &self.0 {
            map.serialize_entry(label, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for LabelValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = LabelValues;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an object of label -> probability")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<LabelValues, M::Error> {
                let mut values = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<String, f32>()? {
                    values.push(entry);
                }
                Ok(LabelValues(values))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

fn round4(v: f32) -> f32 {
    (v * 10_000.0).round() / 10_000.0
}

/// Tenths: landmarks in pixels and angles in degrees are not more precise than that.
fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

fn landmark_pairs(points: &Landmarks) -> [[f32; 2]; 5] {
    points.map(|p| [round1(p.x), round1(p.y)])
}

/// Writes `value` after a comma, or only the comma when there is none (an empty CSV cell).
fn optional_cell(out: &mut impl Write, value: Option<f32>) -> std::io::Result<()> {
    match value {
        Some(v) => write!(out, ",{v}"),
        None => out.write_all(b","),
    }
}

/// One output file, written under its partial name.
struct Sink {
    writer: BufWriter<File>,
    claim: crate::output::Claim,
}

impl Sink {
    fn create(target: &Path) -> std::io::Result<Self> {
        let claim = crate::output::Claim::new(target);
        Ok(Self {
            writer: BufWriter::new(File::create(claim.partial())?),
            claim,
        })
    }

    /// Flushes and moves the file into place (on failure, [`Drop`] removes it).
    fn finish(mut self) -> Result<(), crate::output::WriteError> {
        let finished = self.writer.flush().and_then(|()| self.claim.commit());
        finished.map_err(|error| self.error(error))
    }

    /// `error` as a failure to write this file.
    fn error(&self, error: std::io::Error) -> crate::output::WriteError {
        crate::output::WriteError {
            path: self.claim.target().to_owned(),
            error,
        }
    }
}

impl Drop for Sink {
    /// Removes the partial file; after a successful [`Sink::finish`] it is already gone.
    fn drop(&mut self) {
        self.claim.abandon();
    }
}

/// Writes the JSON Lines and CSV files of one video.
pub struct RecordWriter {
    labels: Vec<String>,
    /// The record being written, reused for every face.
    record: FaceRecord,
    json: Option<Sink>,
    csv: Option<Sink>,
}

impl RecordWriter {
    /// Creates the requested files (as `.partial` until [`finish`](Self::finish)) for a model
    /// with emotion `labels` and action `units` (empty for none).
    ///
    /// # Errors
    /// I/O errors naming nothing; the caller adds the path.
    pub fn create(
        json: Option<&Path>,
        csv: Option<&Path>,
        labels: &[String],
        units: &[String],
    ) -> std::io::Result<Self> {
        let json = json.map(Sink::create).transpose()?;
        let mut csv = csv.map(Sink::create).transpose()?;
        if let Some(sink) = csv.as_mut() {
            let columns: Vec<String> = labels
                .iter()
                .map(|l| format!("prob_{l}"))
                .chain(units.iter().map(|u| format!("au_{u}")))
                .collect();
            writeln!(
                sink.writer,
                "frame,time,id,box_x,box_y,box_w,box_h,frontal,yaw,pitch,{LANDMARK_COLUMNS},\
                 label,confidence,{}",
                columns.join(",")
            )?;
        }
        Ok(Self {
            labels: labels.to_vec(),
            record: FaceRecord {
                frame: 0,
                time: 0.0,
                id: 0,
                bbox: [0; 4],
                frontal: true,
                yaw: None,
                pitch: None,
                landmarks: None,
                label: String::new(),
                confidence: 0.0,
                probs: LabelValues::zeros(labels),
                aus: LabelValues::zeros(units),
            },
            json,
            csv,
        })
    }

    /// Writes the faces of one frame.
    ///
    /// # Errors
    /// [`crate::output::WriteError`] naming the file.
    pub fn write(
        &mut self,
        frame: usize,
        time: f64,
        faces: &[TrackedFace],
    ) -> Result<(), crate::output::WriteError> {
        for face in faces {
            let (_, label, confidence) = crate::faces::captions::top_label(face, &self.labels);
            let track = &face.track;
            let b = track.bbox;
            // The record is reused from face to face: its label names stay, its values change.
            let record = &mut self.record;
            record.frame = frame as u64;
            record.time = (time * 1e4).round() / 1e4;
            record.id = track.id;
            record.bbox = [b.x, b.y, b.width, b.height];
            record.frontal = track.frontal;
            record.yaw = track.pose.map(|p| round1(p.yaw));
            record.pitch = track.pose.map(|p| round1(p.pitch));
            record.landmarks = track.landmarks.as_ref().map(landmark_pairs);
            record.label.clear();
            record.label.push_str(label);
            record.confidence = round4(confidence);
            record.probs.set(&face.probs);
            record.aus.set(&face.units);
            if let Some(sink) = self.json.as_mut() {
                serde_json::to_writer(&mut sink.writer, &*record)
                    .map_err(std::io::Error::from)
                    .and_then(|()| sink.writer.write_all(b"\n"))
                    .map_err(|error| sink.error(error))?;
            }
            if let Some(sink) = self.csv.as_mut() {
                let row = |out: &mut BufWriter<File>| -> std::io::Result<()> {
                    write!(
                        out,
                        "{frame},{time:.4},{},{},{},{},{},{}",
                        track.id,
                        b.x,
                        b.y,
                        b.width,
                        b.height,
                        u8::from(track.frontal),
                    )?;
                    // Empty cells where the detector gives no landmarks (or the face was lost).
                    optional_cell(out, record.yaw)?;
                    optional_cell(out, record.pitch)?;
                    for k in 0..10 {
                        optional_cell(out, record.landmarks.map(|l| l[k / 2][k % 2]))?;
                    }
                    write!(out, ",{label},{confidence:.4}")?;
                    for p in face.probs.iter().chain(&face.units) {
                        write!(out, ",{p:.4}")?;
                    }
                    writeln!(out)
                };
                row(&mut sink.writer).map_err(|error| sink.error(error))?;
            }
        }
        Ok(())
    }

    /// Flushes and moves the files into place.
    ///
    /// # Errors
    /// [`crate::output::WriteError`] naming the file.
    pub fn finish(self) -> Result<(), crate::output::WriteError> {
        for sink in [self.json, self.csv].into_iter().flatten() {
            sink.finish()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faces::pose::HeadPose;
    use opencv::core::{Point2f, Rect};

    #[test]
    fn what_is_written_is_what_the_report_reads() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let json = dir.path().join("f.jsonl");
        let labels = vec!["sad".to_owned(), "happy".to_owned()];
        let units = vec!["AU12".to_owned()];
        let mut writer = RecordWriter::create(Some(&json), None, &labels, &units)?;
        let mut face = TrackedFace {
            track: crate::faces::track::TrackedBox {
                id: 4,
                bbox: Rect::new(10, 20, 30, 40),
                seen: true,
                landmarks: Some([Point2f::new(1.25, 2.0); 5]),
                pose: None,
                frontal: false,
                is_new: false,
            },
            probs: vec![0.123_456, 0.876_544],
            units: vec![0.9],
        };
        writer.write(2, 0.08, std::slice::from_ref(&face))?;
        face.probs = vec![0.6, 0.4];
        writer.write(3, 0.12, &[face])?;
        writer.finish()?;
        let read = crate::report::read_records(&json)?;
        assert_eq!(read.len(), 2);
        let first = &read[0];
        assert_eq!(
            (first.frame, first.id, first.bbox),
            (2, 4, [10, 20, 30, 40])
        );
        assert!(!first.frontal);
        assert_eq!(first.label, "happy");
        assert_eq!(first.landmarks, Some([[1.3, 2.0]; 5]));
        assert_eq!(
            first.probs,
            LabelValues(vec![("sad".into(), 0.1235), ("happy".into(), 0.8765)])
        );
        assert_eq!(first.aus, LabelValues(vec![("AU12".into(), 0.9)]));
        assert_eq!((read[1].label.as_str(), read[1].probs.0[0].1), ("sad", 0.6));
        Ok(())
    }

    #[test]
    fn an_unfinished_writer_leaves_no_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let json = dir.path().join("f.jsonl");
        let labels = vec!["happy".to_owned()];
        let writer = RecordWriter::create(Some(&json), None, &labels, &[])?;
        let partial = std::fs::read_dir(dir.path())?.flatten().any(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("f.jsonl.") && name.ends_with(".partial")
        });
        assert!(partial, "written under a partial name");
        drop(writer);
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            0,
            "nothing left behind"
        );
        Ok(())
    }

    #[test]
    fn json_and_csv_hold_the_same_record() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (json, csv) = (dir.path().join("f.jsonl"), dir.path().join("f.csv"));
        let labels = vec!["happy".to_owned(), "sad".to_owned()];
        let mut writer = RecordWriter::create(Some(&json), Some(&csv), &labels, &[])?;
        let face = TrackedFace {
            track: crate::faces::track::TrackedBox {
                id: 3,
                bbox: Rect::new(1, 2, 30, 40),
                seen: true,
                landmarks: None,
                pose: None,
                frontal: true,
                is_new: false,
            },
            probs: vec![0.25, 0.75],
            units: Vec::new(),
        };
        let mut turned = face.clone();
        turned.track.landmarks = Some([
            Point2f::new(10.0, 10.0),
            Point2f::new(20.0, 10.0),
            Point2f::new(19.25, 15.6),
            Point2f::new(11.0, 20.0),
            Point2f::new(19.0, 20.0),
        ]);
        turned.track.pose = turned
            .track
            .landmarks
            .as_ref()
            .and_then(HeadPose::from_landmarks);
        turned.track.frontal = false;
        writer.write(7, 0.5, &[face, turned])?;
        assert!(!json.exists(), "visible before finish");
        writer.finish()?;
        let text = std::fs::read_to_string(&json)?;
        let line: serde_json::Value =
            serde_json::from_str(text.lines().next().unwrap_or_default())?;
        assert_eq!(line["frame"], 7);
        assert_eq!(line["id"], 3);
        assert_eq!(line["box"], serde_json::json!([1, 2, 30, 40]));
        assert_eq!(line["frontal"], true);
        assert_eq!(line["label"], "sad");
        assert_eq!(line["probs"]["happy"], 0.25);
        assert!(line.get("landmarks").is_none() && line.get("yaw").is_none());
        let turned: serde_json::Value =
            serde_json::from_str(text.lines().nth(1).unwrap_or_default())?;
        assert_eq!(turned["landmarks"][2], serde_json::json!([19.3, 15.6]));
        assert!((turned["yaw"].as_f64().unwrap_or_default() - 45.0).abs() < 0.2);
        let text = std::fs::read_to_string(&csv)?;
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                "frame,time,id,box_x,box_y,box_w,box_h,frontal,yaw,pitch,right_eye_x,right_eye_y,\
                 left_eye_x,left_eye_y,nose_x,nose_y,mouth_right_x,mouth_right_y,mouth_left_x,\
                 mouth_left_y,label,confidence,prob_happy,prob_sad"
            )
        );
        assert_eq!(
            lines.next(),
            Some("7,0.5000,3,1,2,30,40,1,,,,,,,,,,,,,sad,0.7500,0.2500,0.7500")
        );
        let turned: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let number = |i: usize| turned[i].parse::<f32>().unwrap_or(f32::NAN);
        assert!(
            (number(8) - 45.0).abs() < 0.2 && number(9).abs() < 0.2,
            "{turned:?}"
        );
        assert_eq!((turned[7], turned[14], turned[15]), ("0", "19.3", "15.6"));
        Ok(())
    }
}
