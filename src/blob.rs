//! How a blob's bytes reach whoever hashes or pushes them. Through the seek table (or from
//! memory) they can be opened again for each attempt; in one sequential pass they stream by
//! once. `verify` and `unpack` take both, so they run the same code whichever way the bundle
//! is read.

use std::io::{self, Read};

/// Opens a blob's bytes, again for each attempt.
pub type OpenBlob<'a> = dyn Fn() -> io::Result<Box<dyn Read + Send + 'static>> + Sync + 'a;

/// A blob's bytes, as its reader can give them.
pub enum Bytes<'a> {
    /// Opened again for each attempt: an entry read through the seek table, or bytes held in
    /// memory.
    Reopen(&'a OpenBlob<'a>),
    /// The stream itself, read once: exactly the blob's declared size is there to read.
    Once(&'a mut dyn Read),
}
