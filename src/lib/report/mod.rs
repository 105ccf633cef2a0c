//! Report: what people and machines read — incident verdicts and their summaries, the shared
//! report (HTML, Markdown, SVG), tables. Only renderers: the decisions are [`crate::analysis`]'s,
//! an event's line and JSON are [`crate::event`]'s. The library renders, the binary prints.

mod document;
mod expect;
#[cfg(feature = "tables")]
pub mod frame;
mod html;
mod info;
mod live;
mod markdown;
pub mod markup;
mod render;
mod request;
mod summary;
mod timeline;

pub use self::document::{evidence, links, Document, EvidenceRow};
pub use self::expect::{Expected, ExpectedIncident};
pub use self::info::CaptureInfo;
pub use self::live::{change_json, change_text};
pub use self::render::{Format, Incidents, Render};
pub use self::request::request_text;
pub use self::summary::{explain, incident_text};
pub use self::timeline::Frame;

/// Only the timeline pictures of a report, one under the other, for a slide or a postmortem.
fn svg(d: &Document) -> String {
    use std::fmt::Write as _;
    let pictures: Vec<String> = d
        .incidents
        .iter()
        .map(|i| timeline::svg(i, &d.blind_in(i), Frame { links: false }))
        .collect();
    if pictures.is_empty() {
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\" viewBox=\"0 0 400 40\" font-family=\"sans-serif\" font-size=\"13\"><text x=\"10\" y=\"24\">No incident</text></svg>\n".to_string();
    }
    let height: f64 = pictures.iter().map(|p| svg_height(p)).sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="{height}" viewBox="0 0 1000 {height}">"#
    );
    let mut y = 0.0;
    for p in &pictures {
        // A nested <svg> keeps its own coordinates; `y` places it.
        let _ = write!(s, "{}", p.replacen("<svg ", &format!("<svg y=\"{y}\" "), 1));
        y += svg_height(p);
    }
    s.push_str("</svg>\n");
    s
}

fn svg_height(p: &str) -> f64 {
    p.split_once(" height=\"")
        .and_then(|(_, r)| r.split_once('"'))
        .and_then(|(h, _)| h.parse().ok())
        .unwrap_or(0.0)
}
