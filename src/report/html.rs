//! Renders the report as one self-contained HTML page: inline CSS, inline SVG
//! charts, no scripts and no external resources.
//!
//! The page has a title, a "how to read this" paragraph, a summary table, three
//! charts (class timeline, expression mix per window, per-track strips) and a
//! per-track table. The cohort page has the same frame, the videos' figures side by
//! side, their expression mix as bars, and links to each video's page. Every piece of
//! text taken from the data is HTML-escaped.

use super::charts::{cohort_mix_svg, faces_timeline_svg, mix_svg, shares_timeline_svg, strips_svg};
use super::cohort::{Cohort, CohortVideo, COHORT_CSV};
use super::{expression_mix_text, format_seconds, trim_number, Report, REPORT_PAGE};

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
.wide{overflow-x:auto}
";

/// The closing tags of every page.
const PAGE_END: &str = "</main>\n</body>\n</html>\n";

/// The warning every page ends with.
const CAUTION: &str = "Expression labels come from a model that makes mistakes, more for some \
     faces, lighting and angles than others; treat the figures as a rough description of what \
     the camera saw.";

/// The whole page.
pub(super) fn render_page(report: &Report) -> String {
    let mut page = page_start("Classroom engagement report");
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
    page.push_str(PAGE_END);
    page
}

/// The cohort page: the videos' figures side by side, their expression mix, links to their pages.
pub(super) fn render_cohort_page(cohort: &Cohort) -> String {
    let mut page = page_start("Cohort engagement report");
    if let Some(first) = cohort.videos.first() {
        page.push_str(&format!(
            "<h2>How to read this</h2>\n<p>{} videos, each with its own report, linked from the \
             table and the bars. Each video is cut into windows of {}. {} The table gives each \
             video's figures over the whole video: attention over all its face frames, the \
             attentive share and the engagement index averaged over its windows with faces. A \
             video with few face records says less than one with many.</p>\n",
            cohort.videos.len(),
            escape(&format_seconds(first.report.window)),
            measures_explained(&first.report)
        ));
    }
    page.push_str(&cohort_table(cohort));
    page.push_str(&format!(
        "<h2>Expression mix per video</h2>\n<p class=\"note\">Each bar shows, for one video, the \
         share of all its face frames whose top label was each expression. Click a bar for the \
         video's report.</p>\n{}",
        cohort_mix_svg(cohort)
    ));
    page.push_str(&format!(
        "<p class=\"note\">Made by emolens from per-face records. The numbers of the table are in \
         <a href=\"{COHORT_CSV}\">{COHORT_CSV}</a> (one row per video) beside this page, with 4 \
         decimals; each video's folder holds its {REPORT_PAGE}, class.csv and tracks.csv. \
         {CAUTION}</p>\n"
    ));
    page.push_str(PAGE_END);
    page
}

/// The page's head, opening tags and title heading.
fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>{title}</h1>\n",
        title = escape(title)
    )
}

/// Plain-words definitions of attention and the engagement index.
fn how_to_read(report: &Report) -> String {
    format!(
        "<h2>How to read this</h2>\n<p>The video is cut into windows of {}. {}</p>\n",
        escape(&format_seconds(report.window)),
        measures_explained(report)
    )
}

/// What attention, the engagement index and the attentive share mean, in a few sentences.
fn measures_explained(report: &Report) -> String {
    let engaged = if report.engaged_labels.is_empty() {
        String::new()
    } else {
        format!(" (here: {})", escape(&report.engaged_labels.join(", ")))
    };
    format!(
        "In each window, a face's <strong>attention</strong> is the share of its frames in which \
         the face was seen from the front, turned towards the camera (a face that turns away keeps \
         its track but stops counting as attentive). Its <strong>engagement index</strong> is the \
         share of its frames in which the face was both seen from the front <em>and</em> showed an \
         expression counted as engaged{engaged}. Both run from 0 (never) to 1 (every frame). \
         For the class, the <strong>attentive share</strong> is the share of faces present whose \
         attention is at least {threshold}, and the class engagement index is the mean over the faces \
         present. Read the engagement index together with attention and the expression mix: it \
         describes what the camera saw of faces, not what people felt or learned.",
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
        rows.extend(overall_rows(report));
        rows.push((
            "Expression mix",
            mix_html(&expression_mix_text(&report.labels, &overall.expression)),
        ));
    }
    let body: String = rows
        .iter()
        .map(|(name, value)| format!("<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>\n"))
        .collect();
    format!("<h2>Summary</h2>\n<p class=\"note\">Averages over windows are taken over the windows with at least one face.</p>\n<table>\n{body}</table>\n")
}

/// The class-level averages of a video, as (row heading, value) of a table.
fn overall_rows(report: &Report) -> [(&'static str, String); 4] {
    let overall = &report.overall;
    [
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
    ]
}

/// The videos side by side: one column per video, one row per figure of `cohort.csv`.
fn cohort_table(cohort: &Cohort) -> String {
    let columns: Vec<Vec<(String, String)>> = cohort.videos.iter().map(video_column).collect();
    let head: String = cohort
        .videos
        .iter()
        .map(|video| {
            format!(
                "<th class=\"num\"><a href=\"{}/{REPORT_PAGE}\">{}</a></th>",
                escape(&video.name),
                escape(&video.name)
            )
        })
        .collect();
    let row_count = columns.first().map_or(0, Vec::len);
    let body: String = (0..row_count)
        .map(|row| {
            let heading = &columns[0][row].0;
            let cells: String = columns
                .iter()
                .map(|column| format!("<td class=\"num\">{}</td>", column[row].1))
                .collect();
            format!("<tr><th scope=\"row\">{heading}</th>{cells}</tr>\n")
        })
        .collect();
    format!(
        "<h2>Videos side by side</h2>\n<p class=\"note\">One column per video; the name links to \
         its report. Averages over windows are taken over the windows with at least one face; \
         shares are of all the video's face frames.</p>\n<div class=\"wide\">\n<table>\n\
         <thead><tr><th>Video</th>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n</div>\n"
    )
}

/// One video's figures as (row heading, value) pairs, both HTML: the cohort table's column.
fn video_column(video: &CohortVideo) -> Vec<(String, String)> {
    let report = &video.report;
    let overall = &report.overall;
    let mut column = vec![
        (
            "Records file".to_string(),
            escape(&video.records.display().to_string()),
        ),
        (
            "Video length covered".to_string(),
            escape(&format_seconds(report.duration)),
        ),
        (
            "Face records (one per face per frame)".to_string(),
            overall.face_records.to_string(),
        ),
    ];
    column.extend(
        overall_rows(report)
            .into_iter()
            .map(|(heading, value)| (heading.to_string(), value)),
    );
    column.extend(
        report
            .labels
            .iter()
            .zip(&overall.expression)
            .enumerate()
            .map(|(index, (label, share))| {
                (
                    format!(
                        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
                        label_colour(label, index),
                        escape(label)
                    ),
                    percent(*share),
                )
            }),
    );
    column.extend(
        report
            .view_groups
            .iter()
            .zip(&overall.view_shares)
            .map(|(group, share)| {
                (
                    format!("{}: {}", escape(&group.view), escape(&group.group)),
                    percent(*share),
                )
            }),
    );
    column
}

/// A share as a whole percentage kept on one line, "52&nbsp;%".
fn percent(share: f64) -> String {
    format!("{:.0}&nbsp;%", share * 100.0)
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
    format!(
        "<p class=\"note\">Made by emolens from per-face records. The numbers behind the charts are in \
     <a href=\"class.csv\">class.csv</a> (one row per window) and <a href=\"tracks.csv\">tracks.csv</a> \
     (one row per face per window) beside this page. {CAUTION}</p>\n"
    )
}

/// A video time as "12 s" (short videos), "m:ss" or "h:mm:ss".
pub(super) fn clock(seconds: f64, video_end: f64) -> String {
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
pub(super) fn window_span(start: f64, end: f64, video_end: f64) -> String {
    format!("{}–{}", clock(start, video_end), clock(end, video_end))
}

/// The colour of a label (see `crate::palette`), as `#rrggbb`.
pub(super) fn label_colour(label: &str, index: usize) -> String {
    crate::palette::hex(crate::palette::label_rgb(label, index))
}

/// A number with up to two decimals and no trailing zeros ("0.5", "0.75", "1").
pub(super) fn trim_decimals(value: f64) -> String {
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
