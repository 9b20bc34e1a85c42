//! What unpack and pack print while they work and after (issue 15, point 1): the report once,
//! a rerun with nothing to do said in words, progress as plain lines on a pipe. The bars'
//! totals are checked through the reporter (`pack::r15_pack_progress_...` and the unit tests
//! of `cmd/progress.rs`), not read off a screen.

use crate::harness::Registry;
use crate::support::*;

/// Each image is named once, in the closing report: no live line per image before it.
#[test]
fn r15_unpack_names_each_image_once_and_a_rerun_says_there_was_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = small_bundle(dir.path());
    let b = bundle.to_str().unwrap();
    let target = Registry::start();
    let url = target.url();
    let o = airlock(&["unpack", b, "--registry", &url]);
    assert_exit(&o, 0);
    let (out, err) = (stdout(&o), stderr(&o));
    let named = |text: &str| {
        text.lines()
            .filter(|l| l.contains("pause-amd64") && !l.trim_start().starts_with("->"))
            .count()
    };
    assert_eq!(
        (named(&out), named(&err)),
        (1, 0),
        "once, in the report on standard output:\n{out}\n--- stderr:\n{err}"
    );
    assert!(out.contains("\n1 image pushed to 127.0.0.1:"), "{out}");
    assert!(out.contains(" uploaded ("), "{out}");

    let o = airlock(&["unpack", b, "--registry", &url]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("The image was in 127.0.0.1:")
            && out.contains(" already, with the digests of the bundle: nothing to push"),
        "{out}"
    );
    assert!(!out.contains(" 0 "), "no zero counts:\n{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("already present "))
            .count(),
        1,
        "{out}"
    );
}

/// On a pipe, progress is plain lines (no bar, no terminal control); `--progress never`
/// and `--quiet` print none; `--progress always` draws bars even there.
#[test]
fn r15_progress_on_a_pipe_is_plain_and_can_be_turned_off_or_forced() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = small_bundle(dir.path());
    let b = bundle.to_str().unwrap();
    let o = airlock(&["verify", b]);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(
        err.starts_with("verify: "),
        "the phase and its total:\n{err}"
    );
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
    for quiet in [&["--progress", "never"][..], &["--quiet"][..]] {
        let mut args = vec!["verify", b];
        args.extend_from_slice(quiet);
        let o = airlock(&args);
        assert_exit(&o, 0);
        assert!(stderr(&o).is_empty(), "{quiet:?}: {}", stderr(&o));
    }
    let o = airlock_with(&["verify", b], None, &[("AIRLOCK_PROGRESS", "never")]);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let o = airlock(&["verify", b, "--progress", "always"]);
    assert_exit(&o, 0);
    let err = stderr(&o);
    assert!(
        err.contains("verify    [") && err.contains(" of "),
        "{err:?}"
    );
    assert!(err.contains('\u{1b}'), "drawn and cleared: {err:?}");
}

/// `pack --progress always` draws a download bar and a write bar, both cleared before the
/// summary (their totals are checked by `pack::r15_pack_progress_...`).
#[test]
fn r15_pack_draws_a_download_and_a_write_bar_and_clears_them() {
    let reg = Registry::start();
    seed(&reg, &[fixture(PAUSE)]);
    let image = format!("{}/google_containers/pause-amd64:3.0", reg.host());
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut args = vec![
        "--cache",
        cache.to_str().unwrap(),
        "--insecure",
        "--progress",
        "always",
    ];
    let fixture_args = fixture_pack_args();
    args.extend(fixture_args.iter().map(String::as_str));
    let o = pack_images(&[&image], &dir.path().join("b.tar.zst"), &args);
    assert_exit(&o, 0);
    let err = stderr(&o);
    for bar in ["download  [", "write     ["] {
        assert!(err.contains(bar), "no {bar:?} in {err:?}");
    }
    let summary = err.find("packed 1 image").expect("the summary");
    let last_bar = err.rfind("write     [").unwrap();
    assert!(
        err[last_bar..summary].contains("\u{1b}[2K"),
        "the bar is cleared before the summary: {err:?}"
    );
    assert!(
        !err[summary..].contains(" of "),
        "no bar after the summary: {err:?}"
    );
}
