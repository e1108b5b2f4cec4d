//! PNG charts drawn with OpenCV: training curves and confusion matrices, so results can be
//! looked at without any plotting tool.

use std::path::Path;

use opencv::core::{Mat, Point, Rect, Scalar, Vector, CV_8UC3};
use opencv::{imgcodecs, imgproc};

/// One named series of `(x, y)` points.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// BGR colour.
    pub colour: [f64; 3],
    /// Points in data units.
    pub points: Vec<(f64, f64)>,
}

/// Size of one line-chart panel in pixels.
const PANEL: (i32, i32) = (640, 360);
/// Space around the plotting area for axes and labels.
const MARGIN: i32 = 50;
const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;
/// Text sizes: panel titles, legends, axis ticks.
const TITLE_TEXT: f64 = 0.6;
const LEGEND_TEXT: f64 = 0.5;
const TICK_TEXT: f64 = 0.4;
/// Baseline of a panel's title and legend below the panel's top.
const TITLE_BASELINE: i32 = 22;
/// Space between legend entries.
const LEGEND_GAP: i32 = 16;
/// Distance from the plot's bottom to the x tick labels' baseline.
const X_TICK_DROP: i32 = 15;
const WHITE: [f64; 3] = [255.0, 255.0, 255.0];
const GREY: [f64; 3] = [90.0, 90.0, 90.0];
const BLACK: [f64; 3] = [0.0, 0.0, 0.0];

fn colour(bgr: [f64; 3]) -> Scalar {
    Scalar::new(bgr[0], bgr[1], bgr[2], 0.0)
}

fn text(
    img: &mut Mat,
    label: &str,
    at: (i32, i32),
    scale: f64,
    bgr: [f64; 3],
) -> opencv::Result<()> {
    imgproc::put_text(
        img,
        label,
        Point::new(at.0, at.1),
        FONT,
        scale,
        colour(bgr),
        1,
        imgproc::LINE_AA,
        false,
    )
}

/// Draws panels of line charts stacked vertically (one per `(title, series)`) and writes a PNG.
///
/// # Errors
/// OpenCV's error when drawing or writing fails.
pub fn line_charts(path: &Path, panels: &[(&str, Vec<Series<'_>>)]) -> opencv::Result<()> {
    let rows = i32::try_from(panels.len()).unwrap_or(1).max(1);
    let mut img = Mat::new_rows_cols_with_default(PANEL.1 * rows, PANEL.0, CV_8UC3, colour(WHITE))?;
    for (index, (title, series)) in panels.iter().enumerate() {
        let top = PANEL.1 * i32::try_from(index).unwrap_or(0);
        draw_panel(&mut img, top, title, series)?;
    }
    write_png(path, &img)
}

fn draw_panel(img: &mut Mat, top: i32, title: &str, series: &[Series<'_>]) -> opencv::Result<()> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    let area = Rect::new(
        MARGIN,
        top + MARGIN / 2 + 10,
        PANEL.0 - 2 * MARGIN,
        PANEL.1 - MARGIN - 30,
    );
    imgproc::rectangle(img, area, colour(GREY), 1, imgproc::LINE_8, 0)?;
    text(
        img,
        title,
        (MARGIN, top + TITLE_BASELINE),
        TITLE_TEXT,
        BLACK,
    )?;
    let to_px = |x: f64, y: f64| {
        Point::new(
            area.x + ((x - x0) / (x1 - x0) * f64::from(area.width)) as i32,
            area.y + area.height - ((y - y0) / (y1 - y0) * f64::from(area.height)) as i32,
        )
    };
    text(img, &format!("{y1:.3}"), (2, area.y + 10), TICK_TEXT, GREY)?;
    text(
        img,
        &format!("{y0:.3}"),
        (2, area.y + area.height),
        TICK_TEXT,
        GREY,
    )?;
    text(
        img,
        &format!("{x0:.0}"),
        (area.x, area.y + area.height + X_TICK_DROP),
        TICK_TEXT,
        GREY,
    )?;
    text(
        img,
        &format!("{x1:.0}"),
        (area.x + area.width - 20, area.y + area.height + X_TICK_DROP),
        TICK_TEXT,
        GREY,
    )?;
    for s in series {
        let points: Vector<Point> = s.points.iter().map(|&(x, y)| to_px(x, y)).collect();
        let mut contours = Vector::<Vector<Point>>::new();
        contours.push(points.clone());
        imgproc::polylines(
            img,
            &contours,
            false,
            colour(s.colour),
            2,
            imgproc::LINE_AA,
            0,
        )?;
        for p in &points {
            imgproc::circle(img, p, 3, colour(s.colour), -1, imgproc::LINE_AA, 0)?;
        }
    }
    draw_legend(img, top, area.x + area.width, series)
}

/// The series' names in their colours, in one row on the title's line, ending at `right`: above
/// the plotting area, so no line runs through them.
fn draw_legend(img: &mut Mat, top: i32, right: i32, series: &[Series<'_>]) -> opencv::Result<()> {
    let mut widths = Vec::with_capacity(series.len());
    for s in series {
        let mut baseline = 0;
        widths.push(imgproc::get_text_size(s.name, FONT, LEGEND_TEXT, 1, &mut baseline)?.width);
    }
    let gaps = LEGEND_GAP * i32::try_from(series.len().saturating_sub(1)).unwrap_or(0);
    let mut x = right - widths.iter().sum::<i32>() - gaps;
    for (s, width) in series.iter().zip(widths) {
        text(
            img,
            s.name,
            (x, top + TITLE_BASELINE),
            LEGEND_TEXT,
            s.colour,
        )?;
        x += width + LEGEND_GAP;
    }
    Ok(())
}

/// Side of one confusion-matrix cell in pixels.
const CELL: i32 = 70;
/// Room for the row and column labels.
const LABEL_SPACE: i32 = 90;

/// Draws a confusion matrix (rows: true class, columns: predicted) as a heat map, shaded by
/// each row's share so that small classes are as readable as large ones, and writes a PNG.
///
/// # Errors
/// OpenCV's error when drawing or writing fails.
pub fn confusion_matrix(
    path: &Path,
    labels: &[String],
    counts: &[Vec<usize>],
) -> opencv::Result<()> {
    let n = i32::try_from(labels.len()).unwrap_or(0);
    let side = LABEL_SPACE + n * CELL + 10;
    let mut img = Mat::new_rows_cols_with_default(side + 20, side, CV_8UC3, colour(WHITE))?;
    text(
        &mut img,
        "true \\ predicted (row share)",
        (4, 16),
        0.45,
        BLACK,
    )?;
    for (r, row) in counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        let ri = i32::try_from(r).unwrap_or(0);
        text(
            &mut img,
            &labels[r],
            (4, LABEL_SPACE + 20 + ri * CELL + CELL / 2),
            0.45,
            BLACK,
        )?;
        text(
            &mut img,
            &labels[r],
            (LABEL_SPACE + ri * CELL + 4, LABEL_SPACE + 10),
            0.4,
            BLACK,
        )?;
        for (c, &count) in row.iter().enumerate() {
            let share = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            let ci = i32::try_from(c).unwrap_or(0);
            let cell = Rect::new(
                LABEL_SPACE + ci * CELL,
                LABEL_SPACE + 20 + ri * CELL,
                CELL,
                CELL,
            );
            let shade = 255.0 * (1.0 - share);
            imgproc::rectangle(
                &mut img,
                cell,
                colour([255.0, shade, shade]),
                -1,
                imgproc::LINE_8,
                0,
            )?;
            imgproc::rectangle(&mut img, cell, colour(GREY), 1, imgproc::LINE_8, 0)?;
            let ink = if share > 0.5 { WHITE } else { BLACK };
            text(
                &mut img,
                &count.to_string(),
                (cell.x + 6, cell.y + 28),
                0.5,
                ink,
            )?;
            text(
                &mut img,
                &format!("{:.0}%", share * 100.0),
                (cell.x + 6, cell.y + 52),
                0.45,
                ink,
            )?;
        }
    }
    write_png(path, &img)
}

fn write_png(path: &Path, img: &Mat) -> opencv::Result<()> {
    let name = path.to_str().ok_or_else(|| {
        opencv::Error::new(
            opencv::core::StsBadArg,
            format!("{}: path is not UTF-8", path.display()),
        )
    })?;
    if imgcodecs::imwrite(name, img, &Vector::new())? {
        Ok(())
    } else {
        Err(opencv::Error::new(
            opencv::core::StsError,
            format!("{name}: could not be written"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Vec3b, CV_8UC3};
    use opencv::prelude::*;

    /// Whether any pixel of `rows` x `cols` leans clearly towards blue (`blue`) or towards red:
    /// the anti-aliased text of a blue or an orange series on white.
    fn has_tint(
        img: &Mat,
        rows: std::ops::Range<i32>,
        cols: std::ops::Range<i32>,
        blue: bool,
    ) -> opencv::Result<bool> {
        for row in rows {
            for col in cols.clone() {
                let [b, _, r] = img.at_2d::<Vec3b>(row, col)?.0.map(i32::from);
                if (if blue { b - r } else { r - b }) > 40 {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    #[test]
    fn the_legend_sits_above_the_plot_on_the_title_line() -> anyhow::Result<()> {
        let (blue, orange) = ([200.0, 100.0, 0.0], [0.0, 100.0, 200.0]);
        // Falling lines leave the plot's top right empty, where a legend used to be drawn.
        let falling: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), f64::from(9 - i))).collect();
        let series = vec![
            Series {
                name: "train",
                colour: blue,
                points: falling.clone(),
            },
            Series {
                name: "validation",
                colour: orange,
                points: falling.iter().map(|&(x, y)| (x, y * 0.9)).collect(),
            },
        ];
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("curves.png");
        line_charts(&path, &[("accuracy", series)])?;
        let img = imgcodecs::imread(path.to_str().unwrap_or_default(), imgcodecs::IMREAD_COLOR)?;
        assert_eq!(
            (img.cols(), img.rows(), img.typ()),
            (PANEL.0, PANEL.1, CV_8UC3)
        );
        // Both names are drawn in the band above the plot, and none inside the plot's top right.
        let plot_top = MARGIN / 2 + 10;
        let all = 0..PANEL.0;
        assert!(has_tint(&img, 0..plot_top, all.clone(), true)?, "train");
        assert!(has_tint(&img, 0..plot_top, all, false)?, "validation");
        let top_right = (
            plot_top + 2..plot_top + 30,
            PANEL.0 / 2..PANEL.0 - MARGIN - 2,
        );
        for blue in [true, false] {
            assert!(!has_tint(
                &img,
                top_right.0.clone(),
                top_right.1.clone(),
                blue
            )?);
        }
        Ok(())
    }
}
