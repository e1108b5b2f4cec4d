//! Chart legends: a mark (a line with its dash, or a filled square) and a label per entry,
//! laid out left to right and wrapped.

use super::charts::{CHART_WIDTH, CHAR_WIDTH, LEGEND_LINE, PLOT_LEFT, PLOT_RIGHT};
use super::html::{escape, label_colour};

/// One entry of a chart legend.
pub(super) struct LegendItem {
    colour: String,
    kind: LegendMark,
    text: String,
}

/// How a legend entry's mark is drawn.
enum LegendMark {
    /// A short line, dashed when the pattern is not empty.
    Line(&'static str),
    /// A filled square with this opacity.
    Cell(f64),
}

impl LegendItem {
    pub(super) fn line(colour: &str, dash: &'static str, text: String) -> Self {
        LegendItem {
            colour: colour.to_string(),
            kind: LegendMark::Line(dash),
            text,
        }
    }

    pub(super) fn cell(colour: &str, opacity: f64, text: String) -> Self {
        LegendItem {
            colour: colour.to_string(),
            kind: LegendMark::Cell(opacity),
            text,
        }
    }

    /// Estimated width of mark, text and spacing.
    fn width(&self) -> f64 {
        24.0 + self.text.chars().count() as f64 * CHAR_WIDTH + 18.0
    }

    fn render(&self, x: f64, y: f64) -> String {
        let mark = match self.kind {
            LegendMark::Line(dash) => format!(
                "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"2.5\" stroke-dasharray=\"{dash}\"/>",
                x + 18.0,
                self.colour
            ),
            LegendMark::Cell(opacity) => format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"12\" fill=\"{}\" fill-opacity=\"{opacity}\" stroke=\"#b0b0b0\" stroke-width=\"0.5\"/>",
                y - 6.0,
                self.colour
            ),
        };
        format!(
            "{mark}<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            x + 24.0,
            y + 4.0,
            escape(&self.text)
        )
    }
}

/// One legend entry per label, in label order.
pub(super) fn label_legend_items(labels: &[String]) -> Vec<LegendItem> {
    labels
        .iter()
        .enumerate()
        .map(|(index, label)| LegendItem::cell(&label_colour(label, index), 1.0, label.clone()))
        .collect()
}

/// Lays out legend entries left to right, wrapping lines; returns the SVG and its height.
pub(super) fn legend(items: &[LegendItem], top: f64) -> (String, f64) {
    let right = CHART_WIDTH - PLOT_RIGHT;
    let mut svg = String::new();
    let (mut x, mut line) = (PLOT_LEFT, 0usize);
    for item in items {
        if x > PLOT_LEFT && x + item.width() > right {
            x = PLOT_LEFT;
            line += 1;
        }
        svg.push_str(&item.render(x, top + 6.0 + line as f64 * LEGEND_LINE));
        x += item.width();
    }
    let lines = if items.is_empty() { 0 } else { line + 1 };
    (svg, top + lines as f64 * LEGEND_LINE)
}
