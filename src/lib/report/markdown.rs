//! The report as Markdown, for a ticket or a GitHub issue: headings, tables, the chain as a
//! numbered list; nothing that needs raw HTML.

use std::fmt::Write as _;

use super::document::{count, evidence, range, what, Document};
use super::markup::{cell, code};
use super::summary::impact_line;
use super::timeline::clip;
use crate::analysis::{ChainStep, Incident};

/// Evidence rows a ticket shows per incident; the HTML report has them all.
const MAX_EVIDENCE_ROWS: usize = 100;

pub fn markdown(d: &Document) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Incident report\n");
    overview(&mut s, d);
    if d.incidents.is_empty() {
        let _ = writeln!(s, "No incident{}.\n", hidden_note(d.hidden));
    } else if d.hidden > 0 {
        let _ = writeln!(s, "{}\n", hidden_note(d.hidden).trim_start_matches("; "));
    }
    for inc in &d.incidents {
        incident(&mut s, inc);
    }
    let _ = writeln!(s, "---\n*Made by tapio {}.*", env!("CARGO_PKG_VERSION"));
    s
}

fn hidden_note(hidden: usize) -> String {
    if hidden == 0 {
        String::new()
    } else {
        format!(
            "; {hidden} low-severity incident{} left out (`--all` includes {})",
            if hidden == 1 { "" } else { "s" },
            if hidden == 1 { "it" } else { "them" }
        )
    }
}

fn overview(s: &mut String, d: &Document) {
    let o = &d.overview;
    let _ = writeln!(s, "| | |\n|---|---|");
    let names: Vec<String> = d.captures.iter().map(|c| code(c)).collect();
    let _ = writeln!(s, "| Captures | {} |", names.join(", "));
    if let (Some(a), Some(b)) = (o.first, o.last) {
        let _ = writeln!(s, "| Time | {} |", cell(&range(a, b)));
    }
    let _ = writeln!(s, "| Events | {} |", count(o.events));
    if !o.nodes.is_empty() {
        let nodes: Vec<String> = o.nodes.keys().map(|n| cell(n)).collect();
        let _ = writeln!(s, "| Nodes | {} |", nodes.join(", "));
    }
    let blind = if d.blind.is_empty() {
        "none".to_string()
    } else {
        d.blind
            .iter()
            .map(|b| cell(&format!("{} – {}: {}", b.from, b.to, b.what)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let _ = writeln!(s, "| Drops and gaps | {blind} |");
    if !d.scope.is_empty() {
        let _ = writeln!(s, "| Narrowed to | {} |", cell(&d.scope.join(", ")));
    }
    let _ = writeln!(s, "| Incidents | {} |\n", d.incidents.len());
    if let Some(h) = &d.histogram {
        let _ = writeln!(
            s,
            "Events per source over time ({} a character, from {} UTC):\n",
            super::document::duration(h.width * 2),
            h.from.to_datetime().format("%Y-%m-%d %H:%M:%S")
        );
        let _ = writeln!(s, "| Source | Events | Over time |\n|---|--:|---|");
        for (source, counts) in &h.series {
            let total: u64 = counts.iter().sum();
            let _ = writeln!(
                s,
                "| {source} | {} | {} |",
                count(total),
                code(&sparkline(counts, 2))
            );
        }
        s.push('\n');
    }
}

/// One character per `per` buckets, eight heights; a bucket with events is never drawn empty.
fn sparkline(counts: &[u64], per: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let merged: Vec<u64> = counts.chunks(per.max(1)).map(|c| c.iter().sum()).collect();
    let max = merged.iter().copied().max().unwrap_or(0).max(1);
    merged
        .iter()
        .map(|&n| {
            if n == 0 {
                ' '
            } else {
                BARS[((n * 7).div_ceil(max) as usize).clamp(1, 7)]
            }
        })
        .collect()
}

fn incident(s: &mut String, inc: &Incident) {
    let _ = writeln!(
        s,
        "## Incident {} — {}\n\n**{}** · confidence {:.2} · {}\n",
        inc.id,
        inc.root_cause.kind.title(),
        inc.severity.as_str(),
        inc.confidence,
        range(inc.start, inc.end)
    );
    let _ = writeln!(
        s,
        "**Root cause** ({}): {}\n",
        code(&inc.root_cause.entity.to_string()),
        cell(&inc.root_cause.summary)
    );
    for o in &inc.other_root_causes {
        let _ = writeln!(
            s,
            "**Also** — {} ({}): {}\n",
            o.kind.title(),
            code(&o.entity.to_string()),
            cell(&o.summary)
        );
    }
    let _ = writeln!(s, "**Impact**: {}\n", cell(&impact_line(inc)));
    if !inc.evidence_complete {
        let _ = writeln!(
            s,
            "> **Evidence incomplete**: {}\n",
            cell(&inc.evidence_gaps.join("; "))
        );
    }
    for n in &inc.notes {
        let _ = writeln!(s, "> Note: {}\n", cell(n));
    }
    let _ = writeln!(s, "### Causal chain\n");
    chain(s, &inc.chain);
    for o in &inc.other_root_causes {
        let _ = writeln!(s, "Chain of the other root ({}):\n", o.kind.title());
        chain(s, &o.chain);
    }
    let _ = writeln!(s, "### Actions\n");
    for (i, a) in inc.actions.iter().enumerate() {
        let _ = writeln!(s, "{}. **{}** — {}", i + 1, a.urgency, cell(&a.text));
    }
    s.push('\n');
    let rows = evidence(inc);
    let _ = writeln!(s, "### Evidence\n");
    let _ = writeln!(
        s,
        "| Time (UTC) | Layer | Entity | What | Seq |\n|---|---|---|---|--:|"
    );
    for r in rows.iter().take(MAX_EVIDENCE_ROWS) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.ts.to_datetime().format("%H:%M:%S%.3f"),
            r.layer,
            cell(&r.entity.short()),
            cell(&clip(&what(r.line), 240)),
            r.seq
        );
    }
    if rows.len() > MAX_EVIDENCE_ROWS {
        let _ = writeln!(
            s,
            "\n{} more evidence events are in the HTML report (`tapio report -o incident.html`).",
            rows.len() - MAX_EVIDENCE_ROWS
        );
    }
    s.push('\n');
    let _ = writeln!(s, "### Other causes considered\n");
    if inc.alternatives.is_empty() {
        let _ = writeln!(
            s,
            "None: every other finding is explained by the root cause.\n"
        );
    } else {
        for a in &inc.alternatives {
            let _ = writeln!(
                s,
                "- {} {}: {}",
                code(a.kind.as_str()),
                code(&a.entity.to_string()),
                cell(&a.why_not)
            );
        }
        s.push('\n');
    }
}

fn chain(s: &mut String, steps: &[ChainStep]) {
    for (i, st) in steps.iter().enumerate() {
        let seq = st
            .evidence
            .first()
            .map(|e| format!(" (evidence #{})", e.seq))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{}. {} **{}** {}{seq}",
            i + 1,
            code(&st.ts.to_datetime().format("%H:%M:%S%.3f").to_string()),
            st.layer,
            cell(&st.summary)
        );
    }
    s.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_never_hides_a_bucket_with_events() {
        assert_eq!(sparkline(&[0, 1, 1000, 500], 1), " ▂█▅");
        assert_eq!(sparkline(&[1, 1, 0, 0], 2), "█ ");
    }
}
