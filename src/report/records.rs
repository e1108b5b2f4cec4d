//! Reads the per-face JSON Lines records that `emolens annotate --json` writes
//! ([`crate::records::FaceRecord`], one line per face per frame), with line-numbered errors and
//! the checks a report needs (labels present and the same on every line).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{ReportError, MAX_FRAME, MAX_SECONDS};
use crate::records::FaceRecord;

/// Reads every face record of a JSON Lines file.
pub fn read_records(path: &Path) -> Result<Vec<FaceRecord>, ReportError> {
    let file = File::open(path).map_err(|error| ReportError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_records(BufReader::new(file), path)
}

/// Parses face records from JSON Lines text; `name` is the file name used in errors.
///
/// Blank lines are skipped. Every record must list the same labels in `probs`,
/// in the same order, as the first record, and its `label` must be one of them.
pub fn parse_records(reader: impl BufRead, name: &Path) -> Result<Vec<FaceRecord>, ReportError> {
    let mut records: Vec<FaceRecord> = Vec::new();
    let mut first_line = 0;
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line.map_err(|error| ReportError::Read {
            path: name.to_path_buf(),
            error,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_line(&line, name, line_number)?;
        match records.first() {
            None => first_line = line_number,
            Some(first) => check_same_labels(first, &record, name, line_number, first_line)?,
        }
        records.push(record);
    }
    Ok(records)
}

/// Parses and checks one non-blank line.
fn parse_line(line: &str, name: &Path, line_number: usize) -> Result<FaceRecord, ReportError> {
    let record: FaceRecord = serde_json::from_str(line).map_err(|error| {
        let reason = error_without_position(&error);
        if error.is_data() {
            ReportError::NotAFaceRecord {
                path: name.to_path_buf(),
                line: line_number,
                reason,
            }
        } else {
            ReportError::NotJson {
                path: name.to_path_buf(),
                line: line_number,
                reason,
            }
        }
    })?;
    check_record(&record, name, line_number)?;
    Ok(record)
}

/// serde_json's message without its " at line L column C" tail (lines here are single records).
fn error_without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message,
    }
}

/// Checks that the record has labels and that its top label is one of them.
fn check_record(record: &FaceRecord, name: &Path, line_number: usize) -> Result<(), ReportError> {
    let reason = if !(record.time.is_finite() && (0.0..=MAX_SECONDS).contains(&record.time)) {
        format!(
            "`time` {} is not a time in a video (0 to {MAX_SECONDS} seconds)",
            record.time
        )
    } else if record.frame > MAX_FRAME {
        format!(
            "`frame` {} is beyond any video (at most {MAX_FRAME})",
            record.frame
        )
    } else if record.probs.is_empty() {
        "`probs` is empty".to_string()
    } else if !record.prob_labels().any(|label| label == record.label) {
        format!("label `{}` is not one of the `probs` labels", record.label)
    } else {
        return Ok(());
    };
    Err(ReportError::NotAFaceRecord {
        path: name.to_path_buf(),
        line: line_number,
        reason,
    })
}

/// Checks that a record lists the same labels, in the same order, as the first one.
fn check_same_labels(
    first: &FaceRecord,
    record: &FaceRecord,
    name: &Path,
    line_number: usize,
    first_line: usize,
) -> Result<(), ReportError> {
    if first.prob_labels().eq(record.prob_labels()) {
        return Ok(());
    }
    Err(ReportError::MixedLabels {
        path: name.to_path_buf(),
        line: line_number,
        first_line,
        found: record.prob_labels().collect::<Vec<_>>().join(", "),
        expected: first.prob_labels().collect::<Vec<_>>().join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const GOOD: &str = r#"{"frame":0,"time":0.0,"id":1,"box":[290,62,268,268],"frontal":true,"label":"sad","confidence":0.6012,"probs":{"sad":0.6012,"angry":0.01,"neutral":0.3888}}"#;

    fn parse(text: &str) -> Result<Vec<FaceRecord>, ReportError> {
        parse_records(Cursor::new(text.to_string()), Path::new("faces.jsonl"))
    }

    #[test]
    fn keeps_probs_key_order() -> Result<(), Box<dyn std::error::Error>> {
        let records = parse(GOOD)?;
        let labels: Vec<&str> = records[0].prob_labels().collect();
        assert_eq!(labels, ["sad", "angry", "neutral"]);
        assert!((records[0].probs.0[0].1 - 0.6012).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn reads_fields_and_ignores_unknown_ones() -> Result<(), Box<dyn std::error::Error>> {
        let line = GOOD.replace("\"frame\":0", "\"frame\":3,\"aus\":{\"AU12\":0.5}");
        let record = &parse(&line)?[0];
        assert_eq!(record.frame, 3);
        assert_eq!(record.id, 1);
        assert_eq!(record.bbox, [290, 62, 268, 268]);
        assert_eq!(record.label, "sad");
        assert!(record.frontal);
        Ok(())
    }

    #[test]
    fn frontal_defaults_to_true() -> Result<(), Box<dyn std::error::Error>> {
        let line = GOOD.replace("\"frontal\":true,", "");
        assert!(parse(&line)?[0].frontal);
        let line = GOOD.replace("\"frontal\":true", "\"frontal\":false");
        assert!(!parse(&line)?[0].frontal);
        Ok(())
    }

    #[test]
    fn skips_blank_lines_and_accepts_empty_input() -> Result<(), Box<dyn std::error::Error>> {
        assert!(parse("")?.is_empty());
        let text = format!("\n{GOOD}\n   \n{GOOD}\n");
        assert_eq!(parse(&text)?.len(), 2);
        Ok(())
    }

    #[test]
    fn missing_field_names_file_and_line() {
        let bad = GOOD.replace("\"time\":0.0,", "");
        let text = format!("{GOOD}\n\n{bad}\n");
        let message = parse(&text).unwrap_err().to_string();
        assert_eq!(
            message,
            "faces.jsonl line 3: not a face record (missing field `time`); \
             give a JSON Lines file written by `emolens annotate --json`"
        );
    }

    #[test]
    fn broken_json_names_file_and_line() {
        let text = format!("{GOOD}\n{{\"frame\":1,\n");
        let message = parse(&text).unwrap_err().to_string();
        assert!(
            message.starts_with("faces.jsonl line 2: not valid JSON"),
            "{message}"
        );
    }

    #[test]
    fn label_outside_probs_is_an_error() {
        let bad = GOOD.replace("\"label\":\"sad\"", "\"label\":\"happy\"");
        let message = parse(&bad).unwrap_err().to_string();
        assert!(message.contains("line 1"), "{message}");
        assert!(message.contains("`happy`"), "{message}");
    }

    #[test]
    fn differing_label_order_is_an_error() {
        let swapped = GOOD.replace(
            "\"sad\":0.6012,\"angry\":0.01",
            "\"angry\":0.01,\"sad\":0.6012",
        );
        let text = format!("{GOOD}\n{swapped}\n");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.starts_with("faces.jsonl line 2:"), "{message}");
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let message = read_records(Path::new("/nonexistent/faces.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("/nonexistent/faces.jsonl"), "{message}");
    }

    #[test]
    fn times_and_frames_beyond_any_video_are_refused_naming_the_line() {
        for (field, bad) in [
            ("\"time\":0.0", "\"time\":1e300"),
            ("\"time\":0.0", "\"time\":-50"),
            ("\"time\":0.0", "\"time\":1e12"),
            ("\"frame\":0", "\"frame\":18446744073709551615"),
        ] {
            let text = format!("{GOOD}\n{}", GOOD.replace(field, bad));
            let message = parse(&text).map(|_| ()).unwrap_err().to_string();
            assert!(
                message.contains("faces.jsonl") && message.contains("line 2"),
                "{message}"
            );
        }
    }

    mod fuzz {
        use super::*;
        use crate::fuzzing::{any_text, damaged};
        use crate::report::{build, ReportConfig, MAX_SECONDS};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_text_is_read_or_refused(text in any_text(400)) {
                let _ = parse(&text);
            }

            #[test]
            fn damaged_records_are_refused_or_sane_and_their_report_bounded(
                line in damaged(GOOD),
                window in 1e-3f64..1e6,
            ) {
                if let Ok(records) = parse(&format!("{GOOD}\n{line}")) {
                    for record in &records {
                        prop_assert!(record.time.is_finite());
                        prop_assert!((0.0..=MAX_SECONDS).contains(&record.time));
                    }
                    let config = ReportConfig {
                        window,
                        duration: None,
                        engaged_labels: Vec::new(),
                        attentive_threshold: 0.5,
                    };
                    if let Ok(report) = build(&records, &[], &Default::default(), &config) {
                        prop_assert!(report.windows.len() <= crate::report::MAX_WINDOWS);
                    }
                }
            }

            #[test]
            fn any_window_text_is_a_bounded_length_or_refused(text in any_text(24)) {
                if let Ok(seconds) = crate::report::parse_window(&text) {
                    prop_assert!(seconds > 0.0 && seconds <= MAX_SECONDS);
                }
            }
        }
    }
}
