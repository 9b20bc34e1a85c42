//! What a file that does not end in a seek table is: not zstd at all (and what it looks like
//! instead), zstd but not an airlock bundle, an airlock bundle cut short or with bytes appended
//! (compared with the size its checksum file records, else told by where its zstd frames end),
//! or a bundle recompressed without its seek table, which is read in order instead.
//!
//! Only frame and block headers are read ([`crate::seekable::frames`]), plus the first tar
//! header of a complete stream, so a diagnosis costs a few small reads whatever the size.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::entries::normalize_name;
use super::format::{BUNDLE_JSON, INDEX_JSON, OCI_LAYOUT};
use crate::seekable::frames::{self, End};
use crate::seekable::{read_exact_at, streaming_decoder, InOrder, ReadAt, ZSTD_MAGIC};

/// What a file without a seek table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// No bytes at all.
    Empty { recorded: Option<u64> },
    /// Not zstd: what its first bytes look like (`gzip`, `a plain tar archive`, ...).
    NotZstd { looks_like: String },
    /// A complete zstd stream whose content is no airlock bundle.
    NotBundle { why: String },
    /// Shorter than the size its checksum file records.
    CutAt { len: u64, recorded: u64 },
    /// Ends inside a zstd frame (no size recorded to compare with).
    EndsInFrame { len: u64, frame_start: u64 },
    /// Bytes that are no zstd frame follow the end of the stream at `at`.
    Appended { at: u64, len: u64 },
    /// A complete zstd stream of a tar, without a seek table: recompressed (the plain `zstd`
    /// tool drops the table). Readable in order.
    Recompressed,
}

impl Diagnosis {
    /// Whether the file can still be read in one sequential pass.
    pub fn readable_in_order(&self) -> bool {
        matches!(self, Diagnosis::Recompressed)
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::Empty { recorded: Some(m) } => write!(
                f,
                "is empty: an airlock bundle cut at 0 of {m} bytes (the size its checksum file records); copy it again from the source"
            ),
            Diagnosis::Empty { recorded: None } => {
                write!(f, "is empty (0 bytes): not an airlock bundle, or a failed copy")
            }
            Diagnosis::NotZstd { looks_like } => write!(
                f,
                "is not zstd-compressed, so not an airlock bundle: it looks like {looks_like}"
            ),
            Diagnosis::NotBundle { why } => {
                write!(f, "is zstd-compressed but not an airlock bundle: {why}")
            }
            Diagnosis::CutAt { len, recorded } => write!(
                f,
                "is an airlock bundle cut short: cut at {len} of {recorded} bytes (the size its checksum file records); copy it again from the source"
            ),
            Diagnosis::EndsInFrame { len, frame_start } => write!(
                f,
                "is cut short: its {len} bytes end inside the zstd frame that starts at byte {frame_start}; copy it again from the source"
            ),
            Diagnosis::Appended { at, len } => write!(
                f,
                "has {} bytes appended after its end at byte {at}; copy it again, or cut them off with `truncate -s {at}`",
                len - at
            ),
            Diagnosis::Recompressed => write!(
                f,
                "has no seek table: it was recompressed (the plain zstd tool drops the table airlock pack writes)"
            ),
        }
    }
}

/// Diagnoses `src` (named `path`), a file that does not end in a seek table. `recorded` is the
/// size its checksum file records, when there is one.
pub fn diagnose(src: &Arc<dyn ReadAt>, recorded: Option<u64>) -> Diagnosis {
    let len = src.len();
    if len == 0 {
        return Diagnosis::Empty { recorded };
    }
    let mut head = vec![0u8; len.min(1024) as usize];
    if read_exact_at(src.as_ref(), &mut head, 0).is_err() {
        head.clear();
    }
    if !starts_zstd(&head) {
        return Diagnosis::NotZstd {
            looks_like: looks_like(&head),
        };
    }
    // The frames first: a bundle recompressed in place keeps its old checksum file, whose
    // size then says nothing.
    let walk = frames::walk(src.as_ref());
    let short = recorded.filter(|&m| m > len);
    match (walk.end, short) {
        (End::Cut { .. }, Some(m)) => Diagnosis::CutAt { len, recorded: m },
        (End::Cut { frame_start }, None) => Diagnosis::EndsInFrame { len, frame_start },
        (End::NotAFrame { at }, _) if at > 0 => Diagnosis::Appended { at, len },
        (End::NotAFrame { .. }, _) => Diagnosis::NotZstd {
            looks_like: looks_like(&head),
        },
        // Cut where a frame ends: airlock writes many frames and a seek table, the zstd tool
        // one frame and no table.
        (End::Clean, Some(m)) if walk.frames > 1 && walk.skippable == 0 => {
            Diagnosis::CutAt { len, recorded: m }
        }
        (End::Clean, _) => content(src),
    }
}

/// Diagnoses the first bytes of a stream (standard input): only whether it is zstd at all.
pub fn diagnose_start(head: &[u8]) -> Option<Diagnosis> {
    match head {
        [] => Some(Diagnosis::Empty { recorded: None }),
        h if starts_zstd(h) => None,
        h => Some(Diagnosis::NotZstd {
            looks_like: looks_like(h),
        }),
    }
}

/// A zstd frame or a skippable frame starts `b`.
fn starts_zstd(b: &[u8]) -> bool {
    let Some(m) = b.get(..4) else { return false };
    let magic = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
    magic == ZSTD_MAGIC || magic & 0xFFFF_FFF0 == 0x184D_2A50
}

/// What the content of a complete zstd stream is: a tar that may be a bundle (read it in
/// order), or something else.
fn content(src: &Arc<dyn ReadAt>) -> Diagnosis {
    let mut block = Vec::with_capacity(512);
    let read = streaming_decoder(InOrder::new(src.clone()))
        .and_then(|d| d.take(512).read_to_end(&mut block));
    if let Err(e) = read {
        return Diagnosis::NotBundle {
            why: format!("its first frame does not decompress ({e})"),
        };
    }
    if block.len() == 512 && block.iter().all(|&b| b == 0) {
        // An empty tar archive (its end-of-archive block): the reader says what is missing.
        return Diagnosis::Recompressed;
    }
    if block.len() < 512 || !is_tar_header(&block) {
        return Diagnosis::NotBundle {
            why: format!(
                "what it holds is not a tar archive but {}",
                looks_like(&block)
            ),
        };
    }
    let header = tar::Header::from_byte_slice(&block);
    if !header.entry_type().is_file() {
        // A directory or an extended header first (tar run over an extracted bundle): the
        // reader judges every entry.
        return Diagnosis::Recompressed;
    }
    let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
    match normalize_name(&name) {
        Ok(n) if [OCI_LAYOUT, INDEX_JSON, BUNDLE_JSON].contains(&n.as_str())
            || n.starts_with("blobs/") =>
        {
            Diagnosis::Recompressed
        }
        _ => Diagnosis::NotBundle {
            why: format!(
                "it holds a tar archive whose first file is {:?}, where a bundle holds {OCI_LAYOUT}, {INDEX_JSON}, {BUNDLE_JSON} and blobs/",
                crate::escape::Escaped(&name).to_string()
            ),
        },
    }
}

/// A tar header block: `ustar` at byte 257, or a v7 header whose checksum adds up.
fn is_tar_header(b: &[u8]) -> bool {
    if b.len() < 512 {
        return false;
    }
    if &b[257..262] == b"ustar" {
        return true;
    }
    let h = tar::Header::from_byte_slice(&b[..512]);
    match h.cksum() {
        Ok(sum) => {
            let computed: u32 = b[..148]
                .iter()
                .chain([b' '; 8].iter())
                .chain(&b[156..512])
                .map(|&x| u32::from(x))
                .sum();
            sum == computed && b[0] != 0
        }
        Err(_) => false,
    }
}

/// What bytes look like, from their magic numbers (`file`'s common cases).
pub fn looks_like(b: &[u8]) -> String {
    let known: &[(&[u8], &str)] = &[
        (b"\x1f\x8b", "gzip (a .tar.gz?)"),
        (b"BZh", "bzip2 (a .tar.bz2?)"),
        (b"\xfd7zXZ\x00", "xz (a .tar.xz?)"),
        (b"\x04\x22\x4d\x18", "lz4"),
        (b"\x89LZO", "lzop"),
        (b"PK\x03\x04", "a zip archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
        (b"\x7fELF", "an executable (ELF)"),
        (b"-----BEGIN", "a PEM file"),
        (b"{", "JSON"),
        (b"<", "HTML or XML (an error page saved as the file?)"),
    ];
    if let Some((_, what)) = known.iter().find(|(m, _)| b.starts_with(m)) {
        return what.to_string();
    }
    if is_tar_header(b) {
        return "a plain tar archive, not compressed".into();
    }
    if b.iter().all(|&x| x == 0) {
        return format!("{} zero bytes", b.len());
    }
    if std::str::from_utf8(b).is_ok_and(|s| {
        s.chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
    }) {
        return "text".into();
    }
    let hex: Vec<String> = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    format!(
        "nothing airlock knows (it starts with bytes {})",
        hex.join(" ")
    )
}

/// The size the checksum file beside `path` records for it, if any.
pub fn recorded_size(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    crate::sidecar::recorded_size(&crate::sidecar::path_for(path), &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::encode_all(data, 3).unwrap()
    }

    fn tar_of(name: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &b"{}"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn diagnose(b: &[u8], recorded: Option<u64>) -> Diagnosis {
        super::diagnose(&(Arc::new(b.to_vec()) as Arc<dyn ReadAt>), recorded)
    }

    #[test]
    fn names_what_a_file_is() {
        assert_eq!(
            diagnose(&Vec::new(), None),
            Diagnosis::Empty { recorded: None }
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        assert!(diagnose(&gz, None).to_string().contains("gzip"));
        assert!(diagnose(&tar_of("a"), None)
            .to_string()
            .contains("plain tar"));
        assert!(diagnose(b"hello\n", None).to_string().contains("text"));
        let ok = zstd(&tar_of("./oci-layout"));
        assert_eq!(diagnose(&ok, None), Diagnosis::Recompressed);
        // Recompressed in place, beside its old checksum file.
        assert_eq!(
            diagnose(&ok, Some(ok.len() as u64 + 10)),
            Diagnosis::Recompressed
        );
        let cut = ok[..ok.len() - 3].to_vec();
        assert!(matches!(
            diagnose(&cut, None),
            Diagnosis::EndsInFrame { .. }
        ));
        assert_eq!(
            diagnose(&cut, Some(ok.len() as u64)),
            Diagnosis::CutAt {
                len: cut.len() as u64,
                recorded: ok.len() as u64
            }
        );
        let mut more = ok.clone();
        more.extend_from_slice(b"junk");
        assert_eq!(
            diagnose(&more, None),
            Diagnosis::Appended {
                at: ok.len() as u64,
                len: more.len() as u64
            }
        );
        let other = diagnose(&zstd(&tar_of("etc/passwd")), None).to_string();
        assert!(
            other.contains("not an airlock bundle") && other.contains("etc/passwd"),
            "{other}"
        );
        let text = diagnose(&zstd(b"just some text\n"), None).to_string();
        assert!(text.contains("not a tar archive but text"), "{text}");
    }
}
