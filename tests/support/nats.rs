//! A real `nats-server -js` on a free port, with its store in a directory of the test's, that a
//! test can stop and start again.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether nats-server is installed; says why a test is skipped when it is not (CI installs it
/// and sets TAPIO_REQUIRE_NATS, and there a missing server fails).
pub fn available(test: &str) -> bool {
    let ok = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("TAPIO_REQUIRE_NATS").is_some() {
            panic!("{test}: nats-server is not installed and TAPIO_REQUIRE_NATS is set");
        }
        eprintln!("skipped {test}: nats-server is not installed (apt-get install nats-server)");
    }
    ok
}

pub use super::free_port;

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    extra: Vec<String>,
}

impl Server {
    pub fn start(store: &Path) -> Server {
        Server::start_with(store, &[])
    }

    /// With more options (`--auth TOKEN` …).
    pub fn start_with(store: &Path, extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            port: free_port(),
            store: store.to_path_buf(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        s.up();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again (same port, same store).
    pub fn up(&mut self) {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.store)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (SIGTERM: it keeps its store).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Publishes raw bytes (with headers, when given) on a subject, as any NATS client could.
    pub fn publish_raw(&self, subject: &str, headers: Option<&str>, payload: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut info = [0u8; 4096];
        let _ = s.read(&mut info).unwrap();
        let mut msg = b"CONNECT {\"verbose\":false,\"headers\":true}\r\n".to_vec();
        match headers {
            Some(h) => {
                let h = format!("NATS/1.0\r\n{h}\r\n\r\n");
                msg.extend(
                    format!("HPUB {subject} {} {}\r\n", h.len(), h.len() + payload.len()).bytes(),
                );
                msg.extend(h.bytes());
            }
            None => msg.extend(format!("PUB {subject} {}\r\n", payload.len()).bytes()),
        }
        msg.extend(payload);
        msg.extend(b"\r\nPING\r\n");
        s.write_all(&msg).unwrap();
        let mut got = Vec::new();
        let start = Instant::now();
        while !String::from_utf8_lossy(&got).contains("PONG")
            && start.elapsed() < Duration::from_secs(5)
        {
            let mut buf = [0u8; 1024];
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend(&buf[..n]),
            }
        }
        assert!(
            String::from_utf8_lossy(&got).contains("PONG"),
            "the raw publish was not taken: {}",
            String::from_utf8_lossy(&got)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// GET over plain HTTP/1.1: the status and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (status, body)
}
