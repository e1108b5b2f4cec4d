//! The per-group scores of `emolens evaluate --groups` as the terminal shows them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::groups::{ColumnReport, JoinSummary};
use super::views::ViewMap;

/// The per-group table: one line per column value, then each column's largest gap.
pub fn to_table(
    summary: &JoinSummary,
    columns: &BTreeMap<String, ColumnReport>,
    views: &[ViewMap],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ngroups from {} ({} of {} images have a row{}):",
        summary.file,
        summary.matched,
        summary.matched + summary.images_without_row,
        if summary.rows_without_image == 0 {
            String::new()
        } else {
            format!(
                "; {} rows name no image and were ignored",
                summary.rows_without_image
            )
        }
    );
    let name_width = columns.keys().map(String::len).max().unwrap_or(0).max(6);
    let value_width = columns
        .values()
        .flat_map(|c| c.values.keys().map(String::len))
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = write!(
        out,
        "{:<name_width$} {:<value_width$} {:>7} {:>9} {:>9}",
        "column", "value", "images", "accuracy", "macro F1"
    );
    for view in views {
        let _ = write!(out, " {:>9}", view.name);
    }
    let _ = writeln!(out);
    for (name, column) in columns {
        for (value, s) in &column.values {
            let _ = write!(
                out,
                "{name:<name_width$} {value:<value_width$} {:>7} {:>9.4} {:>9.4}",
                s.images, s.accuracy, s.macro_f1
            );
            for view in views {
                match s.views.get(&view.name) {
                    Some(accuracy) => {
                        let _ = write!(out, " {accuracy:>9.4}");
                    }
                    None => {
                        let _ = write!(out, " {:>9}", "-");
                    }
                }
            }
            let _ = writeln!(out);
        }
        if column.unassigned > 0 {
            let _ = writeln!(
                out,
                "{name:<name_width$} {} images with an empty cell are in no group",
                column.unassigned
            );
        }
        let _ = match &column.largest_gap {
            Some(gap) => writeln!(
                out,
                "{name:<name_width$} largest accuracy gap {:.4}: {} vs {}",
                gap.gap, gap.between[0], gap.between[1]
            ),
            None => writeln!(out, "{name:<name_width$} one group only: no gap"),
        };
    }
    out
}
