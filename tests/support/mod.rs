//! What the integration tests of `tapio record` share.
#![allow(dead_code)]

pub mod apiserver;
pub mod nats;
pub mod recorder;
pub mod shared;
