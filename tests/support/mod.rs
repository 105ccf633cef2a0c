//! What the integration tests of `tapio record` share.

pub mod apiserver;
pub mod nats;
pub mod recorder;
pub mod shared;

/// A TCP port on loopback that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
