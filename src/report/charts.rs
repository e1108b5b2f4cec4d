//! The SVG charts of the report page: the class timeline (attentive share, engagement, faces
//! present), the stacked expression mix and the per-track strips, with their shared axes, grids
//! and legends; and the cohort page's expression mix, one bar per video. Plain SVG strings, no
//! scripts.

use super::cohort::Cohort;
use super::html::{clock, escape, label_colour, trim_decimals, window_span};
use super::legend::{label_legend_items, legend, LegendItem};
use super::{ClassWindow, Report, TrackWindow, REPORT_PAGE};

/// Width of every chart, in SVG user units (pixels at 100 %).
pub(super) const CHART_WIDTH: f64 = 960.0;
/// Room left of the plot area for y tick labels and track names.
pub(super) const PLOT_LEFT: f64 = 84.0;
/// Room right of the plot area.
pub(super) const PLOT_RIGHT: f64 = 20.0;
/// Height of the time axis below a plot area, ticks and title included.
const TIME_AXIS_HEIGHT: f64 = 44.0;
/// Height of one legend line.
pub(super) const LEGEND_LINE: f64 = 20.0;
/// Rough width of one character of 12 px legend text, for laying out legends.
pub(super) const CHAR_WIDTH: f64 = 6.3;
/// Most windows for which line charts draw a marker on every point.
const MARKER_LIMIT: usize = 60;
/// Colour of the attentive-share line.
const ATTENTIVE_COLOUR: &str = "#2563eb";
/// Colour of the engagement-index line.
const ENGAGEMENT_COLOUR: &str = "#222222";
/// Colour of the faces-present line.
const FACES_COLOUR: &str = "#6b7280";
/// The only URL the page contains: the SVG namespace.
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";
/// Height of one video's row in the cohort chart.
const COHORT_ROW_HEIGHT: f64 = 26.0;
/// Height of one video's bar in the cohort chart.
const COHORT_BAR_HEIGHT: f64 = 18.0;
/// Widest room for the video names left of the cohort bars; longer names are cut with "…".
const MAX_NAME_COLUMN: f64 = 260.0;
/// Height of the share axis below the cohort bars, ticks and title included.
const SHARE_AXIS_HEIGHT: f64 = 40.0;

/// Horizontal layout shared by the charts: maps video time to x.
struct TimeScale {
    end: f64,
}

impl TimeScale {
    fn of(report: &Report) -> Self {
        let end = report.windows.last().map_or(report.window, |w| w.end);
        TimeScale {
            end: if end > 0.0 { end } else { 1.0 },
        }
    }

    fn plot_width(&self) -> f64 {
        CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    }

    fn x(&self, time: f64) -> f64 {
        PLOT_LEFT + time / self.end * self.plot_width()
    }

    /// Left edge and width of a window's cell, with a small gap between cells.
    fn cell(&self, start: f64, end: f64) -> (f64, f64) {
        let full = self.x(end) - self.x(start);
        let gap = (full * 0.15).min(2.0);
        (self.x(start) + gap / 2.0, (full - gap).max(0.5))
    }
}

/// Attentive share and engagement index over windows, on a 0..1 axis.
pub(super) fn shares_timeline_svg(report: &Report) -> String {
    let scale = TimeScale::of(report);
    let items = [
        LegendItem::line(
            ATTENTIVE_COLOUR,
            "",
            format!(
                "Attentive share (faces with attention ≥ {})",
                trim_decimals(report.attentive_threshold)
            ),
        ),
        LegendItem::line(
            ENGAGEMENT_COLOUR,
            "6 4",
            "Class engagement index (mean over faces present)".to_string(),
        ),
    ];
    let (legend_svg, legend_height) = legend(&items, 8.0);
    let top = legend_height + 14.0;
    let plot_height = 200.0;
    let mut body = legend_svg;
    body.push_str(&share_grid(top, plot_height, false));
    body.push_str(&time_axis(&scale, top + plot_height));
    for series in SHARE_SERIES {
        let points = share_points(report, &scale, &series, top, plot_height);
        body.push_str(&line_series(&points, series.colour, series.dash));
    }
    svg_element(
        top + plot_height + TIME_AXIS_HEIGHT,
        "Line chart of the attentive share and the class engagement index per window",
        &body,
    )
}

/// One line of the class timeline: a 0..1 measure of each window.
struct ShareSeries {
    colour: &'static str,
    dash: &'static str,
    name: &'static str,
    value_of: fn(&ClassWindow) -> f64,
}

/// The two lines of the class timeline.
const SHARE_SERIES: [ShareSeries; 2] = [
    ShareSeries {
        colour: ATTENTIVE_COLOUR,
        dash: "",
        name: "attentive share",
        value_of: |window| window.attentive_share,
    },
    ShareSeries {
        colour: ENGAGEMENT_COLOUR,
        dash: "6 4",
        name: "engagement index",
        value_of: |window| window.engagement,
    },
];

/// A point of a line chart with its tooltip.
struct ChartPoint {
    x: f64,
    y: f64,
    tip: String,
}

/// A series' point at each window's middle; None where no face was present.
fn share_points(
    report: &Report,
    scale: &TimeScale,
    series: &ShareSeries,
    top: f64,
    plot_height: f64,
) -> Vec<Option<ChartPoint>> {
    report
        .windows
        .iter()
        .map(|window| {
            (window.faces_present > 0).then(|| {
                let value = (series.value_of)(window);
                ChartPoint {
                    x: scale.x((window.start + window.end) / 2.0),
                    y: top + plot_height * (1.0 - value),
                    tip: format!(
                        "{}: {} {value:.2}",
                        window_span(window.start, window.end, scale.end),
                        series.name
                    ),
                }
            })
        })
        .collect()
}

/// Faces present per window, on its own small chart.
pub(super) fn faces_timeline_svg(report: &Report) -> String {
    let scale = TimeScale::of(report);
    let items = [LegendItem::line(
        FACES_COLOUR,
        "",
        "Faces present (tracks seen in the window)".to_string(),
    )];
    let (legend_svg, legend_height) = legend(&items, 8.0);
    let top = legend_height + 14.0;
    let plot_height = 90.0;
    let max_faces = report
        .windows
        .iter()
        .map(|w| w.faces_present)
        .max()
        .unwrap_or(0)
        .max(1);
    let step = count_tick_step(max_faces);
    let axis_max = max_faces.div_ceil(step) * step;
    let mut body = legend_svg;
    for tick in (0..=axis_max).step_by(step) {
        let y = top + plot_height * (1.0 - tick as f64 / axis_max as f64);
        body.push_str(&grid_line(y, &tick.to_string()));
    }
    body.push_str(&time_axis(&scale, top + plot_height));
    let points: Vec<Option<ChartPoint>> = report
        .windows
        .iter()
        .map(|w| {
            let y = top + plot_height * (1.0 - w.faces_present as f64 / axis_max as f64);
            let tip = format!(
                "{}: {} faces present",
                window_span(w.start, w.end, scale.end),
                w.faces_present
            );
            Some(ChartPoint {
                x: scale.x((w.start + w.end) / 2.0),
                y,
                tip,
            })
        })
        .collect();
    body.push_str(&line_series(&points, FACES_COLOUR, ""));
    svg_element(
        top + plot_height + TIME_AXIS_HEIGHT,
        "Line chart of the number of faces present per window",
        &body,
    )
}

/// Integer tick step giving at most about five ticks up to `max`.
fn count_tick_step(max: usize) -> usize {
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
        .into_iter()
        .find(|step| max.div_ceil(*step) <= 5)
        .unwrap_or_else(|| max.div_ceil(5).max(1))
}

/// Stacked bars of the expression mix, one bar per window.
pub(super) fn mix_svg(report: &Report) -> String {
    let scale = TimeScale::of(report);
    let (legend_svg, legend_height) = legend(&label_legend_items(&report.labels), 8.0);
    let top = legend_height + 14.0;
    let plot_height = 200.0;
    let mut body = legend_svg;
    body.push_str(&share_grid(top, plot_height, true));
    for window in report.windows.iter().filter(|w| w.face_records > 0) {
        body.push_str(&stacked_bar(report, &scale, window, top, plot_height));
    }
    body.push_str(&time_axis(&scale, top + plot_height));
    svg_element(
        top + plot_height + TIME_AXIS_HEIGHT,
        "Stacked bar chart of the expression mix per window",
        &body,
    )
}

/// One window's bar: a segment per label with a non-zero share, first label at the bottom.
fn stacked_bar(
    report: &Report,
    scale: &TimeScale,
    window: &ClassWindow,
    top: f64,
    plot_height: f64,
) -> String {
    let (x, width) = scale.cell(window.start, window.end);
    let span = window_span(window.start, window.end, scale.end);
    let base = top + plot_height;
    mix_segments(&report.labels, &window.expression)
        .map(|segment| {
            let height = segment.share * plot_height;
            let y = base - (segment.offset + segment.share) * plot_height;
            segment.rect(x, y, width, height, &span)
        })
        .collect()
}

/// One label's part of a stacked 100 % bar.
struct MixSegment<'a> {
    /// Index of the label among the labels (for its colour).
    index: usize,
    label: &'a str,
    /// Sum of the shares of the labels before this one.
    offset: f64,
    share: f64,
}

impl MixSegment<'_> {
    /// The segment as a rectangle in the label's colour, with "`what`: label 52 %" as tooltip.
    fn rect(&self, x: f64, y: f64, width: f64, height: f64, what: &str) -> String {
        format!(
            "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{width:.2}\" height=\"{height:.2}\" fill=\"{}\"><title>{}: {} {:.0} %</title></rect>\n",
            label_colour(self.label, self.index),
            escape(what),
            escape(self.label),
            self.share * 100.0
        )
    }
}

/// The segments of a stacked bar of expression shares: one per label with a non-zero share,
/// in label order.
fn mix_segments<'a>(
    labels: &'a [String],
    shares: &'a [f64],
) -> impl Iterator<Item = MixSegment<'a>> + 'a {
    let mut offset = 0.0;
    labels
        .iter()
        .zip(shares)
        .enumerate()
        .filter(|(_, (_, &share))| share > 0.0)
        .map(move |(index, (label, &share))| {
            let segment = MixSegment {
                index,
                label,
                offset,
                share,
            };
            offset += share;
            segment
        })
}

/// The cohort's expression mix: one horizontal 100 % bar per video, named on the left and
/// linked to the video's own report page.
pub(super) fn cohort_mix_svg(cohort: &Cohort) -> String {
    let (legend_svg, legend_height) = legend(&label_legend_items(cohort.labels()), 8.0);
    let top = legend_height + 14.0;
    let longest = cohort
        .videos
        .iter()
        .map(|video| video.name.chars().count())
        .max()
        .unwrap_or(0);
    let left = (longest as f64 * CHAR_WIDTH + 16.0).clamp(PLOT_LEFT, MAX_NAME_COLUMN);
    let right = CHART_WIDTH - PLOT_RIGHT;
    let name_chars = ((left - 16.0) / CHAR_WIDTH).floor() as usize;
    let mut body = legend_svg;
    let plot_height = COHORT_ROW_HEIGHT * cohort.videos.len() as f64;
    body.push_str(&share_axis_below(left, right, top, plot_height));
    for (row, video) in cohort.videos.iter().enumerate() {
        let y =
            top + row as f64 * COHORT_ROW_HEIGHT + (COHORT_ROW_HEIGHT - COHORT_BAR_HEIGHT) / 2.0;
        let bar: String = mix_segments(&video.report.labels, &video.report.overall.expression)
            .map(|segment| {
                let x = left + segment.offset * (right - left);
                segment.rect(
                    x,
                    y,
                    segment.share * (right - left),
                    COHORT_BAR_HEIGHT,
                    &video.name,
                )
            })
            .collect();
        body.push_str(&format!(
            "<a href=\"{}/{REPORT_PAGE}\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{}</text>\n{bar}</a>\n",
            escape(&video.name),
            left - 8.0,
            y + COHORT_BAR_HEIGHT - 4.0,
            escape(&video.name),
            escape(&shorten(&video.name, name_chars)),
        ));
    }
    svg_element(
        top + plot_height + SHARE_AXIS_HEIGHT,
        "Stacked bar chart of the expression mix of each video",
        &body,
    )
}

/// `text` cut to `chars` characters, ending in "…" when cut.
fn shorten(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Vertical grid lines at 0, 25, 50, 75 and 100 % of the width from `left` to `right`, over a
/// plot `plot_height` high, with their labels and the axis title below.
fn share_axis_below(left: f64, right: f64, top: f64, plot_height: f64) -> String {
    let bottom = top + plot_height;
    let mut axis: String = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|&value| {
            let x = left + value * (right - left);
            format!(
                "<line x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"{top:.2}\" y2=\"{bottom:.2}\" stroke=\"#e5e5e5\"/>\n\
                 <text class=\"tick\" x=\"{x:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{:.0} %</text>\n",
                bottom + 14.0,
                value * 100.0
            )
        })
        .collect();
    axis.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.2}\" text-anchor=\"middle\">share of the video's face frames</text>\n",
        (left + right) / 2.0,
        bottom + 32.0
    ));
    axis
}

/// One row per track, one cell per window where present.
pub(super) fn strips_svg(report: &Report) -> String {
    let scale = TimeScale::of(report);
    let mut items = label_legend_items(&report.labels);
    items.extend([
        LegendItem::cell("#555555", 1.0, "attention 1".to_string()),
        LegendItem::cell("#555555", 0.5, "attention 0.5".to_string()),
        LegendItem::cell("#555555", 0.1, "attention 0.1".to_string()),
    ]);
    let (legend_svg, legend_height) = legend(&items, 8.0);
    let top = legend_height + 14.0;
    let row_height = 18.0;
    let cell_height = 14.0;
    let plot_height = row_height * report.tracks.len() as f64;
    let mut body = legend_svg;
    for (row, track) in report.tracks.iter().enumerate() {
        let y = top + row as f64 * row_height;
        body.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">Face {}</text>\n",
            PLOT_LEFT - 8.0,
            y + cell_height - 3.0,
            track.track
        ));
        for cell in report
            .track_windows
            .iter()
            .filter(|tw| tw.track == track.track)
        {
            body.push_str(&strip_cell(report, &scale, cell, y, cell_height));
        }
    }
    body.push_str(&time_axis(&scale, top + plot_height));
    svg_element(
        top + plot_height + TIME_AXIS_HEIGHT,
        "Per-face strips: dominant expression per window, opacity showing attention",
        &body,
    )
}

/// A track's cell in one window: dominant label colour, opacity = attention.
fn strip_cell(
    report: &Report,
    scale: &TimeScale,
    cell: &TrackWindow,
    y: f64,
    height: f64,
) -> String {
    let (x, width) = scale.cell(cell.start, cell.end);
    let index = report
        .labels
        .iter()
        .position(|label| *label == cell.dominant_label)
        .unwrap_or(0);
    let tip = format!(
        "Face {}, {}: mostly {}, attention {:.2}, engagement index {:.2}, {} frames",
        cell.track,
        window_span(cell.start, cell.end, scale.end),
        cell.dominant_label,
        cell.attention,
        cell.engagement,
        cell.frames
    );
    format!(
        "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{width:.2}\" height=\"{height:.2}\" fill=\"{}\" fill-opacity=\"{:.3}\" stroke=\"#b0b0b0\" stroke-width=\"0.5\"><title>{}</title></rect>\n",
        label_colour(&cell.dominant_label, index),
        cell.attention,
        escape(&tip)
    )
}

/// An `<svg>` element of the chart width with the given height and content.
fn svg_element(height: f64, description: &str, body: &str) -> String {
    format!(
        "<svg xmlns=\"{SVG_NAMESPACE}\" width=\"{CHART_WIDTH}\" height=\"{height:.0}\" viewBox=\"0 0 {CHART_WIDTH} {height:.0}\" role=\"img\" aria-label=\"{desc}\">\n<title>{desc}</title>\n{body}</svg>\n",
        desc = escape(description)
    )
}

/// Horizontal grid lines and labels for a 0..1 axis (as percentages when `percent`).
fn share_grid(top: f64, plot_height: f64, percent: bool) -> String {
    [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|&value| {
            let label = if percent {
                format!("{:.0} %", value * 100.0)
            } else {
                trim_decimals(value)
            };
            grid_line(top + plot_height * (1.0 - value), &label)
        })
        .collect()
}

/// A light horizontal line across the plot with a tick label on the left.
fn grid_line(y: f64, label: &str) -> String {
    format!(
        "<line x1=\"{PLOT_LEFT}\" x2=\"{:.1}\" y1=\"{y:.2}\" y2=\"{y:.2}\" stroke=\"#e5e5e5\"/>\n\
         <text class=\"tick\" x=\"{:.1}\" y=\"{:.2}\" text-anchor=\"end\">{}</text>\n",
        CHART_WIDTH - PLOT_RIGHT,
        PLOT_LEFT - 6.0,
        y + 4.0,
        escape(label)
    )
}

/// The time axis along the bottom of a plot: line, ticks, tick labels and title.
fn time_axis(scale: &TimeScale, y: f64) -> String {
    let mut axis = format!(
        "<line x1=\"{PLOT_LEFT}\" x2=\"{:.1}\" y1=\"{y:.2}\" y2=\"{y:.2}\" stroke=\"#888\"/>\n",
        CHART_WIDTH - PLOT_RIGHT
    );
    for tick in time_ticks(scale.end) {
        let x = scale.x(tick);
        axis.push_str(&format!(
            "<line x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"{y:.2}\" y2=\"{:.2}\" stroke=\"#888\"/>\n\
             <text class=\"tick\" x=\"{x:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{}</text>\n",
            y + 5.0,
            y + 18.0,
            escape(&clock(tick, scale.end))
        ));
    }
    axis.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.2}\" text-anchor=\"middle\">time in the video</text>\n",
        PLOT_LEFT + scale.plot_width() / 2.0,
        y + 36.0
    ));
    axis
}

/// Evenly spaced round tick times from 0 to `end`, at most about eight of them.
fn time_ticks(end: f64) -> Vec<f64> {
    const STEPS: [f64; 18] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0, 14400.0,
    ];
    let step = STEPS
        .into_iter()
        .find(|step| end / step <= 8.0)
        .unwrap_or(end / 8.0);
    let count = (end / step + 1e-9).floor() as usize;
    (0..=count).map(|index| index as f64 * step).collect()
}

/// Polylines through consecutive present points, a marker where needed, a tooltip per point.
fn line_series(points: &[Option<ChartPoint>], colour: &str, dash: &str) -> String {
    let dash_attribute = if dash.is_empty() {
        String::new()
    } else {
        format!(" stroke-dasharray=\"{dash}\"")
    };
    let mut svg = String::new();
    for run in points.split(Option::is_none) {
        let coordinates: Vec<String> = run
            .iter()
            .flatten()
            .map(|point| format!("{:.2},{:.2}", point.x, point.y))
            .collect();
        if coordinates.len() > 1 {
            svg.push_str(&format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash_attribute} stroke-linejoin=\"round\"/>\n",
                coordinates.join(" ")
            ));
        }
    }
    let show_every_marker = points.len() <= MARKER_LIMIT;
    for (index, point) in points
        .iter()
        .enumerate()
        .filter_map(|(index, point)| point.as_ref().map(|point| (index, point)))
    {
        let isolated = !has_point(points, index.wrapping_sub(1)) && !has_point(points, index + 1);
        svg.push_str(&point_marker(point, colour, show_every_marker || isolated));
    }
    svg
}

/// A point's hover target with its tooltip, plus a visible dot when asked.
fn point_marker(point: &ChartPoint, colour: &str, visible: bool) -> String {
    let (x, y) = (point.x, point.y);
    let dot = if visible {
        format!("<circle cx=\"{x:.2}\" cy=\"{y:.2}\" r=\"3\" fill=\"{colour}\"/>")
    } else {
        String::new()
    };
    format!(
        "{dot}<circle cx=\"{x:.2}\" cy=\"{y:.2}\" r=\"6\" fill=\"transparent\"><title>{}</title></circle>\n",
        escape(&point.tip)
    )
}

fn has_point(points: &[Option<ChartPoint>], index: usize) -> bool {
    matches!(points.get(index), Some(Some(_)))
}
