//! What the integration tests of `tapio record` share.

pub mod apiserver;
pub mod nats;
pub mod recorder;
pub mod shared;

/// A TCP port on loopback that nothing listens on now, and that no other test of this run gets.
///
/// Chosen below the kernel's ephemeral range (from 32768 by default), from which the tests' own
/// client connections take their ports: a port the kernel hands out there (`bind` to port 0) can be
/// taken by an outgoing connection between the moment it is chosen and the moment the program
/// under test listens on it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Runs that overlap (two test binaries) start at different places.
    let offset = std::process::id() * 97 % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (offset + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
