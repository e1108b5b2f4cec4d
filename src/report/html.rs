//! Renders the report as one self-contained HTML page: inline CSS, inline SVG
//! charts, no scripts and no external resources.
//!
//! The page has a title, a "how to read this" paragraph, a summary table, three
//! charts (class timeline, expression mix per window, per-track strips) and a
//! per-track table. Every piece of text taken from the data is HTML-escaped.

use super::{expression_mix_text, format_seconds, trim_number, ClassWindow, Report, TrackWindow};

/// Width of every chart, in SVG user units (pixels at 100 %).
const CHART_WIDTH: f64 = 960.0;
/// Room left of the plot area for y tick labels and track names.
const PLOT_LEFT: f64 = 84.0;
/// Room right of the plot area.
const PLOT_RIGHT: f64 = 20.0;
/// Height of the time axis below a plot area, ticks and title included.
const TIME_AXIS_HEIGHT: f64 = 44.0;
/// Height of one legend line.
const LEGEND_LINE: f64 = 20.0;
/// Rough width of one character of 12 px legend text, for laying out legends.
const CHAR_WIDTH: f64 = 6.3;
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

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#222;background:#fff;margin:0}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:1.7em;margin:0 0 .4em}
h2{font-size:1.2em;margin:1.8em 0 .3em}
p{line-height:1.5;margin:.4em 0 .8em}
.note{color:#555;font-size:.9em}
.empty{font-size:1.2em;font-weight:600;padding:12px 16px;background:#f4f4f5;border-left:4px solid #888}
table{border-collapse:collapse;font-size:.92em;margin:.4em 0 1em}
th,td{padding:4px 12px 4px 0;border-bottom:1px solid #e2e2e2;text-align:left;vertical-align:top}
th{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
td:first-child,th:first-child,.num{white-space:nowrap}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.35em;border-radius:2px;vertical-align:-.05em}
svg{display:block;max-width:100%;height:auto;margin:.3em 0 .6em}
svg text{font-family:inherit;font-size:12px;fill:#333}
svg .tick{font-size:11px;fill:#555}
";

/// The whole page.
pub(super) fn render_page(report: &Report) -> String {
    let mut page = String::new();
    page.push_str(&page_head());
    page.push_str("<body>\n<main>\n<h1>Classroom engagement report</h1>\n");
    if report.tracks.is_empty() {
        page.push_str("<p class=\"empty\">No faces were found in this video.</p>\n");
    }
    page.push_str(&how_to_read(report));
    page.push_str(&summary_table(report));
    if !report.tracks.is_empty() {
        page.push_str(&timeline_section(report));
        page.push_str(&mix_section(report));
        page.push_str(&strips_section(report));
        page.push_str(&track_table(report));
    }
    page.push_str(&page_footer());
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

fn page_head() -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Classroom engagement report</title>\n<style>\n{STYLE}</style>\n</head>\n"
    )
}

/// Plain-words definitions of attention and the engagement index.
fn how_to_read(report: &Report) -> String {
    let engaged = if report.engaged_labels.is_empty() {
        String::new()
    } else {
        format!(" (here: {})", escape(&report.engaged_labels.join(", ")))
    };
    format!(
        "<h2>How to read this</h2>\n<p>The video is cut into windows of {window}. \
         In each window, a face's <strong>attention</strong> is the share of its frames in which \
         the face was seen from the front, turned towards the camera (a face that turns away keeps \
         its track but stops counting as attentive). Its <strong>engagement index</strong> is the \
         share of its frames in which the face was both seen from the front <em>and</em> showed an \
         expression counted as engaged{engaged}. Both run from 0 (never) to 1 (every frame). \
         For the class, the <strong>attentive share</strong> is the share of faces present whose \
         attention is at least {threshold}, and the class engagement index is the mean over the faces \
         present. Read the engagement index together with attention and the expression mix: it \
         describes what the camera saw of faces, not what people felt or learned.</p>\n",
        window = escape(&format_seconds(report.window)),
        threshold = trim_decimals(report.attentive_threshold),
    )
}

/// Duration, windows, tracks and class-level averages.
fn summary_table(report: &Report) -> String {
    let overall = &report.overall;
    let mut rows = vec![
        (
            "Video length covered",
            escape(&format_seconds(report.duration)),
        ),
        ("Window length", escape(&format_seconds(report.window))),
        (
            "Windows",
            format!(
                "{} ({} with faces)",
                report.windows.len(),
                overall.windows_with_faces
            ),
        ),
        ("Faces tracked", report.tracks.len().to_string()),
        (
            "Face records (one per face per frame)",
            overall.face_records.to_string(),
        ),
    ];
    if !report.tracks.is_empty() {
        rows.extend([
            (
                "Mean faces present per window",
                format!("{:.1}", overall.mean_faces_present),
            ),
            (
                "Mean attention (share of face frames seen frontal)",
                format!("{:.2}", overall.attention),
            ),
            (
                "Mean attentive share (faces with attention ≥ threshold)",
                format!("{:.2}", overall.attentive_share),
            ),
            (
                "Mean class engagement index",
                format!("{:.2}", overall.engagement),
            ),
            (
                "Expression mix",
                mix_html(&expression_mix_text(&report.labels, &overall.expression)),
            ),
        ]);
    }
    let body: String = rows
        .iter()
        .map(|(name, value)| format!("<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>\n"))
        .collect();
    format!("<h2>Summary</h2>\n<p class=\"note\">Averages over windows are taken over the windows with at least one face.</p>\n<table>\n{body}</table>\n")
}

/// Chart (a): attentive share and engagement per window, plus faces present.
fn timeline_section(report: &Report) -> String {
    format!(
        "<h2>Class timeline</h2>\n<p class=\"note\">One point per window, at its middle. \
         Gaps mean no face was in view.</p>\n{}{}",
        shares_timeline_svg(report),
        faces_timeline_svg(report)
    )
}

/// Chart (b): stacked expression mix per window.
fn mix_section(report: &Report) -> String {
    format!(
        "<h2>Expression mix per window</h2>\n<p class=\"note\">Each bar shows, for one window, the \
         share of all face frames whose top label was each expression. No bar: no face in view.</p>\n{}",
        mix_svg(report)
    )
}

/// Chart (c): one strip per track.
fn strips_section(report: &Report) -> String {
    format!(
        "<h2>Faces over time</h2>\n<p class=\"note\">One row per tracked face, one cell per window. \
         The colour is the face's most frequent expression in that window; the stronger the colour, \
         the higher its attention (pale: mostly turned away). Blank: the face was not in view.</p>\n{}",
        strips_svg(report)
    )
}

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
fn shares_timeline_svg(report: &Report) -> String {
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
fn faces_timeline_svg(report: &Report) -> String {
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
fn mix_svg(report: &Report) -> String {
    let scale = TimeScale::of(report);
    let (legend_svg, legend_height) = legend(&label_legend_items(report), 8.0);
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
    let mut bottom = top + plot_height;
    let mut bar = String::new();
    for (index, (label, &share)) in report.labels.iter().zip(&window.expression).enumerate() {
        if share <= 0.0 {
            continue;
        }
        let height = share * plot_height;
        bottom -= height;
        bar.push_str(&format!(
            "<rect x=\"{x:.2}\" y=\"{bottom:.2}\" width=\"{width:.2}\" height=\"{height:.2}\" fill=\"{}\"><title>{}: {} {:.0} %</title></rect>\n",
            label_colour(label, index),
            escape(&span),
            escape(label),
            share * 100.0
        ));
    }
    bar
}

/// One row per track, one cell per window where present.
fn strips_svg(report: &Report) -> String {
    let scale = TimeScale::of(report);
    let mut items = label_legend_items(report);
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

/// Table of tracks: when seen, how long, attention, engagement, expressions.
fn track_table(report: &Report) -> String {
    let rows: String = report
        .tracks
        .iter()
        .map(|track| {
            let index = report.labels.iter().position(|label| *label == track.dominant_label).unwrap_or(0);
            format!(
                "<tr><td>Face {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td>\
                 <td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{}</td></tr>\n",
                track.track,
                escape(&clock(track.first_seen, report.duration)),
                escape(&clock(track.last_seen, report.duration)),
                track.records,
                track.attention,
                track.engagement,
                label_colour(&track.dominant_label, index),
                escape(&track.dominant_label),
                mix_html(&expression_mix_text(&report.labels, &track.expression)),
            )
        })
        .collect();
    format!(
        "<h2>Faces</h2>\n<p class=\"note\">Whole video, per tracked face. Records: frames in which the face was tracked.</p>\n\
         <table>\n<thead><tr><th>Face</th><th class=\"num\">First seen</th><th class=\"num\">Last seen</th>\
         <th class=\"num\">Records</th><th class=\"num\">Attention</th><th class=\"num\">Engagement index</th>\
         <th>Most frequent expression</th><th>Expression mix</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    )
}

fn page_footer() -> String {
    "<p class=\"note\">Made by emolens from per-face records. The numbers behind the charts are in \
     <a href=\"class.csv\">class.csv</a> (one row per window) and <a href=\"tracks.csv\">tracks.csv</a> \
     (one row per face per window) beside this page. Expression labels come from a model that makes \
     mistakes, more for some faces, lighting and angles than others; treat the figures as a rough \
     description of what the camera saw.</p>\n"
        .to_string()
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

/// A video time as "12 s" (short videos), "m:ss" or "h:mm:ss".
fn clock(seconds: f64, video_end: f64) -> String {
    if video_end < 60.0 {
        return format!("{} s", trim_number(seconds));
    }
    let total = seconds.max(0.0).round() as u64;
    let (hours, minutes, secs) = (total / 3600, total / 60 % 60, total % 60);
    if video_end >= 3600.0 {
        format!("{hours}:{minutes:02}:{secs:02}")
    } else {
        format!("{}:{secs:02}", total / 60)
    }
}

/// "0:10–0:20" for a window.
fn window_span(start: f64, end: f64, video_end: f64) -> String {
    format!("{}–{}", clock(start, video_end), clock(end, video_end))
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

/// One entry of a chart legend.
struct LegendItem {
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
    fn line(colour: &str, dash: &'static str, text: String) -> Self {
        LegendItem {
            colour: colour.to_string(),
            kind: LegendMark::Line(dash),
            text,
        }
    }

    fn cell(colour: &str, opacity: f64, text: String) -> Self {
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
fn label_legend_items(report: &Report) -> Vec<LegendItem> {
    report
        .labels
        .iter()
        .enumerate()
        .map(|(index, label)| LegendItem::cell(&label_colour(label, index), 1.0, label.clone()))
        .collect()
}

/// Lays out legend entries left to right, wrapping lines; returns the SVG and its height.
fn legend(items: &[LegendItem], top: f64) -> (String, f64) {
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

/// The colour of a label (see `crate::palette`), as `#rrggbb`.
pub(super) fn label_colour(label: &str, index: usize) -> String {
    crate::palette::hex(crate::palette::label_rgb(label, index))
}

/// A number with up to two decimals and no trailing zeros ("0.5", "0.75", "1").
fn trim_decimals(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// An expression-mix text, escaped, with "52 %" kept on one line.
fn mix_html(text: &str) -> String {
    escape(text).replace(" %", "&nbsp;%")
}

/// Escapes text for HTML element content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}
