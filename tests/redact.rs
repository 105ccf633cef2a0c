//! Secrets kept out of captures: `import` (and `record`, through the same redactor) replace them by
//! default, `--no-redact` keeps them, `info` counts them, and `tapio redact` makes a copy to share —
//! with `--names`, one whose verdicts are the originals' with the names mapped.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::support::recorder::{events_of, json_of, tapio};

fn info(capture: &Path) -> Value {
    json_of(&["info"], capture)
}

fn replay(capture: &Path) -> Value {
    json_of(&["replay"], capture)
}

/// Inputs with one secret of each kind that import sees.
fn secret_inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "cart-0", "namespace": "shop", "uid": "u-1",
            "creationTimestamp": "2026-03-14T10:00:00Z"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "cart", "image": "cart:1",
            "args": ["--db-url=postgres://cart:hunter2@db:5432/cart"],
            "env": [{"name": "DB_PASSWORD", "value": "hunter2"}, {"name": "DB_HOST", "value": "db"}]}],
            "volumes": [{"name": "creds", "secret": {"secretName": "db-creds"}}]},
        "status": {"phase": "Running"}
    });
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db-creds", "namespace": "shop", "uid": "u-2",
            "creationTimestamp": "2026-03-14T10:00:00Z"},
        "data": {"password": "aHVudGVyMg=="}
    });
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [pod, secret]});
    let objects = dir.join("objects.json");
    std::fs::write(&objects, list.to_string()).unwrap();
    let log = dir.join("cart.log");
    std::fs::write(
        &log,
        "2026-03-14T10:00:01.000000000Z stdout F calling payments with Authorization: Bearer sk.abcdef123456\n\
         2026-03-14T10:00:02.000000000Z stderr F aws key AKIAIOSFODNN7EXAMPLE rejected\n\
         2026-03-14T10:00:03.000000000Z stdout F checkout ok\n",
    )
    .unwrap();
    vec![objects, log]
}

#[test]
fn import_replaces_secrets_and_no_redact_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = secret_inputs(dir.path());
    let redacted = dir.path().join("redacted.tapio");
    let kept = dir.path().join("kept.tapio");
    for (out, extra) in [(&redacted, None), (&kept, Some("--no-redact"))] {
        let o = tapio()
            .args(["import", "--pod", "shop/cart-0", "-o"])
            .arg(out)
            .args(extra)
            .args(&inputs)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let all = |p: &Path| serde_json::to_string(&events_of(p)).unwrap();
    let text = all(&redacted);
    for secret in [
        "hunter2",
        "aHVudGVyMg==",
        "sk.abcdef123456",
        "AKIAIOSFODNN7EXAMPLE",
    ] {
        assert!(!text.contains(secret), "{secret} is still in the capture");
    }
    // What the verdicts read is kept: the Secret's name, its keys, the non-secret values.
    for kept_word in [
        "db-creds",
        "DB_HOST",
        "checkout ok",
        "Authorization: Bearer",
    ] {
        assert!(text.contains(kept_word), "{kept_word} is gone");
    }
    let v = info(&redacted);
    assert_eq!(v["redaction"], "on");
    let counts = &v["redacted"];
    assert_eq!(counts["bearer"], 1, "{counts}");
    assert_eq!(counts["cloud-key"], 1, "{counts}");
    assert_eq!(counts["env"], 1, "{counts}");
    assert_eq!(counts["url-password"], 1, "{counts}");
    let secret_values = counts["secret"].as_u64().unwrap_or(0);
    assert!(
        secret_values >= 1 || !text.contains("password\":\""),
        "the Secret's value is replaced or not kept at all: {counts}"
    );

    let v = info(&kept);
    assert_eq!(v["redaction"], "off");
    let text = all(&kept);
    assert!(text.contains("hunter2") && text.contains("AKIAIOSFODNN7EXAMPLE"));

    // `tapio redact` of the capture that kept them replaces them.
    let shared = dir.path().join("shared.tapio");
    let o = tapio()
        .arg("redact")
        .arg(&kept)
        .arg("-o")
        .arg(&shared)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = all(&shared);
    assert!(!text.contains("hunter2") && !text.contains("AKIAIOSFODNN7EXAMPLE"));
    assert_eq!(info(&shared)["redaction"], "on");
    let o = tapio()
        .arg("redact")
        .arg(&kept)
        .arg("-o")
        .arg(&kept)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "writing over the input is refused"
    );
}

/// Maps a verdict's entity (`pod/shop/cart-0`) through the table of pseudonyms.
fn mapped(entity: &str, names: &BTreeMap<String, String>) -> String {
    entity
        .split('/')
        .map(|part| names.get(part).cloned().unwrap_or_else(|| part.to_string()))
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_fixture_with_names_replaced_gives_its_verdict_with_the_names_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut fixtures: Vec<_> = std::fs::read_dir(root.join("fixtures/incidents"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 33);
    let keys = regex::Regex::new(r#""key":"[^"]*""#).unwrap();
    for fixture in fixtures {
        let name = fixture.file_name().unwrap().to_string_lossy().to_string();
        let capture = fixture.join("capture.tapio");
        let out = dir.path().join(format!("{name}.tapio"));
        let map = dir.path().join(format!("{name}.map.json"));
        let o = tapio()
            .arg("redact")
            .arg(&capture)
            .args(["--names", "--map"])
            .arg(&map)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let table: Value = serde_json::from_str(&std::fs::read_to_string(&map).unwrap()).unwrap();
        let names: BTreeMap<String, String> =
            serde_json::from_value(table["names"].clone()).unwrap();

        let before = replay(&capture);
        let after = replay(&out);
        let (b, a) = (
            before["incidents"].as_array().unwrap(),
            after["incidents"].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{name}: as many incidents");
        for (b, a) in b.iter().zip(a) {
            for field in ["severity", "confidence"] {
                assert_eq!(a[field], b[field], "{name}: {field}");
            }
            assert_eq!(a["root_cause"]["kind"], b["root_cause"]["kind"], "{name}");
            assert_eq!(
                a["root_cause"]["entity"].as_str().unwrap(),
                mapped(b["root_cause"]["entity"].as_str().unwrap(), &names),
                "{name}: the root cause's entity, mapped"
            );
            assert_eq!(
                a["chain"].as_array().map(Vec::len),
                b["chain"].as_array().map(Vec::len),
                "{name}: the chain"
            );
        }

        // No name of the table is left standing as a word in the copy (attribute keys are the
        // applications' schema, not names).
        let text = serde_json::to_string(&events_of(&out)).unwrap();
        let text = keys.replace_all(&text, "").into_owned();
        for real in names.keys().filter(|n| n.len() >= 4) {
            let re = regex::Regex::new(&format!(
                r"(^|[^A-Za-z0-9]){}($|[^A-Za-z0-9])",
                regex::escape(real)
            ))
            .unwrap();
            assert!(!re.is_match(&text), "{name}: {real:?} is still in the copy");
        }
    }
}
