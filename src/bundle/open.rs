//! Opening a bundle for reading, whichever way it comes: a file or its split parts with the
//! seek table `pack` writes ([`BundleReader`]), the same without one (recompressed with the
//! plain `zstd` tool: [`Sequential`], in order), or standard input given as `-`.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::diagnose::diagnose_start;
use super::reader::{BundleError, BundleReader};
use super::sequential::Sequential;
use super::BundleSource;
use crate::parts::{self, Layout, PartsError, PartsSource};
use crate::seekable::ReadAt;

/// A bundle opened for reading.
pub enum Opened {
    /// Through its seek table.
    Seekable(BundleReader),
    /// In order: no seek table, or standard input.
    Sequential(Box<Sequential>),
}

impl Opened {
    /// The reader, for `verify` and `unpack`.
    pub fn source(&mut self) -> &mut dyn BundleSource {
        match self {
            Opened::Seekable(r) => r,
            Opened::Sequential(s) => s.as_mut(),
        }
    }

    /// Why a file is read in order, when it is: it has no seek table. Standard input, always
    /// read in order, needs no saying.
    pub fn sequential_reason(&self) -> Option<String> {
        match self {
            Opened::Seekable(_) => None,
            Opened::Sequential(s) => s.why_no_seek_table().map(str::to_string),
        }
    }
}

/// Opens `path`: `-` for standard input; else a bundle file, its first part, or the base name
/// of its parts ([`parts::locate`] checks them all first). A file without a seek table is read
/// in order when it is a recompressed bundle, refused with a diagnosis otherwise
/// ([`super::diagnose`]).
pub fn open(path: &Path) -> Result<Opened, PartsError> {
    if path == Path::new("-") {
        // Its first bytes tell whether it is zstd at all, before any pass starts.
        let mut head = Vec::with_capacity(512);
        let mut stdin = std::io::stdin();
        (&mut stdin)
            .take(512)
            .read_to_end(&mut head)
            .map_err(|source| BundleError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        if let Some(diagnosis) = diagnose_start(&head) {
            return Err(BundleError::NotABundle {
                path: path.to_path_buf(),
                diagnosis,
            }
            .into());
        }
        let stdin: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head).chain(stdin));
        return Ok(Opened::Sequential(Box::new(Sequential::stdin(path, stdin))));
    }
    let layout = parts::locate(path)?;
    let src: Arc<dyn ReadAt> = match &layout {
        Layout::Single(p) => {
            let file = crate::input_file::open_regular(p).map_err(|e| BundleError::Open {
                path: p.to_path_buf(),
                source: e.into(),
            })?;
            Arc::new(file)
        }
        Layout::Split { parts, .. } => Arc::new(PartsSource::open(parts)?),
    };
    let base = layout.base();
    match BundleReader::from_source(base, src.clone()) {
        Ok(r) => Ok(Opened::Seekable(r)),
        Err(BundleError::NoSeekTable { diagnosis, .. }) if diagnosis.readable_in_order() => {
            let why = format!("{} {diagnosis}", base.display());
            Ok(Opened::Sequential(Box::new(Sequential::file(
                base, src, why,
            ))))
        }
        Err(e) => Err(e.into()),
    }
}
