//! The one integration-test binary (`cargo test --test it`), after ripgrep's `tests/tests.rs`:
//! every suite is a module here, so the build links once and tests share the harness.

mod bounds;
mod bundles;
mod cli;
mod convert;
mod diagnose;
mod faults;
mod harness;
mod harness_selftest;
mod hostile;
mod interrupt;
mod list;
mod login;
mod pack;
mod progress;
mod pull;
mod rawbundle;
mod rehearsal;
mod server;
mod stream;
mod support;
mod transport;
mod trust;
mod unpack;
mod usb;
mod verbose;
