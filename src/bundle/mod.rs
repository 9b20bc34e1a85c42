//! The bundle: one seekable `tar.zst` holding an OCI image layout plus `bundle.json`
//! (see `docs/bundle-format.md`).

pub mod check;
pub mod contract;
pub mod diagnose;
pub mod entries;
pub mod format;
pub mod limits;
pub mod open;
pub mod reader;
pub mod sequential;
pub mod writer;

use std::collections::BTreeMap;
use std::path::Path;

use crate::blob::Bytes;
use crate::digest::Digest;
use contract::Checked;
use reader::BundleError;

/// A bundle being read: through its seek table ([`reader::BundleReader`]), or in one
/// sequential pass ([`sequential::Sequential`], a bundle without its table or standard
/// input). Both gather facts for the one contract ([`contract`]) and deliver blob bytes;
/// `verify` and `unpack` are written once against this trait.
pub trait BundleSource {
    /// The bundle's name in messages.
    fn path(&self) -> &Path;

    /// Reads the metadata and documents and checks them against the contract. A reader that
    /// can learns every blob entry before it returns (through the seek table, or a file read
    /// twice), so that [`Checked::entries`] is known before anything is pushed; standard
    /// input, read once, learns them only while [`BundleSource::blobs`] runs.
    fn check(&mut self) -> Result<Checked, BundleError>;

    /// Gives `each` the bytes of every blob of `wanted` (digest and the size its descriptor
    /// says) that the bundle holds with that size, on up to `jobs` threads where the reader
    /// allows. Returns every blob entry of the bundle with its size.
    fn blobs(
        &mut self,
        wanted: &BTreeMap<Digest, u64>,
        jobs: usize,
        each: &(dyn Fn(&Digest, Bytes<'_>) + Sync),
    ) -> Result<BTreeMap<Digest, u64>, BundleError>;
}
