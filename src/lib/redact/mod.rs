//! Keeping secrets out of captures.
//!
//! Captures travel (tickets, CI fixtures, vendors), so by default `record` and `import` never keep
//! a secret, and `tapio redact` applies the same to a capture made with `--no-redact` or by an
//! older tapio. What is replaced, each by `[REDACTED:<kind>]`:
//!
//! | kind | what |
//! |---|---|
//! | `secret` | the values of a Secret object's `data` and `stringData` |
//! | `env` | the values of environment variables whose names say secret (see [`secret_name`]) |
//! | `header` | `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie` and API-key headers in span and log attributes |
//! | `url-password` | the password of `scheme://user:password@host` |
//! | `bearer` | `Bearer <token>` |
//! | `jwt` | JSON Web Tokens (`eyJ….eyJ….…`) |
//! | `cloud-key` | AWS access key ids, Google API keys, GitHub, GitLab, Slack and Stripe tokens |
//! | `private-key` | PEM private-key blocks |
//! | `password` | the value of `password=…`, `"token": "…"`, `api_key: …` and the like |
//!
//! Log lines, messages, span names and events, attribute values and every string of a Kubernetes
//! object (its `last-applied-configuration` annotation included) are searched. Names that refer
//! to a secret (`secretName`, `secretKeyRef`, `tokenPath`) are not secrets and are kept: the
//! verdicts that need them (a missing Secret) still come.
//!
//! [`names`] goes further for a capture that leaves the company: stable pseudonyms for names and
//! addresses.

pub mod names;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::event::{AttrValue, Attribute, Body, Event, Kube, Name, RawJson};

/// The kinds of secret replaced, as `[REDACTED:<kind>]` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Secret,
    Env,
    Header,
    UrlPassword,
    Bearer,
    Jwt,
    CloudKey,
    PrivateKey,
    Password,
}

named!(Kind, "redaction kind" {
    Secret => "secret",
    Env => "env",
    Header => "header",
    UrlPassword => "url-password",
    Bearer => "bearer",
    Jwt => "jwt",
    CloudKey => "cloud-key",
    PrivateKey => "private-key",
    Password => "password",
});

impl Kind {
    /// What replaces a secret of this kind.
    pub fn marker(self) -> &'static str {
        match self {
            Kind::Secret => "[REDACTED:secret]",
            Kind::Env => "[REDACTED:env]",
            Kind::Header => "[REDACTED:header]",
            Kind::UrlPassword => "[REDACTED:url-password]",
            Kind::Bearer => "[REDACTED:bearer]",
            Kind::Jwt => "[REDACTED:jwt]",
            Kind::CloudKey => "[REDACTED:cloud-key]",
            Kind::PrivateKey => "[REDACTED:private-key]",
            Kind::Password => "[REDACTED:password]",
        }
    }
}

/// How many secrets of each kind were replaced.
pub type Counts = BTreeMap<Kind, u64>;

/// The words that make an environment variable's (or a key's) name say secret, compared with each
/// part of the name split at `_`, `-` and `.` (case-insensitive); a part that ends with one of the
/// first six (`DBPASSWORD`, `GITHUBTOKEN`) counts too. `PWD` alone is the working directory.
pub const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "SECRETS",
    "TOKENS",
    "PASS",
    "PASSPHRASE",
    "KEY",
    "KEYS",
    "CREDS",
    "AUTH",
    "PRIVATE",
    "DSN",
    "SALT",
    "COOKIE",
];

/// Whether a variable or key name says its value is secret (`DB_PASSWORD`, `GITHUB_TOKEN`,
/// `aws_secret_access_key`, `api-key`), per [`SECRET_WORDS`]. Names of references to a secret
/// (`…_FILE`, `…_PATH`, `…_NAME`, `…Ref`) are not.
pub fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let parts: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|p| !p.is_empty())
        .collect();
    let reference = [
        "FILE", "PATH", "NAME", "REF", "DIR", "ID", "TYPE", "LENGTH", "TTL",
    ];
    if parts.last().is_some_and(|l| reference.contains(l))
        || upper.ends_with("REF")
        || upper.ends_with("NAME")
    {
        return false;
    }
    parts.iter().any(|p| {
        SECRET_WORDS.contains(p) || SECRET_WORDS[..6].iter().any(|w| p.ends_with(w) && p != w)
    })
}

/// Attribute keys whose values are credentials: HTTP headers as OpenTelemetry records them
/// (`http.request.header.authorization`) and the like.
fn secret_header(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const HEADERS: [&str; 8] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-amz-security-token",
    ];
    HEADERS
        .iter()
        .any(|h| k == *h || k.ends_with(&format!(".{h}")) || k.ends_with(&format!("_{h}")))
}

/// A cheap first look: text without any of these cannot hold a secret the patterns find.
static TRIGGER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)bearer|eyJ|AKIA|ASIA|AIza|gh[pousr]_|github_pat_|glpat-|xox[baprs]-|[sr]k_live_|-----BEGIN|://[^\s/@]*:|pass|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization|cookie|salt",
    )
    .expect("the trigger pattern")
});

struct Pattern {
    kind: Kind,
    re: Regex,
    /// Keeps the capture groups before the secret (the key, the scheme and user).
    keep: &'static str,
    /// Put back after the marker (the `@` of a URL).
    after: &'static str,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |kind, re: &str, keep| Pattern {
        kind,
        re: Regex::new(re).expect("a redaction pattern"),
        keep,
        after: if kind == Kind::UrlPassword { "@" } else { "" },
    };
    vec![
        p(
            Kind::PrivateKey,
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\z)",
            "",
        ),
        p(
            Kind::Jwt,
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
            "",
        ),
        p(
            Kind::CloudKey,
            r"\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}|xox[baprs]-[A-Za-z0-9-]{10,}|[sr]k_live_[A-Za-z0-9]{16,})\b",
            "",
        ),
        p(
            Kind::Bearer,
            r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/-]{8,}=*",
            "${1}",
        ),
        p(
            Kind::UrlPassword,
            r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@\[\]]*:)[^\s/?#@\[\]]+@",
            "${1}",
        ),
        p(
            Kind::Password,
            r#"(?i)(\b[a-z0-9_.-]*(?:passwd|password|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|authorization|cookie|salt)[a-z0-9_.-]*)(["']?[ \t]*[:=][ \t]*["']?)((?:(?:basic|bearer|digest|token|negotiate)[ \t]+)?[^\s"',;&{}\[\]]+)"#,
            "${1}${2}",
        ),
    ]
});

/// Replaces the secrets in a text; `None` when there is none. Counts what it replaced.
pub fn text(s: &str, counts: &mut Counts) -> Option<String> {
    if !TRIGGER.is_match(s) {
        return None;
    }
    let mut out: Option<String> = None;
    for p in PATTERNS.iter() {
        let cur = out.as_deref().unwrap_or(s);
        if !p.re.is_match(cur) {
            continue;
        }
        let mut n = 0u64;
        let replaced = p.re.replace_all(cur, |c: &Captures| {
            let whole = &c[0];
            if p.kind == Kind::Password {
                let key = &c[1];
                let value = &c[3];
                // `secretName: db-creds`, `tokenPath=/var/run/…`, a value already replaced, or no
                // value at all: references and markers, not secrets.
                if !secret_name(key) && !key_says_secret(key)
                    || value.starts_with("[REDACTED")
                    || !value.chars().any(|c| c.is_ascii_alphanumeric())
                    || value.starts_with(['$', '%', ':', '<', '@'])
                    || ["basic", "bearer", "digest", "token", "negotiate"]
                        .iter()
                        .any(|w| value.eq_ignore_ascii_case(w))
                    || value.eq_ignore_ascii_case("null")
                    || value.eq_ignore_ascii_case("none")
                {
                    return whole.to_string();
                }
            }
            n += 1;
            let mut keep = String::new();
            c.expand(p.keep, &mut keep);
            keep.push_str(p.kind.marker());
            keep.push_str(p.after);
            keep
        });
        if n > 0 {
            *counts.entry(p.kind).or_default() += n;
            out = Some(replaced.into_owned());
        }
    }
    out
}

/// Keys of `key=value` text that say secret besides [`secret_name`]'s (`password`, `pwd`, `token`
/// in free text), unless they name a reference.
fn key_says_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let reference = [
        "name", "ref", "file", "path", "dir", "id", "type", "length", "ttl", "count", "expir",
        "url", "endpoint", "kind", "s_total",
    ];
    if reference.iter().any(|r| k.ends_with(r)) {
        return false;
    }
    [
        "passwd",
        "password",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "authorization",
        "cookie",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Replaces secrets in events before they are kept.
#[derive(Debug, Default)]
pub struct Redactor {
    counts: Counts,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// What was replaced so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Replaces the secrets of one event in place.
    pub fn event(&mut self, e: &mut Event) {
        let c = &mut self.counts;
        match &mut e.body {
            Body::Kernel(_) | Body::Meta(_) => {}
            Body::Log(l) => redact_string(&mut l.body, c),
            Body::AppLog(a) => {
                redact_string(&mut a.log.body, c);
                attributes(&mut a.attributes, c);
                attributes(&mut a.resource, c);
            }
            Body::Span(s) => {
                redact_name(&mut s.name, c);
                redact_string(&mut s.status_message, c);
                attributes(&mut s.attributes, c);
                attributes(&mut s.resource, c);
                for ev in &mut s.events {
                    redact_string(&mut ev.name, c);
                    attributes(&mut ev.attributes, c);
                }
            }
            Body::Kube(Kube::Event(k)) => redact_string(&mut k.message, c),
            Body::Kube(Kube::Object(o)) => {
                let secret = o.kind.as_str() == "Secret";
                if let Some(json) = object_json(&o.json, secret, c) {
                    o.json = json;
                }
            }
        }
    }
}

fn redact_string(s: &mut String, c: &mut Counts) {
    if let Some(r) = text(s, c) {
        *s = r;
    }
}

fn redact_name(s: &mut Name, c: &mut Counts) {
    if let Some(r) = text(s, c) {
        *s = r.into();
    }
}

fn attributes(attrs: &mut [Attribute], c: &mut Counts) {
    for a in attrs {
        if secret_header(&a.key) {
            if !matches!(&a.value, AttrValue::Str(s) if s.starts_with("[REDACTED")) {
                a.value = AttrValue::Str(Kind::Header.marker().into());
                *c.entry(Kind::Header).or_default() += 1;
            }
            continue;
        }
        attr_value(&mut a.value, c);
    }
}

fn attr_value(v: &mut AttrValue, c: &mut Counts) {
    match v {
        AttrValue::Str(s) => redact_name(s, c),
        AttrValue::Array(items) => items.iter_mut().for_each(|i| attr_value(i, c)),
        _ => {}
    }
}

/// A Kubernetes object's JSON with its secrets replaced; `None` when it holds none.
fn object_json(json: &RawJson, secret: bool, c: &mut Counts) -> Option<RawJson> {
    if !secret && !TRIGGER.is_match(&json.0) {
        return None;
    }
    let mut v = json.parse().ok()?;
    let before = c.values().sum::<u64>();
    value(&mut v, secret, c);
    (c.values().sum::<u64>() > before).then(|| RawJson::from_value(&v))
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Walks a Kubernetes object: Secret data, secret environment values, the last-applied
/// configuration (itself an object), and every string.
fn value(v: &mut serde_json::Value, secret: bool, c: &mut Counts) {
    use serde_json::Value;
    match v {
        Value::String(s) => redact_string(s, c),
        Value::Array(items) => items.iter_mut().for_each(|i| value(i, secret, c)),
        Value::Object(map) => {
            // An environment variable: `{"name": "DB_PASSWORD", "value": "…"}`.
            let env_secret = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(secret_name);
            let is_secret = secret
                || map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k == "Secret");
            for (k, item) in map.iter_mut() {
                match (k.as_str(), item) {
                    ("value", Value::String(s)) if env_secret => {
                        if !s.starts_with("[REDACTED") {
                            *s = Kind::Env.marker().into();
                            *c.entry(Kind::Env).or_default() += 1;
                        }
                    }
                    ("data" | "stringData", Value::Object(data)) if is_secret => {
                        for d in data.values_mut() {
                            if d.as_str().is_some_and(|s| !s.starts_with("[REDACTED")) {
                                *d = Value::String(Kind::Secret.marker().into());
                                *c.entry(Kind::Secret).or_default() += 1;
                            }
                        }
                    }
                    (LAST_APPLIED, Value::String(s)) => match serde_json::from_str::<Value>(s) {
                        Ok(mut inner) => {
                            let before = c.values().sum::<u64>();
                            value(&mut inner, false, c);
                            if c.values().sum::<u64>() > before {
                                *s = inner.to_string();
                            }
                        }
                        Err(_) => redact_string(s, c),
                    },
                    (_, item) => value(item, false, c),
                }
            }
        }
        _ => {}
    }
}

/// Counts the `[REDACTED:<kind>]` markers of an event (for a capture's statistics).
pub fn count_event(e: &Event, counts: &mut BTreeMap<String, u64>) {
    fn attrs(a: &[Attribute], counts: &mut BTreeMap<String, u64>) {
        for a in a {
            attr(&a.value, counts);
        }
    }
    fn attr(v: &AttrValue, counts: &mut BTreeMap<String, u64>) {
        match v {
            AttrValue::Str(s) => count_markers(s, counts),
            AttrValue::Array(items) => items.iter().for_each(|i| attr(i, counts)),
            _ => {}
        }
    }
    match &e.body {
        Body::Kernel(_) | Body::Meta(_) => {}
        Body::Log(l) => count_markers(&l.body, counts),
        Body::AppLog(a) => {
            count_markers(&a.log.body, counts);
            attrs(&a.attributes, counts);
            attrs(&a.resource, counts);
        }
        Body::Span(s) => {
            count_markers(&s.name, counts);
            count_markers(&s.status_message, counts);
            attrs(&s.attributes, counts);
            attrs(&s.resource, counts);
            for ev in &s.events {
                count_markers(&ev.name, counts);
                attrs(&ev.attributes, counts);
            }
        }
        Body::Kube(Kube::Event(k)) => count_markers(&k.message, counts),
        Body::Kube(Kube::Object(o)) => count_markers(&o.json.0, counts),
    }
}

/// Counts the `[REDACTED:<kind>]` markers of a text (for a capture's statistics).
pub fn count_markers(s: &str, counts: &mut BTreeMap<String, u64>) {
    if !s.contains("[REDACTED:") {
        return;
    }
    let mut rest = s;
    while let Some(i) = rest.find("[REDACTED:") {
        rest = &rest[i + "[REDACTED:".len()..];
        if let Some(end) = rest.find(']') {
            let kind = &rest[..end];
            if Kind::parse_name(kind).is_ok() {
                *counts.entry(kind.to_string()).or_default() += 1;
            }
            rest = &rest[end..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        text(s, &mut Counts::new()).unwrap_or_else(|| s.to_string())
    }

    #[test]
    fn secrets_in_text_are_replaced_and_the_rest_is_kept() {
        assert_eq!(
            t("GET /api with Authorization: Bearer abc.def-123456789"),
            "GET /api with Authorization: Bearer [REDACTED:bearer]"
        );
        assert_eq!(
            t("connecting to postgres://app:hunter2@db.shop.svc:5432/orders"),
            "connecting to postgres://app:[REDACTED:url-password]@db.shop.svc:5432/orders"
        );
        assert_eq!(
            t("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U used"),
            "token [REDACTED:jwt] used"
        );
        assert_eq!(
            t("key AKIAIOSFODNN7EXAMPLE in env"),
            "key [REDACTED:cloud-key] in env"
        );
        assert_eq!(
            t("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nafter"),
            "[REDACTED:private-key]\nafter"
        );
        assert_eq!(
            t("login failed: password=hunter2 user=bob"),
            "login failed: password=[REDACTED:password] user=bob"
        );
        assert_eq!(
            t(r#"{"user":"bob","api_key":"s3cr3t"}"#),
            r#"{"user":"bob","api_key":"[REDACTED:password]"}"#
        );
        // What the verdicts read stays: references to secrets, plain words, and errors.
        for keep in [
            "MountVolume.SetUp failed for volume \"creds\" : secret \"db-creds\" not found",
            "secretName: db-creds",
            "invalid token",
            "connection refused to 10.0.0.7:5432",
            "tokenPath=/var/run/secrets/token",
            "SELECT * FROM auth.oauth_access_token WHERE oauth_token = ?;",
            "UPDATE users SET password = $1 WHERE id = $2",
            "password=%s",
            "Back-off restarting failed container cart in pod cart-7d4b9c-x2x4z",
            "http://cart.shop.svc:8080/cart",
        ] {
            assert_eq!(t(keep), keep, "{keep:?} is kept");
        }
    }

    #[test]
    fn secret_names_follow_the_documented_words() {
        for yes in [
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "aws_secret_access_key",
            "API_KEY",
            "api-key",
            "DBPASSWORD",
            "SENTRY_DSN",
            "STRIPE_SECRET",
            "OAUTH_CLIENT_SECRET",
            "SESSION_COOKIE_SALT",
        ] {
            assert!(secret_name(yes), "{yes}");
        }
        for no in [
            "PWD",
            "PATH",
            "HOME",
            "DB_HOST",
            "PASSWORD_FILE",
            "TOKEN_PATH",
            "SECRET_NAME",
            "KEYCLOAK_URL",
            "MONKEY",
            "LOG_LEVEL",
        ] {
            assert!(!secret_name(no), "{no}");
        }
    }

    #[test]
    fn a_pod_keeps_its_secret_references_and_loses_its_secret_values() {
        let pod = serde_json::json!({
            "kind": "Pod",
            "metadata": {"name": "cart-0", "annotations": {
                LAST_APPLIED: serde_json::json!({"spec": {"containers": [{"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}]}}).to_string()
            }},
            "spec": {"containers": [{"name": "cart", "args": ["--db-password=hunter2"], "env": [
                {"name": "DB_PASSWORD", "value": "hunter2"},
                {"name": "DB_HOST", "value": "db"},
                {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}
            ]}], "volumes": [{"name": "creds", "secret": {"secretName": "db-creds"}}]}
        });
        let mut c = Counts::new();
        let out = object_json(&RawJson::from_value(&pod), false, &mut c).unwrap();
        assert!(!out.0.contains("hunter2"), "{}", out.0);
        assert!(out.0.contains("db-creds") && out.0.contains("\"value\":\"db\""));
        assert!(out.0.contains("secretKeyRef"));
        assert_eq!(c[&Kind::Env], 2);
        assert_eq!(c[&Kind::Password], 1);
    }

    #[test]
    fn span_headers_and_markers_are_counted() {
        let mut r = Redactor::new();
        let mut span = crate::event::Span {
            trace_id: Default::default(),
            span_id: Default::default(),
            parent_span_id: None,
            name: String::new().into(),
            kind: crate::event::SpanKind::Server,
            start: crate::event::Ts(1),
            end: crate::event::Ts(2),
            status: crate::event::StatusCode::Unset,
            status_message: String::new(),
            service: "cart".into(),
            resource: Vec::new(),
            events: Vec::new(),
            attributes: vec![
                Attribute::new(
                    "http.request.header.authorization",
                    AttrValue::Str("Basic dXNlcjpwYXNz".into()),
                ),
                Attribute::new(
                    "http.request.header.cookie",
                    AttrValue::Array(vec![AttrValue::Str("sid=1".into())]),
                ),
                Attribute::new(
                    "url.full",
                    AttrValue::Str("https://u:p4ss@api.example.com/x".into()),
                ),
                Attribute::new("http.route", AttrValue::Str("/cart".into())),
            ],
        };
        span.name = "GET /cart".into();
        let mut e = Event::new(crate::event::Ts(1), "n", crate::event::Source::Otlp, span);
        r.event(&mut e);
        assert_eq!(r.counts()[&Kind::Header], 2);
        assert_eq!(r.counts()[&Kind::UrlPassword], 1);
        let json = serde_json::to_string(&e).unwrap();
        let mut markers = BTreeMap::new();
        count_markers(&json, &mut markers);
        assert_eq!(markers["header"], 2);
        assert!(json.contains("/cart"));
    }
}
