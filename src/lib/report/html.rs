//! The report as one self-contained HTML file: inline CSS, SVG drawn by tapio, a few lines of
//! plain JavaScript (filters of the evidence tables; the page reads the same without them), no
//! request to anywhere. It opens from a mail attachment or a CI artefact.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::document::{count, duration, evidence, links, range, what, Document};
use super::markup::esc;
use super::summary::impact_line;
use super::timeline::{self, Frame};
use crate::analysis::{ChainStep, Incident, Severity};
use crate::event::Source;

const CSS: &str = r##"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0; background: #ffffff; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 18px; margin: 36px 0 6px; padding-top: 12px; border-top: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 20px 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.line { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
td.line { word-break: break-all; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #ffffff; }
.sev-critical { background: #82071e; } .sev-high { background: #cf222e; }
.sev-medium { background: #9a6700; } .sev-low { background: #57606a; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; border-radius: 6px; }
ol.chain li { margin: 2px 0; }
.picture { overflow-x: auto; border: 1px solid #d0d7de; border-radius: 6px; }
.filters { margin: 6px 0; display: none; gap: 12px; }
html.js .filters { display: flex; }
tr:target { background: #fff8c5; }
details { margin: 10px 0; }
summary { cursor: pointer; font-weight: 600; }
footer { margin-top: 40px; color: #57606a; font-size: 12px; }
"##;

/// Filters the evidence tables by layer and entity; without it every row shows.
const SCRIPT: &str = r##"
document.documentElement.classList.add("js");
document.querySelectorAll("table.evidence").forEach(function (table) {
  var box = table.previousElementSibling;
  var selects = box.querySelectorAll("select");
  function apply() {
    var want = {};
    selects.forEach(function (s) { want[s.name] = s.value; });
    var shown = 0;
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var ok = (!want.layer || tr.dataset.layer === want.layer) &&
               (!want.entity || tr.dataset.entity === want.entity);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    box.querySelector(".shown").textContent = shown + " shown";
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
});
"##;

/// Colours of the sources in the overview's chart.
fn colour(s: Source) -> &'static str {
    match s {
        Source::Ebpf => "#0969da",
        Source::Kube => "#1a7f37",
        Source::Otlp => "#8250df",
        Source::Kmsg => "#bc4c00",
        Source::PodLogs => "#bf3989",
        Source::Import => "#57606a",
        Source::Tapio => "#9e9e9e",
    }
}

pub fn html(d: &Document) -> String {
    let mut s = String::new();
    let title = match d.incidents.first() {
        Some(i) => format!(
            "Incident report — {}: {}",
            i.root_cause.kind.title(),
            i.root_cause.entity.short()
        ),
        None => "Incident report — no incident".to_string(),
    };
    let _ = write!(
        s,
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="tapio {}">
<title>{}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>{}</h1>
"##,
        env!("CARGO_PKG_VERSION"),
        esc(&title),
        esc(&title)
    );
    overview(&mut s, d);
    if !d.incidents.is_empty() {
        let _ = writeln!(s, "<nav><ol>");
        for inc in &d.incidents {
            let _ = writeln!(
                s,
                r##"<li><a href="#incident-{}">Incident {} — {}</a> <span class="badge sev-{}">{}</span> {}</li>"##,
                inc.id,
                inc.id,
                esc(inc.root_cause.kind.title()),
                sev_class(inc.severity),
                inc.severity.as_str(),
                esc(&inc.root_cause.entity.short())
            );
        }
        let _ = writeln!(s, "</ol></nav>");
    }
    for inc in &d.incidents {
        incident(&mut s, d, inc);
    }
    let _ = write!(
        s,
        r##"<footer>Made by tapio {}. Times are UTC.</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"##,
        env!("CARGO_PKG_VERSION")
    );
    s
}

fn sev_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
    }
}

fn overview(s: &mut String, d: &Document) {
    let o = &d.overview;
    let _ = writeln!(s, r##"<section id="overview"><dl class="facts">"##);
    let names: Vec<String> = d
        .captures
        .iter()
        .map(|c| format!("<code>{}</code>", esc(c)))
        .collect();
    let _ = writeln!(s, "<dt>Captures</dt><dd>{}</dd>", names.join(", "));
    if let (Some(a), Some(b)) = (o.first, o.last) {
        let _ = writeln!(s, "<dt>Time</dt><dd>{}</dd>", esc(&range(a, b)));
    }
    let sources: Vec<String> = o
        .sources
        .iter()
        .map(|(s, n)| format!("{s} {}", count(*n)))
        .collect();
    let _ = writeln!(
        s,
        "<dt>Events</dt><dd>{} ({})</dd>",
        count(o.events),
        esc(&sources.join(", "))
    );
    if !o.nodes.is_empty() {
        let nodes: Vec<String> = o
            .nodes
            .iter()
            .map(|(n, c)| format!("{} ({} events)", esc(n), count(*c)))
            .collect();
        let _ = writeln!(s, "<dt>Nodes</dt><dd>{}</dd>", nodes.join(", "));
    }
    if d.blind.is_empty() {
        let _ = writeln!(s, "<dt>Drops and gaps</dt><dd>none</dd>");
    } else {
        let _ = writeln!(s, "<dt>Drops and gaps</dt><dd><ul>");
        for b in &d.blind {
            let _ = writeln!(s, "<li>{} – {}: {}</li>", b.from, b.to, esc(&b.what));
        }
        let _ = writeln!(s, "</ul></dd>");
    }
    if !d.scope.is_empty() {
        let _ = writeln!(
            s,
            "<dt>Narrowed to</dt><dd>{}</dd>",
            esc(&d.scope.join(", "))
        );
    }
    let hidden = if d.hidden > 0 {
        format!(
            " ({} low-severity left out: <code>--all</code> includes {})",
            d.hidden,
            if d.hidden == 1 { "it" } else { "them" }
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "<dt>Incidents</dt><dd>{}{hidden}</dd></dl>",
        if d.incidents.is_empty() {
            "none".to_string()
        } else {
            d.incidents.len().to_string()
        }
    );
    if let Some(h) = &d.histogram {
        chart(s, h, d);
    }
    let _ = writeln!(s, "</section>");
}

/// Events per source over time: stacked bars, one a slice of the capture's time.
fn chart(s: &mut String, h: &crate::analysis::overview::Histogram, d: &Document) {
    const W: f64 = 1000.0;
    const H: f64 = 120.0;
    const LEFT: f64 = 60.0;
    let n = h.series.first().map_or(0, |(_, c)| c.len());
    if n == 0 {
        return;
    }
    let totals: Vec<u64> = (0..n)
        .map(|i| h.series.iter().map(|(_, c)| c[i]).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(1).max(1);
    let bw = (W - LEFT - 10.0) / n as f64;
    let _ = writeln!(
        s,
        r##"<div class="picture"><svg xmlns="http://www.w3.org/2000/svg" class="overview" width="{W}" height="{}" viewBox="0 0 {W} {}" font-size="11" font-family="system-ui, sans-serif" role="img" aria-label="Events per source over time">
<title>Events per source, {} a bar</title>
<text x="8" y="14" fill="#57606a">events per {}</text>
<text x="{}" y="34" text-anchor="end" fill="#57606a">{}</text>"##,
        H + 60.0,
        H + 60.0,
        duration(h.width),
        duration(h.width),
        LEFT - 6.0,
        count(max)
    );
    for i in 0..n {
        let mut y = 30.0 + H;
        for (source, counts) in &h.series {
            let c = counts[i];
            if c == 0 {
                continue;
            }
            let bh = (c as f64 / max as f64 * H).max(1.0);
            y -= bh;
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{source}: {} events</title></rect>"##,
                LEFT + i as f64 * bw,
                (bw - 1.0).max(1.0),
                colour(*source),
                count(c)
            );
        }
    }
    // The blind spots, and the axis.
    let span = (h.width * n as u64).max(1);
    let x = |t: u64| {
        LEFT + (t.saturating_sub(h.from.0)).min(span) as f64 / span as f64 * (W - LEFT - 10.0)
    };
    for b in &d.blind {
        let _ = writeln!(
            s,
            r##"<rect class="blind" x="{:.1}" y="30" width="{:.1}" height="{H}" fill="#9e9e9e" fill-opacity="0.35"><title>{} – {}: {}</title></rect>"##,
            x(b.from.0),
            (x(b.to.0) - x(b.from.0)).max(2.0),
            b.from,
            b.to,
            esc(&b.what)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#8c959f"/>
<text x="{LEFT}" y="{}" fill="#57606a">{}</text><text x="{}" y="{}" text-anchor="end" fill="#57606a">{} UTC</text>"##,
        30.0 + H,
        W - 10.0,
        30.0 + H,
        H + 46.0,
        h.from.to_datetime().format("%Y-%m-%d %H:%M:%S"),
        W - 10.0,
        H + 46.0,
        crate::event::Ts(h.from.0 + span)
            .to_datetime()
            .format("%H:%M:%S")
    );
    let mut lx = LEFT + 240.0;
    for (source, _) in &h.series {
        let _ = write!(
            s,
            r##"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{source}</text>"##,
            H + 37.0,
            colour(*source),
            lx + 14.0,
            H + 46.0
        );
        lx += 30.0 + source.as_str().len() as f64 * 6.5;
    }
    let _ = writeln!(s, "\n</svg></div>");
}

fn incident(s: &mut String, d: &Document, inc: &Incident) {
    let id = inc.id;
    let _ = writeln!(
        s,
        r##"<section class="incident" id="incident-{id}" data-links="{}">
<h2>Incident {id} — {}</h2>
<p><span class="badge sev-{}">{}</span> confidence {:.2} · {}</p>
<dl class="facts">
<dt>Root cause</dt><dd>{} <code>{}</code></dd>"##,
        links(inc),
        esc(inc.root_cause.kind.title()),
        sev_class(inc.severity),
        inc.severity.as_str(),
        inc.confidence,
        esc(&range(inc.start, inc.end)),
        esc(&inc.root_cause.summary),
        esc(&inc.root_cause.entity.to_string())
    );
    for o in &inc.other_root_causes {
        let _ = writeln!(
            s,
            "<dt>Also</dt><dd>{}: {} <code>{}</code></dd>",
            esc(o.kind.title()),
            esc(&o.summary),
            esc(&o.entity.to_string())
        );
    }
    let _ = writeln!(s, "<dt>Impact</dt><dd>{}</dd></dl>", esc(&impact_line(inc)));
    if !inc.evidence_complete {
        let _ = writeln!(
            s,
            r##"<p class="warn"><strong>Evidence incomplete:</strong> {}</p>"##,
            esc(&inc.evidence_gaps.join("; "))
        );
    }
    for n in &inc.notes {
        let _ = writeln!(s, r##"<p class="warn">{}</p>"##, esc(n));
    }
    let _ = writeln!(s, "<h3>Actions</h3><ol>");
    for a in &inc.actions {
        let _ = writeln!(
            s,
            "<li><strong>{}</strong> — {}</li>",
            esc(a.urgency),
            esc(&a.text)
        );
    }
    let _ = writeln!(s, "</ol>\n<h3>Timeline</h3>");
    let _ = writeln!(
        s,
        r##"<div class="picture">{}</div>"##,
        timeline::svg(inc, &d.blind_in(inc), Frame { links: true })
    );
    let _ = writeln!(s, "<h3>Causal chain</h3>");
    chain(s, id, &inc.chain);
    for o in &inc.other_root_causes {
        let _ = writeln!(
            s,
            "<p>Chain of the other root ({}):</p>",
            esc(o.kind.title())
        );
        chain(s, id, &o.chain);
    }

    let rows = evidence(inc);
    let layers: BTreeSet<String> = rows.iter().map(|r| r.layer.to_string()).collect();
    let entities: BTreeSet<String> = rows.iter().map(|r| r.entity.to_string()).collect();
    let _ = writeln!(s, "<h3>Evidence ({} events)</h3>", rows.len());
    let _ = write!(
        s,
        r##"<div class="filters"><label>Layer <select name="layer"><option value="">all</option>"##
    );
    for l in &layers {
        let _ = write!(s, r##"<option>{}</option>"##, esc(l));
    }
    let _ = write!(
        s,
        r##"</select></label><label>Entity <select name="entity"><option value="">all</option>"##
    );
    for e in &entities {
        let _ = write!(s, r##"<option>{}</option>"##, esc(e));
    }
    let _ = writeln!(
        s,
        r##"</select></label><span class="shown"></span></div>
<table class="evidence"><thead><tr><th>Time (UTC)</th><th>Layer</th><th>Entity</th><th>What</th><th class="num">Seq</th></tr></thead><tbody>"##
    );
    for r in &rows {
        let entity = r.entity.to_string();
        let _ = writeln!(
            s,
            r##"<tr id="ev-{id}-{}" data-layer="{}" data-entity="{}"><td>{}</td><td>{}</td><td>{}</td><td class="line">{}</td><td class="num">{}</td></tr>"##,
            r.seq,
            r.layer,
            esc(&entity),
            r.ts.to_datetime().format("%H:%M:%S%.3f"),
            r.layer,
            esc(&r.entity.short()),
            esc(&what(r.line)),
            r.seq
        );
    }
    let _ = writeln!(s, "</tbody></table>");
    let _ = writeln!(
        s,
        "<details><summary>Other causes considered ({})</summary>",
        inc.alternatives.len()
    );
    if inc.alternatives.is_empty() {
        let _ = writeln!(
            s,
            "<p>None: every other finding is explained by the root cause.</p>"
        );
    } else {
        let _ = writeln!(s, "<ul>");
        for a in &inc.alternatives {
            let _ = writeln!(
                s,
                "<li><code>{}</code> <code>{}</code>: {}</li>",
                a.kind.as_str(),
                esc(&a.entity.to_string()),
                esc(&a.why_not)
            );
        }
        let _ = writeln!(s, "</ul>");
    }
    let _ = writeln!(s, "</details>\n</section>");
}

fn chain(s: &mut String, id: usize, steps: &[ChainStep]) {
    let _ = writeln!(s, r##"<ol class="chain">"##);
    for st in steps {
        let ev = st
            .evidence
            .first()
            .map(|e| format!(r##" <a href="#ev-{id}-{}">evidence #{}</a>"##, e.seq, e.seq))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<li><code>{}</code> <strong>{}</strong> {}{ev}</li>",
            st.ts.to_datetime().format("%H:%M:%S%.3f"),
            st.layer,
            esc(&st.summary)
        );
    }
    let _ = writeln!(s, "</ol>");
}
