//! The command line as an interface (issue 15): exit codes, help, completions and the man
//! page, the JSON documents, and files pack must not replace.
//!
//! Exit codes 3 (partial success) are checked where a partial success happens:
//! `pack::keep_going_writes_what_it_could_and_still_fails` and
//! `unpack::a_corrupted_layer_is_named_by_verify_and_only_its_image_is_not_pushed`; 130 and
//! 143 in `interrupt`.

use crate::support::*;

#[test]
fn r15_exit_0_when_everything_was_done() {
    let o = airlock(&["list", "--version", "1.6.14"]);
    assert_exit(&o, 0);
}

#[test]
fn r15_exit_1_when_the_work_failed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.tar.zst");
    let o = airlock(&["verify", missing.to_str().unwrap()]);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("missing.tar.zst"), "{}", stderr(&o));
}

/// Every argument error exits 2, whether clap or airlock finds it, and says which flag.
#[test]
fn r15_exit_2_for_every_argument_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["pack", "--version", "1.6.14", "-o", out, "--bogus"],
            "--bogus",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--mirror",
                "docker.io",
            ],
            "--mirror",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--platform",
                "linux",
            ],
            "--platform",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--relocate",
                "nothing",
            ],
            "--relocate",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--only",
                "everything",
            ],
            "--only",
        ),
        (
            &["pack", "--version", "1.6.14", "-o", out, "--split", "3X"],
            "--split",
        ),
        (
            &[
                "pack",
                "--version",
                "1.6.14",
                "-o",
                out,
                "--username",
                "u",
                "--password-stdin",
            ],
            "--login",
        ),
        (&["pack", "-o", out], "--version"),
        (&["list", "--version", "9.9.9"], "9.9.9"),
        (
            &["list", "--version", "1.6.14", "--k8s-template", "v0"],
            "v0",
        ),
        (
            &["unpack", "b.tar.zst", "--registry", "reg/path"],
            "--prefix",
        ),
    ];
    for (args, names) in cases {
        let o = airlock(args);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(e.contains(names), "{args:?}: the error names {names}: {e}");
        assert!(e.contains("--help"), "{args:?}: points to --help: {e}");
        assert!(!dir.path().join("b.tar.zst").exists());
    }
}

#[test]
fn r15_exit_70_for_a_bug() {
    let o = airlock_with(
        &["list", "--versions"],
        None,
        &[("AIRLOCK_TEST_PANIC", "1")],
    );
    assert_eq!(o.status.code(), Some(70), "{}", stderr(&o));
    assert!(stderr(&o).contains("internal error"), "{}", stderr(&o));
}

#[test]
fn r15_help_lists_the_exit_codes() {
    let long = stdout(&airlock(&["--help"]));
    for code in ["0 ", "1 ", "2 ", "3 ", "70 ", "130 ", "143 "] {
        assert!(
            long.lines()
                .any(|l| l.trim_start().starts_with(code) || l.contains(&format!(" {code}"))),
            "--help documents exit code {code}:\n{long}"
        );
    }
    assert!(long.contains("partial success"), "{long}");
}

/// `pack -o notes.txt` replaced an operator's text file with a bundle (issue 15).
#[test]
fn r15_pack_never_replaces_a_file_it_did_not_write_without_force() {
    let reg = crate::harness::Registry::start();
    seed(&reg, &[fixture(PAUSE)]);
    let image = format!("{}/google_containers/pause-amd64:3.0", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_args = ["--cache", cache.to_str().unwrap(), "--insecure"];
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "meeting notes\n").unwrap();
    let o = pack_images(&[&image], &notes, &cache_args);
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert!(
        e.contains("notes.txt exists and was not written by airlock") && e.contains("--force"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "meeting notes\n");
    assert!(!cache.exists(), "refused before any download");

    // A checksum file beside it that is not one is an operator's file too.
    let out = dir.path().join("b.tar.zst");
    std::fs::write(dir.path().join("b.tar.zst.sha256"), "my notes\n").unwrap();
    let o = pack_images(&[&image], &out, &cache_args);
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("b.tar.zst.sha256 exists"),
        "{}",
        stderr(&o)
    );
    // So is a part of a split bundle with no airlock parts manifest beside it.
    std::fs::write(dir.path().join("p.tar.zst.000"), "not a part\n").unwrap();
    let split = dir.path().join("p.tar.zst");
    let o = pack_images(
        &[&image],
        &split,
        &[&cache_args[..], &["--split", "1M"]].concat(),
    );
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("p.tar.zst.000 exists"),
        "{}",
        stderr(&o)
    );

    // --force replaces it.
    let mut forced = cache_args.to_vec();
    forced.push("--force");
    let o = pack_images(&[&image], &notes, &forced);
    assert_exit(&o, 0);
    assert_eq!(manifest_of(&notes).images.len(), 1);
    // And a bundle airlock wrote is replaced without it: a rerun is no accident.
    let o = pack_images(&[&image], &notes, &cache_args);
    assert_exit(&o, 0);
}

/// `-o nodir/sub/b.tar.zst` said "measuring the free space of nodir/sub / No such file or
/// directory" (issue 15).
#[test]
fn r15_a_missing_output_directory_is_named_with_the_mkdir_that_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("nodir/sub");
    let out = sub.join("b.tar.zst");
    let o = airlock(&["pack", "--version", "1.6.14", "-o", out.to_str().unwrap()]);
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "the output directory {} does not exist",
            sub.display()
        )) && e.contains(&format!("mkdir -p {}", sub.display())),
        "{e}"
    );
}
