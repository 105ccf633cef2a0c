//! What the integration tests of `tapio record` share.

pub mod apiserver;
pub mod nats;
pub mod recorder;
pub mod shared;
