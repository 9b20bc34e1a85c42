//! airlock: move the container images a Rancher 1.6 Kubernetes environment needs into an
//! air-gapped private registry.
//!
//! The library does the work; `main.rs` only parses arguments and prints errors.

pub mod digest;
pub mod media_type;
pub mod seekable;
