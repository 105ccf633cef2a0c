//! The one interface of everything tapio shows: each thing says in which formats it reads
//! ([`Render::FORMATS`], the first its default) and renders into one. Every subcommand's `-o`
//! (and `report --format`) accepts exactly the formats of what it prints (the binary's value
//! parser reads `FORMATS`), and prints through [`Render::render`].

use std::fmt::Write as _;

use serde_json::json;

use super::document::Document;
use super::info::CaptureInfo;
use crate::analysis::{Incident, Verdict};
use crate::event::Event;
use crate::pipeline::Change;

/// Every format tapio writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Html,
    Svg,
}

named!(Format, "format" {
    Text => "text",
    Json => "json",
    Markdown => "markdown",
    Html => "html",
    Svg => "svg",
});

/// Something tapio shows.
pub trait Render {
    /// The formats it reads in; the first is the default.
    const FORMATS: &'static [Format];

    /// Appends it in `format`, ending with a newline. A format not in [`Self::FORMATS`] appends
    /// the default one (the command line accepts only those, see [`parse`]).
    fn render(&self, format: Format, out: &mut String);

    /// It in `format`, as a new string.
    fn rendered(&self, format: Format) -> String {
        let mut s = String::new();
        self.render(format, &mut s);
        s
    }
}

/// One event: a line for people (`tapio cat`), a JSON object a line for machines.
impl Render for Event {
    const FORMATS: &'static [Format] = &[Format::Text, Format::Json];

    fn render(&self, format: Format, out: &mut String) {
        match format {
            Format::Json => self.write_json(out),
            _ => {
                let _ = writeln!(out, "{self}");
            }
        }
    }
}

/// Incidents as `replay` and `correlate` print them: the summaries (with `--explain`, the other
/// causes considered and the findings), or the verdict's JSON (`docs/correlation.md`).
pub struct Incidents<'a> {
    pub incidents: &'a [Incident],
    pub explain: bool,
}

impl Render for Incidents<'_> {
    const FORMATS: &'static [Format] = &[Format::Text, Format::Json];

    fn render(&self, format: Format, out: &mut String) {
        match format {
            Format::Json => {
                #[derive(serde::Serialize)]
                struct View<'a> {
                    incidents: &'a [Incident],
                }
                let v = View {
                    incidents: self.incidents,
                };
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
            }
            _ => {
                for inc in self.incidents {
                    out.push_str(&super::incident_text(inc));
                    if self.explain {
                        out.push_str(&super::explain(inc));
                    }
                    out.push('\n');
                }
            }
        }
    }
}

impl Render for Verdict {
    const FORMATS: &'static [Format] = Incidents::FORMATS;

    fn render(&self, format: Format, out: &mut String) {
        Incidents {
            incidents: &self.incidents,
            explain: false,
        }
        .render(format, out)
    }
}

/// An incident as it opens, changes and closes: a block of text, or one JSON line.
impl Render for Change<'_> {
    const FORMATS: &'static [Format] = &[Format::Text, Format::Json];

    fn render(&self, format: Format, out: &mut String) {
        match format {
            Format::Json => {
                let _ = writeln!(out, "{}", super::change_json(self));
            }
            _ => out.push_str(&super::change_text(self)),
        }
    }
}

/// The shared report: a page, a ticket, the pictures; also the summaries and the verdict's JSON
/// of the incidents it holds.
impl Render for Document {
    const FORMATS: &'static [Format] = &[
        Format::Html,
        Format::Markdown,
        Format::Svg,
        Format::Text,
        Format::Json,
    ];

    fn render(&self, format: Format, out: &mut String) {
        match format {
            Format::Markdown => out.push_str(&super::markdown::markdown(self)),
            Format::Svg => out.push_str(&super::svg(self)),
            Format::Text => {
                if self.incidents.is_empty() {
                    out.push_str("no incident\n");
                }
                Incidents {
                    incidents: &self.incidents,
                    explain: false,
                }
                .render(format, out)
            }
            Format::Json => {
                let v = json!({ "incidents": &self.incidents });
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
            }
            Format::Html => out.push_str(&super::html::html(self)),
        }
    }
}

impl Render for CaptureInfo {
    const FORMATS: &'static [Format] = &[Format::Text, Format::Json];

    fn render(&self, format: Format, out: &mut String) {
        match format {
            Format::Json => {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&self.json()).unwrap_or_default()
                );
            }
            _ => out.push_str(&self.text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_renders_every_format_and_events_two() {
        assert_eq!(<Event as Render>::FORMATS, &[Format::Text, Format::Json]);
        for f in Format::ALL {
            assert!(Document::FORMATS.contains(f));
            let out = Document::default().rendered(*f);
            assert!(out.ends_with('\n'), "{f}: {out}");
        }
    }
}
