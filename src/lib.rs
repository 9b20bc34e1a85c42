//! airlock: move the container images a Rancher 1.6 Kubernetes environment needs into an
//! air-gapped private registry.
//!
//! The library does the work and never prints: it reports through return values and a
//! [`progress::Reporter`]. The binary (`main.rs` and its `cmd/`, one file per command) parses
//! arguments, prints results and errors.
//! `pack` resolves and fetches images into a [`cache`], then writes one bundle
//! ([`bundle`]); `verify` and `unpack` read it back.

pub mod background;
pub mod blob;
pub mod bundle;
pub mod cache;
pub mod catalog;
pub mod convert;
pub mod copy;
pub mod delta;
pub mod digest;
pub mod escape;
pub mod fixtures;
pub mod input_file;
pub mod interrupt;
pub mod inventory;
pub mod list;
pub mod manifest;
pub mod media_type;
pub mod pack;
pub mod parts;
pub mod problem;
pub mod progress;
pub mod rancher;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod safe_write;
pub mod seekable;
pub mod sidecar;
pub mod space;
pub mod units;
pub mod unpack;
pub mod upstream;
pub mod verify;
pub mod work_queue;
pub mod writeback;

/// `message` as said of `subject`: `subject: message`, unless the message names the subject
/// already (most errors name the file, image or blob they are about).
pub fn said_of(subject: &str, message: &str) -> String {
    if message.contains(subject) {
        message.to_string()
    } else {
        format!("{subject}: {message}")
    }
}

/// An error and its causes on one line, `: `-separated, for reports that list many errors.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn said_of_names_the_subject_once() {
        assert_eq!(
            super::said_of("docker.io/library/a:1", "manifest unknown"),
            "docker.io/library/a:1: manifest unknown"
        );
        let named = "docker.io/library/a:1 is not a valid manifest";
        assert_eq!(super::said_of("docker.io/library/a:1", named), named);
    }
}
