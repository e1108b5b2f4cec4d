//! Small helpers with no better home: dates for provenance, locating bundled files, the index of
//! the largest value.

use std::path::PathBuf;

/// File name of the default emotion model in `models/`.
pub const DEFAULT_MODEL_FILE: &str = "emolens-ferplus.int8.onnx";

/// Today's UTC date as `YYYY-MM-DD`.
pub fn utc_date() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The current UTC time as `YYYYMMDD-HHMMSS`, for file names.
pub fn utc_file_stamp() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((seconds / 86_400) as i64);
    let time = seconds % 86_400;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Folders searched for bundled files (`models/`, `cascades/`), in order: the install folder
/// of `scripts/setup.sh`, the source tree the binary was built in, the current folder.
pub fn data_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(install) =
        crate::ort_runtime::install_dir().and_then(|d| d.parent().map(PathBuf::from))
    {
        dirs.push(install);
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dirs.push(PathBuf::from("."));
    dirs
}

/// A file shipped with emolens (`models/...`, `cascades/...`), in the first of [`data_dirs`]
/// that has it, or `None`.
pub fn bundled(relative: &str) -> Option<PathBuf> {
    data_dirs()
        .into_iter()
        .map(|d| d.join(relative))
        .find(|p| p.is_file())
}

/// The shipped default model, wherever it is found first, or where it should be.
pub fn default_model_path() -> PathBuf {
    let relative = format!("models/{DEFAULT_MODEL_FILE}");
    bundled(&relative).unwrap_or_else(|| PathBuf::from(relative))
}

/// Index of the largest value; the first one on ties.
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
    }
}
