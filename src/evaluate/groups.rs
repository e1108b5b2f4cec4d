//! Per-group evaluation (`emolens evaluate --groups FILE`): a CSV assigns images to groups
//! (`path,age,gender`); every value of every group column is scored on its own images, and each
//! column reports the largest accuracy gap between its groups.
//!
//! A row's `path` names an image of the dataset when, tried in this order,
//! 1. it equals the image's path as the dataset lists it ([`Dataset::sources`]), or
//! 2. taken relative to the CSV's folder (absolute paths as they are), it is the same path,
//!    compared lexically (`.` and `..` resolved, symbolic links not followed), or
//! 3. its file name is the file name of exactly one image of the dataset.
//!
//! [`Dataset::sources`]: crate::dataset::Dataset::sources

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::views::ViewMap;
use crate::metrics::ConfusionMatrix;

/// The column that holds the image paths.
pub const PATH_COLUMN: &str = "path";

/// A groups CSV that cannot be used; each message names the file (and line) and the fix.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    /// The file does not exist.
    #[error("{0}: not found; give a CSV file with a `path` column and one column per grouping")]
    NotFound(PathBuf),
    /// Not even a header line.
    #[error("{0}: empty file; the first line must be a header such as `path,age,gender`")]
    Empty(PathBuf),
    /// The header has no `path` column.
    #[error("{path}, line 1: no `path` column (the header is `{header}`); name the image path column `path`")]
    NoPathColumn {
        /// The CSV file.
        path: PathBuf,
        /// The header as found.
        header: String,
    },
    /// The header has `path` only.
    #[error(
        "{0}, line 1: no group columns; add at least one column besides `path`, e.g. `path,gender`"
    )]
    NoGroupColumns(PathBuf),
    /// Two columns with one name.
    #[error("{path}, line 1: column `{column}` appears twice; rename or remove one of them")]
    DuplicateColumn {
        /// The CSV file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },
    /// A header but no rows.
    #[error("{0}: no rows; add one row per image below the header")]
    NoRows(PathBuf),
    /// A row that cannot be read.
    #[error("{path}, line {line}: {reason}; fix or delete that row")]
    BadRow {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Two rows for one image.
    #[error("{path}, line {line}: names the same image as line {first} ({image}); keep one row per image")]
    DuplicateImage {
        /// The CSV file.
        path: PathBuf,
        /// The second row's line.
        line: u64,
        /// The first row's line.
        first: u64,
        /// The image both name.
        image: String,
    },
    /// No row names an image of the dataset.
    #[error("{path}: none of its {rows} rows names an image of the dataset (line 2 has `{example}`, the first image is `{image}`); write each path as the dataset lists it, relative to the CSV's folder, or as a file name")]
    NoMatch {
        /// The CSV file.
        path: PathBuf,
        /// Rows in the file.
        rows: usize,
        /// The first row's path.
        example: String,
        /// The dataset's first image.
        image: String,
    },
    /// An I/O or CSV-level failure.
    #[error("{path}: {error}")]
    Io {
        /// The CSV file.
        path: PathBuf,
        /// The underlying error.
        error: csv::Error,
    },
}

/// One row of the groups CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    /// 1-based line number.
    line: u64,
    /// The image path as written.
    path: String,
    /// One value per group column (trimmed; empty when the cell is).
    values: Vec<String>,
}

/// A parsed groups CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTable {
    /// The CSV file.
    pub file: PathBuf,
    /// Group column names, in file order.
    pub columns: Vec<String>,
    rows: Vec<Row>,
}

/// Which row belongs to which image of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// Row index of each image; `None` for images without a row.
    row_of: Vec<Option<usize>>,
    /// The counts, for the report.
    pub summary: JoinSummary,
}

/// How the rows of a groups CSV met the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinSummary {
    /// The CSV file.
    pub file: String,
    /// Rows in the file.
    pub rows: usize,
    /// Images with a row.
    pub matched: usize,
    /// Images without a row: left out of every group.
    pub images_without_row: usize,
    /// Rows that name no image of the dataset: ignored.
    pub rows_without_image: usize,
}

/// The scores of one group (one value of one column).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupScores {
    /// Images in the group.
    pub images: usize,
    /// Share of them whose predicted label is the true one.
    pub accuracy: f64,
    /// Mean F1 over the labels present in the group ([`crate::metrics::Report::macro_f1_present`]).
    pub macro_f1: f64,
    /// Accuracy of each view, over the group's images that the view scores (views that score
    /// none of them are absent).
    pub views: BTreeMap<String, f64>,
}

/// The largest difference of a metric between the groups of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// The metric compared.
    pub metric: &'static str,
    /// Highest minus lowest.
    pub gap: f64,
    /// The group with the highest value, then the one with the lowest.
    pub between: [String; 2],
}

/// The scores of one group column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnReport {
    /// Scores per value of the column.
    pub values: BTreeMap<String, GroupScores>,
    /// Images with a row whose cell in this column is empty: in no group of it.
    pub unassigned: usize,
    /// The largest accuracy gap; `None` when the column has fewer than two values.
    pub largest_gap: Option<Gap>,
}

impl GroupTable {
    /// Reads a groups CSV: a header with a `path` column (any case) and at least one group
    /// column, then one row per image.
    ///
    /// # Errors
    /// [`GroupsError`] naming the file, the line and the fix.
    pub fn read(file: &Path) -> Result<Self, GroupsError> {
        if !file.is_file() {
            return Err(GroupsError::NotFound(file.to_owned()));
        }
        let mut reader = csv::Reader::from_path(file).map_err(|e| row_error(file, e))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| row_error(file, e))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        if header.is_empty() {
            return Err(GroupsError::Empty(file.to_owned()));
        }
        let path_col = header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(PATH_COLUMN))
            .ok_or_else(|| GroupsError::NoPathColumn {
                path: file.to_owned(),
                header: header.join(","),
            })?;
        let columns: Vec<String> = without(&header, path_col).collect();
        if columns.is_empty() {
            return Err(GroupsError::NoGroupColumns(file.to_owned()));
        }
        if let Some((_, column)) = columns
            .iter()
            .enumerate()
            .find(|&(i, c)| columns[..i].contains(c))
        {
            return Err(GroupsError::DuplicateColumn {
                path: file.to_owned(),
                column: column.clone(),
            });
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| row_error(file, e))?;
            let line = record.position().map_or(0, csv::Position::line);
            let cells: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
            let path = cells.get(path_col).cloned().unwrap_or_default();
            if path.is_empty() {
                return Err(GroupsError::BadRow {
                    path: file.to_owned(),
                    line,
                    reason: "empty `path`".into(),
                });
            }
            rows.push(Row {
                line,
                path,
                values: without(&cells, path_col).collect(),
            });
        }
        if rows.is_empty() {
            return Err(GroupsError::NoRows(file.to_owned()));
        }
        Ok(Self {
            file: file.to_owned(),
            columns,
            rows,
        })
    }

    /// Finds each row's image among `sources` by the rule in the module documentation;
    /// relative paths are taken from `cwd`.
    ///
    /// # Errors
    /// [`GroupsError::DuplicateImage`] when two rows name one image, [`GroupsError::NoMatch`]
    /// when no row names any.
    pub fn join(&self, sources: &[String], cwd: &Path) -> Result<Join, GroupsError> {
        let exact: HashMap<&str, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        let absolute: HashMap<PathBuf, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (lexical_absolute(Path::new(s), cwd), i))
            .collect();
        // `None` marks a file name that several images share.
        let mut by_name: HashMap<&OsStr, Option<usize>> = HashMap::new();
        for (i, source) in sources.iter().enumerate() {
            if let Some(name) = Path::new(source).file_name() {
                by_name
                    .entry(name)
                    .and_modify(|image| *image = None)
                    .or_insert(Some(i));
            }
        }
        let folder = lexical_absolute(self.file.parent().unwrap_or(Path::new("")), cwd);
        let mut row_of = vec![None; sources.len()];
        let mut rows_without_image = 0;
        for (r, row) in self.rows.iter().enumerate() {
            let path = Path::new(&row.path);
            let image = exact
                .get(row.path.as_str())
                .or_else(|| absolute.get(&lexical_absolute(path, &folder)))
                .copied()
                .or_else(|| {
                    path.file_name()
                        .and_then(|n| by_name.get(n).copied().flatten())
                });
            let Some(image) = image else {
                rows_without_image += 1;
                continue;
            };
            if let Some(first) = row_of[image].replace(r) {
                return Err(GroupsError::DuplicateImage {
                    path: self.file.clone(),
                    line: row.line,
                    first: self.rows[first].line,
                    image: sources[image].clone(),
                });
            }
        }
        let matched = row_of.iter().flatten().count();
        if matched == 0 {
            return Err(GroupsError::NoMatch {
                path: self.file.clone(),
                rows: self.rows.len(),
                example: self.rows[0].path.clone(),
                image: sources.first().cloned().unwrap_or_default(),
            });
        }
        Ok(Join {
            row_of,
            summary: JoinSummary {
                file: self.file.display().to_string(),
                rows: self.rows.len(),
                matched,
                images_without_row: sources.len() - matched,
                rows_without_image,
            },
        })
    }

    /// Scores every value of every column. `pairs` holds `(true label, predicted label)` per
    /// image of the joined dataset; `labels` names the labels, `views` are scored per group too.
    pub fn score(
        &self,
        join: &Join,
        labels: &[String],
        views: &[ViewMap],
        pairs: &[(usize, usize)],
    ) -> BTreeMap<String, ColumnReport> {
        let mut out = BTreeMap::new();
        for (c, column) in self.columns.iter().enumerate() {
            let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            let mut unassigned = 0;
            for (image, row) in join.row_of.iter().enumerate() {
                let Some(row) = row else { continue };
                match self.rows[*row].values[c].as_str() {
                    "" => unassigned += 1,
                    value => members.entry(value).or_default().push(image),
                }
            }
            let values: BTreeMap<String, GroupScores> = members
                .into_iter()
                .map(|(value, images)| {
                    let group = images.iter().map(|&i| pairs[i]);
                    let report =
                        ConfusionMatrix::from_pairs(labels.len(), group.clone()).report(labels);
                    let views = views
                        .iter()
                        .map(|view| (view.name.clone(), view.score(group.clone())))
                        .filter(|(_, scored)| scored.images > 0)
                        .map(|(name, scored)| (name, scored.report.accuracy))
                        .collect();
                    let scores = GroupScores {
                        images: images.len(),
                        accuracy: report.accuracy,
                        macro_f1: report.macro_f1_present(),
                        views,
                    };
                    (value.to_owned(), scores)
                })
                .collect();
            let largest_gap = largest_accuracy_gap(&values);
            out.insert(
                column.clone(),
                ColumnReport {
                    values,
                    unassigned,
                    largest_gap,
                },
            );
        }
        out
    }
}

/// The cells of `cells` except the one at `skip`.
fn without(cells: &[String], skip: usize) -> impl Iterator<Item = String> + '_ {
    cells
        .iter()
        .enumerate()
        .filter(move |&(i, _)| i != skip)
        .map(|(_, cell)| cell.clone())
}

/// A CSV error as [`GroupsError::BadRow`] when it concerns one row (a wrong number of fields,
/// bytes that are not UTF-8), else as [`GroupsError::Io`].
fn row_error(file: &Path, error: csv::Error) -> GroupsError {
    let line = error.position().map(csv::Position::line);
    let reason = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Some(format!("{len} fields where the header has {expected_len}")),
        csv::ErrorKind::Utf8 { .. } => Some("not valid UTF-8".to_owned()),
        _ => None,
    };
    match (line, reason) {
        (Some(line), Some(reason)) => GroupsError::BadRow {
            path: file.to_owned(),
            line,
            reason,
        },
        _ => GroupsError::Io {
            path: file.to_owned(),
            error,
        },
    }
}

/// `path` made absolute against `base`, with `.` and `..` resolved without touching the disk.
fn lexical_absolute(path: &Path, base: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The highest minus the lowest accuracy among `values`, with the two groups; `None` for fewer
/// than two groups.
fn largest_accuracy_gap(values: &BTreeMap<String, GroupScores>) -> Option<Gap> {
    if values.len() < 2 {
        return None;
    }
    // Among equals, `max_by` keeps the last and `min_by` the first: two distinct groups.
    let (best, high) = values
        .iter()
        .max_by(|a, b| a.1.accuracy.total_cmp(&b.1.accuracy))?;
    let (worst, low) = values
        .iter()
        .min_by(|a, b| a.1.accuracy.total_cmp(&b.1.accuracy))?;
    Some(Gap {
        metric: "accuracy",
        gap: high.accuracy - low.accuracy,
        between: [best.clone(), worst.clone()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn write_csv(dir: &Path, text: &str) -> std::io::Result<PathBuf> {
        let path = dir.join("groups.csv");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    fn labels() -> Vec<String> {
        vec!["pos".into(), "neg".into()]
    }

    /// Four images in `/data/<class>/`, each named once.
    fn sources() -> Vec<String> {
        [
            "/data/pos/1.png",
            "/data/pos/2.png",
            "/data/neg/3.png",
            "/data/neg/4.png",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn joins_by_each_rule_and_scores_groups_with_their_gap() -> TestResult {
        let dir = tempfile::tempdir()?;
        // Image 1 by its exact path, 2 relative to the CSV's folder (the CSV sits in /data/sub
        // here, through `cwd`), 3 by file name; 4 has no row; one row names nothing.
        let file = write_csv(
            dir.path(),
            "path,sex,site\n/data/pos/1.png,f,x\n../pos/2.png,m,x\nelsewhere/3.png,f,\nnone.png,m,x\n",
        )?;
        let table = GroupTable::read(&file)?;
        assert_eq!(table.columns, vec!["sex", "site"]);
        // The CSV's folder is taken against `cwd`: a relative CSV path puts it in /data/sub.
        let relative = GroupTable {
            file: PathBuf::from("sub/groups.csv"),
            ..table
        };
        let join = relative.join(&sources(), Path::new("/data"))?;
        assert_eq!(join.row_of, vec![Some(0), Some(1), Some(2), None]);
        assert_eq!(join.summary.matched, 3);
        assert_eq!(join.summary.images_without_row, 1);
        assert_eq!(join.summary.rows_without_image, 1);

        // Truth/prediction per image: 1 right, 2 wrong, 3 right, 4 right.
        let pairs = [(0, 0), (0, 1), (1, 1), (1, 1)];
        let columns = relative.score(&join, &labels(), &[], &pairs);
        let sex = &columns["sex"];
        // f: images 1 and 3, both right; m: image 2, wrong.
        assert_eq!(sex.values["f"].images, 2);
        assert!((sex.values["f"].accuracy - 1.0).abs() < 1e-12);
        assert_eq!(sex.values["m"].images, 1);
        assert_eq!(sex.values["m"].accuracy, 0.0);
        let gap = sex.largest_gap.as_ref().ok_or("no gap")?;
        assert!((gap.gap - 1.0).abs() < 1e-12);
        assert_eq!(gap.between, ["f".to_owned(), "m".to_owned()]);
        // site: image 3's cell is empty; x holds images 1 and 2.
        let site = &columns["site"];
        assert_eq!(site.unassigned, 1);
        assert_eq!(site.values["x"].images, 2);
        assert!(site.largest_gap.is_none());
        let table_text = crate::evaluate::group_table::to_table(&join.summary, &columns, &[]);
        assert!(
            table_text.contains("largest accuracy gap 1.0000: f vs m"),
            "{table_text}"
        );
        Ok(())
    }

    #[test]
    fn shared_file_names_do_not_match_by_name() -> TestResult {
        let dir = tempfile::tempdir()?;
        let file = write_csv(dir.path(), "path,g\nx.png,a\n")?;
        let sources = ["/d/a/x.png", "/d/b/x.png"].map(String::from);
        let err = GroupTable::read(&file)?
            .join(&sources, Path::new("/"))
            .unwrap_err();
        assert!(matches!(err, GroupsError::NoMatch { .. }), "{err}");
        Ok(())
    }

    #[test]
    fn bad_files_are_explained() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cases = [
            ("", "empty file"),
            ("image,g\na.png,x\n", "no `path` column"),
            ("path\na.png\n", "no group columns"),
            ("path,g,g\na.png,x,y\n", "`g` appears twice"),
            ("path,g\n", "no rows"),
            (
                "path,g\na.png,x\nb.png\n",
                "line 3: 1 fields where the header has 2",
            ),
            ("path,g\n ,x\n", "line 2: empty `path`"),
        ];
        for (text, needle) in cases {
            let file = write_csv(dir.path(), text)?;
            let err = GroupTable::read(&file).unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("groups.csv"),
                "{text:?}: {err}"
            );
        }
        let file = write_csv(dir.path(), "path,g\na.png,x\n./a.png,y\n")?;
        let err = GroupTable::read(&file)?
            .join(&["a.png".to_owned()], dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3: names the same image as line 2"),
            "{err}"
        );
        Ok(())
    }
}
