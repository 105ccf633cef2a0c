//! What a capture holds (`tapio info`): its header, whether it was closed cleanly, its time
//! range, size, drops, secrets, and events per source and kind.

use std::path::PathBuf;

use serde_json::{json, Value};
use tabled::settings::Style;
use tabled::{Table, Tabled};

use crate::capture::{Header, Stats};

/// A capture, described.
#[derive(Clone, Debug)]
pub struct CaptureInfo {
    pub path: PathBuf,
    pub header: Header,
    /// Whether it ends with its trailer.
    pub closed: bool,
    pub stats: Stats,
    pub blocks: u64,
    pub bytes: u64,
    pub warnings: Vec<String>,
}

#[derive(Tabled)]
struct Row {
    name: String,
    events: u64,
}

impl CaptureInfo {
    fn bytes_per_event(&self) -> f64 {
        if self.stats.events > 0 {
            self.bytes as f64 / self.stats.events as f64
        } else {
            0.0
        }
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "path": self.path,
            "format_version": self.header.format_version,
            "header": self.header,
            "closed_cleanly": self.closed,
            "events": self.stats.events,
            "blocks": self.blocks,
            "bytes": self.bytes,
            "bytes_per_event": (self.bytes_per_event() * 100.0).round() / 100.0,
            "first_ts": self.stats.first_ts,
            "last_ts": self.stats.last_ts,
            "by_kind": self.stats.by_kind,
            "by_source": self.stats.by_source,
            "drops": self.stats.dropped,
            "drop_markers": self.stats.drop_markers,
            "gaps": self.stats.gap_markers,
            "redaction": self.header.options.get("redact"),
            "redacted": self.stats.redacted,
            "warnings": self.warnings,
        })
    }

    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("{k:<10}{v}\n"));
        line(&mut out, "capture", self.path.display().to_string());
        let node = if self.header.node.is_empty() {
            "-".to_string()
        } else {
            self.header.node.clone()
        };
        let kernel = if self.header.kernel_release.is_empty() {
            String::new()
        } else {
            format!(", kernel {}", self.header.kernel_release)
        };
        line(
            &mut out,
            "format",
            format!(
                "v{}, tapio {}, node {node}{kernel}, created {}",
                self.header.format_version, self.header.tapio_version, self.header.created
            ),
        );
        if let Some(b) = self.header.boot_time {
            line(&mut out, "boot", b.to_string());
        }
        if !self.header.sources.is_empty() {
            line(&mut out, "sources", self.header.sources.join(", "));
        }
        for (k, v) in &self.header.options {
            line(&mut out, "option", format!("{k} = {v}"));
        }
        line(
            &mut out,
            "closed",
            if self.closed {
                "cleanly (trailer present)".into()
            } else {
                "NOT cleanly: no trailer (see warning)".into()
            },
        );
        match (self.stats.first_ts, self.stats.last_ts) {
            (Some(a), Some(b)) => line(
                &mut out,
                "time",
                format!("{a} → {b} UTC ({:.1} s)", b.saturating_sub(a) as f64 / 1e9),
            ),
            _ => line(&mut out, "time", "-".into()),
        }
        line(
            &mut out,
            "size",
            format!(
                "{} in {} blocks, {} events, {:.1} bytes/event",
                crate::units::bytes(self.bytes),
                self.blocks,
                self.stats.events,
                self.bytes_per_event()
            ),
        );
        line(
            &mut out,
            "drops",
            format!(
                "{} events lost ({} drop markers), {} gaps",
                self.stats.dropped, self.stats.drop_markers, self.stats.gap_markers
            ),
        );
        let total: u64 = self.stats.redacted.values().sum();
        let kinds: Vec<String> = self
            .stats
            .redacted
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let secrets = match (self.header.options.get("redact").map(String::as_str), total) {
            (Some("off"), _) => {
                "KEPT (recorded with --no-redact): `tapio redact` makes a copy to share".to_string()
            }
            (_, 0) if self.header.options.contains_key("redact") => {
                "redacted; none found".to_string()
            }
            (_, 0) => "not checked (an older capture): `tapio redact` makes a copy to share".into(),
            (_, n) => format!("redacted: {n} replaced ({})", kinds.join(", ")),
        };
        line(&mut out, "secrets", secrets);
        if self.stats.events > 0 {
            let sources: Vec<Row> = self
                .stats
                .by_source
                .iter()
                .map(|(s, &c)| Row {
                    name: s.to_string(),
                    events: c,
                })
                .collect();
            let kinds: Vec<Row> = self
                .stats
                .by_kind
                .iter()
                .map(|(k, &c)| Row {
                    name: k.to_string(),
                    events: c,
                })
                .collect();
            out.push_str(&format!(
                "\nby source\n{}\n",
                Table::new(sources).with(Style::sharp())
            ));
            out.push_str(&format!(
                "\nby kind\n{}\n",
                Table::new(kinds).with(Style::sharp())
            ));
        }
        out
    }
}
