//! Runs `tapio record` as a user would, and reads back what it wrote.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn tapio() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tapio"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

pub fn needs_root(test: &str) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "{test} needs root (it is #[ignore = \"needs root\"]; run it as root with --include-ignored)"
    );
    assert!(
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        "{test} needs a kernel with BTF (/sys/kernel/btf/vmlinux)"
    );
}

/// The log lines' bodies among events as `tapio cat -o json` prints them.
pub fn logs_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "log")
        .map(|e| e["data"]["body"].as_str().unwrap().to_string())
        .collect()
}

/// What `tapio ARGS… -o json CAPTURE` prints; fails when the command fails.
fn json_output(args: &[&str], capture: &Path) -> Vec<u8> {
    let out = tapio()
        .args(args)
        .args(["-o", "json"])
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `tapio ARGS… -o json CAPTURE`'s JSON (`info`, `replay`); fails when the command fails.
pub fn json_of(args: &[&str], capture: &Path) -> Value {
    serde_json::from_slice(&json_output(args, capture)).unwrap()
}

/// The events of a capture, as `tapio cat -o json` prints them.
pub fn events_of(capture: &Path) -> Vec<Value> {
    json_lines(&json_output(&["cat"], capture))
}

/// One JSON value per line.
pub fn json_lines(text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub struct Recording {
    child: Child,
    path: PathBuf,
    stderr: std::thread::JoinHandle<String>,
    /// Stdout's lines as they come, with when they came.
    stdout: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    stdout_thread: std::thread::JoinHandle<()>,
}

/// Starts `tapio record` into `dir` and returns once the probes are attached.
pub fn record(dir: &Path, args: &[&str]) -> Recording {
    record_to(&dir.join("rec.tapio"), args)
}

/// Starts `tapio record -o OUTPUT` (a file, or a directory with --ring).
pub fn record_to(output: &Path, args: &[&str]) -> Recording {
    let path = output.to_path_buf();
    let mut child = tapio()
        .arg("record")
        .arg("-o")
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out_lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let sink = std::sync::Arc::clone(&stdout);
    let stdout_thread = std::thread::spawn(move || {
        for l in out_lines.map_while(Result::ok) {
            sink.lock().unwrap().push((Instant::now(), l));
        }
    });
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    loop {
        match lines.next() {
            Some(Ok(l)) => {
                seen.push_str(&l);
                seen.push('\n');
                if l.contains("tapio: recording ") {
                    break;
                }
            }
            _ => panic!("tapio record ended before recording:\n{seen}"),
        }
    }
    let stderr = std::thread::spawn(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        seen + &rest.join("\n")
    });
    Recording {
        child,
        path,
        stderr,
        stdout,
        stdout_thread,
    }
}

impl Recording {
    /// SIGTERM, then the events of the capture as JSON. Fails when the recorder hangs.
    pub fn stop(self) -> (Vec<Value>, Value, String) {
        let path = self.path.clone();
        let stderr = self.stop_only();
        let events = events_of(&path);
        let info = tapio()
            .args(["info", "-o", "json"])
            .arg(&path)
            .output()
            .unwrap();
        let info = serde_json::from_slice(&info.stdout).unwrap();
        (events, info, stderr)
    }

    /// SIGTERM; what it said on stderr. Fails when the recorder hangs or fails.
    pub fn stop_only(mut self) -> String {
        // Let the last records reach the ring buffer and the reorder window pass.
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("tapio record did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self.stderr.join().unwrap();
        self.stdout_thread.join().unwrap();
        assert!(status.success(), "tapio record failed: {status}\n{stderr}");
        stderr
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorder's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`; when it was sent, and what the recorder said on stderr.
    pub fn kill9(mut self) -> (Instant, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let at = Instant::now();
        let _ = self.child.wait();
        let stderr = self.stderr.join().unwrap();
        self.stdout_thread.join().unwrap();
        (at, stderr)
    }

    /// Waits up to `within` for the recorder to end by itself: its status and stderr.
    pub fn wait_exit(mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                panic!("tapio record did not end by itself within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self.stderr.join().unwrap();
        self.stdout_thread.join().unwrap();
        (status, stderr)
    }

    /// SIGTERM; when it was sent, the exit status and stderr (no pause before it).
    pub fn term_now(mut self) -> (Instant, std::process::ExitStatus, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let at = Instant::now();
        let status = self.child.wait().unwrap();
        let stderr = self.stderr.join().unwrap();
        self.stdout_thread.join().unwrap();
        (at, status, stderr)
    }

    /// Stdout's lines, to read after [`Recording::stop`].
    pub fn stdout_handle(&self) -> std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>> {
        std::sync::Arc::clone(&self.stdout)
    }

    /// Stdout's lines so far, with when each came.
    pub fn stdout_lines(&self) -> Vec<(Instant, String)> {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits up to `within` for a stdout line that `want` accepts; when it came, and the line.
    pub fn wait_line(
        &self,
        within: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Option<(Instant, String)> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(l) = self.stdout_lines().into_iter().find(|(_, l)| want(l)) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}
