//! Per-face data: one record per face per frame, as JSON Lines and/or CSV, each written under a
//! temporary name and renamed by [`RecordWriter::finish`]; a writer dropped unfinished (a failed
//! run) removes its temporary files, so no half-written records are left or taken as complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::faces::track::TrackedFace;
use crate::faces::Landmarks;

/// CSV columns of the five landmarks, in YuNet's order.
const LANDMARK_COLUMNS: &str = "right_eye_x,right_eye_y,left_eye_x,left_eye_y,nose_x,nose_y,\
mouth_right_x,mouth_right_y,mouth_left_x,mouth_left_y";

/// One face in one frame, as written to JSON Lines.
#[derive(Serialize)]
struct FaceRecord<'a> {
    frame: usize,
    time: f64,
    id: u64,
    #[serde(rename = "box")]
    bbox: [i32; 4],
    frontal: bool,
    /// Head turn and nod in degrees, from the landmarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    yaw: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pitch: Option<f32>,
    /// The five landmarks `[x, y]` in input pixels, when the detector found them in this frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    landmarks: Option<[[f32; 2]; 5]>,
    label: &'a str,
    confidence: f32,
    #[serde(serialize_with = "in_label_order")]
    probs: (&'a [String], &'a [f32]),
    /// Action-unit probabilities, for models with a unit head.
    #[serde(serialize_with = "in_label_order", skip_serializing_if = "no_units")]
    aus: (&'a [String], &'a [f32]),
}

fn no_units(units: &(&[String], &[f32])) -> bool {
    units.0.is_empty()
}

/// Serialises probabilities as an object whose keys keep the model's label order.
fn in_label_order<S: Serializer>(
    probs: &(&[String], &[f32]),
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(probs.0.len()))?;
    for (label, p) in probs.0.iter().zip(probs.1) {
        map.serialize_entry(label, &round4(*p))?;
    }
    map.end()
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

/// One output file, written under its partial name.
struct Sink {
    writer: BufWriter<File>,
    partial: PathBuf,
    target: PathBuf,
}

impl Sink {
    fn create(target: &Path) -> std::io::Result<Self> {
        let partial = crate::output::partial_path(target);
        Ok(Self {
            writer: BufWriter::new(File::create(&partial)?),
            partial,
            target: target.to_owned(),
        })
    }

    /// Flushes and renames the file into place (on failure, [`Drop`] removes it).
    fn finish(mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        std::fs::rename(&self.partial, &self.target)
    }
}

impl Drop for Sink {
    /// Removes the partial file; after a successful [`Sink::finish`] it is already gone.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}

/// Writes the JSON Lines and CSV files of one video.
pub struct RecordWriter {
    labels: Vec<String>,
    units: Vec<String>,
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
            units: units.to_vec(),
            json,
            csv,
        })
    }

    /// Writes the faces of one frame.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&mut self, frame: usize, time: f64, faces: &[TrackedFace]) -> std::io::Result<()> {
        for face in faces {
            let (_, label, confidence) = crate::captions::top_label(face, &self.labels);
            let track = &face.track;
            let b = track.bbox;
            let landmarks = track.landmarks.as_ref().map(landmark_pairs);
            let (yaw, pitch) = (
                track.pose.map(|p| round1(p.yaw)),
                track.pose.map(|p| round1(p.pitch)),
            );
            if let Some(sink) = self.json.as_mut() {
                let record = FaceRecord {
                    frame,
                    time: (time * 1e4).round() / 1e4,
                    id: track.id,
                    bbox: [b.x, b.y, b.width, b.height],
                    frontal: track.frontal,
                    yaw,
                    pitch,
                    landmarks,
                    label,
                    confidence: round4(confidence),
                    probs: (&self.labels, &face.probs),
                    aus: (&self.units, &face.units),
                };
                serde_json::to_writer(&mut sink.writer, &record)?;
                sink.writer.write_all(b"\n")?;
            }
            if let Some(sink) = self.csv.as_mut() {
                write!(
                    sink.writer,
                    "{frame},{time:.4},{},{},{},{},{},{}",
                    track.id,
                    b.x,
                    b.y,
                    b.width,
                    b.height,
                    u8::from(track.frontal),
                )?;
                // Empty cells where the detector gives no landmarks (or the face was lost).
                let optional = yaw.into_iter().chain(pitch);
                let points = landmarks.iter().flatten().flatten();
                let cells: Vec<String> = optional
                    .chain(points.copied())
                    .map(|v| v.to_string())
                    .collect();
                let empty = vec![String::new(); 12];
                let cells = if cells.len() == 12 { &cells } else { &empty };
                write!(sink.writer, ",{},{label},{confidence:.4}", cells.join(","))?;
                for p in face.probs.iter().chain(&face.units) {
                    write!(sink.writer, ",{p:.4}")?;
                }
                writeln!(sink.writer)?;
            }
        }
        Ok(())
    }

    /// Flushes and renames the files into place.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(self) -> std::io::Result<()> {
        if let Some(sink) = self.json {
            sink.finish()?;
        }
        if let Some(sink) = self.csv {
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
    fn an_unfinished_writer_leaves_no_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let json = dir.path().join("f.jsonl");
        let labels = vec!["happy".to_owned()];
        let writer = RecordWriter::create(Some(&json), None, &labels, &[])?;
        assert!(crate::output::partial_path(&json).exists());
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
