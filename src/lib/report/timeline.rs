//! The timeline picture of an incident, drawn as SVG: one lane per layer (kernel, network,
//! Kubernetes, traces, logs) and within it one row per entity; each finding a bar from its start
//! to its end, its evidence events as marks (several close together make one mark with their
//! count), the causal chain as numbered steps joined by arrows from cause to effect, the incident's
//! window shaded, and the time tapio knows it saw nothing or lost events hatched.
//!
//! Every element a test or a reader looks for has a class: `lane`, `row`, `finding`, `evidence`,
//! `step`, `arrow`, `window`, `blind`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::analysis::{ChainStep, Incident};
use crate::detect::Blind;
use crate::event::Ts;
use crate::knowledge::Layer;
use crate::topology::Entity;

use super::markup::esc;

const WIDTH: f64 = 1000.0;
const LABELS: f64 = 240.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 34.0;
const LANE_HEAD: f64 = 18.0;
const ROW: f64 = 22.0;
/// Marks closer than this many pixels make one mark with a count.
const BUCKET: f64 = 16.0;
/// Rows a lane shows before the rest are counted in one row.
const MAX_ROWS: usize = 8;

/// The lanes, top to bottom, and what they are called.
const LANES: [(Layer, &str); 6] = [
    (Layer::Kernel, "kernel"),
    (Layer::Net, "network"),
    (Layer::K8s, "Kubernetes"),
    (Layer::Trace, "traces"),
    (Layer::Log, "logs"),
    (Layer::Tapio, "tapio"),
];

/// How the picture is used.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// Marks link to the evidence table of the HTML report (`#ev-<incident>-<seq>`).
    pub links: bool,
}

/// An evidence event on the picture: its seq, time and line.
type Mark<'a> = (u64, Ts, &'a str);

/// A row: a layer and an entity (`None`: the entities past [`MAX_ROWS`]).
type Key = (usize, Option<Entity>);

struct Row {
    key: Key,
    label: String,
    title: String,
    y: f64,
}

/// The picture of one incident.
pub fn svg(inc: &Incident, blind: &[Blind], frame: Frame) -> String {
    let chains: Vec<&[ChainStep]> = std::iter::once(inc.chain.as_slice())
        .chain(inc.other_root_causes.iter().map(|o| o.chain.as_slice()))
        .collect();

    // The time shown: the window, every finding and every step, with a margin.
    let mut lo = inc.start.0;
    let mut hi = inc.end.0;
    for f in &inc.findings {
        lo = lo.min(f.start.0);
        hi = hi.max(f.end.0);
        for e in &f.evidence {
            lo = lo.min(e.ts.0);
            hi = hi.max(e.ts.0);
        }
    }
    for s in chains.iter().flat_map(|c| c.iter()) {
        lo = lo.min(s.ts.0);
        hi = hi.max(s.ts.0);
    }
    let span = (hi - lo).max(Ts::NANOS_PER_SEC);
    let margin = span / 20;
    let (lo, hi) = (lo.saturating_sub(margin), hi + margin);
    let plot = WIDTH - LABELS - RIGHT;
    let x = |t: Ts| LABELS + (t.0.clamp(lo, hi) - lo) as f64 / (hi - lo) as f64 * plot;

    // Rows: per lane, entities in the order they first appear.
    let lane_of = |l: Layer| LANES.iter().position(|(x, _)| *x == l).unwrap_or(5);
    let mut first: BTreeMap<usize, Vec<(Ts, Entity)>> = BTreeMap::new();
    let mut seen = |lane: usize, ts: Ts, e: &Entity| {
        let v = first.entry(lane).or_default();
        match v.iter_mut().find(|(_, x)| x == e) {
            Some((t, _)) => *t = (*t).min(ts),
            None => v.push((ts, e.clone())),
        }
    };
    for f in &inc.findings {
        seen(lane_of(f.layer), f.start, &f.entity);
    }
    for s in chains.iter().flat_map(|c| c.iter()) {
        seen(lane_of(s.layer), s.ts, &s.entity);
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut lanes: Vec<(usize, f64, f64)> = Vec::new();
    let mut y = TOP;
    for (lane, mut entities) in first {
        entities.sort();
        let top = y;
        y += LANE_HEAD;
        let more = entities.len().saturating_sub(MAX_ROWS);
        let shown = if more > 0 { MAX_ROWS - 1 } else { MAX_ROWS };
        for (_, e) in entities.iter().take(shown) {
            rows.push(Row {
                key: (lane, Some(e.clone())),
                label: clip(&e.short(), 34),
                title: e.to_string(),
                y,
            });
            y += ROW;
        }
        if more > 0 {
            let rest = entities.len() - shown;
            rows.push(Row {
                key: (lane, None),
                label: format!("+{rest} more"),
                title: entities[shown..]
                    .iter()
                    .map(|(_, e)| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                y,
            });
            y += ROW;
        }
        lanes.push((lane, top, y));
    }
    let row_y: HashMap<&Key, f64> = rows.iter().map(|r| (&r.key, r.y + ROW / 2.0)).collect();
    let y_of = |layer: Layer, e: &Entity| -> f64 {
        let lane = lane_of(layer);
        row_y
            .get(&(lane, Some(e.clone())))
            .or_else(|| row_y.get(&(lane, None)))
            .copied()
            .unwrap_or(TOP)
    };
    let bottom = y.max(TOP + ROW);
    let axis = bottom + 28.0;
    let legend = axis + 22.0;
    let height = legend + 26.0;

    let id = inc.id;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" data-incident="{id}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="11" role="img" aria-label="Timeline of incident {id}">
<title>Incident {id}: {}</title>
<defs>
<marker id="ah-{id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#b3261e"/></marker>
<pattern id="hatch-{id}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#eeeeee"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9e9e9e" stroke-width="2"/></pattern>
</defs>
<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>
<text x="8" y="20" font-size="13" font-weight="600">{}</text>
"##,
        esc(&inc.root_cause.summary),
        esc(&clip(
            &format!(
                "Incident {id} — {} ({})",
                inc.root_cause.kind.title(),
                inc.severity.as_str()
            ),
            120
        )),
    );

    // Lanes and rows.
    for (n, (lane, top, end)) in lanes.iter().enumerate() {
        let fill = if n % 2 == 0 { "#f6f8fa" } else { "#ffffff" };
        let _ = writeln!(
            s,
            r##"<g class="lane" data-layer="{}"><rect x="0" y="{top}" width="{WIDTH}" height="{}" fill="{fill}"/><text x="8" y="{}" font-weight="600" fill="#57606a">{}</text></g>"##,
            LANES[*lane].0,
            end - top,
            top + 13.0,
            LANES[*lane].1
        );
    }
    for r in &rows {
        let _ = writeln!(
            s,
            r##"<g class="row"><line x1="{LABELS}" y1="{}" x2="{}" y2="{}" stroke="#d0d7de" stroke-dasharray="2,3"/><text x="20" y="{}"><title>{}</title>{}</text></g>"##,
            r.y + ROW / 2.0,
            WIDTH - RIGHT,
            r.y + ROW / 2.0,
            r.y + ROW / 2.0 + 4.0,
            esc(&r.title),
            esc(&r.label)
        );
    }

    // The incident's window, then what tapio did not see.
    let _ = writeln!(
        s,
        r##"<rect class="window" x="{:.1}" y="{TOP}" width="{:.1}" height="{}" fill="#fff4ce" fill-opacity="0.55" stroke="#bf8700" stroke-dasharray="4,3"><title>incident window {} – {}</title></rect>"##,
        x(inc.start),
        (x(inc.end) - x(inc.start)).max(2.0),
        bottom - TOP,
        inc.start,
        inc.end
    );
    for b in blind.iter().filter(|b| b.to.0 >= lo && b.from.0 <= hi) {
        let _ = writeln!(
            s,
            r##"<rect class="blind" x="{:.1}" y="{TOP}" width="{:.1}" height="{}" fill="url(#hatch-{id})" fill-opacity="0.8"><title>{} – {}: {}</title></rect>"##,
            x(b.from),
            (x(b.to) - x(b.from)).max(3.0),
            bottom - TOP,
            b.from,
            b.to,
            esc(&b.what)
        );
    }

    // The time axis.
    let ticks = ticks(lo, hi);
    for t in &ticks {
        let tx = x(Ts(*t));
        let _ = writeln!(
            s,
            r##"<g class="tick"><line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{}" stroke="#d0d7de"/><text x="{tx:.1}" y="{}" text-anchor="middle" fill="#57606a">{}</text></g>"##,
            bottom + 4.0,
            bottom + 16.0,
            tick_label(*t, ticks.len(), lo, hi)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{axis}" text-anchor="end" fill="#57606a">time, UTC ({})</text>"##,
        WIDTH - RIGHT,
        Ts(lo).to_datetime().format("%Y-%m-%d")
    );

    // Findings as bars.
    for f in &inc.findings {
        let fy = y_of(f.layer, &f.entity);
        let (x0, x1) = (x(f.start), x(f.end));
        let _ = writeln!(
            s,
            r##"<rect class="finding" x="{x0:.1}" y="{:.1}" width="{:.1}" height="8" rx="2" fill="#8c959f" fill-opacity="0.45"><title>{} {} – {}: {}</title></rect>"##,
            fy - 4.0,
            (x1 - x0).max(3.0),
            f.kind.as_str(),
            f.start,
            f.end,
            esc(&f.summary)
        );
    }

    // Evidence marks, bucketed per row.
    let mut buckets: BTreeMap<(u64, i64), Vec<Mark<'_>>> = BTreeMap::new();
    for f in &inc.findings {
        let fy = y_of(f.layer, &f.entity);
        for e in &f.evidence {
            let b = ((x(e.ts) - LABELS) / BUCKET).floor() as i64;
            let v = buckets.entry((fy.to_bits(), b)).or_default();
            if !v.iter().any(|(seq, _, _)| *seq == e.seq) {
                v.push((e.seq, e.ts, &e.line));
            }
        }
    }
    for ((fy, b), v) in &buckets {
        let fy = f64::from_bits(*fy);
        // A lone event at its time; several at the middle of their column, so that marks of
        // neighbouring columns never overlap.
        let mx = match v.as_slice() {
            [(_, t, _)] => x(*t),
            _ => LABELS + (*b as f64 + 0.5) * BUCKET,
        };
        let mut title: Vec<String> = v.iter().take(5).map(|(_, _, l)| clip(l, 200)).collect();
        if v.len() > 5 {
            title.push(format!("… and {} more", v.len() - 5));
        }
        let title = esc(&title.join("\n"));
        let mark = if v.len() == 1 {
            format!(r##"<circle cx="{mx:.1}" cy="{fy}" r="4" fill="#0969da"/>"##)
        } else {
            let n = if v.len() > 99 {
                "99+".to_string()
            } else {
                v.len().to_string()
            };
            format!(
                r##"<rect x="{:.1}" y="{:.1}" width="15" height="13" rx="3" fill="#0969da"/><text x="{mx:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="#ffffff">{n}</text>"##,
                mx - 7.5,
                fy - 6.5,
                fy + 3.0
            )
        };
        let seq = v[0].0;
        if frame.links {
            let _ = writeln!(
                s,
                r##"<a class="evidence" href="#ev-{id}-{seq}" data-count="{}"><title>{title}</title>{mark}</a>"##,
                v.len()
            );
        } else {
            let _ = writeln!(
                s,
                r##"<g class="evidence" data-count="{}"><title>{title}</title>{mark}</g>"##,
                v.len()
            );
        }
    }

    // The chain: numbered steps, arrows from each cause to its effect.
    let mut taken: Vec<(f64, f64)> = Vec::new();
    let mut place = |px: f64, py: f64| -> (f64, f64) {
        let mut px = px;
        while taken
            .iter()
            .any(|(tx, ty)| *ty == py && (tx - px).abs() < 18.0)
        {
            px += 18.0;
        }
        taken.push((px, py));
        (px, py)
    };
    for (c, chain) in chains.iter().enumerate() {
        let points: Vec<(f64, f64)> = chain
            .iter()
            .map(|st| place(x(st.ts), y_of(st.layer, &st.entity)))
            .collect();
        for w in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            let d = if (y1 - y0).abs() < 1.0 {
                // Along a row: an arc above it.
                format!(
                    "M{:.1},{:.1} Q{:.1},{:.1} {:.1},{:.1}",
                    x0,
                    y0 - 7.0,
                    (x0 + x1) / 2.0,
                    y0 - 24.0,
                    x1,
                    y1 - 7.0
                )
            } else {
                let (sy, ey) = if y1 > y0 {
                    (y0 + 7.0, y1 - 7.0)
                } else {
                    (y0 - 7.0, y1 + 7.0)
                };
                format!(
                    "M{x0:.1},{sy:.1} C{x0:.1},{:.1} {x1:.1},{:.1} {x1:.1},{ey:.1}",
                    (sy + ey) / 2.0,
                    (sy + ey) / 2.0
                )
            };
            let _ = writeln!(
                s,
                r##"<path class="arrow" data-chain="{c}" d="{d}" fill="none" stroke="#b3261e" stroke-width="1.6" marker-end="url(#ah-{id})"/>"##
            );
        }
        for (i, (st, (px, py))) in chain.iter().zip(&points).enumerate() {
            let fill = if c == 0 { "#b3261e" } else { "#8250df" };
            let label = if c == 0 {
                (i + 1).to_string()
            } else {
                format!("{}", char::from(b'a' + (i.min(25)) as u8))
            };
            let _ = writeln!(
                s,
                r##"<g class="step" data-chain="{c}"><title>{} [{}] {}</title><rect x="{:.1}" y="{:.1}" width="14" height="14" rx="7" fill="{fill}"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" font-size="9" font-weight="700" fill="#ffffff">{label}</text></g>"##,
                st.ts,
                st.layer,
                esc(&st.summary),
                px - 7.0,
                py - 7.0,
                py + 3.0
            );
        }
    }

    // The legend.
    let items: [(&str, &str); 6] = [
        (
            r##"<circle cx="6" cy="0" r="4" fill="#0969da"/>"##,
            "evidence event",
        ),
        (
            r##"<rect x="0" y="-6.5" width="15" height="13" rx="3" fill="#0969da"/><text x="7.5" y="3" text-anchor="middle" font-size="9" fill="#ffffff">n</text>"##,
            "n events close together",
        ),
        (
            r##"<rect x="0" y="-4" width="18" height="8" rx="2" fill="#8c959f" fill-opacity="0.45"/>"##,
            "finding (start – end)",
        ),
        (
            r##"<rect x="0" y="-7" width="14" height="14" rx="7" fill="#b3261e"/><path d="M16,0 L28,0" stroke="#b3261e" stroke-width="1.6"/>"##,
            "causal chain, cause → effect",
        ),
        (
            r##"<rect x="0" y="-6" width="18" height="12" fill="#fff4ce" stroke="#bf8700" stroke-dasharray="4,3"/>"##,
            "incident window",
        ),
        (
            r##"<rect x="0" y="-6" width="18" height="12" fill="#9e9e9e" fill-opacity="0.5"/>"##,
            "drops, gaps: not seen",
        ),
    ];
    let _ = write!(s, r##"<g class="legend" fill="#57606a" font-size="10">"##);
    let mut lx = 20.0;
    for (mark, text) in items {
        let _ = write!(
            s,
            r##"<g transform="translate({lx},{legend})">{mark}<text x="34" y="4">{text}</text></g>"##
        );
        // About 5.6 px a character at 10 px: the six fit in the width.
        lx += 34.0 + text.chars().count() as f64 * 5.6 + 10.0;
    }
    s.push_str("</g>\n</svg>\n");
    s
}

/// Tick times: round multiples of a step that gives at most 8 ticks.
fn ticks(lo: u64, hi: u64) -> Vec<u64> {
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;
    let steps = [
        MS,
        2 * MS,
        5 * MS,
        10 * MS,
        20 * MS,
        50 * MS,
        100 * MS,
        200 * MS,
        500 * MS,
        S,
        2 * S,
        5 * S,
        10 * S,
        15 * S,
        30 * S,
        60 * S,
        120 * S,
        300 * S,
        600 * S,
        900 * S,
        1800 * S,
        3600 * S,
        2 * 3600 * S,
        3 * 3600 * S,
        6 * 3600 * S,
        12 * 3600 * S,
        24 * 3600 * S,
    ];
    let span = hi - lo;
    let step = steps
        .iter()
        .copied()
        .find(|s| span / s <= 7)
        .unwrap_or(span / 7 + 1);
    let mut t = lo.div_ceil(step) * step;
    let mut out = Vec::new();
    while t <= hi {
        out.push(t);
        t += step;
    }
    out
}

fn tick_label(t: u64, n: usize, lo: u64, hi: u64) -> String {
    let step = (hi - lo) / n.max(1) as u64;
    let dt = Ts(t).to_datetime();
    if step < Ts::NANOS_PER_SEC {
        dt.format("%H:%M:%S%.3f").to_string()
    } else if step < 60 * Ts::NANOS_PER_SEC {
        dt.format("%H:%M:%S").to_string()
    } else {
        dt.format("%H:%M").to_string()
    }
}

/// At most `n` characters, an ellipsis past them.
pub(super) fn clip(s: &str, n: usize) -> String {
    let s = s.lines().next().unwrap_or("");
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Impact, RootCause, Severity};
    use crate::detect::{Evidence, Facts, Finding, FindingKind};
    use crate::knowledge::RootKind;

    /// An incident of `pods` pods, each with a finding whose evidence is `per_pod` events over
    /// ten minutes, the first three findings chained.
    fn incident(pods: usize, per_pod: usize) -> Incident {
        let t0 = Ts::from_secs(1_700_000_000);
        let mut seq = 0;
        let findings: Vec<Finding> = (0..pods)
            .map(|p| {
                let evidence = (0..per_pod)
                    .map(|i| {
                        seq += 1;
                        Evidence {
                            seq,
                            ts: Ts(t0.0 + (i as u64 * 600 / per_pod as u64) * Ts::NANOS_PER_SEC),
                            line: format!("event {seq}"),
                        }
                    })
                    .collect();
                Finding {
                    id: p,
                    kind: FindingKind::OomKillMemcg,
                    layer: if p % 2 == 0 {
                        Layer::Kernel
                    } else {
                        Layer::K8s
                    },
                    entity: Entity::pod("shop", &format!("cart-{p}")),
                    start: t0,
                    end: Ts(t0.0 + 600 * Ts::NANOS_PER_SEC),
                    count: per_pod as u64,
                    summary: format!("finding {p}"),
                    facts: Facts::default(),
                    evidence,
                }
            })
            .collect();
        let chain = findings
            .iter()
            .take(3)
            .map(|f| ChainStep {
                ts: f.start,
                layer: f.layer,
                kind: f.kind,
                entity: f.entity.clone(),
                summary: f.summary.clone(),
                evidence: f.evidence.iter().take(1).cloned().collect(),
                caused_by: Vec::new(),
            })
            .collect();
        Incident {
            id: 1,
            severity: Severity::High,
            confidence: 0.9,
            start: t0,
            end: Ts(t0.0 + 600 * Ts::NANOS_PER_SEC),
            root_cause: RootCause {
                kind: RootKind::OomContainerLimit,
                entity: Entity::pod("shop", "cart-0"),
                summary: "cart-0 OOM-killed".into(),
            },
            chain,
            other_root_causes: Vec::new(),
            impact: Impact::default(),
            actions: Vec::new(),
            evidence_complete: true,
            evidence_gaps: Vec::new(),
            notes: Vec::new(),
            alternatives: Vec::new(),
            findings,
        }
    }

    fn attr_sum(svg: &str, attr: &str) -> usize {
        svg.split(&format!(" {attr}=\""))
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse::<usize>().unwrap())
            .sum()
    }

    fn row_ys(svg: &str) -> Vec<f64> {
        svg.split(r#"<g class="row"><line x1="240" y1=""#)
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn two_evidence_events_are_two_marks() {
        let svg = svg(&incident(2, 1), &[], Frame { links: true });
        assert_eq!(svg.matches(r#"class="evidence""#).count(), 2);
        assert_eq!(attr_sum(&svg, "data-count"), 2);
        assert_eq!(svg.matches(r#"class="arrow""#).count(), 1);
        assert_eq!(row_ys(&svg).len(), 2);
    }

    #[test]
    fn what_tapio_did_not_see_is_hatched_over_every_lane() {
        let inc = incident(2, 4);
        let lost = Blind {
            from: Ts(inc.start.0 + 60 * Ts::NANOS_PER_SEC),
            to: Ts(inc.start.0 + 90 * Ts::NANOS_PER_SEC),
            what: "ebpf lost 1200 events (ring buffer full)".into(),
            lost: None,
        };
        let far = Blind {
            from: Ts(inc.start.0 + 7200 * Ts::NANOS_PER_SEC),
            to: Ts(inc.start.0 + 7300 * Ts::NANOS_PER_SEC),
            what: "an hour later".into(),
            lost: None,
        };
        let svg = svg(&inc, &[lost, far], Frame { links: false });
        assert_eq!(
            svg.matches(r#"class="blind""#).count(),
            1,
            "only what overlaps"
        );
        let rect = svg.split(r#"<rect class="blind" x=""#).nth(1).unwrap();
        let nums: Vec<f64> = rect
            .split('"')
            .step_by(2)
            .take(4)
            .filter_map(|n| n.parse().ok())
            .collect();
        // x, then width (30 s of about 660 s of plot), over the lanes from the top.
        assert!(
            nums[0] > LABELS && nums[1] > 10.0 && nums[1] < 60.0,
            "{nums:?}"
        );
        assert!(svg.contains("ring buffer full"));
        assert!(!svg.contains("href=\"#ev-"), "no links in a picture alone");
    }

    #[test]
    fn two_thousand_evidence_events_stay_readable() {
        // 200 pods × 10 events: every event counted once, in marks that do not overlap, rows
        // capped per lane with the rest counted, labels a row apart.
        let svg = svg(&incident(200, 10), &[], Frame { links: true });
        assert_eq!(attr_sum(&svg, "data-count"), 2000);
        let marks = svg.matches(r#"class="evidence""#).count();
        let columns = ((WIDTH - LABELS - RIGHT) / BUCKET).ceil() as usize + 1;
        let rows = row_ys(&svg);
        assert_eq!(rows.len(), 2 * MAX_ROWS, "two lanes, each capped");
        assert!(marks <= rows.len() * columns, "{marks} marks");
        assert!(svg.contains(">+93 more<"), "the rest of a lane in one row");
        for w in rows.windows(2) {
            assert!(w[1] - w[0] >= ROW, "rows overlap: {w:?}");
        }
        assert!(svg.contains("time, UTC (2023-11-14)"));
        assert_eq!(svg.matches(r#"class="arrow""#).count(), 2);
    }

    #[test]
    fn ticks_are_round_and_few() {
        let s = Ts::NANOS_PER_SEC;
        let t = ticks(10 * s + 300_000_000, 40 * s);
        assert_eq!(t, vec![15 * s, 20 * s, 25 * s, 30 * s, 35 * s, 40 * s]);
        let t = ticks(0, 3 * 3600 * s);
        assert!(t.len() <= 8 && t.len() >= 3, "{t:?}");
    }

    #[test]
    fn clip_keeps_one_line_and_marks_the_cut() {
        assert_eq!(clip("abc\ndef", 10), "abc");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
