//! Issue 15 point 8: a bad bundle is diagnosed, not guessed at. Each kind of damage, made by
//! the test from a real packed bundle or from scratch, gets its own text and a non-zero exit:
//! not zstd at all (and what it looks like), zstd but not an airlock bundle, a bundle cut
//! short ("cut at N of M bytes" from the size its checksum file records), bytes appended, and
//! a bundle recompressed without its seek table, which is read in order with no warning that
//! contradicts it. `verify -` says nothing about a seek table, and verify's OK line says
//! whether the checksum file was checked.

use std::io::Write;
use std::path::Path;

use crate::support::{airlock, airlock_with, pause_bundle, stderr, stdout};

/// `airlock verify PATH` failed (any non-zero code, not a panic) and said every needle.
fn verify_fails(path: &Path, needles: &[&str]) {
    let o = airlock(&["verify", path.to_str().unwrap()]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{path:?}: wanted {n:?} in\n{err}");
    }
    // The old guess, which named every cause at once, is gone.
    assert!(!err.contains("or was recompressed"), "{err}");
}

fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn i15_a_file_that_is_not_zstd_is_named_for_what_it_looks_like() {
    let dir = tempfile::tempdir().unwrap();
    let tar = tar_of("etc/hosts", b"127.0.0.1 localhost\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("images.tar.gz", gz.finish().unwrap(), "gzip"),
        ("images.tar", tar, "a plain tar archive"),
        ("images.tar.xz", b"\xfd7zXZ\x00\x00\x04".to_vec(), "xz"),
        ("notes.txt", b"rancher/k8s:v1.8.5\n".to_vec(), "text"),
        ("page.html", b"<html>404</html>".to_vec(), "HTML"),
    ];
    for (name, bytes, looks) in &cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        verify_fails(&p, &[name, "is not zstd-compressed", looks]);
    }
    // Through standard input, from its first bytes.
    let o = airlock_with(&["verify", "-"], Some(&cases[0].1), &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o)
            .contains("- is not zstd-compressed, so not an airlock bundle: it looks like gzip"),
        "{}",
        stderr(&o)
    );
    let empty = dir.path().join("empty.tar.zst");
    std::fs::write(&empty, b"").unwrap();
    verify_fails(&empty, &["empty.tar.zst is empty"]);
}

#[test]
fn i15_zstd_that_is_not_an_airlock_bundle_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("backup.tar.zst");
    let tar = tar_of("etc/hosts", b"127.0.0.1 localhost\n");
    std::fs::write(&p, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    verify_fails(
        &p,
        &[
            "backup.tar.zst is zstd-compressed but not an airlock bundle",
            "\"etc/hosts\"",
        ],
    );
    std::fs::write(&p, zstd::encode_all(&b"plain words\n"[..], 3).unwrap()).unwrap();
    verify_fails(&p, &["not an airlock bundle", "not a tar archive but text"]);
}

#[test]
fn i15_a_bundle_cut_short_says_where_against_its_checksum_file() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let full = std::fs::read(&bundle).unwrap();
    let side = std::fs::read_to_string(format!("{}.sha256", bundle.display())).unwrap();
    assert!(
        side.contains(&format!("# {} bytes  pause.tar.zst", full.len())),
        "{side}"
    );
    let half = full.len() / 2;
    std::fs::write(&bundle, &full[..half]).unwrap();
    verify_fails(
        &bundle,
        &[&format!(
            "pause.tar.zst is an airlock bundle cut short: cut at {half} of {} bytes",
            full.len()
        )],
    );
    // unpack says the same before touching any registry.
    let o = airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        "127.0.0.1:9",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("cut at"), "{}", stderr(&o));
    // Without its checksum file: where the frames stop says it.
    std::fs::remove_file(format!("{}.sha256", bundle.display())).unwrap();
    verify_fails(
        &bundle,
        &[&format!(
            "pause.tar.zst is cut short: its {half} bytes end inside the zstd frame"
        )],
    );
}

#[test]
fn i15_bytes_appended_to_a_bundle_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let len = std::fs::metadata(&bundle).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&bundle)
        .unwrap();
    f.write_all(b"garbage").unwrap();
    verify_fails(
        &bundle,
        &[&format!(
            "pause.tar.zst has 7 bytes appended after its end at byte {len}; copy it again, or cut them off with `truncate -s {len}`"
        )],
    );
}

#[test]
fn i15_a_recompressed_bundle_is_read_in_order_without_a_contradicting_warning() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let tar = zstd::decode_all(&std::fs::read(&bundle).unwrap()[..]).unwrap();
    let re = dir.path().join("re.tar.zst");
    std::fs::write(&re, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    let o = airlock(&["verify", re.to_str().unwrap()]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("re.tar.zst has no seek table: it was recompressed")
            && err.contains("reading it in one sequential pass"),
        "{err}"
    );
    for wrong in [
        "truncated",
        "cut",
        "appended",
        "needs",
        "not an airlock bundle",
    ] {
        assert!(!err.contains(wrong), "{wrong:?} in\n{err}");
    }
    assert!(out.contains("no checksum file"), "{out}");
    // A command that needs the table says so, and why there is none.
    let o = airlock(&["inspect", re.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("it was recompressed") && stderr(&o).contains("needs the table"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn i15_verify_says_whether_the_checksum_file_was_checked() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let side = format!("{}.sha256", bundle.display());
    let o = airlock(&["verify", bundle.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("checksum file {side} checked")),
        "{}",
        stdout(&o)
    );
    // In JSON, the file checked.
    let o = airlock(&["verify", bundle.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checksumFile"].as_str(), Some(side.as_str()), "{v}");
    // Standard input: nothing about a seek table, and no checksum file.
    let raw = std::fs::read(&bundle).unwrap();
    let o = airlock_with(&["verify", "-"], Some(&raw), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("seek table"), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("no checksum file for standard input"),
        "{}",
        stdout(&o)
    );
    let o = airlock_with(&["verify", "-", "--format", "json"], Some(&raw), &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["checksumFile"].is_null(), "{v}");
    std::fs::remove_file(&side).unwrap();
    let o = airlock(&["verify", bundle.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("no checksum file {side} beside it")),
        "{}",
        stdout(&o)
    );
}
