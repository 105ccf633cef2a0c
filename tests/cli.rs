//! The real `tapio` command: what people read (insta snapshots), exit codes, and the behaviour
//! around damaged captures and closed pipes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;

use crate::support::shared::shared_data;

const DEMO: &str = "fixtures/captures/v1-oom-demo.tapio";

fn tapio() -> Command {
    let mut c = Command::cargo_bin("tapio").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> (String, String, i32) {
    outcome(tapio().args(args))
}

/// What a command printed, and its exit code.
fn outcome(cmd: &mut Command) -> (String, String, i32) {
    let out = cmd.output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn info_describes_the_demo_capture() {
    let (out, err, code) = run(&["info", DEMO]);
    assert_eq!((code, err.as_str()), (0, ""));
    insta::assert_snapshot!(out);
}

#[test]
fn info_json_has_the_documented_keys() {
    let (out, _, code) = run(&["info", DEMO, "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"], 6006);
    assert_eq!(v["by_kind"]["oom"], 1);
    assert_eq!(v["drops"], 1234);
    assert_eq!(v["first_ts"], "2026-03-14T10:00:00.000000000Z");
    assert!(v["bytes"].as_u64().unwrap() > 0 && v["last_ts"].is_string());
    assert_eq!(v["closed_cleanly"], true);
}

#[test]
fn cat_shows_the_incident_evidence() {
    let (out, err, code) = run(&[
        "cat",
        DEMO,
        "--kind",
        "oom,k8s.event,drop,gap,annotation,signal,log,exit",
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    // Background exits are many; keep the interesting ones.
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains(" exit ") || l.contains("killed by"))
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn cat_pod_filter_reaches_kernel_events_through_the_cgroup() {
    let (out, _, code) = run(&["cat", DEMO, "--kind", "k8s.object", "--namespace", "shop"]);
    assert_eq!(code, 0);
    let pod = out
        .lines()
        .find(|l| l.contains("OOMKilled"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("shop/cart-")))
        .expect("the OOM-killed cart pod")
        .to_string();
    let (out, _, code) = run(&["cat", DEMO, "--pod", &pod]);
    assert_eq!(code, 0);
    let kinds: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    for kind in ["oom", "exit", "exec", "k8s.object", "k8s.event", "span"] {
        assert!(
            kinds.contains(&kind),
            "--pod {pod} shows its {kind} events:\n{out}"
        );
    }
    assert!(
        out.lines().all(|l| !l.contains("checkout")),
        "only that pod's events"
    );
}

#[test]
fn cat_json_lines_and_time_windows() {
    let (out, _, code) = run(&["cat", DEMO, "-o", "json"]);
    assert_eq!(code, 0);
    let all: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all.len(), 6006);
    assert!(all
        .windows(2)
        .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64()));
    let oom = all.iter().find(|e| e["kind"] == "oom").unwrap();
    assert_eq!(oom["data"]["constraint"], "memcg");
    assert_eq!(oom["data"]["victim_comm"], "java");

    let (out, _, _) = run(&[
        "cat",
        DEMO,
        "--since",
        "+1s",
        "--until",
        "2026-03-14T10:00:01.1Z",
    ]);
    let times: Vec<&str> = out.lines().map(|l| &l[11..23]).collect();
    assert!(!times.is_empty());
    assert!(
        times
            .iter()
            .all(|t| ("10:00:01.000"..="10:00:01.100").contains(t)),
        "{times:?}"
    );

    let (_, err, code) = run(&["cat", DEMO, "--since", "yesterday"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("+5m"),
        "the error says what is accepted: {err}"
    );
}

#[test]
fn cat_trace_id_finds_one_request() {
    let (out, _, _) = run(&["cat", DEMO, "--kind", "span", "-o", "json"]);
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let trace = first["data"]["trace_id"].as_str().unwrap().to_string();
    let (out, _, code) = run(&["cat", DEMO, "--trace-id", &trace]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains(&trace));
}

fn damaged(name: &str, f: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(DEMO)).unwrap();
    f(&mut bytes);
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

#[test]
fn a_truncated_capture_reads_with_one_warning_and_exit_0() {
    let (_dir, path) = damaged("torn.tapio", |b| b.truncate(b.len() / 2));
    let p = path.to_str().unwrap();
    let (out, err, code) = run(&["cat", p]);
    assert_eq!(code, 0);
    assert!(out.lines().count() > 1000);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("torn.tapio") && err.contains("truncated at byte offset"),
        "{err}"
    );
    let (out, err, code) = run(&["info", p]);
    assert_eq!(code, 0);
    assert!(out.contains("NOT cleanly"), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let (_dir, path) = damaged("header.tapio", |b| b.truncate(30));
    let (out, err, code) = run(&["cat", path.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains("inside the header"), "{err}");
}

#[test]
fn a_flipped_byte_is_an_error_with_its_offset_unless_skipped() {
    let (_dir, path) = damaged("flip.tapio", |b| {
        let at = b.len() / 2;
        b[at] ^= 0x01;
    });
    let p = path.to_str().unwrap();
    let (out, err, code) = run(&["cat", p]);
    assert_eq!(code, 2);
    assert!(
        out.lines().count() > 1000,
        "the events before it are printed"
    );
    assert!(
        err.contains("flip.tapio: corrupt block") && err.contains("at byte offset"),
        "{err}"
    );
    assert!(err.contains("--skip-corrupt"), "{err}");
    let (out, err, code) = run(&["cat", p, "--skip-corrupt"]);
    assert_eq!(code, 1);
    let n = out.lines().count();
    assert!((4000..6006).contains(&n), "all but the damaged block: {n}");
    assert!(
        err.contains("skipped") && err.contains("corrupt bytes at byte offset"),
        "{err}"
    );
}

#[test]
fn a_closed_pipe_ends_cat_quietly() {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tapio"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["cat", DEMO])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn not_a_capture_is_a_clear_error() {
    let (_, err, code) = run(&["cat", "README.md"]);
    assert_eq!(code, 2);
    assert!(err.contains("README.md: not a tapio capture"), "{err}");
    let (_, err, code) = run(&["info", "no-such-file.tapio"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no-such-file.tapio") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn generate_and_import_round_trip_through_cat() {
    if !shared_data("generate_and_import_round_trip_through_cat") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("g.tapio");
    let (_, _, code) = run(&[
        "generate",
        "-o",
        g.to_str().unwrap(),
        "--events",
        "3000",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0);
    let (out, _, _) = run(&["info", g.to_str().unwrap(), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["events"], 3000);

    let k = dir.path().join("k.tapio");
    let kspan =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/kspan/deployment-2-pods.yaml");
    let (_, err, code) = run(&[
        "import",
        "-q",
        "-o",
        k.to_str().unwrap(),
        kspan.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (out, _, _) = run(&[
        "cat",
        k.to_str().unwrap(),
        "--kind",
        "k8s.event",
        "--namespace",
        "default",
    ]);
    insta::assert_snapshot!(out);
}

#[test]
fn cat_follow_prints_a_capture_as_it_is_written_and_stops_at_its_close() {
    use tapio::capture::{Header, WriteOptions, Writer};
    use tapio::source::generate::{generate, Config};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.tapio");
    let mut w = Writer::create(&path, &Header::new("node-1"), WriteOptions::default()).unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tapio"))
        .args(["cat", "--follow", "-o", "json"])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut n = 0;
    generate(
        &Config {
            events: 900,
            ..Config::default()
        },
        |mut e| {
            w.append(&mut e)?;
            n += 1;
            if n % 300 == 0 {
                w.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Ok::<_, tapio::capture::Error>(())
        },
    )
    .unwrap();
    w.finish().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 900);
}

#[test]
fn import_places_dmesg_t_local_times_with_tz() {
    let dir = tempfile::tempdir().unwrap();
    let dmesg = dir.path().join("dmesg-T.txt");
    std::fs::write(
        &dmesg,
        "[Tue Jul  2 14:17:41 2024] java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=-997\n\
         [Tue Jul  2 14:17:41 2024] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-ab12.scope,mems_allowed=0,oom_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice,task_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-ab12.scope,task=java,pid=4711,uid=1000\n\
         [Tue Jul  2 14:17:41 2024] Memory cgroup out of memory: Killed process 4711 (java) total-vm:5237712kB, anon-rss:2090000kB, file-rss:7000kB, shmem-rss:0kB, UID:1000 pgtables:4500kB oom_score_adj:-997\n",
    )
    .unwrap();
    let out = dir.path().join("o.tapio");
    let (_, err, code) = run(&[
        "import",
        "-q",
        "--tz",
        "Europe/Berlin",
        "-o",
        out.to_str().unwrap(),
        dmesg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (json, _, _) = run(&["cat", out.to_str().unwrap(), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["kind"], "oom");
    assert_eq!(
        v["ts"], "2024-07-02T12:17:41.000000000Z",
        "14:17:41 in Berlin summer time"
    );
    assert_eq!(v["data"]["victim_pid"], 4711);
    assert_eq!(v["data"]["rss_kib"], 2_097_000);
}

#[test]
fn many_rejected_records_are_summarised_by_reason_and_verbose_shows_each() {
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"metadata":{{"name":"x{i}"}}}}"#))
        .collect();
    let input = dir.path().join("bad.json");
    std::fs::write(
        &input,
        format!(r#"{{"kind":"List","items":[{}]}}"#, items.join(",")),
    )
    .unwrap();
    let out = dir.path().join("bad.tapio");
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_tapio"))
            .args(["import", "-o"])
            .arg(&out)
            .arg(&input)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let err = run(&[]);
    assert_eq!(err.matches(": rejected: ").count(), 5, "{err}");
    assert!(err.contains("35 more rejected: object has no"), "{err}");
    let all = run(&["-v"]);
    assert_eq!(all.matches(": rejected: ").count(), 40, "{all}");
}

#[test]
fn text_that_no_reader_recognises_is_an_error_that_says_how_to_force_a_format() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.txt");
    std::fs::write(&input, "hello\nthis is not a log\n").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tapio"))
        .args(["import", "-o"])
        .arg(dir.path().join("x.tapio"))
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("format not recognised"), "{err}");
    assert!(err.contains("pass --format"), "{err}");
    assert!(!dir.path().join("x.tapio").exists());
    // Kernel messages copied without their timestamps are still kernel messages.
    std::fs::write(
        &input,
        "Memory cgroup out of memory: Killed process 4711 (java) total-vm:4194304kB, anon-rss:2097152kB, file-rss:0kB\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tapio"))
        .args(["import", "-o"])
        .arg(dir.path().join("x.tapio"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn completions_for_each_shell_name_the_subcommands_and_their_options() {
    for (shell, marker) in [
        ("bash", "_tapio()"),
        ("zsh", "#compdef tapio"),
        ("fish", "complete -c tapio"),
    ] {
        let (out, err, code) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(marker), "{shell}: {out}");
        for word in ["replay", "correlate", "trace-id", "skip-corrupt"] {
            assert!(out.contains(word), "{shell} lacks {word}");
        }
    }
    // bash itself reads the script (when bash is there).
    let (out, _, _) = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tapio.bash");
    std::fs::write(&script, out).unwrap();
    if let Ok(o) = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (_, err, code) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("bash") && err.contains("zsh"), "{err}");
}

#[test]
fn the_man_pages_are_the_help_of_every_subcommand() {
    let (out, err, code) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(".TH tapio 1"), "{out}");
    assert!(out.contains("replay"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let (_, err, code) = run(&["man", "-o", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in ["tapio.1", "tapio-replay.1", "tapio-record.1", "tapio-man.1"] {
        assert!(pages.iter().any(|p| p == page), "{pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("generate")), "{pages:?}");
    let replay = std::fs::read_to_string(dir.path().join("tapio-replay.1")).unwrap();
    assert!(replay.contains(".TH tapio-replay 1"), "{replay}");
    assert!(replay.contains("expect"), "{replay}");
}

#[test]
fn every_help_reads_as_written() {
    // What `--help` says, every subcommand: a sentence cut short (clap drops a doc comment's last
    // period, so "… only changes when." printed as "… only changes when") shows in review here.
    // The same width wherever it runs (clap reads COLUMNS when there is no terminal),
    // (and no NATS_*, TAPIO_* of the environment shown as defaults).
    let help = |args: &[&str]| outcome(tapio().args(args).env_clear().env("COLUMNS", "100"));
    let (top, err, code) = help(&["--help"]);
    assert_eq!(code, 0, "{err}");
    let mut pages = vec![format!("$ tapio --help\n{top}")];
    let subcommands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // (A description's next lines are indented further.)
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(subcommands.len() >= 14, "{subcommands:?}");
    for c in &subcommands {
        let (out, err, code) = help(&[c, "--help"]);
        assert_eq!(code, 0, "{c}: {err}");
        pages.push(format!("$ tapio {c} --help\n{out}"));
    }
    insta::assert_snapshot!(pages.join("\n"));
}
