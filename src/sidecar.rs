//! The checksum file beside every bundle, `bundle.tar.zst.sha256`, in the format
//! `sha256sum -c` reads: `<64 hex>  <file name>` per line, one line for a bundle file or one
//! per part of a split bundle. `pack` hashes while it writes (never reading the output back);
//! `verify` hashes the files again and names the one that differs.
//!
//! After the checksums, a comment line per file records its size (`# 1234 bytes  NAME`), which
//! `sha256sum -c` skips as it skips every line that starts with `#`; airlock reads it to tell a
//! copy cut short ("cut at N of M bytes") from another kind of damage.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::bundle::limits::{MAX_PARTS, MAX_SIDE_FILE_BYTES};
use crate::digest::{Digest, Hasher};
use crate::problem::Problem;

/// Writes `path` (temporary name, fsync, rename) with one line per `(digest, file name)`,
/// then one size comment per `(file name, size)` of `sizes`.
pub fn write(path: &Path, lines: &[(Digest, String)], sizes: &[(String, u64)]) -> io::Result<()> {
    let mut text: String = lines
        .iter()
        .map(|(d, name)| format!("{}  {name}\n", d.hex()))
        .collect();
    for (name, size) in sizes {
        text.push_str(&format!("{COMMENT}{size}{SIZE_SEP}{name}\n"));
    }
    crate::safe_write::write_file(path, text.as_bytes())
}

/// `<base>.sha256`: the checksum file beside a bundle file, or beside the parts of `base`.
pub fn path_for(base: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sha256", base.display()))
}

/// How a comment line begins (`sha256sum -c` skips such lines).
const COMMENT: &str = "# ";
/// Between the size and the file name in a size comment.
const SIZE_SEP: &str = " bytes  ";

/// The size the checksum file at `path` records for `name`, when it is readable and records
/// one (a checksum file of an older airlock has none).
pub fn recorded_size(path: &Path, name: &str) -> Option<u64> {
    recorded_sizes(path).remove(name)
}

/// Every size the checksum file at `path` records, by file name (none when it is unreadable
/// or records none).
pub fn recorded_sizes(path: &Path) -> std::collections::HashMap<String, u64> {
    let Ok(raw) = crate::input_file::read_capped(path, MAX_SIDE_FILE_BYTES) else {
        return Default::default();
    };
    let text = String::from_utf8_lossy(&raw);
    text.lines()
        .filter_map(|line| {
            let (size, n) = line.strip_prefix(COMMENT)?.split_once(SIZE_SEP)?;
            Some((n.to_string(), size.parse().ok()?))
        })
        .collect()
}

/// Reads a checksum file: `(digest, file name)` per line (see [`parse`]). The file must be a
/// regular file of at most [`MAX_SIDE_FILE_BYTES`].
pub fn read(path: &Path) -> io::Result<Vec<(Digest, String)>> {
    parse(&crate::input_file::read_capped(path, MAX_SIDE_FILE_BYTES)?)
}

/// Parses a checksum file: `(digest, file name)` per line, at most [`MAX_PARTS`] lines. Accepts
/// the binary-mode marker (`<hex> *name`) that `sha256sum -b` writes.
pub fn parse(raw: &[u8]) -> io::Result<Vec<(Digest, String)>> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))?;
    // Without the path: the caller names the file.
    let bad = |n: usize, why: &str| {
        io::Error::new(io::ErrorKind::InvalidData, format!("line {n}: {why}"))
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // Blank lines, and comments, which `sha256sum -c` skips too.
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if out.len() == MAX_PARTS {
            return Err(bad(
                i + 1,
                &format!("more than {MAX_PARTS} files listed, more than a bundle has parts"),
            ));
        }
        let (hex, rest) = line
            .split_once(' ')
            .ok_or_else(|| bad(i + 1, "expected `<sha256>  <file>`"))?;
        let name = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(|| bad(i + 1, "expected `<sha256>  <file>`"))?;
        let d = Digest::parse(&format!("sha256:{hex}"))
            .map_err(|e| bad(i + 1, &format!("bad digest: {e}")))?;
        if name.contains('/') || name.is_empty() {
            return Err(bad(i + 1, "the file name must be a plain name beside it"));
        }
        out.push((d, name.to_string()));
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "it lists no checksums",
        ));
    }
    Ok(out)
}

/// Hashes every file the checksum file at `path` lists (in parallel) and returns one problem
/// per file that is missing or differs. `Ok(None)` when there is no checksum file.
pub fn check(path: &Path) -> io::Result<Option<Vec<Problem>>> {
    let lines = match read(path) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let side = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut problems: Vec<Problem> = lines
        .par_iter()
        .filter_map(|(want, name)| {
            let what = match hash_file(&dir.join(name)) {
                Ok(got) if got == *want => return None,
                Ok(got) => format!("its sha256 is {}, {side} says {}", got.hex(), want.hex()),
                Err(e) => format!("cannot be read: {e}"),
            };
            Some(Problem::file(name, what))
        })
        .collect();
    problems.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(Some(problems))
}

/// Hashes a regular file; anything else (a FIFO, `/dev/zero`) is refused, not read.
fn hash_file(p: &Path) -> io::Result<Digest> {
    let mut f = crate::input_file::open_regular(p)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_check() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.000"), b"hello").unwrap();
        std::fs::write(dir.path().join("a.001"), b"world").unwrap();
        let side = dir.path().join("a.sha256");
        write(
            &side,
            &[
                (Digest::of(b"hello"), "a.000".into()),
                (Digest::of(b"world"), "a.001".into()),
            ],
            &[("a.000".into(), 5), ("a.001".into(), 5)],
        )
        .unwrap();
        assert_eq!(read(&side).unwrap().len(), 2);
        assert_eq!(recorded_size(&side, "a.001"), Some(5));
        assert_eq!(recorded_size(&side, "a.002"), None);
        // sha256sum -c reads it, comments and all.
        let o = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg("--strict")
            .arg(&side)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(check(&side).unwrap().unwrap(), vec![]);
        std::fs::write(dir.path().join("a.001"), b"worle").unwrap();
        let p = check(&side).unwrap().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].subject, crate::problem::Subject::File("a.001".into()));
        assert!(check(&dir.path().join("none.sha256")).unwrap().is_none());
    }

    #[test]
    fn a_bad_checksum_file_says_which_line_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let side = dir.path().join("a.sha256");
        std::fs::write(&side, "\nnot-a-checksum\n").unwrap();
        // The caller names the file; the message says where in it.
        assert_eq!(
            read(&side).unwrap_err().to_string(),
            "line 2: expected `<sha256>  <file>`"
        );
        std::fs::write(&side, "\n\n").unwrap();
        assert_eq!(
            read(&side).unwrap_err().to_string(),
            "it lists no checksums"
        );
    }
}
