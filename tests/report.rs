//! `tapio report` over every incident fixture: the Markdown people paste into tickets is a
//! snapshot; the SVG is XML with one arrow a link of the chain; the HTML, opened by a real headless
//! Chromium with JavaScript on and off, draws (a screenshot of the size asked, not blank), has
//! those arrows too, resolves every link to the evidence, logs nothing to the console and asks
//! nothing of the network.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(root().join("fixtures/incidents"))
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|d| d.join("expected.json").exists())
        .map(|d| (d.file_name().unwrap().to_string_lossy().to_string(), d))
        .collect();
    out.sort();
    out
}

/// `tapio ARGS` from the repository's root: stdout, or a failure with stderr.
fn tapio(args: &[&str]) -> String {
    let out = Command::cargo_bin("tapio")
        .unwrap()
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tapio {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rel(dir: &Path) -> String {
    dir.strip_prefix(root()).unwrap().display().to_string()
}

/// The arrows each incident's picture must have: a link of a chain each, from the JSON verdict.
fn links_of(dir: &Path) -> Vec<usize> {
    let v: Value = serde_json::from_str(&tapio(&["replay", &rel(dir), "-o", "json"])).unwrap();
    let chain = |c: &Value| c.as_array().unwrap().len().saturating_sub(1);
    v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            chain(&i["chain"])
                + i["other_root_causes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| chain(&o["chain"]))
                    .sum::<usize>()
        })
        .collect()
}

/// A `<` that starts a tag outside code spans, not escaped.
fn raw_html(md: &str) -> Option<String> {
    for line in md.lines() {
        let mut in_code = false;
        let chars: Vec<char> = line.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            match c {
                '`' => in_code = !in_code,
                '<' if !in_code
                    && (i == 0 || chars[i - 1] != '\\')
                    && chars
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_alphabetic() || *n == '/' || *n == '!') =>
                {
                    return Some(line.to_string());
                }
                _ => {}
            }
        }
    }
    None
}

#[test]
fn the_markdown_of_every_fixture_reads_as_it_should() {
    let version = format!("tapio {}", env!("CARGO_PKG_VERSION"));
    for (name, dir) in fixtures() {
        let md = tapio(&["report", &rel(&dir), "--format", "markdown", "--all"]);
        // Everything a GitHub table row needs: as many cells as the header.
        for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
            let cells = |l: &str| l.replace("\\|", "").matches('|').count();
            let head = cells(table.lines().next().unwrap());
            for l in table.lines() {
                assert_eq!(cells(l), head, "{name}: a row with other cells: {l}");
            }
        }
        assert!(
            raw_html(&md).is_none(),
            "{name}: raw HTML: {:?}",
            raw_html(&md)
        );
        insta::assert_snapshot!(
            format!("report_markdown_{name}"),
            md.replace(&version, "tapio VERSION")
        );
    }
}

#[test]
fn the_svg_of_every_fixture_is_xml_with_an_arrow_a_link() {
    for (name, dir) in fixtures() {
        let svg = tapio(&["report", &rel(&dir), "--format", "svg", "--all"]);
        let mut reader = quick_xml::Reader::from_str(&svg);
        let mut depth = 0i64;
        let mut roots = 0;
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Start(e)) => {
                    if depth == 0 {
                        roots += 1;
                        assert_eq!(e.name().as_ref(), b"svg", "{name}");
                    }
                    depth += 1;
                }
                Ok(quick_xml::events::Event::End(_)) => depth -= 1,
                Ok(_) => {}
                Err(e) => panic!("{name}: not XML at byte {}: {e}", reader.buffer_position()),
            }
        }
        assert_eq!(
            (roots, depth),
            (1, 0),
            "{name}: one root, every element closed"
        );
        let links: usize = links_of(&dir).iter().sum();
        assert_eq!(
            svg.matches(r#"class="arrow""#).count(),
            links,
            "{name}: one arrow a link of the chains"
        );
    }
}

/// Debian's chromium, headless; `None` (and the reason printed) when it is not installed.
fn chromium(test: &str) -> Option<PathBuf> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Process::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(PathBuf::from(c));
        }
    }
    if std::env::var_os("TAPIO_REQUIRE_CHROMIUM").is_some() {
        panic!("{test}: chromium is not installed and TAPIO_REQUIRE_CHROMIUM is set");
    }
    eprintln!("skipped {test}: chromium is not installed (apt-get install chromium)");
    None
}

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 1400;

struct Browser {
    bin: PathBuf,
    /// A profile of its own; with JavaScript off, its preferences say so.
    profile: PathBuf,
}

impl Browser {
    fn new(bin: &Path, dir: &Path, javascript: bool) -> Browser {
        let profile = dir.join(if javascript { "js-on" } else { "js-off" });
        std::fs::create_dir_all(profile.join("Default")).unwrap();
        if !javascript {
            std::fs::write(
                profile.join("Default/Preferences"),
                r#"{"profile":{"default_content_setting_values":{"javascript":2}}}"#,
            )
            .unwrap();
        }
        Browser {
            bin: bin.to_path_buf(),
            profile,
        }
    }

    /// Runs chromium on a page; its stdout and stderr.
    fn run(&self, page: &Path, args: &[String]) -> (String, String) {
        let out = Process::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", self.profile.display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The page's own requests in a net log: those made for a `file://` page (chromium's own, for
/// updates and accounts, belong to no page).
fn page_requests(net_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log).unwrap();
    // A net log cut off at exit lacks its closing brackets.
    let v: Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .unwrap();
    let mut urls = Vec::new();
    for e in v["events"].as_array().unwrap() {
        let p = &e["params"];
        if let (Some(url), Some(key)) = (p["url"].as_str(), p["network_isolation_key"].as_str()) {
            if key.contains("file://") && !url.starts_with("file:") && !url.starts_with("data:") {
                urls.push(url.to_string());
            }
        }
    }
    urls
}

/// Whether a PNG is of the size asked and shows more than one colour over most of it.
fn check_screenshot(name: &str, png_path: &Path) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG of a sane size")];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.width, info.height),
        (WIDTH, HEIGHT),
        "{name}: screenshot size"
    );
    let px = info.color_type.samples();
    let bytes = &buf[..info.buffer_size()];
    let first = &bytes[..px];
    let other = bytes.chunks(px).filter(|p| *p != first).count();
    let total = bytes.len() / px;
    assert!(
        other * 400 > total,
        "{name}: the screenshot is nearly blank ({other} of {total} pixels differ from the first)"
    );
}

/// Every `href="#x"` of a DOM has an element `id="x"`.
fn unresolved_links(dom: &str) -> Vec<String> {
    let ids: std::collections::HashSet<&str> = dom
        .split(" id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    dom.split("href=\"#")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|t| !ids.contains(t))
        .map(str::to_string)
        .collect()
}

#[test]
fn chromium_opens_every_html_report_with_javascript_on_and_off() {
    let test = "report::chromium_opens_every_html_report_with_javascript_on_and_off";
    let Some(bin) = chromium(test) else {
        return;
    };
    let tmp = std::env::temp_dir().join(format!("tapio-report-{}", std::process::id()));
    // Two browsers at a time (a profile each): the fixtures split in two.
    let all = fixtures();
    let (a, b) = all.split_at(all.len() / 2);
    std::thread::scope(|s| {
        for (n, half) in [a, b].into_iter().enumerate() {
            let (bin, tmp) = (&bin, tmp.join(n.to_string()));
            s.spawn(move || open_reports(bin, &tmp, half));
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Opens the HTML report of each fixture with JavaScript on and off, and checks what it shows.
fn open_reports(bin: &Path, tmp: &Path, fixtures: &[(String, PathBuf)]) {
    std::fs::create_dir_all(tmp).unwrap();
    let browsers = [
        (true, Browser::new(bin, tmp, true)),
        (false, Browser::new(bin, tmp, false)),
    ];
    for (name, dir) in fixtures {
        let page = tmp.join(format!("{name}.html"));
        tapio(&["report", &rel(dir), "--all", "-o", page.to_str().unwrap()]);
        let html = std::fs::read_to_string(&page).unwrap();
        for attr in ["src=\"http", "href=\"http", "url(http", "@import"] {
            assert!(!html.contains(attr), "{name}: the page refers to {attr}…");
        }
        let links = links_of(dir);
        for (javascript, browser) in &browsers {
            let mode = if *javascript { "js on" } else { "js off" };
            let net = tmp.join(format!("{name}-{mode}.json"));
            let (dom, log) = browser.run(
                &page,
                &[
                    "--dump-dom".to_string(),
                    format!("--log-net-log={}", net.display()),
                ],
            );
            assert!(dom.contains("</html>"), "{name} ({mode}): no DOM\n{log}");
            assert_eq!(
                dom.contains(r#"<html lang="en" class="js">"#),
                *javascript,
                "{name} ({mode}): the script ran or not as it should"
            );
            let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
            assert!(console.is_empty(), "{name} ({mode}): console: {console:#?}");
            let requests = page_requests(&net);
            assert!(
                requests.is_empty(),
                "{name} ({mode}): requests {requests:?}"
            );
            let missing = unresolved_links(&dom);
            assert!(
                missing.is_empty(),
                "{name} ({mode}): links to nothing: {missing:?}"
            );
            // Each incident's section: as many arrows as its chains have links.
            let sections: Vec<&str> = dom.split(r#"<section class="incident""#).skip(1).collect();
            assert_eq!(sections.len(), links.len(), "{name} ({mode}): incidents");
            for (i, (section, want)) in sections.iter().zip(&links).enumerate() {
                assert_eq!(
                    section.matches(r#"class="arrow""#).count(),
                    *want,
                    "{name} ({mode}): arrows of incident {}",
                    i + 1
                );
            }
            let shot = tmp.join(format!("{name}-{mode}.png"));
            browser.run(
                &page,
                &[
                    format!("--window-size={WIDTH},{HEIGHT}"),
                    format!("--screenshot={}", shot.display()),
                ],
            );
            check_screenshot(&format!("{name} ({mode})"), &shot);
        }
    }
}

#[test]
fn report_narrows_as_correlate_does_and_says_so() {
    let md = tapio(&[
        "report",
        "fixtures/incidents/oom-cascade",
        "--format",
        "markdown",
        "--pod",
        "shop/nothing-here",
    ]);
    assert!(
        md.contains("| Narrowed to | pod shop/nothing-here |"),
        "{md}"
    );
    assert!(md.contains("No incident."), "{md}");
    let md = tapio(&[
        "report",
        "fixtures/incidents/oom-cascade",
        "--format",
        "markdown",
        "--service",
        "shop/checkout",
    ]);
    assert!(
        md.contains("## Incident 1 — container memory limit"),
        "{md}"
    );
}

#[test]
fn report_writes_the_format_its_file_names() {
    let tmp = std::env::temp_dir().join(format!("tapio-report-out-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for (file, start) in [
        ("r.html", "<!DOCTYPE html>"),
        ("r.md", "# Incident report"),
        ("r.svg", "<svg "),
    ] {
        let out = tmp.join(file);
        tapio(&[
            "report",
            "fixtures/incidents/oom-cascade",
            "-o",
            out.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with(start), "{file}: {}", &text[..40]);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let err = Command::cargo_bin("tapio")
        .unwrap()
        .current_dir(root())
        .args(["report", "fixtures/incidents/oom-cascade", "--pod", "nons"])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&err.stderr).contains("--pod takes NAMESPACE/NAME"));
}
