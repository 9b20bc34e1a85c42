//! The bounds every reader of a bundle applies, and that `pack` applies before it writes one,
//! so that airlock never writes a bundle its own readers refuse. One place for the numbers;
//! `docs/security.md` states them.
//!
//! They bound what a hostile bundle or side file can cost: memory grows with the distinct
//! documents and entries a bundle holds, never with how often they are referenced, and every
//! file is read with a cap.

/// Largest `index.json`, `bundle.json` or image config accepted.
pub const MAX_JSON_BYTES: u64 = 8 << 20;

/// Largest side file accepted: `parts.json`, the `.sha256` checksum file, an inventory. The
/// same cap as `bundle.json`: 8 MiB holds the checksums of far more parts than a bundle may
/// have, and an inventory of about 60,000 blobs.
pub const MAX_SIDE_FILE_BYTES: u64 = MAX_JSON_BYTES;

/// Most parts a split bundle may have: `pack --split` refuses a size that would give more, and
/// readers refuse a layout (or a checksum file) that lists more.
pub const MAX_PARTS: usize = 10_000;

/// Most entries (files and directories) a bundle's tar may hold: as many as 10,000 images of
/// ten blobs each that share nothing. Real bundles hold a few hundred.
pub const MAX_ENTRIES: u64 = 100_000;

/// Longest entry name accepted, in bytes (airlock writes names of at most 77).
pub const MAX_NAME_BYTES: usize = 1024;

/// Largest PAX or GNU long-name record accepted.
pub const MAX_EXT_HEADER: u64 = 64 << 10;
