//! Column lookup shared by the CSV formats that name their columns (manifests, action-unit
//! tables): required columns by name, action-unit columns (`AU` and digits) by pattern, and
//! 0/1 unit values with line-numbered errors.

use std::path::Path;

use super::DatasetError;

/// A CSV header and the file it came from.
pub struct Columns<'a> {
    path: &'a Path,
    header: csv::StringRecord,
    expected: &'static str,
}

impl<'a> Columns<'a> {
    /// `header` of `path`, a file of the kind `expected` describes (for error messages).
    pub fn new(path: &'a Path, header: csv::StringRecord, expected: &'static str) -> Self {
        Self {
            path,
            header,
            expected,
        }
    }

    /// The index of column `name` (ignoring case and surrounding spaces).
    ///
    /// # Errors
    /// [`DatasetError::MissingColumn`] when there is none.
    pub fn required(&self, name: &str) -> Result<usize, DatasetError> {
        self.header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| DatasetError::MissingColumn {
                path: self.path.to_owned(),
                column: name.to_owned(),
                expected: self.expected,
            })
    }

    /// The action-unit columns, in file order: index and name.
    pub fn units(&self) -> Vec<(usize, String)> {
        self.header
            .iter()
            .enumerate()
            .filter(|(_, h)| is_unit_name(h.trim()))
            .map(|(i, h)| (i, h.trim().to_owned()))
            .collect()
    }
}

/// The 0/1 values of `units` in `record` (line `line` of `path`).
///
/// # Errors
/// [`DatasetError::BadRow`] for any other value.
pub fn unit_values(
    record: &csv::StringRecord,
    units: &[(usize, String)],
    path: &Path,
    line: u64,
) -> Result<Vec<u8>, DatasetError> {
    units
        .iter()
        .map(
            |(i, name)| match record.get(*i).map(str::trim).unwrap_or("") {
                "0" => Ok(0),
                "1" => Ok(1),
                other => Err(DatasetError::BadRow {
                    path: path.to_owned(),
                    line,
                    reason: format!("{name} is `{other}`, expected 0 or 1"),
                }),
            },
        )
        .collect()
}

/// The rows of a CSV file with their line numbers (the header is line 1).
///
/// # Errors
/// Each row that cannot be read is an error naming its line.
pub fn numbered_rows<'a, R: std::io::Read>(
    reader: &'a mut csv::Reader<R>,
    path: &'a Path,
) -> impl Iterator<Item = Result<(u64, csv::StringRecord), DatasetError>> + 'a {
    reader.records().enumerate().map(move |(n, record)| {
        let line = n as u64 + 2;
        record
            .map(|r| (line, r))
            .map_err(|e| bad_row(path, line, e.to_string()))
    })
}

/// Line `line` of `path` is wrong for `reason`.
pub fn bad_row(path: &Path, line: u64, reason: String) -> DatasetError {
    DatasetError::BadRow {
        path: path.to_owned(),
        line,
        reason,
    }
}

/// `AU` followed by digits.
fn is_unit_name(name: &str) -> bool {
    name.strip_prefix("AU")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}
