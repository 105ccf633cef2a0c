//! Incidents as they open, change and close (`record`, `replay --follow`, `--live-output`).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::summary::{impact_line, incident_text};
use crate::pipeline::{Change, State};

fn hms(ts: crate::event::Ts) -> String {
    ts.to_datetime().format("%H:%M:%S").to_string()
}

/// A change as people read it: OPEN with the root cause, impact and first action; UPDATE with
/// what changed, on one line; CLOSED with the whole summary.
pub fn change_text(c: &Change<'_>) -> String {
    let inc = c.incident;
    let mut s = String::new();
    match c.state {
        State::Open => {
            let _ = writeln!(
                s,
                "OPEN    incident {} — {} ({}, confidence {:.2}) since {} UTC",
                c.id,
                inc.root_cause.kind.title(),
                inc.severity.as_str(),
                inc.confidence,
                hms(inc.start)
            );
            let _ = writeln!(s, "  Root cause  {}", inc.root_cause.summary);
            let _ = writeln!(s, "  Impact      {}", impact_line(inc));
            if let Some(a) = inc.actions.first() {
                let _ = writeln!(s, "  Next        {:<9} {}", a.urgency, a.text);
            }
        }
        State::Update => {
            let _ = writeln!(
                s,
                "UPDATE  incident {} — {} at {} UTC",
                c.id,
                c.changed.join("; "),
                hms(inc.end)
            );
        }
        State::Closed if c.withdrawn => {
            let _ = writeln!(
                s,
                "CLOSED  incident {} — withdrawn: what it was made of did not hold",
                c.id
            );
        }
        State::Closed if c.merged_into.is_some() => {
            let _ = writeln!(
                s,
                "CLOSED  incident {} — part of incident {}: what it said goes on there",
                c.id,
                c.merged_into.unwrap_or_default()
            );
        }
        State::Closed => {
            let _ = writeln!(
                s,
                "CLOSED  incident {} — {} → {} UTC",
                c.id,
                hms(inc.start),
                hms(inc.end)
            );
            let mut inc = inc.clone();
            inc.id = c.id as usize;
            s.push_str(&incident_text(&inc));
        }
    }
    s
}

/// A change as a JSON line: `state`, the incident's `id` in this run, what `changed` (updates),
/// `merged_into` (an incident closed as part of another), and the incident object of the replay
/// schema.
pub fn change_json(c: &Change<'_>) -> Value {
    let mut inc = serde_json::to_value(c.incident).unwrap_or(Value::Null);
    if let Some(o) = inc.as_object_mut() {
        o.insert("id".into(), json!(c.id));
    }
    let mut v = json!({ "state": c.state, "id": c.id });
    if !c.changed.is_empty() {
        v["changed"] = json!(c.changed);
    }
    if let Some(into) = c.merged_into {
        v["merged_into"] = json!(into);
    }
    if c.withdrawn {
        v["withdrawn"] = json!(true);
    }
    v["incident"] = inc;
    v
}
