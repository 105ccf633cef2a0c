//! One request as a tree, for `tapio correlate --trace-id`.

use std::fmt::Write as _;

use crate::analysis::request::Request;

/// The request's spans, indented by depth, with the span where it failed or lost its time marked.
pub fn request_text(r: &Request) -> String {
    let mut s = String::new();
    let root = r.steps.first();
    let outcome = if r.failed { "FAILED" } else { "succeeded" };
    let _ = writeln!(
        s,
        "Request {} — {outcome} ({}) in {:.1} ms",
        r.trace_id,
        root.map_or("?", |x| x.status.as_str()),
        r.duration_ns as f64 / 1e6
    );
    for step in &r.steps {
        let indent = "  ".repeat(step.depth.min(12));
        let what = format!(
            "{indent}{} {} {}",
            step.service.short(),
            step.kind,
            step.name
        );
        let _ = writeln!(
            s,
            "    {}  {what:<56} {:>9.1} ms  {}{}",
            step.start.to_datetime().format("%H:%M:%S%.3f"),
            step.duration_ns as f64 / 1e6,
            step.status,
            step.mark
                .as_deref()
                .map(|m| format!("   {m}"))
                .unwrap_or_default()
        );
    }
    s
}
