//! CK+ action units: a FACS table with one row per labelled sequence (`subject`, `sequence`,
//! then `AU1`, `AU2`, ... as 0/1, as in `ckplus_facs_aus_327seq.csv`) joined onto CK+48 images
//! by the subject and sequence in their file names (`S005_001_00000011.png`).

use std::collections::HashMap;
use std::path::Path;

use super::columns::{unit_values, Columns};
use super::subjects::ckplus_sequence;
use super::{ActionUnits, Dataset, DatasetError};

/// What the table file is, for error messages.
const EXPECTED: &str = "CK+ action-unit table (subject,sequence,AU1,...)";

/// Attaches each image's action units from `table`.
///
/// # Errors
/// A missing or malformed table, or images whose sequence has no row.
pub fn attach_aus(data: &mut Dataset, table: &Path) -> Result<(), DatasetError> {
    let (names, rows) = read_table(table)?;
    let mut present = Vec::with_capacity(data.len() * names.len());
    let mut missing = Vec::new();
    for source in &data.sources {
        let key = ckplus_sequence(source).map(|(s, q)| (s.to_owned(), normalise_sequence(q)));
        match key.and_then(|k| rows.get(&k)) {
            Some(units) => present.extend_from_slice(units),
            None => missing.push(source.clone()),
        }
    }
    if let Some(example) = missing.first() {
        return Err(DatasetError::Unjoined {
            path: table.to_owned(),
            missing: missing.len(),
            example: example.clone(),
        });
    }
    data.aus = Some(ActionUnits { names, present });
    Ok(())
}

/// Sequence numbers match with or without leading zeros (`001` and `1`).
fn normalise_sequence(sequence: &str) -> String {
    let trimmed = sequence.trim().trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The unit names and, per (subject, sequence), the 0/1 values.
type Table = (Vec<String>, HashMap<(String, String), Vec<u8>>);

fn read_table(path: &Path) -> Result<Table, DatasetError> {
    if !path.is_file() {
        return Err(DatasetError::io(
            path,
            format!("not found; give the {EXPECTED}"),
        ));
    }
    let mut reader = csv::Reader::from_path(path).map_err(|e| DatasetError::io(path, e))?;
    let header = reader
        .headers()
        .map_err(|e| DatasetError::io(path, e))?
        .clone();
    let columns = Columns::new(path, header, EXPECTED);
    let (subject, sequence) = (columns.required("subject")?, columns.required("sequence")?);
    let units = columns.units();
    if units.is_empty() {
        return Err(DatasetError::MissingColumn {
            path: path.to_owned(),
            column: "AU1".to_owned(),
            expected: EXPECTED,
        });
    }
    let mut rows = HashMap::new();
    for row in super::columns::numbered_rows(&mut reader, path) {
        let (line, record) = row?;
        let bad = |reason: String| super::columns::bad_row(path, line, reason);
        let field = |i: usize| record.get(i).map(str::trim).unwrap_or("");
        let values = unit_values(&record, &units, path, line)?;
        let key = (
            field(subject).to_owned(),
            normalise_sequence(field(sequence)),
        );
        if key.0.is_empty() {
            return Err(bad("no subject".to_owned()));
        }
        rows.insert(key, values);
    }
    Ok((units.into_iter().map(|(_, name)| name).collect(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(sources: &[&str]) -> Dataset {
        let mut data = Dataset::new(vec!["happy".into()], 1);
        for s in sources {
            data.push(&[0], 0, (*s).to_owned());
        }
        data
    }

    #[test]
    fn units_join_on_subject_and_sequence() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let table = dir.path().join("aus.csv");
        std::fs::write(
            &table,
            "subject,sequence,emotion,n_aus,AU1,AU12,AU25\nS005,001,happy,2,0,1,1\nS010,2,happy,1,1,0,0\n",
        )?;
        let mut data = dataset(&[
            "a/happy/S010_002_00000014.png",
            "a/happy/S005_001_00000011.png",
        ]);
        attach_aus(&mut data, &table)?;
        let aus = data.aus.as_ref().ok_or("units attached")?;
        assert_eq!(aus.names, vec!["AU1", "AU12", "AU25"]);
        assert_eq!(aus.of(0), &[1, 0, 0]);
        assert_eq!(aus.of(1), &[0, 1, 1]);
        let second = data.subset(&[1]);
        assert_eq!(second.aus.ok_or("kept by subset")?.present, vec![0, 1, 1]);
        Ok(())
    }

    #[test]
    fn missing_rows_and_bad_values_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let table = dir.path().join("aus.csv");
        std::fs::write(&table, "subject,sequence,AU1\nS005,001,1\n")?;
        let mut data = dataset(&["S005_001_00000011.png", "S999_001_00000001.png"]);
        let err = attach_aus(&mut data, &table)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no row for 1 images") && err.contains("S999"),
            "{err}"
        );
        std::fs::write(&table, "subject,sequence,AU1\nS005,001,yes\n")?;
        let err = attach_aus(&mut dataset(&["S005_001_00000011.png"]), &table)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("line 2") && err.contains("AU1 is `yes`"),
            "{err}"
        );
        std::fs::write(&table, "subject,sequence\nS005,001\n")?;
        let err = attach_aus(&mut dataset(&["S005_001_00000011.png"]), &table)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("AU1"), "{err}");
        Ok(())
    }

    mod fuzz {
        use super::*;
        use crate::fuzzing::damaged;
        use proptest::prelude::*;

        const VALID: &str = "subject,sequence,emotion,n_aus,AU1,AU12,AU25\nS005,001,happy,2,0,1,1\nS010,2,happy,1,1,0,0\n";

        proptest! {
            #[test]
            fn a_damaged_unit_table_is_joined_or_refused(text in damaged(VALID)) {
                let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let table = dir.path().join("aus.csv");
                std::fs::write(&table, text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut data = dataset(&["a/happy/S010_002_00000014.png", "a/happy/S005_001_00000011.png"]);
                if attach_aus(&mut data, &table).is_ok() {
                    let aus = data.aus.as_ref().ok_or_else(|| TestCaseError::fail("units attached"))?;
                    prop_assert!(aus.present.iter().all(|&v| v <= 1));
                }
            }
        }
    }
}
