//! The change tests of the service-level detectors: is a window of a service's signal different
//! from its baseline? Each test is documented, with its thresholds, in `docs/correlation.md`.

use super::{Signal, BUCKET_NS, MIN_LOG_BASELINE};
use crate::event::Ts;
use crate::topology::Entity;

/// Thresholds of the change tests (docs/correlation.md explains each).
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Baseline requests needed before a rise can be judged against it.
    pub min_baseline: u64,
    /// Originating errors needed in the window.
    pub min_errors: u64,
    /// Significance (binomial z-score) of a rise.
    pub z: f64,
    /// The window's error rate must reach this many times the baseline's …
    pub error_ratio: f64,
    /// … and exceed it by this much.
    pub error_margin: f64,
    /// Without a baseline (a capture that starts mid-incident): the rate and count that still count.
    pub no_baseline_rate: f64,
    pub no_baseline_errors: u64,
    /// Latency samples needed in the window.
    pub min_samples: u64,
    /// Share of the window's samples above the baseline's 95th percentile.
    pub exceed_share: f64,
    /// The window's p90 must exceed the baseline's by this factor and this much.
    pub latency_ratio: f64,
    pub latency_min_ns: u64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            min_baseline: 50,
            min_errors: 5,
            z: 4.0,
            error_ratio: 2.0,
            error_margin: 0.05,
            no_baseline_rate: 0.2,
            no_baseline_errors: 10,
            min_samples: 10,
            exceed_share: 0.25,
            latency_ratio: 1.5,
            latency_min_ns: 20_000_000,
        }
    }
}

/// A latency histogram: bucket i holds durations in [2^(i/2) µs, 2^((i+1)/2) µs).
#[derive(Clone, Default)]
pub(super) struct Hist {
    pub(super) counts: Vec<u32>,
    pub(super) n: u64,
}

const HIST_BUCKETS: usize = 64;

impl Hist {
    pub(super) fn index(ns: u64) -> usize {
        let us = (ns / 1000).max(1) as f64;
        ((2.0 * us.log2()).floor() as usize).min(HIST_BUCKETS - 1)
    }

    /// The upper bound of a bucket, in ns.
    pub(super) fn upper(i: usize) -> u64 {
        (2f64.powf((i + 1) as f64 / 2.0) * 1000.0) as u64
    }

    pub(super) fn add(&mut self, ns: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; HIST_BUCKETS];
        }
        self.counts[Hist::index(ns)] += 1;
        self.n += 1;
    }

    pub(super) fn merge(&mut self, o: &Hist) {
        if o.n == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; HIST_BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
    }

    /// The bucket holding the q-quantile.
    pub(super) fn quantile_bucket(&self, q: f64) -> usize {
        let want = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= want {
                return i;
            }
        }
        HIST_BUCKETS - 1
    }

    pub(super) fn quantile(&self, q: f64) -> u64 {
        Hist::upper(self.quantile_bucket(q))
    }

    pub(super) fn above(&self, bucket: usize) -> u64 {
        self.counts.iter().skip(bucket + 1).map(|&c| c as u64).sum()
    }
}

/// A change found by a test.
#[derive(Clone, Debug)]
pub(super) struct Change {
    pub(super) from: Ts,
    pub(super) to: Ts,
    /// How many requests were hit in the window.
    pub(super) count: u64,
    /// Of those, in the newest bucket.
    pub(super) added: u64,
    /// For latency: the baseline's p95 bucket, above which a sample counts as hit.
    pub(super) threshold_bucket: usize,
    /// The size of the change, for ranking candidates (a z-score).
    pub(super) score: f64,
    pub(super) before: f64,
    pub(super) after: f64,
    /// The baseline was missing (a capture that starts mid-incident).
    pub(super) no_baseline: bool,
    /// Most errors were calls that never reached the service.
    pub(super) unreached: bool,
    /// For logs: the new error template that says the most.
    pub(super) template: Option<String>,
    /// For logs: requests answered as a success inside which the error was logged.
    pub(super) silent: u64,
    /// For logs: a line it always wrote stopped (`template`).
    pub(super) vanished: bool,
    pub(super) detail: String,
}

impl Change {
    pub(super) fn summary(&self, service: &Entity, signal: Signal) -> String {
        let s = service.short();
        let since = if self.no_baseline {
            " (no baseline: the capture starts mid-incident)".to_string()
        } else {
            String::new()
        };
        match signal {
            Signal::Errors if self.unreached => format!(
                "calls into {s} fail before reaching it: {:.1} % of its requests, was {:.1} %{since}",
                self.after * 100.0,
                self.before * 100.0
            ),
            Signal::Errors => format!(
                "errors originate in {s}: {:.1} % of its requests fail in its own code, was {:.1} %{since}",
                self.after * 100.0,
                self.before * 100.0
            ),
            Signal::SelfTime => format!(
                "{s} got slower in its own processing: self time p90 {} ms, was {} ms",
                ms(self.after),
                ms(self.before)
            ),
            Signal::Gap => format!(
                "calls into {s} are delayed between caller and server: network gap p90 {} ms, was {} ms",
                ms(self.after),
                ms(self.before)
            ),
            Signal::Logs if self.vanished => format!(
                "{s} stopped logging \"{}\": it wrote {:.0} a minute",
                self.template.as_deref().unwrap_or("?"),
                self.before
            ),
            Signal::Logs => format!(
                "{s} logs errors: {:.0} a minute, was {:.1}{}{}",
                self.after,
                self.before,
                if self.silent > 0 {
                    format!(
                        "; {} request{} answered as a success",
                        self.silent,
                        if self.silent == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                },
                self.template
                    .as_ref()
                    .map(|t| format!("; new: \"{}\"", crate::detect::text::first_line(t)))
                    .unwrap_or_default()
            ),
        }
    }
}

pub(super) fn ms(ns: f64) -> String {
    let m = ns / 1e6;
    if m >= 10.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// A rise of originating errors: significant (a pooled two-proportion z against the baseline) and
/// substantial (ratio and margin).
pub(super) fn errors_changed(th: &Thresholds, k: u64, n: u64, k0: u64, n0: u64) -> Option<Change> {
    if n == 0 || k < th.min_errors {
        return None;
    }
    let rate = k as f64 / n as f64;
    if n0 < th.min_baseline {
        // No baseline: only a high rate from the start counts.
        return (k >= th.no_baseline_errors && rate >= th.no_baseline_rate).then(|| Change {
            from: Ts(0),
            to: Ts(0),
            count: k,
            added: 0,
            threshold_bucket: 0,
            score: (k as f64).sqrt(),
            before: 0.0,
            after: rate,
            no_baseline: true,
            unreached: false,
            template: None,
            silent: 0,
            vanished: false,
            detail: format!(
                "{k} of {n} requests failed where they were served; no baseline before"
            ),
        });
    }
    // Two proportions, pooled: a small baseline is uncertain too (1 error in 90 requests may be a
    // 4 % service that was lucky), and the test must not take it for exact.
    let p0 = (k0 as f64 + 0.5) / (n0 as f64 + 1.0);
    let pooled = (k + k0) as f64 / (n + n0) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n as f64 + 1.0 / n0 as f64)).sqrt();
    let z = if se > 0.0 {
        (rate - k0 as f64 / n0 as f64) / se
    } else {
        0.0
    };
    let substantial = rate >= th.error_ratio * p0 && rate >= p0 + th.error_margin;
    (z >= th.z && substantial).then(|| Change {
        from: Ts(0),
        to: Ts(0),
        count: k,
        added: 0,
        threshold_bucket: 0,
        score: z,
        before: k0 as f64 / n0 as f64,
        after: rate,
        no_baseline: false,
        unreached: false,
        template: None,
        silent: 0,
        vanished: false,
        detail: format!(
            "{k} of {n} requests failed where they were served (baseline {k0} of {n0}); z = {z:.1}"
        ),
    })
}

/// A rise of error-level log lines: significant against the baseline's rate (a conditional test
/// of two Poisson rates), and either mostly lines of templates the baseline never had, or four times the usual rate.
pub(super) fn logs_changed(
    th: &Thresholds,
    k: u64,
    window: usize,
    k0: u64,
    baseline: usize,
    fresh: u64,
    top: Option<(String, u64)>,
) -> Option<Change> {
    if k < th.min_errors || baseline < MIN_LOG_BASELINE || window == 0 {
        return None;
    }
    let per_bucket = (k0 as f64 + 1.0) / baseline as f64;
    let expected = per_bucket * window as f64;
    // Two Poisson rates compared: given all the lines of window and baseline, the window's share
    // is binomial with p = its share of the time (the baseline's rate is uncertain too).
    let total = (k + k0) as f64;
    let p = window as f64 / (window + baseline) as f64;
    let z = (k as f64 - total * p) / (total * p * (1.0 - p)).sqrt();
    let new_lines = fresh * 2 >= k;
    let risen = k as f64 >= th.error_ratio * expected && (new_lines || k as f64 >= 4.0 * expected);
    let per_minute = |n: f64, buckets: f64| n / buckets * (60e9 / BUCKET_NS as f64);
    (z >= th.z && risen).then(|| Change {
        from: Ts(0),
        to: Ts(0),
        count: k,
        added: 0,
        threshold_bucket: 0,
        score: z,
        before: per_minute(k0 as f64, baseline as f64),
        after: per_minute(k as f64, window as f64),
        no_baseline: false,
        unreached: false,
        template: top.as_ref().filter(|_| new_lines).map(|(t, _)| t.clone()),
        silent: 0,
        vanished: false,
        detail: format!(
            "{k} error lines in {} s (baseline {k0} in {} s); {fresh} of a template never seen before{}; z = {z:.1}",
            window as u64 * BUCKET_NS / Ts::NANOS_PER_SEC,
            baseline as u64 * BUCKET_NS / Ts::NANOS_PER_SEC,
            top.map(|(t, n)| format!(" (\"{t}\" ×{n})")).unwrap_or_default()
        ),
    })
}

/// A log message with its variable parts masked: words with digits, quoted strings and long hex
/// become `<*>`, so that one statement's lines share one template.
pub(crate) fn template(text: &str) -> String {
    let line = crate::detect::text::first_line(text);
    let mut out = String::with_capacity(line.len().min(200));
    for (i, word) in line.split_whitespace().take(24).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let variable = word.chars().any(|c| c.is_ascii_digit())
            || word.starts_with(['\'', '"'])
            || (word.len() >= 8 && word.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        out.push_str(if variable { "<*>" } else { word });
    }
    out
}

/// A latency shift: many samples above the baseline's p95 (binomial z against 5 %), and a p90
/// that rose by a ratio and an absolute amount.
pub(super) fn latency_changed(th: &Thresholds, w: &Hist, base: &Hist) -> Option<Change> {
    if w.n < th.min_samples || base.n < th.min_baseline {
        return None;
    }
    let p95 = base.quantile_bucket(0.95);
    let k = w.above(p95);
    let share = k as f64 / w.n as f64;
    let p = 0.05;
    let z = (k as f64 - w.n as f64 * p) / (w.n as f64 * p * (1.0 - p)).sqrt();
    let (before, after) = (base.quantile(0.9) as f64, w.quantile(0.9) as f64);
    let shifted = after >= th.latency_ratio * before && after - before >= th.latency_min_ns as f64;
    (share >= th.exceed_share && z >= th.z && shifted).then(|| Change {
        from: Ts(0),
        to: Ts(0),
        count: k,
        added: 0,
        threshold_bucket: p95,
        score: z,
        before,
        after,
        no_baseline: false,
        unreached: false,
        template: None,
        silent: 0,
        vanished: false,
        detail: format!(
            "{k} of {} samples above the baseline's p95 ({} ms); p90 {} ms, was {} ms; z = {z:.1}",
            w.n,
            ms(Hist::upper(p95) as f64),
            ms(after),
            ms(before)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::union_ns;
    use super::*;

    #[test]
    fn background_errors_at_the_same_rate_are_no_change() {
        let th = Thresholds::default();
        // 3 % before, 3 % now: nothing, however many requests.
        assert!(errors_changed(&th, 30, 1000, 300, 10_000).is_none());
        // 3 % before, 40 % now: a change.
        let c = errors_changed(&th, 400, 1000, 300, 10_000).expect("a rise");
        assert!(c.score > 10.0, "{c:?}");
        // A handful of errors is not enough, however rare they were.
        assert!(errors_changed(&th, 3, 100, 0, 10_000).is_none());
    }

    #[test]
    fn a_capture_that_starts_mid_incident_needs_a_high_rate() {
        let th = Thresholds::default();
        let c = errors_changed(&th, 50, 100, 0, 0).expect("no baseline, but half fail");
        assert!(c.no_baseline);
        assert!(errors_changed(&th, 5, 100, 0, 0).is_none());
    }

    #[test]
    fn a_latency_shift_needs_many_samples_above_the_old_tail_and_a_real_rise() {
        let th = Thresholds::default();
        let mut base = Hist::default();
        for i in 0..1000 {
            base.add(10_000_000 + (i % 50) * 100_000); // 10–15 ms
        }
        let mut same = Hist::default();
        for i in 0..100 {
            same.add(10_000_000 + (i % 50) * 100_000);
        }
        assert!(latency_changed(&th, &same, &base).is_none());
        let mut slow = Hist::default();
        for i in 0..100 {
            slow.add(60_000_000 + (i % 50) * 100_000); // 60–65 ms
        }
        let c = latency_changed(&th, &slow, &base).expect("a shift");
        assert!(c.after > 2.0 * c.before, "{c:?}");
    }

    #[test]
    fn log_templates_mask_what_varies() {
        assert_eq!(
            template("exception while pricing cart: KeyError 'sku-20233'"),
            "exception while pricing cart: KeyError <*>"
        );
        assert_eq!(
            template("request 7f3a9c0e12 failed after 3 retries\n  at foo()"),
            "request <*> failed after <*> retries"
        );
        assert_eq!(
            template("upstream quota check failed: limit exceeded for tenant 4711"),
            template("upstream quota check failed: limit exceeded for tenant 12")
        );
    }

    #[test]
    fn union_counts_parallel_calls_once() {
        let u = union_ns(&[(10, 50), (20, 40), (60, 70)], Ts(0), Ts(100));
        assert_eq!(u, 50);
        assert_eq!(union_ns(&[(0, 200)], Ts(10), Ts(100)), 90);
    }
}
