//! The incident summary people read at 3 a.m. (the layout of DESIGN.md).

use std::fmt::Write as _;

use crate::analysis::Incident;

/// The summary of one incident.
pub fn incident_text(inc: &Incident) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "INCIDENT {} — root cause: {} (confidence {:.2})",
        inc.id,
        inc.root_cause.kind.title(),
        inc.confidence
    );
    let _ = writeln!(s, "  Root cause  {}", inc.root_cause.summary);
    for o in &inc.other_root_causes {
        let _ = writeln!(s, "  Also        {}: {}", o.kind.title(), o.summary);
    }
    let _ = writeln!(
        s,
        "  Impact      {} — {}",
        inc.severity.as_str(),
        impact_line(inc)
    );
    if !inc.evidence_complete {
        let _ = writeln!(
            s,
            "  Evidence    INCOMPLETE: {}",
            inc.evidence_gaps.join("; ")
        );
    }
    for n in &inc.notes {
        let _ = writeln!(s, "  Note        {n}");
    }
    let _ = writeln!(s, "  Chain");
    chain_lines(&mut s, &inc.chain);
    for o in &inc.other_root_causes {
        let _ = writeln!(s, "  Chain of the other root ({})", o.kind.title());
        chain_lines(&mut s, &o.chain);
    }
    let _ = writeln!(s, "  Actions");
    for (i, a) in inc.actions.iter().enumerate() {
        let _ = writeln!(s, "    {}. {:<9} {}", i + 1, a.urgency, a.text);
    }
    s
}

fn chain_lines(s: &mut String, chain: &[crate::analysis::ChainStep]) {
    for step in chain {
        let seq = step
            .evidence
            .first()
            .map(|e| format!("   evidence #{}", e.seq))
            .unwrap_or_default();
        let layer = format!("[{}]", step.layer);
        let _ = writeln!(
            s,
            "    {}  {layer:<8} {}{seq}",
            step.ts.to_datetime().format("%H:%M:%S%.3f"),
            step.summary
        );
    }
}

pub(super) fn impact_line(inc: &Incident) -> String {
    let i = &inc.impact;
    let mut parts = Vec::new();
    if !i.services.is_empty() {
        let names: Vec<String> = i.services.iter().map(|s| s.short()).collect();
        parts.push(format!("services {}", names.join(", ")));
    }
    if !i.pods.is_empty() {
        parts.push(format!(
            "{} pod{}",
            i.pods.len(),
            if i.pods.len() == 1 { "" } else { "s" }
        ));
    }
    if i.endpoints_lost > 0 {
        parts.push(plural(i.endpoints_lost, "endpoint", "endpoints") + " lost");
    }
    if i.restarts > 0 {
        parts.push(plural(i.restarts, "restart", "restarts"));
    }
    if i.failed_requests > 0 {
        parts.push(plural(
            i.failed_requests,
            "failed request",
            "failed requests",
        ));
    }
    if i.recovered_requests > 0 {
        parts
            .push(plural(i.recovered_requests, "request", "requests") + " recovered after retries");
    }
    parts.push(format!("over {:.1} s", i.duration_s));
    parts.join("; ")
}

/// `1 restart`, `3 restarts`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The alternatives considered and why they lost, and every finding with its links (`--explain`).
pub fn explain(inc: &Incident) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  Considered");
    if inc.alternatives.is_empty() {
        let _ = writeln!(
            s,
            "    no other candidate: every other finding is explained by the root cause"
        );
    }
    for a in &inc.alternatives {
        let _ = writeln!(s, "    {} {}: {}", a.kind, a.entity, a.why_not);
    }
    let _ = writeln!(s, "  Findings");
    for f in &inc.findings {
        let _ = writeln!(
            s,
            "    {}  {:<22} {:<32} {}",
            f.start,
            f.kind.as_str(),
            f.entity.to_string(),
            f.summary
        );
    }
    s
}
