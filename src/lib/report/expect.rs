//! CI replays: the expected verdict of a captured incident, and a readable diff against it.
//!
//! `expected.json` keeps what a verdict must get right — each incident's severity, root cause (kind
//! and entity), its chain (kinds and entities) and the services it hit — for the incidents of
//! severity medium or higher. Low-severity findings (a retried error, one network blip) may come
//! and go without failing a CI job; a healthy control expects no incident at all.

use serde::{Deserialize, Serialize};

use crate::analysis::{Severity, Verdict};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub incidents: Vec<ExpectedIncident>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedIncident {
    #[serde(default)]
    pub severity: String,
    pub root_cause: ExpectedRoot,
    /// The other roots of the incident, when independent causes hit the same services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_root_causes: Vec<ExpectedRoot>,
    pub chain: Vec<ExpectedStep>,
    pub impacted_services: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedRoot {
    pub kind: String,
    pub entity: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedStep {
    pub kind: String,
    pub entity: String,
}

/// One compared part of an incident, rendered for the diff.
type Field = fn(&ExpectedIncident) -> String;

impl Expected {
    /// What a verdict would have to be expected: its incidents of medium severity or higher.
    pub fn of(v: &Verdict) -> Expected {
        let incidents = v
            .incidents
            .iter()
            .filter(|i| i.severity >= Severity::Medium)
            .map(|i| ExpectedIncident {
                severity: i.severity.as_str().to_ascii_lowercase(),
                root_cause: ExpectedRoot {
                    kind: i.root_cause.kind.to_string(),
                    entity: i.root_cause.entity.to_string(),
                },
                other_root_causes: i
                    .other_root_causes
                    .iter()
                    .map(|r| ExpectedRoot {
                        kind: r.kind.to_string(),
                        entity: r.entity.to_string(),
                    })
                    .collect(),
                chain: i
                    .chain
                    .iter()
                    .map(|s| ExpectedStep {
                        kind: s.kind.to_string(),
                        entity: s.entity.to_string(),
                    })
                    .collect(),
                impacted_services: i.impact.services.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        Expected { incidents }
    }

    /// The differences, one line each (`-` expected, `+` got); empty when the verdict matches.
    pub fn diff(&self, got: &Expected) -> Vec<String> {
        let mut out = Vec::new();
        if self.incidents.len() != got.incidents.len() {
            out.push(format!(
                "  incidents (severity ≥ medium): expected {}, got {}",
                self.incidents.len(),
                got.incidents.len()
            ));
        }
        let n = self.incidents.len().max(got.incidents.len());
        for i in 0..n {
            let (e, g) = (self.incidents.get(i), got.incidents.get(i));
            let show = |x: Option<&ExpectedIncident>, f: Field| x.map_or("(none)".to_string(), f);
            let fields: [(&str, Field); 5] = [
                ("severity", |x| x.severity.clone()),
                ("root_cause", |x| {
                    format!("{} {}", x.root_cause.kind, x.root_cause.entity)
                }),
                ("other_root_causes", |x| {
                    x.other_root_causes
                        .iter()
                        .map(|r| format!("{} {}", r.kind, r.entity))
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
                ("chain", |x| {
                    x.chain
                        .iter()
                        .map(|s| format!("{} {}", s.kind, s.entity))
                        .collect::<Vec<_>>()
                        .join(" → ")
                }),
                ("impacted_services", |x| x.impacted_services.join(", ")),
            ];
            for (name, f) in fields {
                let (a, b) = (show(e, f), show(g, f));
                if a != b {
                    out.push(format!(
                        "  incident {} {name}:\n    - {a}\n    + {b}",
                        i + 1
                    ));
                }
            }
        }
        out
    }
}
