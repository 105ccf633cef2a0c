//! What a message says went wrong: the words runtimes and applications use for a failed name
//! lookup, an unreachable dependency, or missing configuration (see FIELD-GUIDE.md).

use std::sync::LazyLock;

use regex::Regex;

/// The cause a message names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Name resolution failed.
    Dns,
    /// A dependency refused, timed out or could not be routed to; the host when the text names it.
    Unreachable { host: Option<String> },
    /// Configuration is missing or wrong.
    Config,
    /// A TLS certificate on the way has expired (or is not valid yet); the host when named.
    Certificate { host: Option<String> },
}

// The words runtimes, libraries and proxies print for each cause; measured against the labelled
// corpus of real lines in `tests/corpus/messages.tsv` (docs/messages.md).
const CERTIFICATE: [&str; 12] = [
    "certificate has expired",
    "certificate is not yet valid",
    "cert_has_expired",
    "certificateexpiredexception",
    "certificatenotyetvalidexception",
    "nottimevalid",
    "validity check failed",
    "timestamp check failed",
    "certificate expired",
    "expired certificate",
    "is not valid yet",
    "certificate is expired",
];

static URL_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)https?://([A-Za-z0-9][A-Za-z0-9._-]*)"#).expect("static regex")
});

const DNS: [&str; 22] = [
    "no such host",
    "name or service not known",
    "nxdomain",
    "server misbehaving",
    "temporary failure in name resolution",
    "could not resolve host",
    "couldn't resolve host",
    "couldn't resolve server",
    "could not resolve server",
    "unknownhostexception",
    "name resolution",
    "dns resolution failed",
    "dns lookup failed",
    "failed to resolve '",
    "could not translate host name",
    "could not be resolved (",
    "host not found in upstream",
    "name does not resolve",
    "unknown mysql server host",
    "nodename nor servname",
    "no such host is known",
    "getaddrinfo failed",
];

/// Node's and libc's resolver error codes, as words (`FileNotFoundException` holds `enotfound`).
static DNS_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:ENOTFOUND|EAI_AGAIN|EAI_NONAME)\b").expect("static regex")
});

/// A query to a DNS server that timed out or was refused: `read udp …->10.96.0.10:53: i/o timeout`.
static DNS_SERVER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)udp [^ ]*->[^ ]*:53: (?:i/o timeout|read: connection refused)")
        .expect("static regex")
});

const UNREACHABLE: [&str; 33] = [
    "connection refused",
    "econnrefused",
    "connect timeout",
    "connect timed out",
    "connection timed out",
    "etimedout",
    "no route to host",
    "ehostunreach",
    "could not connect to",
    "couldn't connect to",
    "can't connect to",
    "failed to connect to",
    "unable to connect to",
    "connection reset by peer",
    "econnreset",
    "socket hang up",
    "no available connection",
    "i/o timeout",
    "cannot be established",
    "broker may not be available",
    "no healthy upstream",
    "no live upstreams",
    "upstream connect error",
    "no instances available",
    "no servers available for service",
    "does not have available server",
    "has no server available",
    "layer4 timeout",
    "layer4 connection problem",
    "actively refused",
    "did not properly respond after a period of time",
    "tls handshake timeout",
    "transport is closing",
];

/// gRPC's UNAVAILABLE, by name or code.
static GRPC_UNAVAILABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)code = (?:unavailable|14)\b|\bUNAVAILABLE: |connection is unavailable")
        .expect("static regex")
});

const CONFIG: [&str; 26] = [
    "is not set",
    "not found in configmap",
    "couldn't find key",
    "references non-existent config key",
    "executable file not found",
    "missing required",
    "invalid configuration",
    "no such file or directory",
    "permission denied",
    "eacces",
    "not found in secret",
    "improperlyconfigured",
    "could not resolve placeholder",
    "failed to bind properties",
    "failed to configure a datasource",
    "environment variable not set",
    "environment variable must be set",
    "must be set: notpresent",
    "configfilenotfounderror",
    "can't open config file",
    "config file error",
    "unsupported config type",
    "bad directive",
    "must not be empty",
    "variable is not set",
    "the environment variable",
];

/// Kubernetes naming a Secret or ConfigMap that is not there: `secret "db-creds" not found`,
/// `configmaps "nginx-template" not found`; a config file not found (`Config File "x" Not Found`);
/// Python's `KeyError` on an environment-style name (`KeyError: 'DATABASE_URL'`).
static CONFIG_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(?:secrets?|configmaps?) "[^"]+" not found|config file "[^"]*" not found|KeyError: '[A-Z][A-Z0-9_]+'"#,
    )
    .expect("static regex")
});

static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:dial tcp|connect(?:ing)? to|could not connect to|couldn't connect to|econnrefused|etimedout|connection to|lookup)(?: server)?(?: at)? "?\[?([A-Za-z0-9][A-Za-z0-9._-]*)\]?(?::\d{1,5})?"?"#,
    )
    .expect("static regex")
});

/// Classifies a message; `None` when it names none of these causes. A failed lookup is DNS even
/// when it also says "i/o timeout".
pub fn classify(message: &str) -> Option<Cause> {
    if message.trim().is_empty() {
        return None;
    }
    let lower = message.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    // Before the network words: a TLS error is often wrapped in a failed connect.
    if has(&CERTIFICATE) {
        let host = URL_HOST
            .captures(message)
            .map(|c| c[1].to_string())
            .or_else(|| HOST.captures(message).map(|c| c[1].to_string()));
        return Some(Cause::Certificate { host });
    }
    if has(&DNS)
        || (lower.contains("lookup ") && lower.contains(":53"))
        || DNS_CODE.is_match(message)
        || DNS_SERVER.is_match(message)
    {
        return Some(Cause::Dns);
    }
    if has(&UNREACHABLE) || GRPC_UNAVAILABLE.is_match(message) {
        // Of the hosts the text names, the one with a port or a dot (`dial tcp 10.96.12.7:5432`)
        // beats a bare word (`could not connect to database`).
        let hosts: Vec<(String, bool)> = HOST
            .captures_iter(message)
            .map(|c| {
                (
                    c[1].trim_end_matches(['.', ':']).to_string(),
                    c[0].contains(':') || c[1].contains('.'),
                )
            })
            .filter(|(h, _)| !["db", "server", "the", "database"].contains(&h.as_str()))
            .collect();
        let host = hosts
            .iter()
            .find(|(_, qualified)| *qualified)
            .or(hosts.first())
            .map(|(h, _)| h.clone());
        return Some(Cause::Unreachable { host });
    }
    // `no such file` is configuration only when it is about a file the app reads, not a socket.
    if (has(&CONFIG) || CONFIG_RE.is_match(message)) && !lower.contains(".sock") {
        return Some(Cause::Config);
    }
    None
}

/// Whether a line is worth quoting although it names no cause: a panic, an uncaught exception or
/// a stack trace's head, a runtime out of memory, a fatal error.
pub fn notable(message: &str) -> bool {
    const WORDS: [&str; 12] = [
        "panic:",
        "panicked at",
        "exception",
        "traceback (most recent call last)",
        "outofmemoryerror",
        "runtime: out of memory",
        "fatal error",
        "fatal:",
        "segmentation fault",
        "unhandled",
        "uncaught",
        "caused by:",
    ];
    let lower = message.to_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

/// A structured (JSON) log line as a person reads it: its message (`msg`, `message`, `error`,
/// `err`), else the line as it is.
pub fn readable(line: &str) -> std::borrow::Cow<'_, str> {
    let t = line.trim();
    if !t.starts_with('{') {
        return match logfmt_message(t) {
            Some(m) => std::borrow::Cow::Owned(m),
            None => std::borrow::Cow::Borrowed(line),
        };
    }
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(t) else {
        return std::borrow::Cow::Borrowed(line);
    };
    let parts: Vec<&str> = ["msg", "message", "error", "err"]
        .iter()
        .filter_map(|k| m.get(*k).and_then(|v| v.as_str()))
        .collect();
    if parts.is_empty() {
        std::borrow::Cow::Borrowed(line)
    } else {
        std::borrow::Cow::Owned(parts.join(": "))
    }
}

/// A logfmt line's (`level=error msg="…" err="…"`, as Go's slog, logrus and Prometheus write
/// them) message and error fields, joined; `None` when the line is not logfmt or has neither.
fn logfmt_message(line: &str) -> Option<String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let eq = rest.find('=')?;
        let key = &rest[..eq];
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        rest = &rest[eq + 1..];
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            rest = &quoted[end? + 1..];
            out
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let v = rest[..end].to_string();
            rest = &rest[end..];
            v
        };
        fields.push((key.to_string(), value));
    }
    let parts: Vec<&str> = ["msg", "message", "error", "err"]
        .iter()
        .filter_map(|k| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str()))
        .filter(|v| !v.is_empty())
        .collect();
    (fields.len() >= 2 && !parts.is_empty()).then(|| parts.join(": "))
}

/// The line of a (possibly multi-line) message that says the most, cut to 200 characters.
pub fn first_line(message: &str) -> std::borrow::Cow<'_, str> {
    let lines = || message.lines().map(str::trim).filter(|l| !l.is_empty());
    let traceback = lines()
        .next()
        .is_some_and(|l| l.starts_with("Traceback (most recent call last)"));
    let best = lines()
        .find(|l| classify(l).is_some())
        // A Python traceback ends with what was raised; a Go panic, a Java or .NET exception,
        // an `Error:` says it on its own line.
        .or_else(|| traceback.then(|| lines().next_back()).flatten())
        .or_else(|| lines().find(|l| decisive(l)))
        .or_else(|| lines().next())
        .unwrap_or("");
    shorten(best, 200)
}

/// Whether a line is the one that says why a program died.
fn decisive(l: &str) -> bool {
    l.starts_with("panic:")
        || l.starts_with("fatal error:")
        || l.starts_with("Error:")
        || l.starts_with("FATAL")
        || l.starts_with("Exception in thread")
        || l.starts_with("Unhandled exception")
        || l.split_once(':').is_some_and(|(head, _)| {
            !head.contains(' ')
                && (head.ends_with("Error") || head.ends_with("Exception"))
                && head.chars().next().is_some_and(char::is_alphabetic)
        })
}

/// At most `max` characters, cut at a word boundary with "…".
pub fn shorten(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(s),
        Some((i, _)) => {
            let cut = s[..i].rfind(' ').filter(|&j| j > i / 2).unwrap_or(i);
            std::borrow::Cow::Owned(format!("{}…", s[..cut].trim_end()))
        }
    }
}

#[cfg(test)]
mod tests {
    /// The cause classes of `tests/corpus/messages.tsv`, as the classifier names them.
    fn class_of(line: &str) -> &'static str {
        match classify(&readable(line)) {
            Some(Cause::Dns) => "dns",
            Some(Cause::Unreachable { .. }) => "unreachable",
            Some(Cause::Config) => "config",
            Some(Cause::Certificate { .. }) => "certificate",
            None => "none",
        }
    }

    const CLASSES: [&str; 4] = ["dns", "unreachable", "certificate", "config"];

    /// (label, line, what the rules read) of a corpus file.
    fn read_corpus(corpus: &'static str) -> Vec<(&'static str, &'static str, &'static str)> {
        let mut rows = Vec::new();
        for (i, l) in corpus.lines().enumerate() {
            if l.starts_with('#') || l.trim().is_empty() {
                continue;
            }
            let mut f = l.splitn(3, '\t');
            let (Some(label), Some(source), Some(line)) = (f.next(), f.next(), f.next()) else {
                panic!("corpus line {}: not class<TAB>source<TAB>line", i + 1);
            };
            assert!(
                CLASSES.contains(&label) || label == "none",
                "line {}: unknown class {label}",
                i + 1
            );
            assert!(!source.is_empty(), "line {}: no source", i + 1);
            rows.push((label, line, class_of(line)));
        }
        rows
    }

    /// The precision/recall table of a corpus, and the classes below 95 % / 90 %.
    fn measure(rows: &[(&str, &str, &str)]) -> (String, Vec<String>) {
        let mut table =
            String::from("| class | lines | precision | recall |\n|---|---:|---:|---:|\n");
        let mut failing = Vec::new();
        for class in CLASSES {
            let tp = rows
                .iter()
                .filter(|(l, _, g)| *l == class && *g == class)
                .count();
            let fp = rows
                .iter()
                .filter(|(l, _, g)| *l != class && *g == class)
                .count();
            let fne = rows
                .iter()
                .filter(|(l, _, g)| *l == class && *g != class)
                .count();
            let precision = 100.0 * tp as f64 / (tp + fp).max(1) as f64;
            let recall = 100.0 * tp as f64 / (tp + fne).max(1) as f64;
            table.push_str(&format!(
                "| {class} | {} | {precision:.1} % | {recall:.1} % |\n",
                tp + fne
            ));
            if precision < 95.0 || recall < 90.0 {
                failing.push(format!(
                    "{class}: precision {precision:.1} %, recall {recall:.1} %"
                ));
            }
        }
        let none = rows.iter().filter(|(l, _, _)| *l == "none").count();
        table.push_str(&format!(
            "| none (near misses and other errors) | {none} | | |\n"
        ));
        eprintln!("{table}");
        for (label, line, got) in rows {
            if label != got {
                eprintln!("labelled {label}, read {got}: {line}");
            }
        }
        (table, failing)
    }

    /// Precision and recall per class over the labelled corpus of real lines the rules were
    /// written from: the table `docs/messages.md` shows, which this test prints and keeps true.
    #[test]
    fn the_labelled_corpus_of_real_lines_is_read_with_the_precision_and_recall_the_docs_state() {
        let rows = read_corpus(include_str!("../../../tests/corpus/messages.tsv"));
        assert!(rows.len() >= 300, "{} lines", rows.len());
        let (table, failing) = measure(&rows);
        assert!(
            failing.is_empty(),
            "below 95 % precision or 90 % recall: {failing:?}"
        );
        let docs = include_str!("../../../docs/messages.md");
        assert!(
            docs.contains(&table),
            "docs/messages.md does not show the measured table; it is now:\n{table}"
        );
    }

    /// The same over lines gathered separately and never used to write the rules: what to expect
    /// of wordings tapio has not seen. The docs show its figures as they are; this test keeps them
    /// true.
    #[test]
    fn a_held_out_corpus_measures_the_rules_on_lines_they_were_not_written_from() {
        let rows = read_corpus(include_str!("../../../tests/corpus/holdout.tsv"));
        assert!(rows.len() >= 150, "{} lines", rows.len());
        let (table, _) = measure(&rows);
        let docs = include_str!("../../../docs/messages.md");
        assert!(
            docs.contains(&table),
            "docs/messages.md does not show the held-out table; it is now:\n{table}"
        );
    }

    #[test]
    fn logfmt_lines_read_by_their_message_and_error() {
        let l = r#"time=2026-03-14T10:00:05Z level=error msg="could not reach the ledger" err="dial tcp 10.20.0.40:3333: connect: connection refused" attempt=3"#;
        assert_eq!(
            readable(l),
            "could not reach the ledger: dial tcp 10.20.0.40:3333: connect: connection refused"
        );
        assert!(matches!(
            classify(&readable(l)),
            Some(Cause::Unreachable { .. })
        ));
        let escaped = r#"level=warn msg="config \"app.yaml\" not loaded""#;
        assert_eq!(readable(escaped), r#"config "app.yaml" not loaded"#);
        // Not logfmt: left as it is.
        for plain in [
            "ERROR: relation \"x\" does not exist",
            "a=b is what it says",
            "2026-03-14 10:00:05 error happened",
        ] {
            assert_eq!(readable(plain), plain);
        }
    }

    #[test]
    fn expired_certificates_as_each_runtime_says_it() {
        let said = [
            // Go (crypto/tls, 1.20+), Python ssl / requests, Node, Java (PKIX), .NET, curl, OpenSSL.
            r#"Get "https://api.example.com/v1": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-03-14T10:00:12Z is after 2026-03-14T00:00:00Z"#,
            "requests.exceptions.SSLError: HTTPSConnectionPool(host='api.example.com', port=443): Max retries exceeded with url: / (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)')))",
            "Error: certificate has expired\n    at TLSSocket.onConnectSecure (node:_tls_wrap:1674:34) { code: 'CERT_HAS_EXPIRED' }",
            "javax.net.ssl.SSLHandshakeException: PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check failed",
            "System.Security.Authentication.AuthenticationException: The remote certificate is invalid because of errors in the certificate chain: NotTimeValid",
            "curl: (60) SSL certificate problem: certificate has expired",
        ];
        for s in said {
            assert!(
                matches!(classify(s), Some(Cause::Certificate { .. })),
                "{s}"
            );
        }
        assert_eq!(
            classify(said[0]),
            Some(Cause::Certificate {
                host: Some("api.example.com".into())
            })
        );
        assert!(matches!(
            classify("dial tcp 10.96.0.12:8080: connect: connection refused"),
            Some(Cause::Unreachable { .. })
        ));
    }

    #[test]
    fn the_decisive_line_is_quoted_shortened_at_a_word() {
        let py = "Traceback (most recent call last):\n  File \"/app/r.py\", line 4, in <module>\n    main()\nValueError: time data 'x' does not match format '%Y'";
        assert_eq!(
            first_line(py),
            "ValueError: time data 'x' does not match format '%Y'"
        );
        let go = "goroutine 1 [running]:\npanic: runtime error: index out of range [3] with length 3\n\nmain.main()";
        assert_eq!(
            first_line(go),
            "panic: runtime error: index out of range [3] with length 3"
        );
        let java = "at com.shop.Cart.load(Cart.java:42)\njava.lang.IllegalStateException: cart store not initialised";
        assert_eq!(
            first_line(java),
            "java.lang.IllegalStateException: cart store not initialised"
        );
        let long = "word ".repeat(60);
        let cut = first_line(&long);
        assert!(
            cut.ends_with("word…") && cut.chars().count() <= 201,
            "{cut}"
        );
    }

    use super::*;

    #[test]
    fn field_guide_texts_are_classified() {
        let unreachable = |h: &str| {
            Some(Cause::Unreachable {
                host: Some(h.to_string()),
            })
        };
        assert_eq!(
            classify("dial tcp 10.96.12.7:5432: connect: connection refused"),
            unreachable("10.96.12.7")
        );
        assert_eq!(
            classify("Error: connect ECONNREFUSED 10.96.0.15:6379"),
            unreachable("10.96.0.15")
        );
        assert_eq!(
            classify("could not connect to hana: connection to db cannot be established: -10709: Connect failed (connect timeout expired)"),
            unreachable("hana")
        );
        assert_eq!(
            classify(
                "dial tcp: lookup orders.shop.svc.cluster.local on 10.96.0.10:53: no such host"
            ),
            Some(Cause::Dns)
        );
        assert_eq!(classify("getaddrinfo ENOTFOUND redis"), Some(Cause::Dns));
        assert_eq!(
            classify("dial tcp: lookup db on 10.96.0.10:53: read udp: i/o timeout"),
            Some(Cause::Dns)
        );
        assert_eq!(
            classify("environment variable APP_MODE is not set"),
            Some(Cause::Config)
        );
        assert_eq!(
            classify("couldn't find key DB_URL in ConfigMap shop/app-config"),
            Some(Cause::Config)
        );
        assert_eq!(
            classify("secret \"db-creds\" not found"),
            Some(Cause::Config)
        );
        assert_eq!(
            classify("Exception in thread main java.lang.NullPointerException"),
            None
        );
        assert_eq!(
            first_line("boom\n  at x\nError: connect ECONNREFUSED 10.0.0.1:80\n"),
            "Error: connect ECONNREFUSED 10.0.0.1:80"
        );
    }
}
