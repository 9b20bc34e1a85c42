//! The rules every tar entry of a bundle follows, whichever reader meets it. The walk through
//! the seek table ([`super::reader`]) and the sequential pass (the `stream` module) both hand
//! each header, and the content of each PAX or GNU long-name record, to one [`EntryRules`] and
//! act on its verdict, so a hostile tar gets the same answer both ways.
//!
//! - Only regular files and directories (ignored) are accepted: no links, devices, FIFOs or
//!   sparse files; no global PAX headers.
//! - A name is at most [`MAX_NAME_BYTES`], not absolute, without `..`, and appears once (also as
//!   `./x` against `x`). A blob name is `blobs/sha256/<64 lowercase hex>`.
//! - PAX and GNU long-name records are at most [`MAX_EXT_HEADER`] each, one of each kind per
//!   entry; a PAX size must agree with the header's.
//! - A bundle holds at most [`MAX_ENTRIES`] entries.
//!
//! Memory stays bounded by the entry count: only a 32-byte hash of each name is kept (to find
//! duplicates); the full name only of the entries airlock reads (`oci-layout`, `index.json`,
//! `bundle.json`, blobs: at most 77 bytes each). Other files are accepted and read past.

use std::collections::hash_map::{Entry, HashMap};

use sha2::Digest as _;

use super::format::{BUNDLE_JSON, INDEX_JSON, OCI_LAYOUT};
use super::limits::{MAX_ENTRIES, MAX_EXT_HEADER, MAX_NAME_BYTES};
use crate::digest::Digest;

/// What a header asks of the reader.
#[derive(Debug, PartialEq, Eq)]
pub enum Header {
    /// A PAX or GNU long-name record for the next entry: read its `size` bytes (at most
    /// [`MAX_EXT_HEADER`]) and give them to [`EntryRules::extension`].
    Extension { size: u64 },
    /// A directory: nothing to read.
    Directory,
    /// A regular file airlock reads: `oci-layout`, `index.json`, `bundle.json` or a blob.
    Known { name: String, size: u64 },
    /// A regular file airlock does not know (an operator's metadata): read past it.
    Unknown { size: u64 },
}

/// Why a header or an entry was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The header itself (its checksum, size, type or place), at the header's offset.
    Header(String),
    /// The entry it names (shortened when long).
    Entry { name: String, reason: String },
}

/// Which record the next extension content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    Pax,
    GnuLongName,
}

/// The state of one walk through a bundle's tar headers.
#[derive(Default)]
pub struct EntryRules {
    /// The record whose content comes next.
    expecting: Option<Ext>,
    /// Which records were seen for the coming entry.
    seen_pax: bool,
    seen_gnu: bool,
    name: Option<String>,
    size: Option<u64>,
    /// sha256 of every file name so far, with the offset of its header.
    names: HashMap<[u8; 32], u64>,
    entries: u64,
}

impl EntryRules {
    pub fn new() -> EntryRules {
        EntryRules::default()
    }

    /// Judges the header at decompressed `offset`.
    pub fn header(&mut self, h: &tar::Header, offset: u64) -> Result<Header, Refusal> {
        let bad = Refusal::Header;
        check_checksum(h.as_bytes()).map_err(bad)?;
        if self.expecting.is_some() {
            return Err(bad("a PAX or long-name header's content is missing".into()));
        }
        let size = h
            .entry_size()
            .map_err(|e| bad(format!("bad size field: {e}")))?;
        let kind = h.entry_type();
        let ext = match kind {
            tar::EntryType::XHeader => Some((Ext::Pax, "PAX header", &mut self.seen_pax)),
            tar::EntryType::GNULongName => {
                Some((Ext::GnuLongName, "GNU long name", &mut self.seen_gnu))
            }
            // Global PAX records apply to every later entry; airlock never writes them and
            // refuses them rather than model their effect on names and sizes.
            tar::EntryType::XGlobalHeader => {
                return Err(bad("global PAX headers are not accepted in a bundle".into()))
            }
            _ => None,
        };
        if let Some((ext, what, seen)) = ext {
            if size > MAX_EXT_HEADER {
                return Err(bad(format!(
                    "{what} of {size} bytes is larger than the {MAX_EXT_HEADER} accepted"
                )));
            }
            if std::mem::replace(seen, true) {
                return Err(bad(format!("a second {what} for the same entry")));
            }
            self.expecting = Some(ext);
            return Ok(Header::Extension { size });
        }
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(bad(format!(
                "the bundle has more than {MAX_ENTRIES} entries, more than airlock accepts"
            )));
        }
        let raw_name = match self.name.take() {
            Some(n) => n,
            None => String::from_utf8(h.path_bytes().into_owned())
                .map_err(|_| bad("entry name is not UTF-8".into()))?,
        };
        let pax_size = self.size.take();
        (self.seen_pax, self.seen_gnu) = (false, false);
        let refuse = |reason: String| Refusal::Entry {
            name: shortened(&raw_name),
            reason,
        };
        if raw_name.len() > MAX_NAME_BYTES {
            return Err(refuse(format!(
                "its name of {} bytes is longer than the {MAX_NAME_BYTES} bytes accepted",
                raw_name.len()
            )));
        }
        if let Some(ps) = pax_size {
            if ps != size {
                return Err(refuse(format!(
                    "its PAX size ({ps}) disagrees with its header size ({size})"
                )));
            }
        }
        let name = normalize_name(&raw_name).map_err(&refuse)?;
        match entry_kind(kind).map_err(&refuse)? {
            EntryKind::File => {}
            EntryKind::Directory if size == 0 => return Ok(Header::Directory),
            EntryKind::Directory => return Err(refuse("a directory entry with content".into())),
        }
        let key: [u8; 32] = sha2::Sha256::digest(name.as_bytes()).into();
        match self.names.entry(key) {
            Entry::Occupied(first) => {
                return Err(refuse(format!(
                    "a second entry with the same name (the first is at offset {})",
                    first.get()
                )))
            }
            Entry::Vacant(v) => {
                v.insert(offset);
            }
        }
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            Digest::parse(&format!("sha256:{hex}"))
                .map_err(|e| refuse(format!("not a valid blob name: {e}")))?;
        } else if name.starts_with("blobs/") {
            return Err(refuse(
                "blobs of an algorithm other than sha256 are not accepted".into(),
            ));
        } else if ![OCI_LAYOUT, INDEX_JSON, BUNDLE_JSON].contains(&name.as_str()) {
            return Ok(Header::Unknown { size });
        }
        Ok(Header::Known { name, size })
    }

    /// Takes the content of the PAX or long-name record the last header announced.
    pub fn extension(&mut self, raw: &[u8]) -> Result<(), Refusal> {
        let bad = |r: &str| Refusal::Header(r.to_string());
        match self.expecting.take() {
            None => Err(bad("extension content without its header")),
            Some(Ext::Pax) => {
                for (k, v) in pax_records(raw).map_err(Refusal::Header)? {
                    match k.as_str() {
                        "path" => self.name = Some(v),
                        "size" => {
                            self.size = Some(v.parse().map_err(|_| {
                                Refusal::Header(format!("PAX size {v:?} is not a number"))
                            })?)
                        }
                        // linkpath, uid, mtime... do not matter for regular files.
                        _ => {}
                    }
                }
                Ok(())
            }
            Some(Ext::GnuLongName) => {
                let name = raw.split(|&b| b == 0).next().unwrap_or(&[]);
                self.name = Some(
                    String::from_utf8(name.to_vec())
                        .map_err(|_| bad("GNU long name is not UTF-8"))?,
                );
                Ok(())
            }
        }
    }

    /// At the end-of-archive blocks: no record may be left without its entry.
    pub fn finish(&self) -> Result<(), Refusal> {
        if self.expecting.is_some() || self.seen_pax || self.seen_gnu {
            return Err(Refusal::Header(
                "a PAX or long-name header is not followed by an entry".into(),
            ));
        }
        Ok(())
    }
}

/// A name as errors show it: whole up to 256 bytes, else its first and last 100 characters
/// (where a `..` or a host name would be) and its length.
fn shortened(name: &str) -> String {
    const WHOLE: usize = 256;
    const SHOWN: usize = 100;
    if name.len() <= WHOLE {
        return name.to_string();
    }
    let chars: Vec<char> = name.chars().collect();
    let head: String = chars.iter().take(SHOWN).collect();
    let tail: String = chars[chars.len().saturating_sub(SHOWN)..].iter().collect();
    format!("{head}...{tail} ({} bytes)", name.len())
}

/// What an accepted tar entry is.
pub enum EntryKind {
    File,
    /// Directories are accepted and ignored.
    Directory,
}

/// Accepts regular files and directories; everything else (links, devices, FIFOs, sparse
/// files...) is refused with the reason.
pub fn entry_kind(kind: tar::EntryType) -> Result<EntryKind, String> {
    Err(match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => return Ok(EntryKind::File),
        tar::EntryType::Directory => return Ok(EntryKind::Directory),
        tar::EntryType::Symlink => "symbolic links are not accepted in a bundle".into(),
        tar::EntryType::Link => "hard links are not accepted in a bundle".into(),
        tar::EntryType::Char | tar::EntryType::Block => {
            "device files are not accepted in a bundle".into()
        }
        tar::EntryType::Fifo => "FIFOs are not accepted in a bundle".into(),
        other => format!(
            "entry type {:?} is not accepted in a bundle (only regular files)",
            other.as_byte() as char
        ),
    })
}

/// Checks a ustar header checksum (the sum of all bytes with the checksum field as spaces).
fn check_checksum(block: &[u8]) -> Result<(), String> {
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let stored = u32::from_str_radix(text.trim(), 8)
        .map_err(|_| format!("checksum field {text:?} is not octal (not a tar header)"))?;
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(format!(
            "checksum mismatch (stored {stored}, computed {sum})"
        ));
    }
    Ok(())
}

/// Parses PAX records `"<len> <key>=<value>\n"`.
fn pax_records(mut raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let sp = raw
            .iter()
            .position(|&b| b == b' ')
            .ok_or("PAX record without a length")?;
        let len: usize = std::str::from_utf8(&raw[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record length is not a number")?;
        if len <= sp + 1 || len > raw.len() || raw[len - 1] != b'\n' {
            return Err("PAX record length does not fit the record".into());
        }
        let rec =
            std::str::from_utf8(&raw[sp + 1..len - 1]).map_err(|_| "PAX record is not UTF-8")?;
        let (k, v) = rec.split_once('=').ok_or("PAX record without '='")?;
        out.push((k.to_string(), v.to_string()));
        raw = &raw[len..];
    }
    Ok(out)
}

/// Normalises an entry name, refusing anything that could escape a directory.
pub fn normalize_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty name".into());
    }
    if raw.starts_with('/') {
        return Err("absolute path".into());
    }
    if raw.contains('\0') || raw.contains('\\') {
        return Err("name contains a NUL or backslash".into());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("name contains '..'".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("name has no components".into());
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(name: &[u8], size: u64, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name);
        h.set_size(size);
        h.set_entry_type(kind);
        h.set_cksum();
        h
    }

    fn file(name: &str) -> tar::Header {
        hdr(name.as_bytes(), 3, tar::EntryType::Regular)
    }

    #[test]
    fn names() {
        assert_eq!(normalize_name("./index.json").unwrap(), "index.json");
        assert_eq!(normalize_name("blobs//sha256/x").unwrap(), "blobs/sha256/x");
        for (bad, why) in [
            ("", "empty name"),
            ("/etc/passwd", "absolute path"),
            ("../x", "name contains '..'"),
            ("a/../../b", "name contains '..'"),
            ("./", "name has no components"),
            ("a\\b", "name contains a NUL or backslash"),
        ] {
            assert_eq!(normalize_name(bad).unwrap_err(), why, "{bad}");
        }
    }

    #[test]
    fn pax() {
        let r = pax_records(b"16 path=abc/def\n11 size=10\n").unwrap();
        assert_eq!(
            r,
            vec![
                ("path".into(), "abc/def".into()),
                ("size".into(), "10".into())
            ]
        );
        assert_eq!(
            pax_records(b"99 path=x\n").unwrap_err(),
            "PAX record length does not fit the record"
        );
        assert_eq!(
            pax_records(b"x").unwrap_err(),
            "PAX record without a length"
        );
    }

    #[test]
    fn known_unknown_and_duplicate_names() {
        let mut r = EntryRules::new();
        assert_eq!(
            r.header(&file("./index.json"), 0),
            Ok(Header::Known {
                name: "index.json".into(),
                size: 3
            })
        );
        assert_eq!(
            r.header(&file("notes.txt"), 1024),
            Ok(Header::Unknown { size: 3 })
        );
        let e = r.header(&file("index.json"), 2048).unwrap_err();
        assert_eq!(
            e,
            Refusal::Entry {
                name: "index.json".into(),
                reason: "a second entry with the same name (the first is at offset 0)".into()
            }
        );
        // Still the first offset after the refusal.
        assert!(
            matches!(r.header(&file("notes.txt"), 4096), Err(Refusal::Entry { reason, .. }) if reason.contains("offset 1024"))
        );
        assert!(r.header(&file("blobs/sha256/abc"), 0).is_err());
        assert!(r.header(&file("blobs/sha512/abc"), 0).is_err());
        assert_eq!(
            r.header(&hdr(b"d/", 0, tar::EntryType::Directory), 0),
            Ok(Header::Directory)
        );
        assert!(r.finish().is_ok());
    }

    #[test]
    fn long_names_are_refused_and_shown_short() {
        let mut r = EntryRules::new();
        let pax_hdr = hdr(b"PaxHeaders/x", 70_000, tar::EntryType::XHeader);
        assert!(
            matches!(r.header(&pax_hdr, 0), Err(Refusal::Header(m)) if m.contains("larger than the 65536"))
        );
        let long = format!("meta/{}", "n".repeat(5000));
        let rec = format!("{} path={long}\n", long.len() + 11);
        let mut r = EntryRules::new();
        let pax_hdr = hdr(b"PaxHeaders/x", rec.len() as u64, tar::EntryType::XHeader);
        assert_eq!(
            r.header(&pax_hdr, 0),
            Ok(Header::Extension {
                size: rec.len() as u64
            })
        );
        r.extension(rec.as_bytes()).unwrap();
        let Err(Refusal::Entry { name, reason }) = r.header(&file("x"), 512) else {
            panic!("accepted")
        };
        assert!(
            name.starts_with("meta/nnn") && name.ends_with("nnn (5005 bytes)"),
            "{name}"
        );
        assert!(name.len() < 220);
        assert_eq!(shortened("a/../b"), "a/../b");
        assert_eq!(
            reason,
            "its name of 5005 bytes is longer than the 1024 bytes accepted"
        );
    }

    #[test]
    fn extension_records_come_once_and_before_an_entry() {
        let mut r = EntryRules::new();
        let x = hdr(b"PaxHeaders/x", 12, tar::EntryType::XHeader);
        r.header(&x, 0).unwrap();
        assert!(r.header(&file("a"), 512).is_err(), "content missing");
        let mut r = EntryRules::new();
        r.header(&x, 0).unwrap();
        r.extension(b"12 size=30\n\n").unwrap_err();
        let mut r = EntryRules::new();
        r.header(&x, 0).unwrap();
        r.extension(b"11 size=30\n").unwrap();
        assert!(r.header(&x, 1024).is_err(), "two PAX headers");
        let mut r = EntryRules::new();
        r.header(&x, 0).unwrap();
        r.extension(b"11 size=30\n").unwrap();
        let e = r.header(&file("a"), 1024).unwrap_err();
        assert!(
            matches!(e, Refusal::Entry { reason, .. } if reason.contains("PAX size (30) disagrees"))
        );
        let mut r = EntryRules::new();
        r.header(&x, 0).unwrap();
        r.extension(b"").unwrap();
        assert!(r.finish().is_err());
    }

    #[test]
    fn the_entry_count_is_bounded() {
        let mut r = EntryRules::new();
        let d = hdr(b"d/", 0, tar::EntryType::Directory);
        for i in 0..MAX_ENTRIES {
            r.header(&d, i * 512).unwrap();
        }
        let e = r.header(&d, 0).unwrap_err();
        assert_eq!(
            e,
            Refusal::Header(format!(
                "the bundle has more than {MAX_ENTRIES} entries, more than airlock accepts"
            ))
        );
    }
}
